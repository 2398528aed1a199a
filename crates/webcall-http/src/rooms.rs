//! `/api/v1/rooms`: list the rooms the caller may see, create one (with its
//! access), read one with who is in its call and what joining would come to
//! (the pre-join screen), change its access (`room_access`), delete one
//! (owner), page chat history.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use webcall_app::rooms::RoomSummary;
use webcall_domain::signaling::RoomName;

use crate::extract::{ApiJson, Authenticated};
use crate::room_access::{self, access_field, admission_str, room_json, RoomCaller};
use crate::ws::chat_frames;
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms", get(list).post(create))
        .route(
            "/api/v1/rooms/{room}",
            get(read).delete(delete).patch(room_access::change),
        )
        .route("/api/v1/rooms/{room}/messages", get(messages))
}

fn summary_json(summary: &RoomSummary) -> Value {
    let mut value = room_json(&summary.room);
    value["participants"] = json!(summary.peers.len());
    value["people"] = json!(summary
        .peers
        .iter()
        .map(|p| p.username.as_str())
        .collect::<Vec<_>>());
    value
}

/// A query string, or 422 saying what it should have been.
pub(crate) fn query<T>(
    query: Result<Query<T>, QueryRejection>,
    expected: &str,
) -> Result<T, ApiError> {
    query
        .map(|Query(value)| value)
        .map_err(|rejection| ApiError::InvalidBody {
            field: None,
            message: format!("{expected}: {rejection}"),
        })
}

#[derive(Deserialize)]
struct RoomPage {
    /// `next_cursor` of the page before.
    cursor: Option<String>,
    limit: Option<u32>,
}

/// Rooms by name, a page at a time: `?limit=` (1-200, default 50) and
/// `?cursor=` from the previous page's `next_cursor` (null on the last page).
async fn list(
    State(state): State<AppState>,
    RoomCaller(caller): RoomCaller,
    page: Result<Query<RoomPage>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let page = query(page, "limit must be a whole number")?;
    let after = match page.cursor.as_deref() {
        None | Some("") => None,
        Some(cursor) => Some(RoomName::parse(cursor).map_err(|_| ApiError::InvalidBody {
            field: Some("cursor".into()),
            message: "cursor must be a next_cursor this server gave".into(),
        })?),
    };
    let limit = page.limit.unwrap_or(50).clamp(1, 200) as usize;
    let (rooms, more) = state.access.list(caller, after.as_ref(), limit).await?;
    let next_cursor = more
        .then(|| rooms.last().map(|last| last.room.name.as_str()))
        .flatten();
    Ok(Json(json!({
        "rooms": rooms.iter().map(summary_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

#[derive(Deserialize)]
struct CreateRoom {
    name: Option<String>,
    /// `public` (the default), `unlisted` or `private`.
    access: Option<String>,
    password: Option<String>,
    #[serde(default)]
    ask_to_join: bool,
}

async fn create(
    State(state): State<AppState>,
    RoomCaller(caller): RoomCaller,
    ApiJson(body): ApiJson<CreateRoom>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = RoomName::parse(body.name.as_deref().unwrap_or_default()).map_err(|_| {
        ApiError::InvalidBody {
            field: Some("name".into()),
            message: "name must be 1-64 of letters, digits, '_' or '-'".into(),
        }
    })?;
    let access = access_field(body.access.as_deref())?.unwrap_or_default();
    let room = state
        .access
        .create(caller, &name, access, body.password, body.ask_to_join)
        .await?;
    Ok((StatusCode::CREATED, Json(room_json(&room))))
}

/// One room with who is in its call now and what joining would come to
/// (`admission`: `admit`, `wait` or `password_required`; the people are not
/// shown until the password is given); 403 `room_private` for a private room's
/// non-member; 404 `room_not_found` when there is no such room (joining it
/// creates it).
async fn read(
    State(state): State<AppState>,
    RoomCaller(caller): RoomCaller,
    Path(room): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = RoomName::parse(&room)?;
    let view = state.access.view(caller, &name, None).await?;
    let view = view.ok_or(webcall_app::AppError::RoomNotFound)?;
    let mut value = summary_json(&view.summary);
    value["admission"] = json!(admission_str(view.admission));
    value["host"] = json!(view.host);
    Ok(Json(value))
}

async fn delete(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = RoomName::parse(&room)?;
    state.hub.delete_room(&name, claims.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Page {
    before: Option<i64>,
    limit: Option<u32>,
    /// A room pass, for a room with a password.
    pass: Option<String>,
}

async fn messages(
    State(state): State<AppState>,
    RoomCaller(caller): RoomCaller,
    Path(room): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let page = query(page, "before and limit must be whole numbers")?;
    let name = RoomName::parse(&room)?;
    let limit = page.limit.unwrap_or(50).clamp(1, 200);
    let pass = page.pass.as_deref().filter(|p| !p.is_empty());
    let messages = state
        .access
        .history(caller, &name, pass, page.before, limit)
        .await?;
    Ok(Json(json!({"messages": chat_frames(&messages)})))
}
