//! One participant's WebRTC session: its `str0m::Rtc`, the tracks it sends
//! (incoming here) and the others' tracks it receives (outgoing), and the
//! offer/answer state between it and the server.

use std::collections::HashMap;
use std::time::Instant;

use str0m::bwe::Bitrate;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::Rtc;
use webcall_domain::media::{ForwardedTrack, SfuReplies, SfuReply, TileView, TrackSource};
use webcall_domain::signaling::{PeerId, RoomName};

use crate::forward::{self, Forward, Layer, LayerTraffic, LAYERS};

/// A signal's failure, as the participant hears it.
pub(crate) struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

pub(crate) struct Session {
    /// The order of the `open` call, against a later `close`.
    pub seq: u64,
    pub peer: PeerId,
    pub room: RoomName,
    pub username: String,
    pub replies: SfuReplies,
    pub rtc: Rtc,
    /// When the Rtc wants its next timeout.
    pub timeout: Instant,
    pub opened: Instant,
    /// What the participant said each of its sending transceivers carries.
    sources: HashMap<Mid, TrackSource>,
    pub incoming: Vec<TrackIn>,
    pub outgoing: Vec<TrackOut>,
    pending: Option<SdpPendingOffer>,
    /// The participant's first offer was answered (the server may offer now).
    pub answered: bool,
    pub view: Option<Vec<TileView>>,
    /// The latest send-bandwidth estimate towards this participant.
    pub estimate: Option<Bitrate>,
    /// ICE has connected at least once.
    pub connected: bool,
    pub disconnected_since: Option<Instant>,
    /// The desired bitrate last given to the estimator.
    pub desired: u64,
}

/// A track the participant sends.
pub(crate) struct TrackIn {
    pub mid: Mid,
    pub source: TrackSource,
    pub simulcast: bool,
    pub traffic: LayerTraffic,
    last_key_frame_request: [Option<Instant>; LAYERS],
}

/// Another participant's track this one receives.
pub(crate) struct TrackOut {
    pub publisher: PeerId,
    pub in_mid: Mid,
    pub source: TrackSource,
    pub state: OutState,
    /// The publisher stopped it: stop the m-line once negotiation allows.
    pub gone: bool,
    pub forward: Forward,
    /// The layer to send (`None`: paused); video only.
    pub target: Option<Layer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutState {
    ToOpen,
    Negotiating(Mid),
    Open(Mid),
    ToStop(Mid),
    NegotiatingStop(Mid),
}

impl TrackOut {
    pub(crate) fn new(publisher: PeerId, in_mid: Mid, source: TrackSource) -> Self {
        Self {
            publisher,
            in_mid,
            source,
            state: OutState::ToOpen,
            gone: false,
            forward: Forward::default(),
            target: Some(forward::DEFAULT_LAYER),
        }
    }

    /// The m-line media can be written to now (once the participant answered
    /// the offer that added it: before, it would drop what it gets).
    pub(crate) fn live_mid(&self) -> Option<Mid> {
        match self.state {
            OutState::Open(m) if !self.gone => Some(m),
            _ => None,
        }
    }
}

impl Session {
    pub(crate) fn new(
        seq: u64,
        peer: PeerId,
        room: RoomName,
        username: String,
        replies: SfuReplies,
        rtc: Rtc,
        now: Instant,
    ) -> Self {
        Self {
            seq,
            peer,
            room,
            username,
            replies,
            rtc,
            timeout: now,
            opened: now,
            sources: HashMap::new(),
            incoming: Vec::new(),
            outgoing: Vec::new(),
            pending: None,
            answered: false,
            view: None,
            estimate: None,
            connected: false,
            disconnected_since: None,
            desired: 0,
        }
    }

    /// Media written now would reach the participant: ICE is up. Writing to a
    /// session that is connecting, lost or dead only fills its queue (str0m
    /// keeps what it cannot send), and stale video is no use on a reconnect:
    /// the receiver asks for a key frame then.
    pub(crate) fn reachable(&self) -> bool {
        self.connected && self.disconnected_since.is_none() && self.rtc.is_alive()
    }

    pub(crate) fn reply(&self, reply: SfuReply) {
        (self.replies)(reply);
    }

    pub(crate) fn refuse(&self, refusal: Refusal) {
        self.reply(SfuReply::Error {
            code: refusal.code.into(),
            message: refusal.message,
        });
    }

    /// The participant's offer: answered at once (the tracks it sends appear
    /// as `MediaAdded` events when the Rtc is polled).
    pub(crate) fn accept_offer(
        &mut self,
        sdp: &str,
        tracks: &[(Mid, TrackSource)],
    ) -> Result<(), Refusal> {
        if self.pending.is_some() {
            return Err(Refusal::new(
                "busy",
                "the server's offer is outstanding: answer it, then offer again",
            ));
        }
        let offer =
            SdpOffer::from_sdp_string(sdp).map_err(|e| Refusal::new("bad_sdp", e.to_string()))?;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| Refusal::new("bad_sdp", e.to_string()))?;
        self.sources.extend(tracks.iter().cloned());
        self.answered = true;
        self.reply(SfuReply::Answer {
            sdp: answer.to_sdp_string(),
            tracks: self.forwarded_tracks(),
        });
        Ok(())
    }

