//! A connection's handle on the hub: the join (and the `error` frame and close
//! a refused one gets), each client frame carried out, and the way out (leave,
//! detach, the unsent frames handed back). The socket is not seen here.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use webcall_app::hub::{CloseReason, Hub, JoinRequest, Outbound, Outbox, Session, Welcome};
use webcall_app::AppError;
use webcall_domain::signaling::PeerId;
use webcall_domain::DomainError;

use super::protocol::{close_code, error_code, ClientFrame, FrameError, ServerFrame};

/// One joined peer's connection, as the hub knows it.
pub(super) struct PeerSession {
    hub: Arc<Hub>,
    peer_id: PeerId,
    /// Which of the peer's connections this is (a resumed peer gets a new one).
    generation: u64,
}

/// A join the hub accepted: the handle, and what the writer needs.
pub(super) struct Joined {
    pub session: PeerSession,
    pub welcome: Welcome,
    pub outbound: Outbox,
    /// How the hub tells the connection to close.
    pub close: watch::Receiver<Option<CloseReason>>,
}

/// A join the hub refused: the `error` frame to send, then the close; or the
/// newcomer waits in the lobby (`lobby`).
pub(super) enum Refused {
    Closed {
        error: FrameError,
        close: (u16, &'static str),
    },
    Wait,
}

/// What a client frame asks of the connection.
pub(super) enum Handled {
    Done,
    /// Send this frame back.
    Reply(String),
    Leave,
}

impl PeerSession {
    pub(super) async fn join(hub: Arc<Hub>, request: JoinRequest) -> Result<Joined, Refused> {
        let err = match hub.join(request).await {
            Ok(Session {
                welcome,
                peer_id,
                generation,
                outbound,
                close,
            }) => {
                return Ok(Joined {
                    session: PeerSession {
                        hub,
                        peer_id,
                        generation,
                    },
                    welcome,
                    outbound,
                    close,
                })
            }
            Err(err) => err,
        };
        let (code, close) = match &err {
            AppError::RoomFull => (error_code::ROOM_FULL, close_code::ROOM_FULL),
            AppError::RoomNotFound => (error_code::ROOM_NOT_FOUND, close_code::ROOM_DELETED),
            AppError::RoomLocked => (error_code::ROOM_LOCKED, close_code::ROOM_LOCKED),
            AppError::BannedFromRoom => {
                (error_code::BANNED_FROM_ROOM, close_code::BANNED_FROM_ROOM)
            }
            AppError::RoomPrivate => (error_code::ROOM_PRIVATE, close_code::ROOM_PRIVATE),
            AppError::RoomPasswordRequired => (
                error_code::ROOM_PASSWORD_REQUIRED,
                close_code::ROOM_PASSWORD,
            ),
            AppError::MustWait => return Err(Refused::Wait),
            AppError::Domain(DomainError::RoomLimit { .. }) => {
                (error_code::ROOM_LIMIT_REACHED, close_code::ROOM_LIMIT)
            }
            AppError::RoomCreationRate { .. } => {
                (error_code::ROOM_CREATION_RATE, close_code::ROOM_LIMIT)
            }
            AppError::Domain(DomainError::Unavailable(_)) => {
                (error_code::SERVICE_UNAVAILABLE, close_code::TRY_AGAIN_LATER)
            }
            _ => (error_code::INTERNAL_ERROR, close_code::SERVER_ERROR),
        };
        match close {
            close_code::SERVER_ERROR => tracing::error!(error = %err, "join failed"),
            close_code::TRY_AGAIN_LATER => tracing::warn!(error = %err, "join failed"),
            _ => {}
        }
        let reason = match close {
            close_code::TRY_AGAIN_LATER => "try again later",
            close_code::ROOM_LOCKED => "room locked",
            close_code::ROOM_DELETED => "room deleted",
            close_code::BANNED_FROM_ROOM => "banned from this room",
            close_code::ROOM_PRIVATE => "room private",
            close_code::ROOM_PASSWORD => "room password required",
            _ => "",
        };
        Err(Refused::Closed {
            error: FrameError::new(code, err.to_string()),
            close: (close, reason),
        })
    }

