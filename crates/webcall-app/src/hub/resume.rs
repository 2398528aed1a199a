//! Detaching and resuming: a connection that drops keeps its peer for the
//! resume grace; the client comes back with its resume token, here or (with
//! other instances) on another one.

use tokio::sync::watch;
use webcall_domain::media::MediaMode;
use webcall_domain::signaling::{ClusterMessage, Command, LeaveReason, PeerId, RoomEvent};

use super::link::{CloseReason, Link, Mailbox, Outbound, Outbox};
use super::{Hub, JoinRequest, Session, Welcome};
use crate::admission::is_host;
use crate::AppError;

impl Hub {
    pub(super) async fn try_resume(
        &self,
        request: &JoinRequest,
    ) -> Result<Option<Session>, AppError> {
        let Some(token) = request.resume.as_deref() else {
            return Ok(None);
        };
        let (peer_id, generation, outbound, close) = match self.reattach(token, request) {
            Reattach::Unknown => return self.resume_from_elsewhere(token, request).await,
            Reattach::Overflowed(peer_id) => {
                // It missed more than its buffer holds: it leaves, and joins afresh.
                self.remove_and_announce(&peer_id, LeaveReason::Timeout)
                    .await;
                return Ok(None);
            }
            Reattach::Done {
                peer_id,
                generation,
                outbound,
                close,
            } => (peer_id, generation, outbound, close),
        };
        tracing::info!(%peer_id, "peer resumed");
        let resumed = Resumed {
            peer_id,
            generation,
            outbound,
            close,
        };
        self.resumed_session(request, token, resumed)
            .await
            .map(Some)
    }

    /// The session of a resumed peer: a welcome with `resumed: true` and the
    /// room as it is now. If the room cannot be read, the peer is detached again
    /// (its grace starts, what it was sent is kept) rather than left attached to
    /// a connection that never comes.
    pub(super) async fn resumed_session(
        &self,
        request: &JoinRequest,
        token: &str,
        resumed: Resumed,
    ) -> Result<Session, AppError> {
        let read = async {
            let room = self
                .deps
                .rooms
                .find(&request.room)
                .await?
                .ok_or(AppError::RoomNotFound)?;
            let peers = self.deps.presence.peers(&request.room).await?;
            let rules = self.rules(&request.room).await?;
            let chat = self
                .deps
                .chat
                .chat_before(&request.room, None, self.config.history)
                .await?;
            Ok::<_, AppError>((room, peers, rules, chat))
        };
        let (room, peers, rules, chat) = match read.await {
            Ok(read) => read,
            Err(err) => {
                self.detach(&resumed.peer_id, resumed.generation);
                return Err(err);
            }
        };
        let (media_mode, recording) = self.media_of(&request.room);
        if media_mode == MediaMode::Sfu && !request.sfu {
            self.push_to(&resumed.peer_id, None, RoomEvent::UpdateRequired);
        }
        Ok(Session {
            welcome: Welcome {
                peer_id: resumed.peer_id.clone(),
                room: request.room.clone(),
                owner: room.owner == request.user_id,
                owner_id: room.owner,
                host: is_host(&room, request.user_id, request.role),
                hosts_only: rules.hosts_only,
                user_id: request.user_id,
                username: request.username.clone(),
                peers: peers
                    .into_iter()
                    .filter(|p| p.peer_id != resumed.peer_id)
                    .collect(),
                chat,
                ice_servers: self.deps.ice.for_user(request.user_id),
                resume_token: token.to_owned(),
                resumed: true,
                media_mode,
                sfu_available: self.sfu_available(),
                sfu_from_peers: self.sfu_from_peers(),
                recording,
            },
            peer_id: resumed.peer_id,
            generation: resumed.generation,
            outbound: resumed.outbound,
            close: resumed.close,
        })
    }

