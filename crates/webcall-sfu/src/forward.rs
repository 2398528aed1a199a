//! Simulcast layer choice: which layer of a publisher's video one receiver
//! gets, and the frame-by-frame rule that switches layers only at a key frame
//! of the new layer, keeping the receiver's RTP clock continuous.

use std::time::{Duration, Instant};

use str0m::media::{MediaTime, Rid};

/// A simulcast layer: 0 = `q` (quarter size), 1 = `h`, 2 = `f`. A video sent
/// without simulcast (screen share) has the one layer 0.
pub(crate) type Layer = u8;

pub(crate) const LAYERS: usize = 3;

/// The layer sent before a receiver's first View.
pub(crate) const DEFAULT_LAYER: Layer = 1;

/// What each layer is expected to carry before it has been measured (the
/// client's `maxBitrate`s), bits per second.
pub(crate) const NOMINAL_RATES: [u64; LAYERS] = [150_000, 500_000, 1_500_000];

/// A layer that sent nothing for this long is not offered to receivers.
const LAYER_GONE_AFTER: Duration = Duration::from_millis(1500);

/// The layer a frame belongs to (`None`: a rid this server does not use).
pub(crate) fn layer_of(rid: Option<Rid>) -> Option<Layer> {
    match rid.as_deref() {
        None | Some("q") => Some(0),
        Some("h") => Some(1),
        Some("f") => Some(2),
        Some(_) => None,
    }
}

/// The rid to ask a key frame of, for a layer of a simulcast track.
pub(crate) fn rid_of(layer: Layer, simulcast: bool) -> Option<Rid> {
    simulcast.then(|| Rid::from(["q", "h", "f"][usize::from(layer.min(2))]))
}

/// The layer a tile of this height (device pixels) needs.
pub(crate) fn layer_for_height(height: u32) -> Layer {
    match height {
        0..=200 => 0,
        201..=400 => 1,
        _ => 2,
    }
}

/// What a publisher's track has been sending lately, per layer.
#[derive(Debug, Default)]
pub(crate) struct LayerTraffic {
    /// The track's first frame: until a layer has had time to show up, it
    /// counts as arriving.
    first_seen: Option<Instant>,
    last_seen: [Option<Instant>; LAYERS],
    window_start: [Option<Instant>; LAYERS],
    window_bytes: [u64; LAYERS],
    rate: [Option<u64>; LAYERS],
}

impl LayerTraffic {
    pub(crate) fn saw(&mut self, layer: Layer, bytes: usize, now: Instant) {
        let i = usize::from(layer);
        self.first_seen.get_or_insert(now);
        self.last_seen[i] = Some(now);
        let start = *self.window_start[i].get_or_insert(now);
        self.window_bytes[i] += bytes as u64;
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= Duration::from_secs(1) {
            let rate = self.window_bytes[i] * 8 * 1000 / elapsed.as_millis().max(1) as u64;
            self.rate[i] = Some(rate);
            self.window_start[i] = Some(now);
            self.window_bytes[i] = 0;
        }
    }

    fn active(&self, layer: Layer, now: Instant) -> bool {
        let recent = |t: Instant| now.saturating_duration_since(t) < LAYER_GONE_AFTER;
        match self.last_seen[usize::from(layer)] {
            Some(t) => recent(t),
            None => self.first_seen.is_some_and(recent),
        }
    }

    /// The layer to send for a wish: the wished one if it arrives, else the
    /// nearest below, else the nearest above (the wish itself when none arrive).
    pub(crate) fn nearest(&self, wish: Layer, now: Instant) -> Layer {
        (0..=wish)
            .rev()
            .chain(wish + 1..LAYERS as Layer)
            .find(|&l| self.active(l, now))
            .unwrap_or(wish)
    }

    /// The highest layer arriving now (what a recording takes).
    pub(crate) fn highest(&self, now: Instant) -> Layer {
        self.nearest(LAYERS as Layer - 1, now)
    }

    /// The next lower layer that arrives, if any.
    pub(crate) fn lower(&self, layer: Layer, now: Instant) -> Option<Layer> {
        (0..layer).rev().find(|&l| self.active(l, now))
    }

