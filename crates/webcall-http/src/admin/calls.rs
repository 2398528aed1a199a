//! `GET /api/v1/admin/calls`: who is in which call now, on every instance.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::AdminCaller;
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/admin/calls", get(list))
}

async fn list(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let rooms = state.admin.live_calls(&actor).await?;
    let rooms: Vec<Value> = rooms
        .iter()
        .map(|room| {
            json!({
                "name": room.name.as_str(),
                "participants": room.peers.iter().map(|peer| json!({
                    "peer_id": peer.peer_id.as_str(),
                    "user_id": peer.user_id.to_string(),
                    "username": peer.username,
                    "mic": peer.state.audio,
                    "cam": peer.state.video,
                    "screen": peer.state.screen,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "rooms": rooms })))
}
