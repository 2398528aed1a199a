//! Who may enter a room, over REST: `PATCH /api/v1/rooms/{room}` (a host sets
//! the access level, password, "ask to join"), the members of a room
//! (`GET /api/v1/rooms/{room}/members`, `PUT`/`DELETE …/members/{username}`)
//! and `POST /api/v1/rooms/{room}/pass` (the room password for a room pass to
//! join with). Each handler calls one `AccessService` use case, which decides.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::{json, Value};
use webcall_app::admission::{Admission, Caller, Refusal};
use webcall_app::AppError;
use webcall_domain::access::{Access, Member};
use webcall_domain::signaling::{Room, RoomName};

use crate::auth::rfc3339;
use crate::extract::{bearer_token, ApiJson, ClientIp};
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms/{room}/members", get(members))
        .route(
            "/api/v1/rooms/{room}/members/{username}",
            put(add_member).delete(remove_member),
        )
        .route("/api/v1/rooms/{room}/pass", post(pass))
}

/// The signed-in caller as the admission decision sees them (their role read
/// with the account, not from the token).
pub(crate) struct RoomCaller(pub Caller);

impl FromRequestParts<AppState> for RoomCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or(AppError::TokenMissing)?;
        let (_, user) = state.accounts.authenticate_user(token).await?;
        Ok(Self(Caller {
            user: user.id,
            role: user.role,
        }))
    }
}

/// The access level from a body, or 422 naming the field.
pub(crate) fn access_field(raw: Option<&str>) -> Result<Option<Access>, ApiError> {
    raw.map(|raw| {
        Access::parse(raw).map_err(|_| ApiError::InvalidBody {
            field: Some("access".into()),
            message: "access must be public, unlisted or private".into(),
        })
    })
    .transpose()
}

/// What joining would come to, as `GET /api/v1/rooms/{room}` says it.
pub(crate) fn admission_str(admission: Admission) -> &'static str {
    match admission {
        Admission::Admit => "admit",
        Admission::Wait => "wait",
        Admission::Refuse(Refusal::PasswordRequired) => "password_required",
        Admission::Refuse(Refusal::Private) => "private",
        Admission::Refuse(Refusal::Banned) => "banned",
    }
}

/// A field that may be absent (keep), `null` (remove) or a value (set).
fn patch<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
pub(crate) struct ChangeAccess {
    access: Option<String>,
    /// A new password, or `null` to remove it.
    #[serde(default, deserialize_with = "patch")]
    password: Option<Option<String>>,
    ask_to_join: Option<bool>,
}

/// `PATCH /api/v1/rooms/{room}`: a host changes who may enter.
pub(crate) async fn change(
    State(state): State<AppState>,
    RoomCaller(caller): RoomCaller,
    Path(room): Path<String>,
    ApiJson(body): ApiJson<ChangeAccess>,
) -> Result<Json<Value>, ApiError> {
    let name = RoomName::parse(&room)?;
    let access = access_field(body.access.as_deref())?;
    let room = state
        .access
        .change(caller, &name, access, body.password, body.ask_to_join)
        .await?;
    Ok(Json(room_json(&room)))
}

fn member_json(member: &Member) -> Value {
    json!({
        "user_id": member.user_id.to_string(),
        "username": member.username,
        "added_at": rfc3339(member.added_at),
    })
}

async fn members(
    State(state): State<AppState>,
    RoomCaller(caller): RoomCaller,
    Path(room): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = RoomName::parse(&room)?;
    let members = state.access.members(caller, &name).await?;
    Ok(Json(
        json!({"members": members.iter().map(member_json).collect::<Vec<_>>()}),
    ))
}

async fn add_member(
    State(state): State<AppState>,
    RoomCaller(caller): RoomCaller,
    Path((room, username)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let name = RoomName::parse(&room)?;
    let member = state.access.add_member(caller, &name, &username).await?;
    Ok(Json(member_json(&member)))
}

async fn remove_member(
    State(state): State<AppState>,
    RoomCaller(caller): RoomCaller,
    Path((room, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let name = RoomName::parse(&room)?;
    state.access.remove_member(caller, &name, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Unlock {
    #[serde(deserialize_with = "string")]
    password: String,
}

fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let raw = String::deserialize(deserializer)?;
    if raw.is_empty() {
        return Err(de::Error::custom("password is required"));
    }
    Ok(raw)
}

/// `POST /api/v1/rooms/{room}/pass`: the room password for a room pass
/// (present it as `?pass=` when joining); 403 `room_password_wrong`, 429
/// `too_many_attempts` after repeated wrong ones.
async fn pass(
    State(state): State<AppState>,
    RoomCaller(caller): RoomCaller,
    ClientIp(client): ClientIp,
    Path(room): Path<String>,
    ApiJson(body): ApiJson<Unlock>,
) -> Result<Json<Value>, ApiError> {
    let name = RoomName::parse(&room)?;
    let (pass, expires_at) = state
        .access
        .unlock(caller, &name, body.password, client)
        .await?;
    Ok(Json(
        json!({"pass": pass, "expires_at": rfc3339(expires_at)}),
    ))
}

pub(crate) fn room_json(room: &Room) -> Value {
    json!({
        "name": room.name.as_str(),
        "owner": {"user_id": room.owner.to_string(), "username": room.owner_name},
        "created_at": rfc3339(room.created_at),
        "locked": room.locked,
        "access": room.access.access.as_str(),
        "has_password": room.access.password.is_some(),
        "ask_to_join": room.access.ask_to_join,
    })
}
