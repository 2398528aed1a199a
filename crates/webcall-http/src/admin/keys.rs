//! `/api/v1/admin/keys`: the signing keys' generations (never a key), and
//! rotating one (`POST /api/v1/admin/keys/{turn|jwt}/rotate`).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use webcall_app::operations::KeyStatus;
use webcall_domain::operations::KeyKind;

use super::AdminCaller;
use crate::auth::rfc3339;
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/keys", get(list))
        .route("/api/v1/admin/keys/{key}/rotate", post(rotate))
}

fn key_json(status: &KeyStatus) -> Value {
    json!({
        "generation": status.generation.generation,
        "rotated_at": status.generation.rotated_at.map(rfc3339),
        "previous_valid_until": status.previous_valid_until.map(rfc3339),
        "rotates": status.rotates,
    })
}

async fn list(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let keys: Map<String, Value> = state
        .operations
        .keys(&actor)
        .iter()
        .map(|status| (status.kind.as_str().to_owned(), key_json(status)))
        .collect();
    Ok(Json(Value::Object(keys)))
}

async fn rotate(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let kind = KeyKind::parse(&key).ok_or(ApiError::NotFound)?;
    let status = state.operations.rotate(&actor, kind).await?;
    Ok(Json(key_json(&status)))
}
