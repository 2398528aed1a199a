//! `GET /api/v1/admin/audit`: the audit log, newest first, a page at a time.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use webcall_app::admin::page_size;

use super::{bad_cursor, AdminCaller, Page};
use crate::auth::rfc3339;
use crate::rooms::query;
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/admin/audit", get(list))
}

async fn list(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let page = query(page, "limit must be a whole number")?;
    let before = match page.cursor.as_deref() {
        None | Some("") => None,
        Some(cursor) => Some(cursor.parse::<i64>().map_err(|_| bad_cursor())?),
    };
    let found = state
        .admin
        .audit(&actor, before, page_size(page.limit))
        .await?;
    let entries: Vec<Value> = found
        .entries
        .iter()
        .map(|entry| {
            json!({
                "id": entry.id,
                "at": rfc3339(entry.at),
                "actor": {"id": entry.actor.to_string(), "username": entry.actor_name},
                "action": entry.action,
                "target": entry.target,
                "detail": entry.detail,
            })
        })
        .collect();
    Ok(Json(json!({
        "entries": entries,
        "next_cursor": found.next_cursor.map(|id| id.to_string()),
    })))
}
