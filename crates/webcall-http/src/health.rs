//! `/healthz` (the process answers) and `/readyz` (its dependencies answer).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// 200 with each check's result, or 503 in the API's error shape naming the
/// first failing dependency (its cause is logged, not returned).
async fn readyz(State(state): State<AppState>) -> Response {
    let mut checks = BTreeMap::new();
    let mut failed = None;
    for check in state.health.iter() {
        let ok = match check.check().await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(check = check.name(), error = %err, "readiness check failed");
                failed.get_or_insert(check.name());
                false
            }
        };
        checks.insert(check.name(), if ok { "ok" } else { "unavailable" });
    }
    match failed {
        None => Json(json!({"status": "ready", "checks": checks})).into_response(),
        Some(name) => ApiError::NotReady(name).into_response(),
    }
}
