//! A signaling socket's way in: the join, and when the admission decision
//! says wait (a locked room, or one that asks to join), the lobby — the socket
//! stays open, out of the room, told `waiting` (and whether a host is there),
//! until a host admits (the join follows, `welcome` and all) or denies (the
//! `denied` error and close 4012). The newcomer may send `ping`, or `leave` to
//! give up; a socket that goes away gives up too.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use webcall_app::hub::{Hub, JoinRequest, Knock};

use super::protocol::{close_code, error_code, ClientFrame, FrameError, ServerFrame};
use super::session::{Joined, PeerSession, Refused};
use super::WsOptions;

/// Joins, through the lobby when the room says so; `None` when the socket is
/// done (refused, denied, gone): its closing frames are sent already.
pub(super) async fn enter(
    socket: &mut WebSocket,
    hub: Arc<Hub>,
    mut request: JoinRequest,
    options: WsOptions,
) -> Option<Joined> {
    loop {
        let close = match PeerSession::join(hub.clone(), request.clone()).await {
            Ok(joined) => return Some(joined),
            Err(Refused::Closed { error, close }) => Some((error, close)),
            // Admitted already, yet told to wait: never so, but never a loop.
            Err(Refused::Wait) if request.admitted => Some((
                FrameError::new(error_code::INTERNAL_ERROR, "admitted, yet asked to wait"),
                (close_code::SERVER_ERROR, ""),
            )),
            Err(Refused::Wait) => None,
        };
        if let Some((error, close)) = close {
            refuse(socket, &error, close).await;
            return None;
        }
        match wait(socket, &hub, &request, options).await {
            Waited::Admitted => request.admitted = true,
            Waited::Denied => {
                let error = FrameError::new(error_code::DENIED, "a host did not let you in");
                refuse(socket, &error, (close_code::DENIED, "denied")).await;
                return None;
            }
            Waited::Gone => return None,
        }
    }
}

enum Waited {
    Admitted,
    Denied,
    Gone,
}

/// Waits in the room's lobby for a host's answer.
async fn wait(
    socket: &mut WebSocket,
    hub: &Hub,
    request: &JoinRequest,
    options: WsOptions,
) -> Waited {
    let mut knock = match hub.knock(request).await {
        Ok(knock) => knock,
        Err(err) => {
            tracing::warn!(error = %err, "could not enter the lobby");
            let error = FrameError::new(error_code::SERVICE_UNAVAILABLE, err.to_string());
            refuse(
                socket,
                &error,
                (close_code::TRY_AGAIN_LATER, "try again later"),
            )
            .await;
            return Waited::Gone;
        }
    };
    let waited = waiting(socket, &mut knock, options).await;
    if matches!(waited, Waited::Gone) {
        hub.end_knock(&knock).await;
    }
    waited
}

async fn waiting(socket: &mut WebSocket, knock: &mut Knock, options: WsOptions) -> Waited {
    let hosts_present = *knock.hosts_present.borrow_and_update();
    if !send_text(socket, ServerFrame::Waiting { hosts_present }.to_json()).await {
        return Waited::Gone;
    }
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + options.ping_interval,
        options.ping_interval,
    );
    let mut hosts_watched = true;
    loop {
        tokio::select! {
            answer = &mut knock.answer => return match answer {
                Ok(true) => Waited::Admitted,
                Ok(false) => Waited::Denied,
                Err(_) => Waited::Gone,
            },
            changed = knock.hosts_present.changed(), if hosts_watched => {
                if changed.is_err() {
                    hosts_watched = false;
                    continue;
                }
                let hosts_present = *knock.hosts_present.borrow_and_update();
                if !send_text(socket, ServerFrame::Waiting { hosts_present }.to_json()).await {
                    return Waited::Gone;
                }
            }
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    let reply = match ClientFrame::parse(&text) {
                        Ok(ClientFrame::Ping) => ServerFrame::Pong.to_json(),
                        Ok(ClientFrame::Leave) => {
                            let _ = socket.send(close_frame((close_code::NORMAL, "closed"))).await;
                            return Waited::Gone;
                        }
                        Ok(_) => FrameError::new(
                            error_code::NOT_IN_ROOM,
                            "waiting in the lobby: only ping and leave",
                        )
                        .to_json(),
                        Err(error) => error.to_json(),
                    };
                    if !send_text(socket, reply).await {
                        return Waited::Gone;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return Waited::Gone,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return Waited::Gone;
                }
            }
        }
    }
}

async fn send_text(socket: &mut WebSocket, text: String) -> bool {
    socket.send(Message::Text(text.into())).await.is_ok()
}

fn close_frame(close: (u16, &'static str)) -> Message {
    Message::Close(Some(CloseFrame {
        code: close.0,
        reason: Utf8Bytes::from_static(close.1),
    }))
}

/// The `error` frame, then the close.
pub(super) async fn refuse(socket: &mut WebSocket, error: &FrameError, close: (u16, &'static str)) {
    let _ = socket.send(Message::Text(error.to_json().into())).await;
    let _ = socket.send(close_frame(close)).await;
}