    pub(super) fn peer_id(&self) -> &PeerId {
        &self.peer_id
    }

    /// Parses and carries out one client frame; errors become `error` frames
    /// and the connection stays open.
    pub(super) async fn handle(&self, text: &str) -> Result<Handled, FrameError> {
        let (hub, peer_id) = (&self.hub, &self.peer_id);
        let frame = ClientFrame::parse(text)?;
        let host_frame = matches!(
            frame,
            ClientFrame::MediaMode { .. } | ClientFrame::Recording { .. }
        );
        let result = match frame {
            ClientFrame::Ping => return Ok(Handled::Reply(ServerFrame::Pong.to_json())),
            ClientFrame::Leave => return Ok(Handled::Leave),
            ClientFrame::Signal { to, data } => {
                hub.signal(peer_id, &to, data.get().to_owned()).await
            }
            ClientFrame::Chat { text } => hub.chat(peer_id, &text).await,
            ClientFrame::State { state } => hub.set_state(peer_id, state).await,
            ClientFrame::Kick {
                peer_id: target,
                ban,
            } => hub.kick(peer_id, &target, ban).await,
            ClientFrame::Mute { peer_id: target } => hub.mute(peer_id, &target).await,
            ClientFrame::StopScreen { peer_id: target } => hub.stop_screen(peer_id, &target).await,
            ClientFrame::MuteAll => hub.mute_all(peer_id).await,
            ClientFrame::HostsOnly { on } => hub.set_hosts_only(peer_id, on).await,
            ClientFrame::Reaction { emoji } => hub.react(peer_id, &emoji).await,
            ClientFrame::Answer { knock, admit } => hub.answer_knock(peer_id, &knock, admit).await,
            ClientFrame::Sfu { signal } => hub.sfu(peer_id, signal),
            ClientFrame::MediaMode { mode } => hub.request_media_mode(peer_id, mode).await,
            ClientFrame::Recording { start: true } => hub.start_recording(peer_id).await,
            ClientFrame::Recording { start: false } => hub.stop_recording(peer_id).await,
        };
        result.map(|()| Handled::Done).map_err(|err| {
            let code = match &err {
                AppError::PeerNotFound => error_code::PEER_NOT_FOUND,
                // The routed call's host frames (`media_mode`, `recording`).
                AppError::NotRoomOwner if host_frame => error_code::FORBIDDEN,
                AppError::NotRoomOwner => error_code::NOT_ROOM_OWNER,
                AppError::Media(refusal) => refusal.code(),
                AppError::HostsOnly => error_code::HOSTS_ONLY,
                AppError::Domain(DomainError::Invalid { .. }) => error_code::VALIDATION_FAILED,
                AppError::Domain(DomainError::Unavailable(_)) => error_code::SERVICE_UNAVAILABLE,
                _ => {
                    tracing::error!(error = %err, "signaling frame failed");
                    error_code::INTERNAL_ERROR
                }
            };
            FrameError::new(code, err.to_string())
        })
    }

    /// The peer is gone now (`leave`, or a close with 1000).
    pub(super) async fn leave(&self) {
        self.hub.leave(&self.peer_id, self.generation).await;
    }

    /// The connection is lost: the peer is kept for the resume grace.
    pub(super) fn detach(&self) {
        self.hub.detach(&self.peer_id, self.generation);
    }

    /// Frames queued for a lost connection but never written go back to the
    /// hub, ahead of what it buffered since, for the resume.
    pub(super) fn requeue(&self, frames: Vec<Outbound>) {
        self.hub.requeue(&self.peer_id, self.generation, frames);
    }

    /// How long a lost peer waits for its resume.
    pub(super) fn resume_grace(&self) -> Duration {
        self.hub.config().resume_grace
    }
}
