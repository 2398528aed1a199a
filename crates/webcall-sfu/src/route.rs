//! Where a frame goes: to each other participant of the publisher's room (the
//! layer that receiver should get, audio only from the loudest speakers) and
//! to the room's recording; and which layer each receiver should get.

use std::time::Instant;

use str0m::bwe::Bitrate;
use str0m::media::{MediaData, Mid};
use webcall_domain::signaling::PeerId;

use crate::engine::Engine;
use crate::forward::{self, Layer};
use crate::tap::TapFrame;
use crate::vp8;

/// What an audio track is expected to carry, bits per second.
const AUDIO_RATE: u64 = 40_000;
/// How far above what a receiver wants the estimator probes (an estimate
/// settles near what is sent unless it probes beyond).
const PROBE_HEADROOM: f64 = 1.25;

impl Engine {
    /// A frame from `from`: to the room's recording and to every other participant.
    pub(crate) fn media(&mut self, from: &PeerId, data: MediaData, now: Instant) {
        let top_n = self.top_n;
        let Engine {
            sessions,
            rooms,
            dirty,
            ..
        } = self;
        let Some(s) = sessions.get_mut(from) else {
            return;
        };
        let Some(track) = s.incoming.iter_mut().find(|t| t.mid == data.mid) else {
            return;
        };
        let Some(layer) = forward::layer_of(data.rid) else {
            return;
        };
        track.traffic.saw(layer, data.data.len(), now);
        let source = track.source;
        let video = source.is_video();
        let highest = track.traffic.highest(now);
        let key_frame = !video || vp8::is_key_frame(&data.data);
        let mut asks: Vec<Layer> = Vec::new();
        if video && !data.contiguous {
            asks.push(layer);
        }
        let Some(room) = rooms.get_mut(&s.room) else {
            return;
        };
        if !video {
            room.loudest
                .heard(from, data.ext_vals.audio_level, now, top_n);
        }
        if let Some(tap) = room.tap.as_mut() {
            let wanted = if track.simulcast { highest } else { 0 };
            asks.extend(tap.frame(TapFrame {
                peer: from,
                username: &s.username,
                source,
                layer,
                wanted,
                key_frame,
                data: &data,
            }));
        }
        let audio_forwarded = video || room.loudest.forwarded(from, top_n);
        for peer in room.members.iter().filter(|p| *p != from) {
            let Some(r) = sessions.get_mut(peer).filter(|r| r.reachable()) else {
                continue;
            };
            let mut wrote = false;
            for out in r
                .outgoing
                .iter_mut()
                .filter(|o| o.publisher == *from && o.in_mid == data.mid)
            {
                let Some(mid) = out.live_mid() else { continue };
                let time = if video {
                    let verdict = out.forward.decide(layer, key_frame, out.target);
                    asks.extend(verdict.ask_key_frame);
                    if !verdict.forward {
                        continue;
                    }
                    out.forward.rebase(data.time, data.network_time)
                } else if audio_forwarded {
                    data.time
                } else {
                    continue;
                };
                let Some(writer) = r.rtc.writer(mid) else {
                    continue;
                };
                let Some(pt) = writer.match_params(data.params) else {
                    continue;
                };
                if let Err(e) = writer.write(pt, data.network_time, time, data.data.clone()) {
                    tracing::debug!(%peer, error = %e, "forwarding failed");
                }
                wrote = true;
            }
            if wrote {
                dirty.push(peer.clone());
            }
        }
        if asks.is_empty() {
            return;
        }
        asks.sort_unstable();
        asks.dedup();
        if let Some(s) = sessions.get_mut(from) {
            for layer in asks {
                s.request_key_frame(data.mid, layer, now);
            }
            dirty.push(from.clone());
        }
    }

    /// A receiver asks for a key frame on one of its m-lines: ask its publisher.
    pub(crate) fn key_frame_wanted(&mut self, receiver: &PeerId, mid: Mid, now: Instant) {
        let Some(r) = self.sessions.get(receiver) else {
            return;
        };
        let Some(out) = r.outgoing.iter().find(|o| o.live_mid() == Some(mid)) else {
            return;
        };
        let Some(layer) = out.forward.current.or(out.target) else {
            return;
        };
        let (publisher, in_mid) = (out.publisher.clone(), out.in_mid);
        if let Some(p) = self.sessions.get_mut(&publisher) {
            p.request_key_frame(in_mid, layer, now);
            self.dirty.push(publisher);
        }
    }

    /// Chooses again the layer each video `receiver` gets: from its View (before
    /// any, `h`), what the publisher sends, and its bandwidth estimate.
    pub(crate) fn retarget(&mut self, receiver: &PeerId, now: Instant) {
        let Some(r) = self.sessions.get(receiver) else {
            return;
        };
        // (index in r.outgoing, layer or paused, publisher's track)
        let mut plan = Vec::new();
        let mut audio = 0u64;
        for (i, out) in r.outgoing.iter().enumerate() {
            if out.live_mid().is_none() {
                continue;
            }
            if !out.source.is_video() {
                audio += AUDIO_RATE;
                continue;
            }
            let Some(track) = self
                .sessions
                .get(&out.publisher)
                .and_then(|p| p.incoming.iter().find(|t| t.mid == out.in_mid))
            else {
                continue;
            };
            let wish = match &r.view {
                None => Some(forward::DEFAULT_LAYER),
                Some(tiles) => tiles
                    .iter()
                    .find(|t| t.peer_id == out.publisher && t.source == out.source)
                    .filter(|t| t.width > 0 && t.height > 0)
                    .map(|t| forward::layer_for_height(t.height)),
            };
            let layer = match wish {
                Some(_) if !track.simulcast => Some(0),
                Some(w) => Some(track.traffic.nearest(w, now)),
                None => None,
            };
            plan.push((i, layer, track));
        }
        let rate = |plan: &[(usize, Option<Layer>, &crate::session::TrackIn)]| -> u64 {
            plan.iter()
                .filter_map(|(_, l, t)| l.map(|l| t.traffic.rate(l)))
                .sum()
        };
        let desired = rate(&plan) + audio;
        if let Some(estimate) = r.estimate {
            let budget = estimate.as_f64() as u64;
            while rate(&plan) + audio > budget {
                // Lower the largest layer that can go lower.
                let lowerable = plan
                    .iter_mut()
                    .filter_map(|(_, l, t)| {
                        let current = (*l)?;
                        t.traffic
                            .lower(current, now)
                            .map(|lower| (current, lower, l))
                    })
                    .max_by_key(|(current, _, _)| *current);
                let Some((_, lower, slot)) = lowerable else {
                    break;
                };
                *slot = Some(lower);
            }
        }
        let targets: Vec<(usize, Option<Layer>)> =
            plan.into_iter().map(|(i, l, _)| (i, l)).collect();
        let Some(r) = self.sessions.get_mut(receiver) else {
            return;
        };
        for (i, layer) in targets {
            r.outgoing[i].target = layer;
        }
        // Let the estimator probe up to what the receiver would like.
        let desired = ((desired as f64 * PROBE_HEADROOM) as u64).max(300_000);
        if desired.abs_diff(r.desired) > desired / 10 {
            r.desired = desired;
            r.rtc
                .bwe()
                .set_bitrate(Bitrate::kbps(100), Bitrate::bps(desired));
            self.dirty.push(receiver.clone());
        }
    }
}
