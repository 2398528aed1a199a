//! `/api/v1/rooms`: list live rooms, create one, read one with who is in its
//! call (the pre-join screen), delete one (owner), page chat history.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use webcall_app::rooms::RoomSummary;
use webcall_domain::signaling::{Room, RoomName};

use crate::auth::rfc3339;
use crate::extract::{ApiJson, Authenticated};
use crate::ws::chat_frames;
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms", get(list).post(create))
        .route("/api/v1/rooms/{room}", get(read).delete(delete))
        .route("/api/v1/rooms/{room}/messages", get(messages))
}

fn room_json(room: &Room) -> Value {
    json!({
        "name": room.name.as_str(),
        "owner": {"user_id": room.owner.to_string(), "username": room.owner_name},
        "created_at": rfc3339(room.created_at),
        "locked": room.locked,
    })
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
    _: Authenticated,
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
    let (rooms, more) = state.rooms.list(after.as_ref(), limit).await?;
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
}

async fn create(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    ApiJson(body): ApiJson<CreateRoom>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = RoomName::parse(body.name.as_deref().unwrap_or_default()).map_err(|_| {
        ApiError::InvalidBody {
            field: Some("name".into()),
            message: "name must be 1-64 of letters, digits, '_' or '-'".into(),
        }
    })?;
    let room = state.rooms.create(&name, claims.user_id).await?;
    Ok((StatusCode::CREATED, Json(room_json(&room))))
}

/// One room with who is in its call now; 404 `room_not_found` when there is
/// no such room (joining it creates it).
async fn read(
    State(state): State<AppState>,
    _: Authenticated,
    Path(room): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = RoomName::parse(&room)?;
    let summary = state.rooms.summary(&name).await?;
    let summary = summary.ok_or(webcall_app::AppError::RoomNotFound)?;
    Ok(Json(summary_json(&summary)))
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
}

async fn messages(
    State(state): State<AppState>,
    _: Authenticated,
    Path(room): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let page = query(page, "before and limit must be whole numbers")?;
    let name = RoomName::parse(&room)?;
    let limit = page.limit.unwrap_or(50).clamp(1, 200);
    let messages = state.rooms.messages(&name, page.before, limit).await?;
    Ok(Json(json!({"messages": chat_frames(&messages)})))
}
