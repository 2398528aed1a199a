//! A synthetic participant for `webcall-bench sfu`: a str0m peer on its own
//! UDP socket, talking to the in-process [`Sfu`](webcall_sfu::Sfu) through
//! the `MediaRouter` port, sending Opus and three-layer VP8 simulcast at the
//! layers' nominal rates, and timing each frame it receives.
//!
//! Timing: the publisher notes when the last datagram of each frame left its
//! socket; the receiver notes when the datagram that completed the forwarded
//! frame arrived at its socket. The difference is the time through the
//! server (two loopback hops, the server's work and its pacer), without the
//! clients' own packetizing.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{
    Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use webcall_domain::media::{MediaRouter, SentTrack, SfuReply, SfuSignal, TileView, TrackSource};
use webcall_domain::signaling::{PeerId, RoomName};

/// Bytes per frame of the layers q, h, f at 25 frames a second: 150, 500 and
/// 1500 kbit/s.
const FRAME_BYTES: [usize; 3] = [750, 2500, 7500];
const FRAME_INTERVAL: Duration = Duration::from_millis(40);

/// When each frame's last datagram left its publisher: (publisher, frame) -> time.
pub type SentTimes = Arc<Mutex<HashMap<(u16, u32), Instant>>>;

/// What one participant received.
#[derive(Default)]
pub struct Received {
    /// Video frames: (publisher, frame, when the datagram completing it arrived).
    pub arrivals: Vec<(u16, u32, Instant)>,
    pub video_frames: [u64; 3],
    pub audio_frames: u64,
    /// Measuring (after the warm-up).
    pub measuring: bool,
}

pub struct PeerSetup {
    pub router: Arc<dyn MediaRouter>,
    pub room: RoomName,
    pub index: u16,
    pub everyone: usize,
    /// The tile height every other participant is shown at.
    pub tile_height: u32,
    pub sent: SentTimes,
    pub received: Arc<Mutex<Received>>,
}

pub fn peer_id(index: u16) -> PeerId {
    PeerId::from_client(&format!("bench{index:04}"))
}

/// Joins the room and runs the participant until `stop` says so.
pub async fn run(setup: PeerSetup, mut stop: mpsc::Receiver<()>) -> anyhow::Result<()> {
    let id = peer_id(setup.index);
    let (tx, mut replies) = mpsc::channel(64);
    setup.router.open(
        &setup.room,
        &id,
        &id.to_string(),
        Arc::new(move |r| drop(tx.try_send(r))),
    )?;
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = socket.local_addr()?;
    let mut rtc = Rtc::builder()
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(addr, "udp")?);
    let mut api = rtc.sdp_api();
    let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let mut simulcast = Simulcast::new();
    for rid in ["q", "h", "f"] {
        simulcast.add_send_layer(SimulcastLayer::new(rid));
    }
    let video = api.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        None,
        None,
        Some(simulcast),
    );
    let (offer, pending) = api.apply().expect("an offer");
    let tracks = vec![
        SentTrack {
            mid: audio.to_string(),
            source: TrackSource::Mic,
        },
        SentTrack {
            mid: video.to_string(),
            source: TrackSource::Camera,
        },
    ];
    setup.router.signal(
        &id,
        SfuSignal::Offer {
            sdp: offer.to_sdp_string(),
            tracks,
            fresh: true,
        },
    );
    let tiles = (0..setup.everyone as u16)
        .filter(|&i| i != setup.index)
        .map(|i| TileView {
            peer_id: peer_id(i),
            source: TrackSource::Camera,
            width: setup.tile_height * 16 / 9,
            height: setup.tile_height,
        })
        .collect();
    setup.router.signal(&id, SfuSignal::View { tiles });
    let mut peer = Peer {
        setup,
        id,
        socket,
        addr,
        rtc,
        pending: Some(pending),
        audio,
        video,
        connected: false,
        frame: 0,
        want_key: [true; 3],
        last_arrival: Instant::now(),
        started: Instant::now(),
    };
    let mut buf = vec![0u8; 2048];
    let mut next_audio = Instant::now();
    let mut next_video = Instant::now();
    loop {
        let timeout = peer.flush().await?;
        let deadline = timeout.min(next_audio).min(next_video);
        tokio::select! {
            _ = stop.recv() => return Ok(()),
            reply = replies.recv() => match reply {
                Some(reply) => peer.reply(reply)?,
                None => return Ok(()),
            },
            read = peer.socket.recv_from(&mut buf) => {
                let (n, source) = read?;
                let now = Instant::now();
                peer.last_arrival = now;
                if let Ok(contents) = buf[..n].try_into() {
                    let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination: peer.addr, contents });
                    let _ = peer.rtc.handle_input(input);
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => {}
        }
        let now = Instant::now();
        if now >= next_audio {
            peer.send_audio(now);
            next_audio += Duration::from_millis(20);
        }
        if now >= next_video {
            peer.send_video(now).await?;
            next_video += FRAME_INTERVAL;
        }
        let _ = peer.rtc.handle_input(Input::Timeout(now));
    }
}

