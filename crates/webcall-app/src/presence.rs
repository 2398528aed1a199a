//! The in-process [`Presence`]: who is in which room, in a map, when WebCall runs
//! as one instance.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use webcall_domain::ports::Presence;
use webcall_domain::signaling::{PeerId, PeerInfo, RoomName};
use webcall_domain::DomainError;

/// Presence for a single instance.
#[derive(Default)]
pub struct InProcessPresence {
    rooms: Mutex<BTreeMap<RoomName, Vec<PeerInfo>>>,
}

impl InProcessPresence {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<RoomName, Vec<PeerInfo>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Presence for InProcessPresence {
    async fn join(
        &self,
        room: &RoomName,
        peer: &PeerInfo,
        capacity: usize,
    ) -> Result<Option<Vec<PeerInfo>>, DomainError> {
        let mut rooms = self.lock();
        let peers = rooms.entry(room.clone()).or_default();
        if peers.len() >= capacity {
            return Ok(None);
        }
        let before = peers.clone();
        peers.push(peer.clone());
        Ok(Some(before))
    }

    async fn update(&self, room: &RoomName, peer: &PeerInfo) -> Result<(), DomainError> {
        if let Some(existing) = self
            .lock()
            .get_mut(room)
            .and_then(|peers| peers.iter_mut().find(|p| p.peer_id == peer.peer_id))
        {
            *existing = peer.clone();
        }
        Ok(())
    }

    async fn leave(&self, room: &RoomName, peer: &PeerId) -> Result<bool, DomainError> {
        let mut rooms = self.lock();
        let Some(peers) = rooms.get_mut(room) else {
            return Ok(false);
        };
        let before = peers.len();
        peers.retain(|p| &p.peer_id != peer);
        let removed = peers.len() < before;
        if peers.is_empty() {
            rooms.remove(room);
        }
        Ok(removed)
    }

    async fn peers(&self, room: &RoomName) -> Result<Vec<PeerInfo>, DomainError> {
        Ok(self.lock().get(room).cloned().unwrap_or_default())
    }

    async fn occupancy(&self) -> Result<Vec<(RoomName, Vec<PeerInfo>)>, DomainError> {
        Ok(self
            .lock()
            .iter()
            .map(|(room, peers)| (room.clone(), peers.clone()))
            .collect())
    }
}
