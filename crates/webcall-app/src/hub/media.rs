//! Routed calls (SFU mode) in the hub: a room's media mode, its peers'
//! sessions on the server's media end ([`MediaRouter`]) and its recording
//! ([`Recorder`]); the rules are `docs/protocol.md`'s "Routed calls".
//!
//! A room starts as a mesh. It becomes routed when a join makes it reach
//! `SFU_FROM_PEERS`, when a host asks, or when a recording starts; it goes back
//! to mesh only when a host asks (not while recording) or when it empties (its
//! state is dropped). A peer's session opens at its first `sfu` offer and ends
//! when the peer leaves for good or the room goes back to mesh; a resumed peer's
//! next offer opens a new one. Clients without `sfu=1` are told to reload
//! ([`RoomEvent::UpdateRequired`]) when their room is routed.
//!
//! The media end may answer at once, from inside a call, and its answers take
//! the hub's lock: it is never called while the lock is held (removals leave
//! what it must hear in `Local::media_ends`, told by [`Hub::settle_media`]).
//! With several instances routed mode is unavailable (a room's media end
//! would have to be on one of them).

use std::sync::Arc;

use webcall_domain::media::{MediaMode, MediaRouter, SfuReplies, SfuReply, SfuSignal};
use webcall_domain::signaling::{
    ActiveRecording, Envelope, ModeReason, PeerId, RoomEvent, RoomName,
};

use super::link::SharedEvent;
use super::registry::{Local, MediaEnd, MediaSession};
use super::Hub;
use crate::error::MediaRefusal;
use crate::AppError;

/// A room's media as a joiner's welcome tells it.
pub(super) struct JoinMedia {
    pub(super) mode: MediaMode,
    pub(super) recording: Option<ActiveRecording>,
    /// This join made the room routed (the others are told).
    pub(super) switched: bool,
}

/// What an `sfu` frame leads to, decided under the lock.
enum Route {
    /// The peer's first offer (or its first since it resumed): a new session.
    Open {
        room: RoomName,
        username: String,
        number: u64,
    },
    Signal,
    /// Not an offer, and no session to take it.
    NoSession,
}

impl Hub {
    /// Whether rooms here may be routed: the media end runs and this is the
    /// only instance.
    pub fn sfu_available(&self) -> bool {
        self.deps.media.is_some() && self.deps.cluster.is_none()
    }

    pub(super) fn router(&self) -> Result<Arc<dyn MediaRouter>, AppError> {
        match &self.deps.media {
            Some(router) if self.deps.cluster.is_none() => Ok(router.clone()),
            _ => Err(AppError::Media(MediaRefusal::SfuUnavailable)),
        }
    }

    /// The size that routes a room, as the welcome says it.
    pub(super) fn sfu_from_peers(&self) -> Option<usize> {
        self.config.sfu_from_peers.filter(|_| self.sfu_available())
    }

    /// At a join, once the joiner is in `room` here: the room's media, routed
    /// now if the joiner makes it reach `SFU_FROM_PEERS`.
    pub(super) fn media_at_join(&self, room: &RoomName) -> JoinMedia {
        let threshold = self.sfu_from_peers();
        let mut local = self.lock();
        let Some(local_room) = local.rooms.get_mut(room) else {
            return JoinMedia {
                mode: MediaMode::Mesh,
                recording: None,
                switched: false,
            };
        };
        let media = &mut local_room.media;
        let switched = media.mode == MediaMode::Mesh
            && threshold.is_some_and(|from| local_room.peers.len() >= from);
        if switched {
            media.mode = MediaMode::Sfu;
            tracing::info!(%room, peers = local_room.peers.len(), "room routed through the server");
        }
        JoinMedia {
            mode: media.mode,
            recording: media.recording.clone(),
            switched,
        }
    }

    /// The room's mode and recording now (a resumed peer's welcome).
    pub(super) fn media_of(&self, room: &RoomName) -> (MediaMode, Option<ActiveRecording>) {
        let local = self.lock();
        local.rooms.get(room).map_or((MediaMode::Mesh, None), |r| {
            (r.media.mode, r.media.recording.clone())
        })
    }

