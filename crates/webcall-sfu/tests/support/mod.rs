//! Test set-up: an in-process [`Sfu`] on loopback and synthetic participants,
//! each a real str0m peer on its own UDP socket sending Opus (with an audio
//! level) and three-layer VP8 simulcast (frames with real key frame headers
//! and a marker naming the sender and layer), and recording what it receives.
#![allow(dead_code)]

pub mod recording;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use webcall_domain::media::{
    ForwardedTrack, MediaRouter, SentTrack, SfuReply, SfuSignal, TrackSource,
};
use webcall_domain::signaling::{PeerId, RoomName};
use webcall_sfu::{Sfu, SfuConfig};

/// How long a test waits for something to happen before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Picture sizes of the layers q, h, f.
pub const SIZES: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];

pub async fn sfu(audio_top_n: usize) -> Arc<Sfu> {
    sfu_on((Ipv4Addr::LOCALHOST, 0).into(), audio_top_n).await
}

/// An SFU bound to `bind` offering its default candidates (`[::]:0`: one
/// dual-stack socket, offering 127.0.0.1 and ::1).
pub async fn sfu_on(bind: SocketAddr, audio_top_n: usize) -> Arc<Sfu> {
    Sfu::bind(SfuConfig {
        bind,
        candidates: Vec::new(),
        audio_top_n,
    })
    .await
    .expect("SFU binds")
}

pub fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

/// A frame a participant received.
#[derive(Debug, Clone)]
pub struct Got {
    /// Whose track the server said the m-line carries.
    pub owner: Option<ForwardedTrack>,
    /// The sender index and layer in the frame's marker.
    pub sender: u8,
    pub layer: u8,
    pub key_frame: bool,
    pub video: bool,
}

#[derive(Default)]
pub struct Seen {
    pub frames: Vec<Got>,
    pub errors: Vec<(String, String)>,
    pub offers: Vec<Vec<ForwardedTrack>>,
    pub answers: Vec<Vec<ForwardedTrack>>,
}

/// A synthetic participant.
pub struct Peer {
    pub id: PeerId,
    pub index: u8,
    pub seen: Arc<Mutex<Seen>>,
    stop: mpsc::UnboundedSender<()>,
}

#[derive(Clone, Copy)]
pub struct Sends {
    pub video: bool,
    /// RFC 6464 level: 0 loudest, 127 silence.
    pub audio_level: i8,
    /// How long the session stays open before the participant offers.
    pub offer_after: Duration,
    /// The participant's socket is on ::1 (else 127.0.0.1).
    pub ipv6: bool,
}

impl Default for Sends {
    fn default() -> Self {
        Self {
            video: true,
            audio_level: 30,
            offer_after: Duration::ZERO,
            ipv6: false,
        }
    }
}

impl Peer {
    /// Opens a session for a new participant of `room` and starts it offering.
    pub async fn join(sfu: &Arc<Sfu>, room: &RoomName, index: u8, sends: Sends) -> Peer {
        let id = PeerId::from_client(&format!("peer{index}"));
        let (replies_tx, replies) = mpsc::unbounded_channel();
        let router: Arc<dyn MediaRouter> = sfu.clone();
        router
            .open(
                room,
                &id,
                &format!("user{index}"),
                Arc::new(move |r| drop(replies_tx.send(r))),
            )
            .unwrap();
        let ip: IpAddr = match sends.ipv6 {
            true => Ipv6Addr::LOCALHOST.into(),
            false => Ipv4Addr::LOCALHOST.into(),
        };
        let socket = UdpSocket::bind((ip, 0)).await.unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (stop, stopped) = mpsc::unbounded_channel();
        let client = Client::new(router, id.clone(), index, sends, socket, seen.clone());
        tokio::spawn(client.run(replies, stopped));
        Peer {
            id,
            index,
            seen,
            stop,
        }
    }

    pub fn stop(&self) {
        let _ = self.stop.send(());
    }

    pub fn frames(&self) -> Vec<Got> {
        self.seen.lock().unwrap().frames.clone()
    }

    pub fn errors(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().errors.clone()
    }

    pub fn clear(&self) {
        self.seen.lock().unwrap().frames.clear();
    }

