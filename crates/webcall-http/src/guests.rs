//! Guest links over HTTP. A room's hosts manage its links under
//! `/api/v1/rooms/{room}/invites` (the use cases decide who is a host); the
//! guest's side is `POST /api/v1/guest/invite` (what a link leads to) and
//! `POST /api/v1/guest` (a name for a guest token). Tokens travel in bodies,
//! never in a URL the server logs: the link is `/join#TOKEN`, and the page
//! reads the fragment, which browsers send to no server and no `Referer`.
//!
//! A guest token is accepted by `extract::CallCaller` (`GET
//! /api/v1/webrtc/ice-servers`) and by the signaling socket of its room
//! (`ws`); every other endpoint checks account tokens only and answers it
//! with 401.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use webcall_app::guests::NewLink;
use webcall_app::AppError;
use webcall_domain::guests::{Invite, InviteId};
use webcall_domain::model::User;
use webcall_domain::signaling::RoomName;

use crate::admin::origin;
use crate::auth::rfc3339;
use crate::extract::{ApiJson, Authenticated};
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms/{room}/invites", get(list).post(create))
        .route("/api/v1/rooms/{room}/invites/{id}", delete(revoke))
        .route("/api/v1/guest/invite", post(preview))
        .route("/api/v1/guest", post(join))
}

fn room_name(raw: &str) -> Result<RoomName, ApiError> {
    Ok(RoomName::parse(raw)?)
}

/// The account behind the caller's token.
async fn account(state: &AppState, Authenticated(claims): Authenticated) -> Result<User, ApiError> {
    Ok(state.accounts.me(&claims).await?)
}

fn invite_json(invite: &Invite, now: chrono::DateTime<chrono::Utc>) -> Value {
    let state = if now >= invite.expires_at {
        "expired"
    } else if invite.usable(now) {
        "active"
    } else {
        "used_up"
    };
    json!({
        "id": invite.id.to_string(),
        "created_at": rfc3339(invite.created_at),
        "expires_at": rfc3339(invite.expires_at),
        "max_uses": invite.max_uses,
        "uses": invite.uses,
        "state": state,
    })
}

#[derive(Deserialize)]
struct CreateBody {
    /// Seconds (3600 to 2592000); a day when absent.
    expires_in: Option<i64>,
    /// 1 to 1000; null or absent: unlimited.
    max_uses: Option<u32>,
}

/// 201 with the link's URL: the only time its token is shown.
async fn create(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(room): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let room = room_name(&room)?;
    let user = account(&state, caller).await?;
    let link = NewLink {
        expires_in_secs: body.expires_in,
        max_uses: body.max_uses,
    };
    let made = state.guests.create(&user, &room, link).await?;
    let mut value = invite_json(&made.invite, made.invite.created_at);
    value["url"] = json!(format!(
        "{}/join#{}",
        origin(&headers),
        made.token.expose_secret()
    ));
    Ok((StatusCode::CREATED, Json(value)))
}

async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(room): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let room = room_name(&room)?;
    let user = account(&state, caller).await?;
    let invites = state.guests.list(&user, &room).await?;
    let now = chrono::Utc::now();
    Ok(Json(json!({
        "invites": invites.iter().map(|i| invite_json(i, now)).collect::<Vec<_>>(),
    })))
}

async fn revoke(
    State(state): State<AppState>,
    caller: Authenticated,
    Path((room, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let room = room_name(&room)?;
    let id = InviteId::parse(&id).ok_or(AppError::InviteNotFound)?;
    let user = account(&state, caller).await?;
    state.guests.revoke(&user, &room, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct PreviewBody {
    token: Option<String>,
}

/// What a link leads to (its room), counting no use.
async fn preview(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PreviewBody>,
) -> Result<Json<Value>, ApiError> {
    let invite = state
        .guests
        .preview(body.token.as_deref().unwrap_or_default())
        .await?;
    Ok(Json(json!({
        "room": invite.room.as_str(),
        "expires_at": rfc3339(invite.expires_at),
    })))
}

#[derive(Deserialize)]
struct JoinBody {
    token: Option<String>,
    name: Option<String>,
}

/// A guest token for the link's room (one use of the link).
async fn join(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<JoinBody>,
) -> Result<Json<Value>, ApiError> {
    let issued = state
        .guests
        .join(
            body.token.as_deref().unwrap_or_default(),
            body.name.as_deref().unwrap_or_default(),
        )
        .await?;
    let claims = &issued.claims;
    Ok(Json(json!({
        "access_token": issued.token.expose_secret(),
        "token_type": "Bearer",
        "expires_in": (claims.expires_at - claims.issued_at).num_seconds(),
        "room": claims.room.as_str(),
        "guest": {"id": claims.guest_id.to_string(), "name": claims.name.as_str()},
    })))
}
