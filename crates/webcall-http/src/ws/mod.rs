//! `GET /ws/rooms/{room}?token=JWT[&resume=TOKEN][&pass=ROOM_PASS][&sfu=1]`: the signaling WebSocket
//! (the protocol is in `docs/protocol.md`). This file is the endpoint: the
//! checks before the upgrade (token, room name, the account's open sockets).
//!
//! [`WsOptions`] (timings and limits) is here too.
//!
//! Layout, each depending only on those after it: `connection` runs an
//! upgraded socket (the writer, which owns the sink, and the close); `lobby`
//! its way in (the join, or waiting for a host's answer); `reader`
//! reads the client's frames (idle timeout, rate limit) and carries them out;
//! `control` is the reader's queue to the writer; `session` is the socket's
//! handle on the hub; `rate_limiter` limits the frames a client sends;
//! `protocol` is the frames' JSON and the close and error codes.

mod connection;
mod control;
mod lobby;
mod protocol;
mod rate_limiter;
mod reader;
mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use secrecy::SecretString;
use serde::Deserialize;
use webcall_app::hub::JoinRequest;
use webcall_app::AppError;
use webcall_domain::model::{Role, UserId};
use webcall_domain::signaling::RoomName;

pub(crate) use self::protocol::chat_frames;
pub use self::protocol::MAX_FRAME_BYTES;
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/ws/rooms/{room}", get(connect))
}

#[derive(Deserialize)]
struct ConnectQuery {
    token: Option<String>,
    resume: Option<String>,
    /// A room pass (`POST /api/v1/rooms/{room}/pass`), never the password.
    pass: Option<String>,
    /// `1`: the client knows routed calls (SFU mode).
    sfu: Option<String>,
}

/// Signaling sockets open per account on this instance.
#[derive(Default)]
pub struct WsUsers(Mutex<HashMap<UserId, usize>>);

/// One socket's place in its account's count; freed on drop.
struct UserSlot(Arc<WsUsers>, UserId);

impl WsUsers {
    fn admit(self: &Arc<Self>, user: UserId, max: usize) -> Option<UserSlot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(user).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(UserSlot(self.clone(), user))
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut open = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.1) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.1);
            }
        }
    }
}

/// Checks the token (401; a guest token for another room: 403), the room name
/// (422) and the account's open sockets (429) before upgrading.
async fn connect(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Query(query): Query<ConnectQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let token = query
        .token
        .filter(|t| !t.is_empty())
        .ok_or(AppError::TokenMissing)?;
    // An account's token, else a guest token for this room.
    let (user_id, username, login, role, guest, expires_at) =
        match state.accounts.authenticate_user(&token).await {
            Ok((claims, user)) => {
                let name = user.username.as_str().to_owned();
                (
                    user.id,
                    name,
                    claims.family,
                    user.role,
                    false,
                    claims.expires_at,
                )
            }
            Err(AppError::TokenInvalid) => {
                let token = SecretString::from(token);
                let claims = state.guests.admit_to(&token, &RoomName::parse(&room)?)?;
                let name = claims.name.as_str().to_owned();
                let member = Role::Member;
                (
                    claims.guest_id,
                    name,
                    claims.jti,
                    member,
                    true,
                    claims.expires_at,
                )
            }
            Err(err) => return Err(err.into()),
        };
    let room = RoomName::parse(&room)?;
    let slot = state
        .ws_users
        .admit(user_id, state.ws.max_per_user)
        .ok_or(ApiError::TooManyConnections)?;
    let request = JoinRequest {
        room,
        user_id,
        username,
        login,
        role,
        guest,
        resume: query.resume.filter(|r| !r.is_empty()),
        pass: query.pass.filter(|p| !p.is_empty()),
        admitted: false,
        sfu: query.sfu.is_some_and(|v| v == "1" || v == "true"),
    };
    let options = WsOptions {
        attachment_max_bytes: state.attachments.limits().max_bytes,
        ..state.ws
    };
    Ok(
        connection::sized(upgrade).on_upgrade(move |socket| async move {
            connection::serve(socket, state.hub, request, expires_at, options).await;
            drop(slot);
        }),
    )
}

/// Timings and limits of the signaling socket.
#[derive(Debug, Clone, Copy)]
pub struct WsOptions {
    /// `WS_PING_SECS`.
    pub ping_interval: Duration,
    /// `WS_IDLE_TIMEOUT_SECS`: no frame at all (a Pong included) for this long closes it.
    pub idle_timeout: Duration,
    /// Frames per second a client may send, and the burst above it.
    pub rate_per_sec: f64,
    pub burst: f64,
    /// `WS_MAX_PER_USER`: sockets one account may hold here (more: HTTP 429).
    pub max_per_user: usize,
    /// The largest file the chat takes (`ATTACHMENT_MAX_BYTES`), told to the
    /// client in its welcome so a bigger file is refused before it is sent.
    /// Set from the attachments' limits for each connection.
    pub attachment_max_bytes: u64,
}

impl Default for WsOptions {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            rate_per_sec: 50.0,
            burst: 100.0,
            max_per_user: 10,
            attachment_max_bytes: 0,
        }
    }
}