    /// Waits until `check` holds for what this participant saw.
    pub async fn wait_for(&self, what: &str, check: impl Fn(&Seen) -> bool) {
        wait_until(what, || check(&self.seen.lock().unwrap())).await
    }
}

pub async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A synthetic frame: a VP8 key frame header (or an inter frame tag) and the
/// marker `[sender, layer]`, padded.
pub fn vp8_frame(sender: u8, layer: u8, key_frame: bool) -> Vec<u8> {
    let (w, h) = SIZES[usize::from(layer)];
    let mut frame = if key_frame {
        let mut f = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
        f.extend_from_slice(&w.to_le_bytes());
        f.extend_from_slice(&h.to_le_bytes());
        f
    } else {
        vec![0x11, 0x02, 0x00, 0, 0, 0, 0, 0, 0, 0]
    };
    frame.extend_from_slice(&[sender, layer]);
    frame.resize(200 + 300 * usize::from(layer), 0x55);
    frame
}

struct Client {
    router: Arc<dyn MediaRouter>,
    id: PeerId,
    index: u8,
    sends: Sends,
    socket: UdpSocket,
    addr: SocketAddr,
    rtc: Rtc,
    seen: Arc<Mutex<Seen>>,
    pending: Option<SdpPendingOffer>,
    tracks: HashMap<Mid, ForwardedTrack>,
    audio: Option<Mid>,
    video: Option<Mid>,
    /// Layers owing a key frame (PLI/FIR or first frame).
    want_key: [bool; 3],
    connected: bool,
    started: Instant,
    ticks: u64,
}

impl Client {
    fn new(
        router: Arc<dyn MediaRouter>,
        id: PeerId,
        index: u8,
        sends: Sends,
        socket: UdpSocket,
        seen: Arc<Mutex<Seen>>,
    ) -> Self {
        let now = Instant::now();
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(now);
        let addr = socket.local_addr().unwrap();
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        Self {
            router,
            id,
            index,
            sends,
            socket,
            addr,
            rtc,
            seen,
            pending: None,
            tracks: HashMap::new(),
            audio: None,
            video: None,
            want_key: [true; 3],
            connected: false,
            started: now,
            ticks: 0,
        }
    }

    fn offer(&mut self) {
        let mut api = self.rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let mut tracks = vec![SentTrack {
            mid: audio.to_string(),
            source: TrackSource::Mic,
        }];
        let mut video = None;
        if self.sends.video {
            let mut simulcast = Simulcast::new();
            for rid in ["q", "h", "f"] {
                simulcast.add_send_layer(SimulcastLayer::new(rid));
            }
            let mid = api.add_media(
                MediaKind::Video,
                Direction::SendOnly,
                None,
                None,
                Some(simulcast),
            );
            tracks.push(SentTrack {
                mid: mid.to_string(),
                source: TrackSource::Camera,
            });
            video = Some(mid);
        }
        let (offer, pending) = api.apply().unwrap();
        self.pending = Some(pending);
        self.audio = Some(audio);
        self.video = video;
        self.router.signal(
            &self.id,
            SfuSignal::Offer {
                sdp: offer.to_sdp_string(),
                tracks,
                fresh: true,
            },
        );
        // Trickle the host candidate too, as browsers do.
        let candidate = Candidate::host(self.addr, "udp").unwrap().to_sdp_string();
        self.router.signal(
            &self.id,
            SfuSignal::Candidate {
                candidate,
                sdp_mid: None,
            },
        );
    }