    /// Each layer as `q=<kbit/s>` (`-` when it does not arrive now).
    pub(crate) fn describe(&self, now: Instant) -> String {
        (0..LAYERS as Layer)
            .map(|l| {
                let name = ["q", "h", "f"][usize::from(l)];
                if self.last_seen[usize::from(l)].is_some() && self.active(l, now) {
                    format!("{name}={}", self.rate(l) / 1000)
                } else {
                    format!("{name}=-")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Bits per second the layer carries (measured, else nominal).
    pub(crate) fn rate(&self, layer: Layer) -> u64 {
        let i = usize::from(layer.min(2));
        self.rate[i].unwrap_or(NOMINAL_RATES[i])
    }
}

/// What to do with one frame for one receiver.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub forward: bool,
    /// A key frame of this layer is wanted from the publisher.
    pub ask_key_frame: Option<Layer>,
}

/// One receiver's (or a recording's) forwarding state for one publisher track.
#[derive(Debug, Default)]
pub(crate) struct Forward {
    /// The layer being forwarded now (`None`: nothing yet, or paused).
    pub current: Option<Layer>,
    /// Added to the incoming RTP time since the last switch.
    offset: i64,
    /// The last forwarded frame's outgoing RTP time and arrival.
    last_out: Option<(u64, Instant)>,
    /// The next forwarded frame starts a new layer: re-anchor the RTP time.
    last_switch_pending: bool,
}

impl Forward {
    /// Decides about a frame of `layer` while `wanted` is the layer to send
    /// (`None`: paused).
    pub(crate) fn decide(
        &mut self,
        layer: Layer,
        key_frame: bool,
        wanted: Option<Layer>,
    ) -> Verdict {
        let Some(wanted) = wanted else {
            self.current = None;
            return Verdict::default();
        };
        if self.current == Some(layer) {
            let ask = (layer != wanted).then_some(wanted);
            return Verdict {
                forward: true,
                ask_key_frame: ask,
            };
        }
        if layer != wanted {
            return Verdict::default();
        }
        if key_frame {
            self.current = Some(layer);
            self.last_switch_pending = true;
            return Verdict {
                forward: true,
                ask_key_frame: None,
            };
        }
        Verdict {
            forward: false,
            ask_key_frame: Some(wanted),
        }
    }

    /// The outgoing RTP time for a forwarded frame: continuous across layer
    /// switches (a switch continues from the last frame plus the time between).
    pub(crate) fn rebase(&mut self, time: MediaTime, arrived: Instant) -> MediaTime {
        let freq = time.frequency();
        let incoming = time.numer() as i64;
        if std::mem::take(&mut self.last_switch_pending) {
            if let Some((last, at)) = self.last_out {
                let gap = arrived.saturating_duration_since(at);
                let ticks = (gap.as_micros() as i64 * i64::from(freq.get()) / 1_000_000).max(1);
                self.offset = last as i64 + ticks - incoming;
            }
        }
        let mut out = (incoming + self.offset).max(0) as u64;
        if let Some((last, _)) = self.last_out {
            out = out.max(last + 1);
        }
        self.last_out = Some((out, arrived));
        MediaTime::new(out, freq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::media::Frequency;

    #[test]
    fn switches_only_at_a_key_frame_of_the_wanted_layer() {
        let mut f = Forward::default();
        // Nothing forwarded until a key frame of the wanted layer.
        assert_eq!(
            f.decide(1, false, Some(1)),
            Verdict {
                forward: false,
                ask_key_frame: Some(1)
            }
        );
        assert!(!f.decide(0, true, Some(1)).forward);
        assert!(f.decide(1, true, Some(1)).forward);
        assert!(f.decide(1, false, Some(1)).forward);
        // A new wish: the old layer goes on (asking for a key frame) until one comes.
        assert_eq!(
            f.decide(1, false, Some(2)),
            Verdict {
                forward: true,
                ask_key_frame: Some(2)
            }
        );
        assert!(!f.decide(2, false, Some(2)).forward);
        assert!(f.decide(2, true, Some(2)).forward);
        assert!(!f.decide(1, false, Some(2)).forward);
        // Paused: nothing, and resuming needs a key frame again.
        assert!(!f.decide(2, true, None).forward);
        assert!(!f.decide(2, false, Some(2)).forward);
    }

    #[test]
    fn rtp_time_stays_continuous_across_a_switch() {
        let mut f = Forward::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let time = |ticks: u64| MediaTime::new(ticks, Frequency::NINETY_KHZ);
        f.decide(0, true, Some(0));
        assert_eq!(f.rebase(time(1_000), at(0)).numer(), 1_000);
        assert_eq!(f.rebase(time(4_000), at(33)).numer(), 4_000);
        // Layer 2's clock is far away; the switch continues 40 ms later.
        f.decide(2, true, Some(2));
        let out = f.rebase(time(9_000_000), at(73)).numer();
        assert_eq!(out, 4_000 + 3_600);
        assert_eq!(f.rebase(time(9_003_000), at(106)).numer(), out + 3_000);
    }

    #[test]
    fn the_nearest_arriving_layer_stands_in() {
        let mut t = LayerTraffic::default();
        let now = Instant::now();
        assert_eq!(t.nearest(2, now), 2, "nothing arrives yet: the wish");
        t.saw(0, 100, now);
        t.saw(1, 100, now);
        assert_eq!(t.nearest(2, now), 2, "f may still come");
        let soon = now + Duration::from_secs(1);
        t.saw(0, 100, soon);
        t.saw(1, 100, soon);
        let later = now + Duration::from_secs(2);
        assert_eq!(t.nearest(2, later), 1, "f never came");
        assert_eq!(t.highest(later), 1);
        assert_eq!(t.lower(1, later), Some(0));
        assert_eq!(t.lower(0, later), None);
        let much_later = now + Duration::from_secs(4);
        t.saw(2, 100, much_later);
        assert_eq!(t.nearest(0, much_later), 2, "only f still arrives");
        assert_eq!(layer_for_height(180), 0);
        assert_eq!(layer_for_height(360), 1);
        assert_eq!(layer_for_height(720), 2);
    }
}
