//! Commands: what the hub does to the peers of this instance when a room's
//! owner kicks one or deletes the room (deleting a room is here too), when a
//! host moderates (carried out in `moderation`), when a
//! login ends or an account is deleted or banned, when a peer resumed
//! elsewhere, or when another instance asks for a roll call. Every instance carries out each command for its own peers.
//! What a command asks beyond calls (the relay, the signing keys) is handed to
//! an [`InstanceCommands`] ([`Hub::also_execute`]).

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use webcall_domain::model::UserId;
use webcall_domain::signaling::{
    ClusterMessage, Command, Envelope, LeaveReason, PeerId, RoomEvent, RoomName,
};

use super::link::{close, CloseReason, Link, SharedEvent};
use super::registry::LocalPeer;
use super::Hub;
use crate::AppError;

/// Carries out, on each instance, what commands ask beyond calls: relay quotas,
/// ended relay allocations, rotated keys, and a revoked user's relay allocations
/// ([`crate::operations::Operations`]).
#[async_trait]
pub trait InstanceCommands: Send + Sync {
    async fn execute(&self, command: &Command);
}

impl Hub {
    /// Hands every command, from this instance or another, to `handler` too
    /// while it lives (it may hold the hub); once: a second one is refused.
    pub fn also_execute(&self, handler: &Arc<dyn InstanceCommands>) -> bool {
        self.also.set(Arc::downgrade(handler)).is_ok()
    }

    /// The owner deletes a room: the call ends for everyone in it (close 4004).
    pub async fn delete_room(&self, name: &RoomName, user: UserId) -> Result<(), AppError> {
        let room = self
            .deps
            .rooms
            .find(name)
            .await?
            .ok_or(AppError::RoomNotFound)?;
        if room.owner != user {
            return Err(AppError::NotRoomOwner);
        }
        let peers = self.peers_everywhere(name).await;
        let files = self.room_files(name).await;
        self.deps.rooms.delete(name).await?;
        self.remove_room_files(files).await;
        self.command(Command::EndRoom {
            room: name.clone(),
            peers,
        })
        .await;
        tracing::info!(room = %name, "room deleted");
        Ok(())
    }

    /// Who is in the room's call, on every instance, so that each is told the
    /// others left when it ends. Without the list (presence failed) each
    /// instance still tells its own.
    pub(super) async fn peers_everywhere(&self, name: &RoomName) -> Vec<PeerId> {
        match self.deps.presence.peers(name).await {
            Ok(peers) => peers.into_iter().map(|peer| peer.peer_id).collect(),
            Err(err) => {
                tracing::warn!(room = %name, error = %err, "call ended: presence unavailable");
                Vec::new()
            }
        }
    }