    async fn run(
        mut self,
        mut replies: mpsc::UnboundedReceiver<SfuReply>,
        mut stop: mpsc::UnboundedReceiver<()>,
    ) {
        tokio::time::sleep(self.sends.offer_after).await;
        self.offer();
        let mut buf = vec![0u8; 2048];
        let mut next_media = Instant::now();
        loop {
            let timeout = loop {
                match self.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Transmit(t)) => {
                        let _ = self.socket.send_to(&t.contents, t.destination).await;
                    }
                    Ok(Output::Event(e)) => self.event(e),
                    Err(e) => panic!("client rtc failed: {e}"),
                }
            };
            let deadline = timeout.min(next_media);
            tokio::select! {
                _ = stop.recv() => {
                    self.rtc.disconnect();
                    return;
                }
                reply = replies.recv() => match reply {
                    Some(reply) => self.reply(reply),
                    None => return,
                },
                read = self.socket.recv_from(&mut buf) => {
                    let (n, source) = read.unwrap();
                    if let Ok(contents) = buf[..n].try_into() {
                        let input = Input::Receive(Instant::now(), Receive {
                            proto: Protocol::Udp, source, destination: self.addr, contents,
                        });
                        let _ = self.rtc.handle_input(input);
                    }
                }
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
            let now = Instant::now();
            if now >= next_media {
                self.send_media(now);
                next_media = now + Duration::from_millis(20);
            }
            let _ = self.rtc.handle_input(Input::Timeout(now));
        }
    }

    fn reply(&mut self, reply: SfuReply) {
        let seen = self.seen.clone();
        let mut seen = seen.lock().unwrap();
        match reply {
            SfuReply::Answer { sdp, tracks } => {
                seen.answers.push(tracks.clone());
                self.set_tracks(tracks);
                if let Some(pending) = self.pending.take() {
                    let answer = SdpAnswer::from_sdp_string(&sdp).unwrap();
                    self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
                }
            }
            SfuReply::Offer { sdp, tracks } => {
                seen.offers.push(tracks.clone());
                self.set_tracks(tracks);
                let offer = SdpOffer::from_sdp_string(&sdp).unwrap();
                let answer = self.rtc.sdp_api().accept_offer(offer).unwrap();
                self.router.signal(
                    &self.id,
                    SfuSignal::Answer {
                        sdp: answer.to_sdp_string(),
                    },
                );
            }
            SfuReply::Error { code, message } => seen.errors.push((code, message)),
        }
    }

    fn set_tracks(&mut self, tracks: Vec<ForwardedTrack>) {
        self.tracks = tracks
            .into_iter()
            .map(|t| (Mid::from(t.mid.as_str()), t))
            .collect();
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
                let video = data.data.len() >= 12
                    && !self
                        .rtc
                        .media(data.mid)
                        .is_some_and(|m| m.kind() == MediaKind::Audio);
                let (sender, layer) = if video {
                    (data.data[10], data.data[11])
                } else {
                    (data.data[1], 0)
                };
                let got = Got {
                    owner: self.tracks.get(&data.mid).cloned(),
                    sender,
                    layer,
                    key_frame: video && data.data[0] & 1 == 0,
                    video,
                };
                self.seen.lock().unwrap().frames.push(got);
            }
            _ => {}
        }
    }

    fn send_media(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        self.ticks += 1;
        let elapsed = now.duration_since(self.started);
        if let Some(mid) = self.audio {
            if let Some(writer) = self.rtc.writer(mid) {
                let pt = pt_of(&writer, Codec::Opus);
                let time = MediaTime::from_micros(elapsed.as_micros() as u64)
                    .rebase(str0m::media::Frequency::FORTY_EIGHT_KHZ);
                let payload = vec![0xa0, self.index, 1, 2, 3, 4, 5, 6];
                let _ = writer
                    .audio_level(self.sends.audio_level, true)
                    .write(pt, now, time, payload);
            }
        }
        // Video at 25 frames a second.
        if self.ticks.is_multiple_of(2) {
            if let Some(mid) = self.video {
                let time = MediaTime::from_micros(elapsed.as_micros() as u64)
                    .rebase(str0m::media::Frequency::NINETY_KHZ);
                for layer in 0..3u8 {
                    let key = std::mem::take(&mut self.want_key[usize::from(layer)]);
                    let Some(writer) = self.rtc.writer(mid) else {
                        return;
                    };
                    let pt = pt_of(&writer, Codec::Vp8);
                    let rid = Rid::from(["q", "h", "f"][usize::from(layer)]);
                    let _ = writer
                        .rid(rid)
                        .write(pt, now, time, vp8_frame(self.index, layer, key));
                }
            }
        }
    }
}

fn pt_of(writer: &str0m::media::Writer<'_>, codec: Codec) -> str0m::media::Pt {
    writer
        .payload_params()
        .find(|p| p.spec().codec == codec)
        .expect("codec negotiated")
        .pt()
}
