//! `GET /api/v1/webrtc/ice-servers`: what a browser passes to `RTCPeerConnection`
//! (for an account, or a guest in a call).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use webcall_domain::model::IceServers;

use crate::extract::CallCaller;
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/webrtc/ice-servers", get(ice_servers))
}

/// `RTCConfiguration`'s shape: `{"iceServers": [...], "ttl": seconds}`.
#[derive(Serialize)]
pub struct IceServersBody {
    #[serde(rename = "iceServers")]
    ice_servers: Vec<IceServerBody>,
    ttl: u64,
}

#[derive(Serialize)]
struct IceServerBody {
    urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<String>,
}

impl From<IceServers> for IceServersBody {
    fn from(ice: IceServers) -> Self {
        Self {
            ice_servers: ice
                .servers
                .into_iter()
                .map(|server| {
                    let (username, credential) = server
                        .credentials
                        .map(|c| (c.username, c.credential))
                        .unzip();
                    IceServerBody {
                        urls: server.urls,
                        username,
                        credential,
                    }
                })
                .collect(),
            ttl: ice.ttl_secs,
        }
    }
}

async fn ice_servers(
    State(state): State<AppState>,
    CallCaller(caller): CallCaller,
) -> Result<Json<IceServersBody>, ApiError> {
    Ok(Json(state.ice.for_user(caller).into()))
}
