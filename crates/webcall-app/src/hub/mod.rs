//! The signaling hub: who is connected to which room on this instance, and the
//! call use cases (join, resume, signal, chat, reaction, state, moderation,
//! leave, end a room).
//!
//! Local peers are served directly: an event for the room goes into each local
//! connection's bounded queue without waiting, so a slow consumer never stalls the
//! room (it is detached and told to reconnect, keeping what it missed for resume).
//! The [`Presence`] port says who is in a room on every instance; the
//! [`Cluster`] port, when there are other instances, carries room events and
//! [`Command`]s to them.
//!
//! A connection that drops is *detached*, not gone: for `resume_grace` it keeps its
//! peer id and buffers what is sent to it; a client that comes back with its
//! resume token picks up where it was, and the others see no churn. Only when the
//! grace ends does the peer leave (`timeout`).
//!
//! Layout: this file holds the hub, its settings and the in-call use cases
//! (signal, chat, reaction, state, leave, revoke) and delivers room events to local
//! peers; `moderation` is what a host may do (mute, stop a share, kick and
//! ban, only hosts speak) and who is one; `admin` what an admin does to calls
//! and accounts (ban, end a call, lock a room); `lobby` the newcomers waiting
//! for a host's answer; `join` is joining, `resume` detaching and resuming, `commands` what
//! the hub does on a kick, a deleted room, a revocation or a resume elsewhere
//! (here or sent by another instance), `cluster` the road to other instances,
//! `registry` what this instance holds, `files` the files shared in a room's
//! chat (their messages, and a deleted room's files), and `link` one
//! connection's queue and close signal. `media` is a routed call (SFU mode):
//! the room's mode, its peers' sessions on the media end, its recording;
//! `recording` a routed call's recording, `session` what a connection gives to join and gets back.

mod admin;
mod cluster;
mod commands;
mod files;
mod join;
mod link;
mod lobby;
mod media;
#[cfg(test)]
mod media_tests;
mod moderation;
#[cfg(test)]
mod moderation_tests;
mod recording;
mod registry;
mod resume;
mod session;
#[cfg(test)]
mod tests;

pub use commands::InstanceCommands;
pub use files::RoomFiles;
pub use link::{CloseReason, Outbound, Outbox, SharedEvent};
pub use lobby::Knock;
pub use session::{JoinRequest, Session, Welcome};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;
use webcall_domain::media::{MediaRouter, Recorder};
use webcall_domain::model::UserId;
use webcall_domain::ports::RoomAccessRepository;
use webcall_domain::ports::{ChatRepository, Clock, Cluster, Presence, RoomModeration};
use webcall_domain::signaling::{
    ChatText, ClusterMessage, Command, Envelope, LeaveReason, NewChatMessage, PeerId, PeerInfo,
    PeerState, Reaction, RoomEvent, RoomName,
};

use crate::ice::IceServersService;
use crate::rooms::RoomService;
use crate::AppError;

use link::{close, Link, Mailbox};
use registry::{Local, LocalPeer};

/// Limits and timings of signaling.
#[derive(Debug, Clone)]
pub struct SignalingConfig {
    /// `ROOM_MAX_PEERS`: a mesh call grows as n².
    pub max_peers: usize,
    /// `WS_RESUME_GRACE_SECS`.
    pub resume_grace: Duration,
    /// Frames kept for a detached peer besides what its connection had queued
    /// and not written; beyond it, resuming is a fresh join.
    pub resume_buffer: usize,
    /// The same in bytes (at least `send_queue_bytes`): signals may be 64 KiB each.
    pub resume_buffer_bytes: usize,
    /// Frames queued per connection before it counts as a slow consumer.
    pub send_queue: usize,
    /// The same in bytes: what a connection that does not read may cost.
    pub send_queue_bytes: usize,
    /// Chat messages sent with `welcome`.
    pub history: u32,
    /// `SFU_FROM_PEERS`: a join that makes a room this large routes it
    /// through the server; `None`: never by size.
    pub sfu_from_peers: Option<usize>,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            max_peers: 16,
            resume_grace: Duration::from_secs(20),
            resume_buffer: 1024,
            resume_buffer_bytes: 2 * 1024 * 1024,
            send_queue: 512,
            send_queue_bytes: 1024 * 1024,
            history: 50,
            sfu_from_peers: Some(5),
        }
    }
}

