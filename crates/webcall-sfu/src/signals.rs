//! The engine's commands: sessions opened, the participants' signals
//! (offers, answers, candidates, views), recordings started, and the closes
//! and stops the handle leaves outside the command queue.

use std::time::Instant;

use str0m::media::Mid;
use str0m::{Candidate, Rtc};
use webcall_domain::media::{SfuReply, SfuSignal, TrackSource};
use webcall_domain::signaling::{PeerId, RoomName};

use crate::audio::Loudest;
use crate::engine::{Engine, Room};
use crate::session::{Refusal, Session, TrackOut};
use crate::tap::Tap;
use crate::{lock, Command};

impl Engine {
    pub(crate) fn command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Open {
                seq,
                room,
                peer,
                username,
                replies,
            } => {
                self.remove_session(&peer, "replaced", false);
                let mut rtc: Rtc = self.rtc_config.clone().build(now);
                for addr in &self.candidates {
                    match Candidate::host(*addr, "udp") {
                        Ok(c) => {
                            rtc.add_local_candidate(c);
                        }
                        Err(e) => tracing::warn!(%addr, error = %e, "unusable SFU candidate"),
                    }
                }
                tracing::info!(%room, %peer, "media session opened");
                let session =
                    Session::new(seq, peer.clone(), room.clone(), username, replies, rtc, now);
                self.sessions.insert(peer.clone(), session);
                let entry = self.rooms.entry(room).or_insert_with(|| Room {
                    members: Vec::new(),
                    loudest: Loudest::default(),
                    tap: None,
                });
                entry.members.push(peer.clone());
                self.dirty.push(peer);
                self.publish_counts();
            }
            Command::Signal { peer, signal } => self.signal(&peer, signal, now),
            Command::Record {
                seq,
                room,
                recording,
            } => {
                let entry = self.rooms.entry(room.clone()).or_insert_with(|| Room {
                    members: Vec::new(),
                    loudest: Loudest::default(),
                    tap: None,
                });
                if let Some(old) = entry.tap.replace(Tap::new(seq, recording, now)) {
                    old.finish();
                }
                tracing::info!(%room, "recording tap started");
                for peer in entry.members.clone() {
                    let Some(s) = self.sessions.get_mut(&peer) else {
                        continue;
                    };
                    let video: Vec<Mid> = s
                        .incoming
                        .iter()
                        .filter(|t| t.source.is_video())
                        .map(|t| t.mid)
                        .collect();
                    for mid in video {
                        for layer in 0..crate::forward::LAYERS as u8 {
                            s.request_key_frame(mid, layer, now);
                        }
                    }
                    self.dirty.push(peer);
                }
                self.publish_counts();
            }
        }
    }

    fn signal(&mut self, peer: &PeerId, signal: SfuSignal, now: Instant) {
        let Some(s) = self.sessions.get_mut(peer) else {
            let replies = lock(&self.shared.replies).get(peer).map(|r| r.1.clone());
            if let Some(replies) = replies {
                replies(SfuReply::Error {
                    code: "no_session".into(),
                    message: "no media session: offer first".into(),
                });
            }
            return;
        };
        let result = match signal {
            SfuSignal::Offer { sdp, tracks, .. } => {
                let first = !s.answered;
                let tracks: Vec<(Mid, TrackSource)> = tracks
                    .iter()
                    .map(|t| (Mid::from(t.mid.as_str()), t.source))
                    .collect();
                let result = s.accept_offer(&sdp, &tracks);
                if result.is_ok() && first {
                    let room = s.room.clone();
                    self.subscribe_to_room(peer, &room);
                }
                result
            }
            SfuSignal::Answer { sdp } => s.accept_answer(&sdp),
            SfuSignal::Candidate { candidate, .. } => {
                let line = candidate.trim();
                let line = line.strip_prefix("a=").unwrap_or(line);
                if line.is_empty() {
                    Ok(())
                } else {
                    Candidate::from_sdp_string(line)
                        .map(|c| s.rtc.add_remote_candidate(c))
                        .map_err(|e| Refusal::new("bad_candidate", e.to_string()))
                }
            }
            SfuSignal::View { tiles } => {
                s.view = Some(tiles);
                self.retarget(peer, now);
                Ok(())
            }
        };
        let Some(s) = self.sessions.get_mut(peer) else {
            return;
        };
        match result {
            Ok(()) => s.negotiate(),
            Err(refusal) => {
                tracing::debug!(room = %s.room, %peer, code = refusal.code, "signal refused");
                s.refuse(refusal);
            }
        }
        if !s.rtc.is_alive() {
            self.remove_session(peer, "refused", false);
        } else {
            self.dirty.push(peer.clone());
        }
    }

    /// A session's first answer: it receives every track the others send.
    fn subscribe_to_room(&mut self, peer: &PeerId, room: &RoomName) {
        let Some(members) = self.rooms.get(room).map(|r| r.members.clone()) else {
            return;
        };
        let tracks: Vec<(PeerId, Mid, TrackSource)> = members
            .iter()
            .filter(|p| *p != peer)
            .filter_map(|p| self.sessions.get(p))
            .flat_map(|s| s.incoming.iter().map(|t| (s.peer.clone(), t.mid, t.source)))
            .collect();
        if let Some(s) = self.sessions.get_mut(peer) {
            for (publisher, mid, source) in tracks {
                // Tracks that came while it had not offered yet are there already.
                if !s
                    .outgoing
                    .iter()
                    .any(|o| o.publisher == publisher && o.in_mid == mid)
                {
                    s.outgoing.push(TrackOut::new(publisher, mid, source));
                }
            }
        }
    }

    /// Closes and stops what the handle asked for outside the command queue.
    pub(crate) fn controls(&mut self) {
        let closing = std::mem::take(&mut *lock(&self.shared.closing));
        for (peer, seq) in closing {
            if self.sessions.get(&peer).is_some_and(|s| s.seq < seq) {
                self.remove_session(&peer, "closed", false);
            }
        }
        let stopping = std::mem::take(&mut *lock(&self.shared.stopping));
        for (room, seq) in stopping {
            let Some(entry) = self.rooms.get_mut(&room) else {
                continue;
            };
            if entry.tap.as_ref().is_some_and(|t| t.seq < seq) {
                if let Some(tap) = entry.tap.take() {
                    tracing::info!(%room, "recording tap stopped");
                    tap.finish();
                }
            }
            if entry.members.is_empty() && entry.tap.is_none() {
                self.rooms.remove(&room);
            }
        }
        self.publish_counts();
    }
}