    /// The participant's answer to the server's outstanding offer.
    pub(crate) fn accept_answer(&mut self, sdp: &str) -> Result<(), Refusal> {
        let Some(pending) = self.pending.take() else {
            return Err(Refusal::new(
                "bad_sdp",
                "no offer of the server is outstanding",
            ));
        };
        let applied = SdpAnswer::from_sdp_string(sdp)
            .map_err(|e| Refusal::new("bad_sdp", e.to_string()))
            .and_then(|answer| {
                self.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .map_err(|e| Refusal::new("bad_sdp", e.to_string()))
            });
        for out in &mut self.outgoing {
            out.state = match (out.state, applied.is_ok()) {
                (OutState::Negotiating(m), true) => OutState::Open(m),
                (OutState::Negotiating(_), false) => OutState::ToOpen,
                (OutState::NegotiatingStop(m), false) => OutState::ToStop(m),
                (state, _) => state,
            };
        }
        if applied.is_ok() {
            self.outgoing
                .retain(|o| !matches!(o.state, OutState::NegotiatingStop(_)));
        }
        applied
    }

    /// Offers the others' tracks that came or went, unless an offer is
    /// outstanding or the participant has not offered yet.
    pub(crate) fn negotiate(&mut self) {
        if !self.answered || self.pending.is_some() || !self.rtc.is_alive() {
            return;
        }
        self.outgoing
            .retain(|o| !(o.gone && o.state == OutState::ToOpen));
        let mut api = self.rtc.sdp_api();
        for out in &mut self.outgoing {
            match out.state {
                OutState::Open(m) if out.gone => {
                    api.stop_media(m);
                    out.state = OutState::NegotiatingStop(m);
                }
                OutState::ToStop(m) => {
                    api.stop_media(m);
                    out.state = OutState::NegotiatingStop(m);
                }
                OutState::ToOpen => {
                    let kind = if out.source.is_video() {
                        MediaKind::Video
                    } else {
                        MediaKind::Audio
                    };
                    let stream = out.publisher.to_string();
                    let track = format!("{}-{}", out.publisher, source_name(out.source));
                    let mid =
                        api.add_media(kind, Direction::SendOnly, Some(stream), Some(track), None);
                    out.state = OutState::Negotiating(mid);
                }
                _ => {}
            }
        }
        if !api.has_changes() {
            return;
        }
        if let Some((offer, pending)) = api.apply() {
            self.pending = Some(pending);
            self.reply(SfuReply::Offer {
                sdp: offer.to_sdp_string(),
                tracks: self.forwarded_tracks(),
            });
        }
    }

    /// Every receiving transceiver of the participant the server fills.
    fn forwarded_tracks(&self) -> Vec<ForwardedTrack> {
        self.outgoing
            .iter()
            .filter_map(|o| match o.state {
                OutState::Negotiating(m) | OutState::Open(m) => Some(ForwardedTrack {
                    mid: m.to_string(),
                    peer_id: o.publisher.clone(),
                    source: o.source,
                }),
                _ => None,
            })
            .collect()
    }

    /// A track the participant started sending (`MediaAdded`/`MediaChanged`).
    pub(crate) fn add_incoming(
        &mut self,
        mid: Mid,
        kind: MediaKind,
        simulcast: bool,
    ) -> Option<TrackSource> {
        if self.incoming.iter().any(|t| t.mid == mid) {
            return None;
        }
        let declared = self.sources.get(&mid).copied();
        let source = match (declared, kind) {
            (Some(s), MediaKind::Audio) if !s.is_video() => s,
            (Some(s), MediaKind::Video) if s.is_video() => s,
            (_, MediaKind::Audio) => TrackSource::Mic,
            (_, MediaKind::Video) => TrackSource::Camera,
        };
        self.incoming.push(TrackIn {
            mid,
            source,
            simulcast,
            traffic: LayerTraffic::default(),
            last_key_frame_request: [None; LAYERS],
        });
        Some(source)
    }

    /// Asks the participant for a key frame of one of its tracks' layers (at
    /// most every 300 ms per layer).
    pub(crate) fn request_key_frame(&mut self, mid: Mid, layer: Layer, now: Instant) {
        let Some(track) = self.incoming.iter_mut().find(|t| t.mid == mid) else {
            return;
        };
        let slot = &mut track.last_key_frame_request[usize::from(layer.min(2))];
        if slot.is_some_and(|t| now.saturating_duration_since(t).as_millis() < 300) {
            return;
        }
        *slot = Some(now);
        let rid = forward::rid_of(layer, track.simulcast);
        tracing::debug!(peer = %self.peer, %mid, ?rid, "key frame asked");
        if let Some(mut writer) = self.rtc.writer(mid) {
            let kind = if writer.is_request_keyframe_possible(KeyframeRequestKind::Pli) {
                KeyframeRequestKind::Pli
            } else {
                KeyframeRequestKind::Fir
            };
            if let Err(e) = writer.request_keyframe(rid, kind) {
                tracing::debug!(peer = %self.peer, error = %e, "key frame request failed");
            }
        }
    }
}

pub(crate) fn source_name(source: TrackSource) -> &'static str {
    match source {
        TrackSource::Mic => "mic",
        TrackSource::Camera => "camera",
        TrackSource::Screen => "screen",
    }
}