    /// A mesh `signal` from `from`: relayed while its room is a mesh; in a
    /// routed room an old client (no `sfu=1`) is told to reload, and a stale
    /// signal of a client that knows routed calls is dropped (`Ok(false)`).
    pub(super) fn mesh_signal_allowed(&self, from: &PeerId) -> Result<bool, AppError> {
        let local = self.lock();
        let peer = local.peers.get(from).ok_or(AppError::PeerNotFound)?;
        let routed = local
            .rooms
            .get(&peer.room)
            .is_some_and(|r| r.media.mode == MediaMode::Sfu);
        match (routed, peer.sfu) {
            (false, _) => Ok(true),
            (true, true) => Ok(false),
            (true, false) => Err(AppError::Media(MediaRefusal::UpdateRequired)),
        }
    }

    /// A host asks for `mode`. Back to mesh is refused while recording.
    pub async fn request_media_mode(&self, from: &PeerId, mode: MediaMode) -> Result<(), AppError> {
        let room = self.hosted_room(from).await?;
        self.router()?;
        self.switch(&room, mode, Some(from), ModeReason::Host)
            .await
            .map(|_| ())
    }

    /// Sets `room`'s mode; true if it changed (everyone in the room is told,
    /// but `except`, whose welcome says it). Back to mesh ends every session of
    /// the room; refused while it is recorded.
    pub(super) async fn switch(
        &self,
        room: &RoomName,
        mode: MediaMode,
        by: Option<&PeerId>,
        reason: ModeReason,
    ) -> Result<bool, AppError> {
        let closed: Vec<PeerId> = {
            let mut local = self.lock();
            let local_room = local.rooms.get_mut(room).ok_or(AppError::PeerNotFound)?;
            let media = &mut local_room.media;
            if media.mode == mode {
                return Ok(false);
            }
            if mode == MediaMode::Mesh && media.recording.is_some() {
                return Err(AppError::Media(MediaRefusal::RecordingRunning));
            }
            media.mode = mode;
            media.sessions.drain().map(|(peer, _)| peer).collect()
        };
        tracing::info!(%room, %mode, ?reason, "media mode changed");
        if let Ok(router) = self.router() {
            for peer in &closed {
                router.close(peer);
            }
        }
        self.announce_mode(room, mode, by.cloned(), reason, None)
            .await;
        Ok(true)
    }

