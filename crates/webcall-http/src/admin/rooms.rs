//! `/api/v1/admin/rooms`: list with occupancy, end a call, delete, lock, owner.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;
use webcall_app::admin::page_size;
use webcall_app::rooms::RoomSummary;
use webcall_app::AppError;
use webcall_domain::model::UserId;
use webcall_domain::signaling::RoomName;
use webcall_domain::DomainError;

use super::{bad_cursor, AdminCaller, Page};
use crate::auth::rfc3339;
use crate::extract::ApiJson;
use crate::rooms::query;
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/rooms", get(list))
        .route("/api/v1/admin/rooms/{name}", delete(remove))
        .route("/api/v1/admin/rooms/{name}/end", post(end))
        .route("/api/v1/admin/rooms/{name}/lock", put(lock))
        .route("/api/v1/admin/rooms/{name}/owner", put(owner))
}

/// A name no room can have names none: 404, like an unknown one.
fn room_name(raw: &str) -> Result<RoomName, ApiError> {
    RoomName::parse(raw).map_err(|_| AppError::RoomNotFound.into())
}

fn room_json(summary: &RoomSummary) -> Value {
    let room = &summary.room;
    json!({
        "name": room.name.as_str(),
        "owner": {"id": room.owner.to_string(), "username": room.owner_name},
        "created_at": rfc3339(room.created_at),
        "locked": room.locked,
        "participants": summary.peers.len(),
    })
}

async fn list(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let page = query(page, "limit must be a whole number")?;
    let after = match page.cursor.as_deref() {
        None | Some("") => None,
        Some(cursor) => Some(RoomName::parse(cursor).map_err(|_| bad_cursor())?),
    };
    let found = state
        .admin
        .rooms(&actor, after.as_ref(), page_size(page.limit))
        .await?;
    let next_cursor = found
        .more
        .then(|| found.rooms.last().map(|last| last.room.name.as_str()))
        .flatten();
    Ok(Json(json!({
        "rooms": found.rooms.iter().map(room_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

async fn end(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.admin.end_call(&actor, &room_name(&name)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.admin.delete_room(&actor, &room_name(&name)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct LockBody {
    locked: Option<bool>,
}

async fn lock(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<LockBody>,
) -> Result<StatusCode, ApiError> {
    let room = room_name(&name)?;
    let locked = body.locked.ok_or(DomainError::Invalid {
        field: "locked",
        message: "must be true or false",
    })?;
    state.admin.lock_room(&actor, &room, locked).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct OwnerBody {
    user_id: Option<String>,
}

async fn owner(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<OwnerBody>,
) -> Result<StatusCode, ApiError> {
    let room = room_name(&name)?;
    let owner = body
        .user_id
        .as_deref()
        .and_then(|id| Uuid::parse_str(id).ok())
        .map(UserId)
        .ok_or(DomainError::Invalid {
            field: "user_id",
            message: "must be a user's id",
        })?;
    state.admin.set_owner(&actor, &room, owner).await?;
    Ok(StatusCode::NO_CONTENT)
}