    /// Deletes every room `owner` owns, as [`Self::delete_room`] does (its calls
    /// end with 4004), before the account goes.
    pub async fn delete_rooms_of(&self, owner: UserId) -> Result<(), AppError> {
        for room in self.deps.rooms.owned_by(owner).await? {
            match self.delete_room(&room.name, owner).await {
                Ok(()) | Err(AppError::RoomNotFound) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Carries out `command` for this instance's peers.
    pub(super) async fn execute(&self, command: &Command) {
        match command {
            Command::Kick { peer_id, .. } => {
                let peer = self.lock().remove(peer_id);
                self.settle_media();
                if let Some(peer) = peer {
                    close(&peer.link, CloseReason::Kicked);
                    self.forget_resume(&peer.resume_token).await;
                }
            }
            Command::Moderate { room, by, action } => self.moderate_here(room, by, action).await,
            Command::EndRoom { room, peers } => self.end_room(room, peers).await,
            // Boxed: revoking announces departures, which deliver events again.
            Command::EndLogin { login } => {
                Box::pin(self.revoke_local(|peer| peer.login == *login)).await
            }
            Command::RevokeUser { user } => {
                Box::pin(self.revoke_local(|peer| peer.info.user_id == *user)).await
            }
            Command::Release { peer_id, .. } => self.release(peer_id).await,
            Command::RollCall => self.announce_local_peers().await,
            Command::BanUser { user } => {
                self.forget_account(*user);
                Box::pin(
                    self.revoke_local_with(|peer| peer.info.user_id == *user, CloseReason::Banned),
                )
                .await
            }
            Command::UserChanged { user } => self.forget_account(*user),
            Command::RoomChanged { room } => self.forget_room(room),
            Command::Answer { room, knock, admit } => self.answer_here(room, knock, *admit).await,
            Command::Knocks { room } => self.knock_again(room).await,
            Command::RelayQuotas { .. }
            | Command::KeyRotated { .. }
            | Command::EndRelayAllocation { .. } => {}
        }
        if let Some(handler) = self.also.get().and_then(Weak::upgrade) {
            handler.execute(command).await;
        }
    }

    /// The room is gone: each of its peers here hears that the others left,
    /// then its connection closes (4004).
    async fn end_room(&self, room: &RoomName, everyone: &[PeerId]) {
        let removed: Vec<LocalPeer> = {
            let mut local = self.lock();
            local.deletions += 1;
            local.lookups.remove(room);
            let ids = local
                .rooms
                .get(room)
                .map(|room| room.peers.clone())
                .unwrap_or_default();
            ids.iter().filter_map(|id| local.remove(id)).collect()
        };
        self.settle_media();
        let mut gone = everyone.to_vec();
        for peer in &removed {
            if !gone.contains(&peer.info.peer_id) {
                gone.push(peer.info.peer_id.clone());
            }
        }
        for peer in removed {
            // The others' `peer_left`, then the close (4004), which the
            // writer sends after what is queued. Best effort: a full
            // queue just gets the close.
            if let Link::Attached { tx, .. } = &peer.link {
                for other in gone.iter().filter(|id| **id != peer.info.peer_id) {
                    let _ = tx.offer(SharedEvent::new(RoomEvent::PeerLeft {
                        peer_id: other.clone(),
                        reason: LeaveReason::RoomDeleted,
                    }));
                }
            }
            close(&peer.link, CloseReason::RoomDeleted);
            self.forget_resume(&peer.resume_token).await;
            let _ = self
                .deps
                .presence
                .leave(&peer.room, &peer.info.peer_id)
                .await;
        }
    }

    /// This was the peer's home; another instance serves it now: close the old
    /// connection, or forward what was kept for the detached peer.
    async fn release(&self, peer_id: &PeerId) {
        let removed = self.lock().remove(peer_id);
        self.settle_media();
        let Some(mut peer) = removed else {
            return;
        };
        close(&peer.link, CloseReason::Replaced);
        for frame in peer.link.take_unsent() {
            self.publish(ClusterMessage::Event(Envelope {
                room: peer.room.clone(),
                to: Some(peer_id.clone()),
                except: None,
                event: frame.event.clone(),
            }))
            .await;
        }
    }

    async fn revoke_local(&self, which: impl Fn(&LocalPeer) -> bool) {
        self.revoke_local_with(which, CloseReason::TokenRevoked)
            .await
    }

    /// Closes the connections of the local peers `which` picks with `reason`;
    /// the others hear they left.
    async fn revoke_local_with(&self, which: impl Fn(&LocalPeer) -> bool, reason: CloseReason) {
        let revoked: Vec<LocalPeer> = {
            let mut local = self.lock();
            let ids: Vec<PeerId> = local
                .peers
                .values()
                .filter(|p| which(p))
                .map(|p| p.info.peer_id.clone())
                .collect();
            ids.iter().filter_map(|id| local.remove(id)).collect()
        };
        self.settle_media();
        for peer in revoked {
            close(&peer.link, reason);
            self.forget_resume(&peer.resume_token).await;
            self.announce_departure(&peer.room, &peer.info.peer_id, LeaveReason::Left)
                .await;
        }
    }
}