struct Peer {
    setup: PeerSetup,
    id: PeerId,
    socket: UdpSocket,
    addr: SocketAddr,
    rtc: Rtc,
    pending: Option<SdpPendingOffer>,
    audio: Mid,
    video: Mid,
    connected: bool,
    frame: u32,
    want_key: [bool; 3],
    /// When the last datagram arrived (the one that completes a frame, when
    /// the frame comes out of the next poll).
    last_arrival: Instant,
    started: Instant,
}

impl Peer {
    /// Sends what the Rtc has to send; its next timeout.
    async fn flush(&mut self) -> anyhow::Result<Instant> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
                }
                Output::Event(e) => self.event(e),
            }
        }
    }

    fn reply(&mut self, reply: SfuReply) -> anyhow::Result<()> {
        match reply {
            SfuReply::Answer { sdp, .. } => {
                if let Some(pending) = self.pending.take() {
                    self.rtc
                        .sdp_api()
                        .accept_answer(pending, SdpAnswer::from_sdp_string(&sdp)?)?;
                }
            }
            SfuReply::Offer { sdp, .. } => {
                let answer = self
                    .rtc
                    .sdp_api()
                    .accept_offer(SdpOffer::from_sdp_string(&sdp)?)?;
                self.setup.router.signal(
                    &self.id,
                    SfuSignal::Answer {
                        sdp: answer.to_sdp_string(),
                    },
                );
            }
            SfuReply::Error { code, message } => {
                anyhow::bail!("the SFU refused: {code}: {message}")
            }
        }
        Ok(())
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Connected => self.connected = true,
            Event::KeyframeRequest(req) => {
                let layer = match req.rid.as_deref() {
                    Some("q") => 0,
                    Some("f") => 2,
                    _ => 1,
                };
                self.want_key[layer] = true;
            }
            Event::MediaData(data) => {
                let mut r = self
                    .setup
                    .received
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if !r.measuring {
                    return;
                }
                if data.mid == self.audio
                    || self
                        .rtc
                        .media(data.mid)
                        .is_some_and(|m| m.kind() == MediaKind::Audio)
                    || data.data.len() < 17
                {
                    r.audio_frames += 1;
                    return;
                }
                let publisher = u16::from_le_bytes([data.data[10], data.data[11]]);
                let frame = u32::from_le_bytes([
                    data.data[12],
                    data.data[13],
                    data.data[14],
                    data.data[15],
                ]);
                let layer = data.data[16].min(2);
                r.video_frames[usize::from(layer)] += 1;
                r.arrivals.push((publisher, frame, self.last_arrival));
            }
            _ => {}
        }
    }

    fn send_audio(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        let Some(writer) = self.rtc.writer(self.audio) else {
            return;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .map(|p| p.pt())
        else {
            return;
        };
        let time = MediaTime::from_micros(now.duration_since(self.started).as_micros() as u64)
            .rebase(Frequency::FORTY_EIGHT_KHZ);
        let level = -((self.setup.index % 60) as i8) - 10;
        let _ = writer
            .audio_level(level, true)
            .write(pt, now, time, vec![0xfc; 80]);
    }

    async fn send_video(&mut self, now: Instant) -> anyhow::Result<()> {
        if !self.connected {
            return Ok(());
        }
        self.frame += 1;
        let time = MediaTime::from_micros(now.duration_since(self.started).as_micros() as u64)
            .rebase(Frequency::NINETY_KHZ);
        for layer in 0..3u8 {
            let key = std::mem::take(&mut self.want_key[usize::from(layer)]);
            let mut frame = if key {
                let (w, h) = [(320u16, 180u16), (640, 360), (1280, 720)][usize::from(layer)];
                let mut f = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
                f.extend_from_slice(&w.to_le_bytes());
                f.extend_from_slice(&h.to_le_bytes());
                f
            } else {
                vec![0x11, 0x02, 0x00, 0, 0, 0, 0, 0, 0, 0]
            };
            frame.extend_from_slice(&self.setup.index.to_le_bytes());
            frame.extend_from_slice(&self.frame.to_le_bytes());
            frame.push(layer);
            frame.resize(FRAME_BYTES[usize::from(layer)], 0x5a);
            let Some(writer) = self.rtc.writer(self.video) else {
                return Ok(());
            };
            let Some(pt) = writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Vp8)
                .map(|p| p.pt())
            else {
                return Ok(());
            };
            let rid = Rid::from(["q", "h", "f"][usize::from(layer)]);
            let _ = writer.rid(rid).write(pt, now, time, frame);
        }
        // The frames' datagrams leave now; note when the last one did.
        let _ = self.flush().await?;
        self.setup
            .sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((self.setup.index, self.frame), Instant::now());
        Ok(())
    }
}
