//! The loudest speakers of a room: with more audio senders than
//! `SFU_AUDIO_TOP_N`, each participant gets only the N loudest. Loudness comes
//! from the audio-level header extension (RFC 6464: 0 dBov = loudest, -127 =
//! silence; str0m gives it negative), smoothed over ~300 ms; a chosen speaker is replaced only by one
//! clearly louder, and not within a hold time, so speakers don't flap.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use webcall_domain::signaling::PeerId;

/// The smoothing's time constant.
const SMOOTHING: Duration = Duration::from_millis(300);
/// How long a chosen speaker stays chosen at least.
const HOLD: Duration = Duration::from_millis(1000);
/// How much louder (in dB) a speaker must be to replace a chosen one.
const MARGIN: f32 = 3.0;
/// How often the choice is reconsidered.
const TICK: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Speaker {
    /// Smoothed loudness, 0 (silence) ..= 127 (loudest).
    loudness: f32,
    last_level: Instant,
    /// Chosen since (`None`: not chosen).
    chosen: Option<Instant>,
}

/// One room's speakers.
#[derive(Debug, Default)]
pub(crate) struct Loudest {
    speakers: HashMap<PeerId, Speaker>,
    last_tick: Option<Instant>,
}

impl Loudest {
    /// A sender's audio packet with its level (`None` when the extension is absent).
    pub(crate) fn heard(&mut self, peer: &PeerId, level: Option<i8>, now: Instant, top_n: usize) {
        let loudness = level.map_or(0.0, |l| 127.0 - f32::from(l.unsigned_abs().min(127)));
        match self.speakers.get_mut(peer) {
            Some(s) => {
                let dt = now.saturating_duration_since(s.last_level).as_secs_f32();
                let k = (dt / SMOOTHING.as_secs_f32()).min(1.0);
                s.loudness += (loudness - s.loudness) * k;
                s.last_level = now;
            }
            None => {
                self.speakers.insert(
                    peer.clone(),
                    Speaker {
                        loudness,
                        last_level: now,
                        chosen: None,
                    },
                );
            }
        }
        if self
            .last_tick
            .is_none_or(|t| now.saturating_duration_since(t) >= TICK)
        {
            self.last_tick = Some(now);
            self.choose(now, top_n);
        }
    }

    pub(crate) fn remove(&mut self, peer: &PeerId) {
        self.speakers.remove(peer);
    }

    /// Whether `peer`'s audio goes to the others now.
    pub(crate) fn forwarded(&self, peer: &PeerId, top_n: usize) -> bool {
        self.speakers.len() <= top_n || self.speakers.get(peer).is_some_and(|s| s.chosen.is_some())
    }

    fn choose(&mut self, now: Instant, top_n: usize) {
        let mut chosen: Vec<(f32, PeerId)> = Vec::new();
        let mut others: Vec<(f32, PeerId)> = Vec::new();
        for (peer, s) in &self.speakers {
            let entry = (s.loudness, peer.clone());
            if s.chosen.is_some() {
                chosen.push(entry)
            } else {
                others.push(entry)
            }
        }
        others.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (loudness, peer) in others {
            if chosen.len() < top_n {
                self.set_chosen(&peer, Some(now));
                chosen.push((loudness, peer));
                continue;
            }
            // The quietest chosen speaker past its hold time gives way to a
            // clearly louder one.
            let weakest = chosen
                .iter()
                .enumerate()
                .filter(|(_, (_, p))| {
                    self.speakers[p]
                        .chosen
                        .is_some_and(|t| now.saturating_duration_since(t) >= HOLD)
                })
                .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
                .map(|(i, (l, _))| (i, *l));
            let Some((i, weakest_loudness)) = weakest else {
                break;
            };
            if loudness < weakest_loudness + MARGIN {
                break;
            }
            let (_, out) = std::mem::replace(&mut chosen[i], (loudness, peer.clone()));
            self.set_chosen(&out, None);
            self.set_chosen(&peer, Some(now));
        }
    }

    fn set_chosen(&mut self, peer: &PeerId, since: Option<Instant>) {
        if let Some(s) = self.speakers.get_mut(peer) {
            s.chosen = since;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        PeerId::from_client(&format!("p{n}"))
    }

    #[test]
    fn the_loudest_win_and_hold_their_place() {
        let mut room = Loudest::default();
        let start = Instant::now();
        // Five senders, levels 10 (loud) .. 90 (quiet), for two seconds.
        for step in 0..100u64 {
            let now = start + Duration::from_millis(step * 20);
            for n in 0..5u8 {
                room.heard(&peer(n), Some(-10 - 20 * n as i8), now, 3);
            }
        }
        let chosen: Vec<u8> = (0..5).filter(|&n| room.forwarded(&peer(n), 3)).collect();
        assert_eq!(chosen, vec![0, 1, 2]);

        // The quietest gets a little louder than a chosen one: no flapping.
        let later = start + Duration::from_secs(3);
        room.heard(&peer(4), Some(-49), later, 3);
        assert!(!room.forwarded(&peer(4), 3));
        // It shouts for a while: it replaces the weakest chosen one.
        for step in 0..50u64 {
            let now = later + Duration::from_millis(step * 20);
            for n in 0..4u8 {
                room.heard(&peer(n), Some(-10 - 20 * n as i8), now, 3);
            }
            room.heard(&peer(4), Some(0), now, 3);
        }
        let chosen: Vec<u8> = (0..5).filter(|&n| room.forwarded(&peer(n), 3)).collect();
        assert_eq!(chosen, vec![0, 1, 4]);
    }

    #[test]
    fn small_rooms_forward_everyone() {
        let mut room = Loudest::default();
        let now = Instant::now();
        room.heard(&peer(0), Some(127), now, 3);
        room.heard(&peer(1), None, now, 3);
        assert!(room.forwarded(&peer(0), 3) && room.forwarded(&peer(1), 3));
    }
}
