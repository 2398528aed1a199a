//! What this instance holds: its peers (with their links), the rooms they are
//! in (with their media mode, recording and media sessions), and their resume
//! tokens.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::OnceCell;
use uuid::Uuid;
use webcall_domain::media::{MediaMode, RecordingId};
use webcall_domain::model::Role;
use webcall_domain::signaling::{
    ActiveRecording, ChatMessage, PeerId, PeerInfo, Room, RoomName, RoomRules,
};

use super::link::Link;
use crate::recent_chat::RecentChat;

pub(super) struct LocalPeer {
    pub(super) info: PeerInfo,
    pub(super) room: RoomName,
    pub(super) login: Uuid,
    /// The account's role when it connected (an admin is a host in every room).
    pub(super) role: Role,
    pub(super) resume_token: String,
    pub(super) generation: u64,
    pub(super) link: Link,
    /// Its client knows routed calls (it connected with `sfu=1`).
    pub(super) sfu: bool,
}

/// What this instance knows of a room while it has peers here.
pub(super) struct LocalRoom {
    pub(super) peers: Vec<PeerId>,
    /// The room as stored, once a join here has looked it up, so later joins
    /// skip the lookup: deleting it removes its peers, and an admin's change
    /// (`Command::RoomChanged`) forgets it.
    pub(super) stored: Option<Room>,
    pub(super) chat: RecentChat,
    /// The read of the stored history, shared by the joins that arrive while it
    /// runs: a burst of joins into a room reads it once.
    pub(super) history: Arc<OnceCell<Vec<ChatMessage>>>,
    /// Its moderation rules, once read (the moderation commands keep them
    /// up to date).
    pub(super) rules: Option<RoomRules>,
    /// How its media travels, and what runs on the server's media end.
    pub(super) media: RoomMedia,
}

/// A room's media as the hub keeps it: dropped with the room (a room that
/// empties starts again as a mesh).
#[derive(Default)]
pub(super) struct RoomMedia {
    pub(super) mode: MediaMode,
    pub(super) recording: Option<ActiveRecording>,
    /// The peers with a session on the media end.
    pub(super) sessions: HashMap<PeerId, MediaSession>,
}

/// A peer's session on the media end.
pub(super) struct MediaSession {
    /// Replies of an older session of the peer are dropped.
    pub(super) number: u64,
    /// The peer resumed since it opened: its next offer opens a new one.
    pub(super) reopen: bool,
}

/// What the media end must be told once the hub's lock is let go (it may
/// answer at once, and its answers take the lock).
pub(super) enum MediaEnd {
    /// The peer left for good: its session ends.
    Close(PeerId),
    /// The room emptied while it was recorded.
    StopRecording(RoomName, RecordingId),
}

/// A lookup of a room's stored row in flight, shared by the joins that arrive
/// while it runs: a burst of joins into a new room asks the database once.
pub(super) type RoomLookup = Arc<OnceCell<Room>>;

#[derive(Default)]
pub(super) struct Local {
    pub(super) peers: HashMap<PeerId, LocalPeer>,
    pub(super) rooms: HashMap<RoomName, LocalRoom>,
    pub(super) resume: HashMap<String, PeerId>,
    /// Rooms being looked up for a join (until one of their joiners is in).
    pub(super) lookups: HashMap<RoomName, RoomLookup>,
    pub(super) next_generation: u64,
    /// Room deletions seen so far: a room looked up before one of them may be
    /// gone, so it is not remembered.
    pub(super) deletions: u64,
    /// Changes of rooms' moderation rules seen so far: rules read before one of
    /// them may be stale, so they are not kept.
    pub(super) rule_changes: u64,
    /// What removals left for the media end ([`MediaEnd`]), told by the hub
    /// after the lock (`Hub::settle_media`).
    pub(super) media_ends: Vec<MediaEnd>,
}

impl Local {
    pub(super) fn insert(&mut self, peer: LocalPeer, history: usize) {
        self.rooms
            .entry(peer.room.clone())
            .or_insert_with(|| LocalRoom {
                peers: Vec::new(),
                stored: None,
                chat: RecentChat::new(history),
                history: Arc::default(),
                rules: None,
                media: RoomMedia::default(),
            })
            .peers
            .push(peer.info.peer_id.clone());
        self.resume
            .insert(peer.resume_token.clone(), peer.info.peer_id.clone());
        self.peers.insert(peer.info.peer_id.clone(), peer);
    }

    pub(super) fn remove(&mut self, peer_id: &PeerId) -> Option<LocalPeer> {
        let peer = self.peers.remove(peer_id)?;
        self.resume.remove(&peer.resume_token);
        if let Some(room) = self.rooms.get_mut(&peer.room) {
            room.peers.retain(|id| id != peer_id);
            if room.media.sessions.remove(peer_id).is_some() {
                self.media_ends.push(MediaEnd::Close(peer_id.clone()));
            }
            if room.peers.is_empty() {
                if let Some(recording) = room.media.recording.take() {
                    let end = MediaEnd::StopRecording(peer.room.clone(), recording.id);
                    self.media_ends.push(end);
                }
                self.rooms.remove(&peer.room);
            }
        }
        Some(peer)
    }

    /// The room of `peer_id`, if that peer is (still) in `room` here.
    pub(super) fn room_of_peer(
        &mut self,
        room: &RoomName,
        peer_id: &PeerId,
    ) -> Option<&mut LocalRoom> {
        let peer = self.peers.get(peer_id)?;
        if &peer.room != room {
            return None;
        }
        self.rooms.get_mut(room)
    }

    /// Forgets `lookup` (done, or failed so the next join tries again) unless a
    /// newer one has taken its place.
    pub(super) fn end_lookup(&mut self, room: &RoomName, lookup: &RoomLookup) {
        if self
            .lookups
            .get(room)
            .is_some_and(|current| Arc::ptr_eq(current, lookup))
        {
            self.lookups.remove(room);
        }
    }

    pub(super) fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }
}