    /// Re-attaches a peer of this user in this room, whether its old connection is
    /// already known dead (detached) or not yet (the client usually notices a
    /// network switch first): that old connection is then closed. What was buffered
    /// while detached goes into the new queue, behind the welcome.
    pub(super) fn reattach(&self, token: &str, request: &JoinRequest) -> Reattach {
        let mut local = self.lock();
        let Some(peer_id) = local.resume.get(token).cloned() else {
            return Reattach::Unknown;
        };
        let generation = local.generation();
        let Some(peer) = local.peers.get_mut(&peer_id) else {
            return Reattach::Unknown;
        };
        if peer.room != request.room || peer.info.user_id != request.user_id {
            return Reattach::Unknown;
        }
        if matches!(&peer.link, Link::Detached(buffer) if buffer.overflowed) {
            return Reattach::Overflowed(peer_id);
        }
        // An old connection still attached (the client noticed the network
        // switch first) is closed; what it or the resume buffer held and was
        // never written goes first into the new queue, behind the welcome.
        super::link::close(&peer.link, CloseReason::Replaced);
        let carried = peer.link.take_unsent();
        // Room for all of it: a queue's worth and a resume buffer's.
        let (tx, outbound) = Mailbox::new(
            self.config.send_queue + self.config.resume_buffer,
            self.config.send_queue_bytes + self.config.resume_buffer_bytes,
        );
        for frame in carried {
            let _ = tx.offer(frame);
        }
        let (close_tx, close) = watch::channel(None);
        peer.link = Link::Attached {
            tx,
            close: close_tx,
        };
        peer.generation = generation;
        peer.login = request.login;
        peer.sfu = request.sfu;
        Self::reopen_on_offer(&mut local, &peer_id, None);
        Reattach::Done {
            peer_id,
            generation,
            outbound,
            close,
        }
    }

    /// The connection of `peer_id` (this `generation` of it) ended without a
    /// `leave`: keep the peer for the resume grace, buffering what it is sent.
    pub fn detach(&self, peer_id: &PeerId, generation: u64) {
        let detached = {
            let mut local = self.lock();
            match local.peers.get_mut(peer_id) {
                Some(peer)
                    if peer.generation == generation
                        && matches!(peer.link, Link::Attached { .. }) =>
                {
                    peer.link.detach();
                    true
                }
                _ => false,
            }
        };
        if detached {
            self.start_grace(peer_id.clone(), generation);
        }
    }

    /// Frames that connection `generation` took from its queue but never wrote
    /// (it was lost, or too slow): put them back, oldest first, ahead of what was
    /// kept since, so a resume replays them. If the peer resumed meanwhile (a
    /// moment's race: a resume takes the old queue's frames itself), they go to
    /// its new connection.
    pub fn requeue(&self, peer_id: &PeerId, generation: u64, frames: Vec<Outbound>) {
        if frames.is_empty() {
            return;
        }
        let mut local = self.lock();
        let Some(peer) = local.peers.get_mut(peer_id) else {
            return;
        };
        match &mut peer.link {
            Link::Detached(buffer) if peer.generation == generation => {
                buffer.put_back(frames, &self.config);
            }
            Link::Attached { tx, .. } if peer.generation > generation => {
                for frame in frames {
                    let _ = tx.offer(frame);
                }
            }
            _ => {}
        }
    }

    pub(super) fn start_grace(&self, peer_id: PeerId, generation: u64) {
        let Some(hub) = self.me.upgrade() else { return };
        let grace = self.config.resume_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let expired = {
                let local = hub.lock();
                local.peers.get(&peer_id).is_some_and(|p| {
                    p.generation == generation && matches!(p.link, Link::Detached(_))
                })
            };
            if expired {
                hub.remove_and_announce(&peer_id, LeaveReason::Timeout)
                    .await;
            }
        });
    }

    /// A resume token this instance does not know: with other instances, the peer may
    /// have been served by another instance (or one that died). Take it over.
    pub(super) async fn resume_from_elsewhere(
        &self,
        token: &str,
        request: &JoinRequest,
    ) -> Result<Option<Session>, AppError> {
        let Some(cluster) = &self.deps.cluster else {
            return Ok(None);
        };
        let Some(info) = cluster.claim_resume(token, &request.room).await? else {
            return Ok(None);
        };
        if info.user_id != request.user_id {
            return Ok(None);
        }
        let attached = self.register(&mut self.lock(), &info, request, token);
        // The old home (if alive) lets go and forwards what it kept for the peer.
        self.publish(ClusterMessage::Command(Command::Release {
            room: request.room.clone(),
            peer_id: info.peer_id.clone(),
        }))
        .await;
        tracing::info!(peer_id = %info.peer_id, "peer resumed from another instance");
        let resumed = Resumed {
            peer_id: info.peer_id,
            generation: attached.generation,
            outbound: attached.outbound,
            close: attached.close,
        };
        self.resumed_session(request, token, resumed)
            .await
            .map(Some)
    }
}

/// A peer re-attached to a new connection, before its welcome is built.
pub(super) struct Resumed {
    pub(super) peer_id: PeerId,
    pub(super) generation: u64,
    pub(super) outbound: Outbox,
    pub(super) close: watch::Receiver<Option<CloseReason>>,
}

pub(super) enum Reattach {
    Unknown,
    Overflowed(PeerId),
    Done {
        peer_id: PeerId,
        generation: u64,
        outbound: Outbox,
        close: watch::Receiver<Option<CloseReason>>,
    },
}