/// A connection attached to a peer here: which connection of the peer it is,
/// its queue, and how the hub tells it to close.
struct Attached {
    generation: u64,
    outbound: Outbox,
    close: watch::Receiver<Option<CloseReason>>,
}

/// The ports and settings the hub works with.
pub struct HubDeps {
    pub rooms: Arc<RoomService>,
    pub chat: Arc<dyn ChatRepository>,
    /// Rooms' bans and "only hosts may speak".
    pub moderation: Arc<dyn RoomModeration>,
    /// Rooms' members (a private room's admission asks).
    pub access: Arc<dyn RoomAccessRepository>,
    pub presence: Arc<dyn Presence>,
    /// The other instances, when there are any.
    pub cluster: Option<Arc<dyn Cluster>>,
    pub ice: Arc<IceServersService>,
    pub clock: Arc<dyn Clock>,
    /// The server's media end for routed calls, when it runs.
    pub media: Option<Arc<dyn MediaRouter>>,
    /// Where routed calls are recorded.
    pub recorder: Option<Arc<dyn Recorder>>,
}

/// Messages kept while the cluster cannot take them, to publish once it can.
const UNPUBLISHED_KEPT: usize = 1024;

/// See the module docs.
pub struct Hub {
    deps: HubDeps,
    config: SignalingConfig,
    local: Mutex<Local>,
    /// Messages the cluster could not take (Redis is down), oldest first: departures,
    /// revocations, deletions and chat must still reach the other instances when
    /// it is back. Signals are not kept: by then they are stale.
    unpublished: Mutex<VecDeque<ClusterMessage>>,
    /// Called with an account an admin changed, on every instance (see
    /// [`Hub::on_account_change`]).
    account_changed: OnceLock<AccountHook>,
    /// Newcomers waiting in lobbies here.
    lobby: Mutex<lobby::Waiting>,
    /// Carries out what commands ask beyond calls.
    also: OnceLock<Weak<dyn InstanceCommands>>,
    /// Removes a deleted room's files ([`Hub::files_with`]).
    files: OnceLock<Weak<dyn RoomFiles>>,
    me: Weak<Hub>,
}

/// What the hub calls when an admin changed an account.
type AccountHook = Box<dyn Fn(UserId) + Send + Sync>;