    /// Tells `room` (but `except`) its mode, and each old client in it, when
    /// routed, to reload.
    pub(super) async fn announce_mode(
        &self,
        room: &RoomName,
        mode: MediaMode,
        by: Option<PeerId>,
        reason: ModeReason,
        except: Option<&PeerId>,
    ) {
        self.dispatch(Envelope {
            room: room.clone(),
            to: None,
            except: except.cloned(),
            event: RoomEvent::MediaMode { mode, by, reason },
        })
        .await;
        if mode == MediaMode::Sfu {
            let old: Vec<PeerId> = {
                let local = self.lock();
                let peers = local.rooms.get(room).map(|r| r.peers.clone());
                peers
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|id| Some(id) != except)
                    .filter(|id| local.peers.get(id).is_some_and(|p| !p.sfu))
                    .collect()
            };
            for peer in old {
                self.push_to(&peer, None, RoomEvent::UpdateRequired);
            }
        }
    }

    /// What `from` says to the media end (an `sfu` frame). Its first offer opens
    /// its session, as does a `fresh` one (a new connection of the page's: the
    /// old session is replaced) and the first after the media end lost it;
    /// the media end answers through the peer's queue.
    pub fn sfu(&self, from: &PeerId, signal: SfuSignal) -> Result<(), AppError> {
        let router = self.router()?;
        let route = {
            let mut local = self.lock();
            let number = local.generation();
            let Local { peers, rooms, .. } = &mut *local;
            let peer = peers.get(from).ok_or(AppError::PeerNotFound)?;
            let room = rooms.get_mut(&peer.room).ok_or(AppError::PeerNotFound)?;
            if room.media.mode != MediaMode::Sfu {
                return Err(AppError::Media(MediaRefusal::NotRouted));
            }
            let opens = match (&signal, room.media.sessions.get(from)) {
                (SfuSignal::Offer { fresh: true, .. }, _) => Some(true),
                (SfuSignal::Offer { .. }, None) => Some(true),
                (SfuSignal::Offer { .. }, Some(session)) => Some(session.reopen),
                (_, Some(_)) => Some(false),
                (_, None) => None,
            };
            match opens {
                None => Route::NoSession,
                Some(false) => Route::Signal,
                Some(true) => {
                    let session = MediaSession {
                        number,
                        reopen: false,
                    };
                    room.media.sessions.insert(from.clone(), session);
                    Route::Open {
                        room: peer.room.clone(),
                        username: peer.info.username.clone(),
                        number,
                    }
                }
            }
        };
        match route {
            Route::Open {
                room,
                username,
                number,
            } => {
                let replies = self.replies(from.clone(), number);
                if let Err(err) = router.open(&room, from, &username, replies) {
                    let mut local = self.lock();
                    if let Some(local_room) = local.rooms.get_mut(&room) {
                        let sessions = &mut local_room.media.sessions;
                        if sessions.get(from).is_some_and(|s| s.number == number) {
                            sessions.remove(from);
                        }
                    }
                    return Err(err.into());
                }
                router.signal(from, signal);
            }
            Route::Signal => router.signal(from, signal),
            Route::NoSession => {
                let reply = SfuReply::Error {
                    code: "no_session".into(),
                    message: "no media session: send an offer first".into(),
                };
                self.push_to(from, None, RoomEvent::Sfu { reply });
            }
        }
        Ok(())
    }

    /// Where the media end's replies to `peer`'s session `number` go: into the
    /// peer's queue, without waiting; a reply of a session that ended is dropped.
    /// The media end calls it from its own thread: what the hub starts from
    /// there (a slow consumer's grace timer) runs on the hub's runtime.
    /// A `failed` reply means the media end dropped the session (its
    /// connection was lost): the peer's next offer opens a new one.
    fn replies(&self, peer: PeerId, number: u64) -> SfuReplies {
        let hub = self.me.clone();
        let runtime = tokio::runtime::Handle::try_current().ok();
        Arc::new(move |reply| {
            let Some(hub) = hub.upgrade() else {
                return;
            };
            let _entered = runtime.as_ref().map(|r| r.enter());
            if matches!(&reply, SfuReply::Error { code, .. } if code == "failed") {
                Self::reopen_on_offer(&mut hub.lock(), &peer, Some(number));
            }
            hub.push_to(&peer, Some(number), RoomEvent::Sfu { reply });
        })
    }

    /// Queues `event` for `peer` here (only while its session `number` is the
    /// current one, when given); a full queue detaches it as a slow consumer.
    pub(super) fn push_to(&self, peer_id: &PeerId, session: Option<u64>, event: RoomEvent) {
        let slow = {
            let mut local = self.lock();
            let Local { peers, rooms, .. } = &mut *local;
            let Some(peer) = peers.get_mut(peer_id) else {
                return;
            };
            if let Some(number) = session {
                let current = rooms
                    .get(&peer.room)
                    .and_then(|room| room.media.sessions.get(peer_id))
                    .is_some_and(|s| s.number == number);
                if !current {
                    return;
                }
            }
            peer.link
                .push(SharedEvent::new(event), &self.config)
                .then_some(peer.generation)
        };
        if let Some(generation) = slow {
            metrics::counter!("webcall_ws_slow_consumers_total").increment(1);
            tracing::info!(%peer_id, "slow consumer detached");
            if tokio::runtime::Handle::try_current().is_ok() {
                self.start_grace(peer_id.clone(), generation);
            }
        }
    }

    /// The peer's next offer opens a new session: it resumed (its old
    /// connection to the media end may be gone with the old page state), or
    /// the media end lost its session `number` (only while that is current).
    pub(super) fn reopen_on_offer(local: &mut Local, peer_id: &PeerId, number: Option<u64>) {
        let Some(room) = local.peers.get(peer_id).map(|p| p.room.clone()) else {
            return;
        };
        if let Some(session) = local
            .rooms
            .get_mut(&room)
            .and_then(|r| r.media.sessions.get_mut(peer_id))
            .filter(|s| number.is_none_or(|n| s.number == n))
        {
            session.reopen = true;
        }
    }

    /// Tells the media end what removals left for it (sessions of peers gone
    /// for good, recordings of rooms that emptied). Called without the lock.
    pub(super) fn settle_media(&self) {
        let ends = std::mem::take(&mut self.lock().media_ends);
        if ends.is_empty() {
            return;
        }
        let Some(router) = &self.deps.media else {
            return;
        };
        for end in ends {
            match end {
                MediaEnd::Close(peer) => router.close(&peer),
                MediaEnd::StopRecording(room, id) => {
                    router.stop_recording(&room);
                    tracing::info!(%room, recording = %id, "recording stopped: the room emptied");
                }
            }
        }
    }
}