impl Hub {
    pub fn new(deps: HubDeps, config: SignalingConfig) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            deps,
            config,
            local: Mutex::new(Local::default()),
            unpublished: Mutex::default(),
            account_changed: OnceLock::new(),
            lobby: Mutex::default(),
            also: OnceLock::new(),
            files: OnceLock::new(),
            me: me.clone(),
        })
    }

    pub fn config(&self) -> &SignalingConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `info` here (in `request.room`, with `resume_token`) on a new
    /// connection: its link gets a fresh queue and close signal.
    fn register(
        &self,
        local: &mut Local,
        info: &PeerInfo,
        request: &JoinRequest,
        resume_token: &str,
    ) -> Attached {
        let (tx, outbound) = Mailbox::new(self.config.send_queue, self.config.send_queue_bytes);
        let (close_tx, close) = watch::channel(None);
        let generation = local.generation();
        local.insert(
            LocalPeer {
                info: info.clone(),
                room: request.room.clone(),
                login: request.login,
                role: request.role,
                resume_token: resume_token.to_owned(),
                generation,
                link: Link::Attached {
                    tx,
                    close: close_tx,
                },
                sfu: request.sfu,
            },
            self.config.history as usize,
        );
        Attached {
            generation,
            outbound,
            close,
        }
    }

    /// Peers connected (or detached within grace) on this instance.
    pub fn local_peer_count(&self) -> usize {
        self.lock().peers.len()
    }

    /// Rooms with peers on this instance.
    pub fn local_room_count(&self) -> usize {
        self.lock().rooms.len()
    }

    /// The peer left on purpose (`leave` frame or a normal close) on its
    /// connection `generation` (a close on a connection it has since resumed away
    /// from is not a departure).
    pub async fn leave(&self, peer_id: &PeerId, generation: u64) {
        let current = self
            .lock()
            .peers
            .get(peer_id)
            .is_some_and(|p| p.generation == generation);
        if current {
            self.remove_and_announce(peer_id, LeaveReason::Left).await;
        }
    }

    async fn remove_and_announce(&self, peer_id: &PeerId, reason: LeaveReason) {
        let Some(peer) = self.lock().remove(peer_id) else {
            return;
        };
        close(&peer.link, CloseReason::Replaced);
        self.settle_media();
        self.forget_resume(&peer.resume_token).await;
        self.announce_departure(&peer.room, peer_id, reason).await;
    }

    /// Removes the peer from presence and, if this call removed it, tells the room.
    async fn announce_departure(&self, room: &RoomName, peer_id: &PeerId, reason: LeaveReason) {
        match self.deps.presence.leave(room, peer_id).await {
            Ok(true) => tracing::info!(%peer_id, ?reason, "peer left"),
            Ok(false) => return,
            // Presence is down: the room here hears it now, the other instances
            // when it is back (and presence is restored without the peer).
            Err(err) => {
                tracing::warn!(%peer_id, error = %err, "could not remove a peer from presence")
            }
        }
        self.dispatch(Envelope {
            room: room.clone(),
            to: None,
            except: Some(peer_id.clone()),
            event: RoomEvent::PeerLeft {
                peer_id: peer_id.clone(),
                reason,
            },
        })
        .await;
    }

    fn room_of(&self, peer_id: &PeerId) -> Result<(RoomName, PeerInfo), AppError> {
        let local = self.lock();
        let peer = local.peers.get(peer_id).ok_or(AppError::PeerNotFound)?;
        Ok((peer.room.clone(), peer.info.clone()))
    }

    /// Relays opaque SDP/ICE `data` to `to`, only inside the sender's room,
    /// while the room is a mesh ([`Self::mesh_signal_allowed`]).
    pub async fn signal(&self, from: &PeerId, to: &PeerId, data: String) -> Result<(), AppError> {
        let (room, _) = self.room_of(from)?;
        if !self.mesh_signal_allowed(from)? {
            return Ok(());
        }
        let envelope = Envelope {
            room: room.clone(),
            to: Some(to.clone()),
            except: None,
            event: RoomEvent::Signal {
                from: from.clone(),
                data,
            },
        };
        let local = self.lock().peers.get(to).is_some_and(|p| p.room == room);
        if local {
            self.deliver(&envelope).await;
            return Ok(());
        }
        if !self.present(&room, to).await? {
            return Err(AppError::PeerNotFound);
        }
        self.publish(ClusterMessage::Event(envelope)).await;
        Ok(())
    }

    /// Whether `peer` is in `room` on any instance.
    async fn present(&self, room: &RoomName, peer: &PeerId) -> Result<bool, AppError> {
        Ok(self
            .deps
            .presence
            .peers(room)
            .await?
            .iter()
            .any(|p| &p.peer_id == peer))
    }

    /// Stores a chat message, then sends it to everyone in the room, sender included.
    pub async fn chat(&self, from: &PeerId, text: &str) -> Result<(), AppError> {
        let text = ChatText::parse(text)?;
        let (room, info) = self.room_of(from)?;
        let message = self
            .deps
            .chat
            .append_chat(NewChatMessage {
                room: room.clone(),
                from: from.clone(),
                user_id: info.user_id,
                username: info.username,
                text,
                ts: self.deps.clock.now(),
            })
            .await?;
        self.dispatch(Envelope {
            room,
            to: None,
            except: None,
            event: RoomEvent::Chat { message },
        })
        .await;
        Ok(())
    }

    /// Sends the peer's reaction (one of [`Reaction::ALL`]) to everyone in the
    /// room, sender included, on every instance. Not stored: a late joiner
    /// does not see it. Reactions count against the connection's frame rate
    /// like chat.
    pub async fn react(&self, from: &PeerId, emoji: &str) -> Result<(), AppError> {
        let emoji = Reaction::parse(emoji)?;
        let (room, _) = self.room_of(from)?;
        self.dispatch(Envelope {
            room,
            to: None,
            except: None,
            event: RoomEvent::Reaction {
                peer_id: from.clone(),
                emoji,
            },
        })
        .await;
        Ok(())
    }

    /// Updates what the peer shares and tells the others. Turning the
    /// microphone on is refused while only hosts may speak, unless the peer is one.
    pub async fn set_state(&self, from: &PeerId, state: PeerState) -> Result<(), AppError> {
        if state.audio {
            self.may_speak(from).await?;
        }
        let (room, info) = {
            let mut local = self.lock();
            let peer = local.peers.get_mut(from).ok_or(AppError::PeerNotFound)?;
            peer.info.state = state;
            (peer.room.clone(), peer.info.clone())
        };
        self.deps.presence.update(&room, &info).await?;
        self.dispatch(Envelope {
            room,
            to: None,
            except: Some(from.clone()),
            event: RoomEvent::PeerState {
                peer_id: from.clone(),
                state,
            },
        })
        .await;
        Ok(())
    }

    /// Closes, with 4401, every connection opened with a token of `login` (a
    /// token family: it logged out, or one of its tokens was replayed), on every
    /// instance, whichever of its tokens each was opened with.
    pub async fn end_login(&self, login: Uuid) {
        self.command(Command::EndLogin { login }).await;
    }

    /// Closes, with 4401, every connection of `user`, on every instance (the
    /// account was deleted).
    pub async fn revoke_user(&self, user: UserId) {
        self.command(Command::RevokeUser { user }).await;
    }

    /// Closes every local connection with 1001 (server shutting down), and
    /// stops the recordings that run.
    pub fn shutdown(&self) {
        {
            let local = self.lock();
            for peer in local.peers.values() {
                close(&peer.link, CloseReason::Shutdown);
            }
        }
        self.stop_recordings();
    }

    /// Delivers a room event to this instance's peers it is for.
    async fn deliver(&self, envelope: &Envelope) {
        let event = SharedEvent::new(envelope.event.clone());
        let slow = {
            let mut local = self.lock();
            let Local { peers, rooms, .. } = &mut *local;
            let Some(room) = rooms.get_mut(&envelope.room) else {
                return;
            };
            match &event.event {
                RoomEvent::Chat { message } => room.chat.record(message),
                RoomEvent::ChatDeleted { id } => room.chat.forget(*id),
                _ => {}
            }
            let mut slow = Vec::new();
            for id in &room.peers {
                if envelope.to.as_ref().is_some_and(|to| to != id)
                    || envelope.except.as_ref() == Some(id)
                {
                    continue;
                }
                if let Some(peer) = peers.get_mut(id) {
                    if lobby::hosts_only(&event.event) && !peer.info.host {
                        continue;
                    }
                    if peer.link.push(event.clone(), &self.config) {
                        slow.push((id.clone(), peer.generation));
                    }
                }
            }
            slow
        };
        for (peer_id, generation) in slow {
            metrics::counter!("webcall_ws_slow_consumers_total").increment(1);
            tracing::info!(%peer_id, "slow consumer detached");
            self.start_grace(peer_id, generation);
        }
    }
}
