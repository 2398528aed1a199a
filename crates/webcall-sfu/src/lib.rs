//! The server's media end for routed calls (SFU mode): every participant of a
//! routed room has one WebRTC session here, and the media each one sends is
//! forwarded to the others of its room without decoding.
//!
//! Depends on `webcall-domain` (the [`MediaRouter`] port it implements) and
//! str0m; the `webcall` binary starts it and hands it to the hub.
//!
//! # Layout
//! - [`Sfu`] (this file): the handle. Its methods never block: they queue a
//!   command for the engine's task (a bounded channel; full = `busy`).
//! - `engine`: the task, alone on the `webcall-sfu` thread. It owns the one
//!   UDP socket and every session's `str0m::Rtc`, hands each datagram to the
//!   session that `accepts` it and drives each Rtc by its own `poll_output`
//!   timeout. `route`: what happens to a frame (layer choice, loudest
//!   speakers, recording); `session`: one participant's Rtc and offer/answer
//!   state; `forward`: simulcast layers; `audio`: the loudest speakers; `tap`:
//!   recordings; `vp8`: key frame headers; `report`: the debug report;
//!   `socket`: the one UDP socket (buffers, both families) and the candidates.
//!
//! # Why str0m, not webrtc-rs `webrtc`
//! - str0m is sans-I/O: an `Rtc` is a state machine fed datagrams and times,
//!   so one task and one socket serve every session (`Rtc::accepts` demuxes
//!   by ICE ufrag and nominated address) — the one `SFU_UDP_PORT` the issue
//!   prefers, no task or socket per peer. `webrtc` (the crates the relay's
//!   TURN comes from) is built around a socket and several tasks per
//!   `RTCPeerConnection`; muxing many connections on one port needs its UDP
//!   mux layer and leaves the media path spread over channels and tasks.
//! - str0m ships what an SFU needs and its `examples/chat.rs` is a working
//!   simulcast SFU with browsers: rid-based simulcast receive, RTP
//!   (de)packetizing with NACK/RTX and the jitter buffer, PLI/FIR, TWCC
//!   send-side bandwidth estimation (`Event::EgressBitrateEstimate`), the
//!   audio-level extension parsed into `MediaData::ext_vals`.
//! - One DTLS certificate can be shared by every session
//!   (`RtcConfig::set_dtls_cert`): key generation happens once at bind.
//!
//! # Frames, not RTP packets
//! The engine forwards at frame level (`Event::MediaData` in, `Writer::write`
//! out, as `chat.rs` does), not in str0m's RTP mode:
//! - a layer switch needs no rewriting of sequence numbers, SSRCs or VP8
//!   picture ids: each outgoing stream is packetized by str0m with its own
//!   continuous numbering, and only the RTP time is re-anchored at a switch;
//! - losses are repaired per hop (str0m NACKs the publisher and answers the
//!   receiver's NACKs from its own send buffer), so one receiver's bad link
//!   never reaches the publisher;
//! - the recording needs whole frames anyway (and key frame sizes).
//!
//! The cost is latency: a frame leaves when its last packet arrived. A
//! receiver cannot decode a frame before its last packet either, so the delay
//! the server adds to *decodable* frames is only the time to handle that last
//! packet and packetize the frame again (`webcall-bench sfu` measures it).
//! The other cost to watch: with bandwidth estimation on, str0m paces each
//! receiver's packets with a leaky bucket at twice its estimate, so a large
//! key frame of `f` (~60 kbit) waits ~12 ms behind the 2.5 Mbit/s starting
//! estimate; layer choice keeps what is sent under the estimate, and the
//! estimator is asked to probe 25 % above what the receiver wants.
//!
//! A publisher's tracks are offered to the others once its session is
//! connected (str0m reports `MediaAdded` only then), and media goes to an
//! m-line only after the receiver answered the offer that added it (before,
//! the receiver would drop it); the first frame it gets is a key frame.
//!
//! # Robustness
//! Bad SDP or candidates get `SfuReply::Error` (`bad_sdp`, `bad_candidate`)
//! and touch no other session; a session whose Rtc died, or whose ICE stayed
//! disconnected 30 s, or that never connected within 30 s, is removed and its
//! tracks are taken out of the others' sessions (the server offers again).

mod audio;
mod engine;
mod forward;
mod report;
mod route;
mod session;
mod signals;
mod socket;
mod tap;
mod vp8;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use webcall_domain::media::{MediaRouter, RoomRecording, SfuReplies, SfuReply, SfuSignal};
use webcall_domain::signaling::{PeerId, RoomName};
use webcall_domain::DomainError;

/// How many commands may wait for the engine's task.
const COMMAND_QUEUE: usize = 1024;

/// What the media end needs to know at start.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The UDP socket every session shares (`SFU_UDP_PORT`, on all addresses).
    /// An IPv6 address binds a dual-stack socket: IPv4 peers reach it too.
    pub bind: SocketAddr,
    /// The addresses offered to clients as host candidates (the server's
    /// public addresses; port 0 stands for the bound port); the bound
    /// address when empty.
    pub candidates: Vec<SocketAddr>,
    /// In a room larger than this, only this many loudest speakers' audio is
    /// forwarded to each participant (`SFU_AUDIO_TOP_N`).
    pub audio_top_n: usize,
}

/// Counters for metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SfuStats {
    pub sessions: usize,
    pub rooms: usize,
    pub forwarded_packets: u64,
    pub forwarded_bytes: u64,
}

/// The media end: cheap to share (`Arc`), its work happens on its own thread.
pub struct Sfu {
    local_addr: SocketAddr,
    candidates: Vec<SocketAddr>,
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

/// What the handle and the task share besides the command queue: the things
/// that must never be lost to a full queue (closes, stops), each bounded by
/// the number of sessions or rooms.
#[derive(Default)]
pub(crate) struct Shared {
    /// Orders opens, closes, recordings and stops against each other.
    seq: AtomicU64,
    /// Where to reply to each open session (busy / no_session replies).
    replies: Mutex<HashMap<PeerId, (u64, SfuReplies)>>,
    /// Sessions to close: those opened before the given sequence number.
    closing: Mutex<Vec<(PeerId, u64)>>,
    /// Recordings to stop: those started before the given sequence number.
    stopping: Mutex<Vec<(RoomName, u64)>>,
    /// Rooms being recorded.
    recording: Mutex<HashSet<RoomName>>,
    shutdown: AtomicBool,
    wake: Notify,
    sessions: AtomicUsize,
    rooms: AtomicUsize,
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl Shared {
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// A command for the engine's task.
pub(crate) enum Command {
    Open {
        seq: u64,
        room: RoomName,
        peer: PeerId,
        username: String,
        replies: SfuReplies,
    },
    Signal {
        peer: PeerId,
        signal: SfuSignal,
    },
    Record {
        seq: u64,
        room: RoomName,
        recording: Box<dyn RoomRecording>,
    },
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn busy() -> SfuReply {
    SfuReply::Error {
        code: "busy".into(),
        message: "the media server is busy: try again".into(),
    }
}

impl Sfu {
    /// Binds the socket and starts the media end on a thread of its own (a
    /// single-threaded tokio runtime): the media path never waits behind the
    /// HTTP and signaling tasks, and they never wait behind it.
    pub async fn bind(config: SfuConfig) -> std::io::Result<Arc<Self>> {
        let socket = socket::media_socket(config.bind)?;
        let local_addr = socket.local_addr()?;
        let candidates = socket::offered(&config.candidates, local_addr);
        let engine_candidates = candidates.clone();
        let shared = Arc::new(Shared::default());
        let (commands, queue) = mpsc::channel(COMMAND_QUEUE);
        let (started, ready) = tokio::sync::oneshot::channel();
        let engine_shared = shared.clone();
        std::thread::Builder::new()
            .name("webcall-sfu".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let engine = tokio::net::UdpSocket::from_std(socket).and_then(|socket| {
                        engine::Engine::new(socket, engine_candidates, &config, engine_shared)
                    });
                    match engine {
                        Ok(engine) => {
                            let _ = started.send(Ok(()));
                            engine.run(queue).await;
                        }
                        Err(e) => drop(started.send(Err(e))),
                    }
                });
            })?;
        ready
            .await
            .map_err(|_| std::io::Error::other("the SFU thread ended at start"))??;
        Ok(Arc::new(Self {
            local_addr,
            candidates,
            commands,
            shared,
        }))
    }

    /// The bound socket's address (its port when `SFU_UDP_PORT` was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The addresses offered to clients (host candidates), ports filled in.
    pub fn candidates(&self) -> &[SocketAddr] {
        &self.candidates
    }

    /// Ends every session, finishes running recordings and stops the task.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }

    pub fn stats(&self) -> SfuStats {
        SfuStats {
            sessions: self.shared.sessions.load(Ordering::Relaxed),
            rooms: self.shared.rooms.load(Ordering::Relaxed),
            forwarded_packets: self.shared.packets.load(Ordering::Relaxed),
            forwarded_bytes: self.shared.bytes.load(Ordering::Relaxed),
        }
    }
}

impl MediaRouter for Sfu {
    fn open(
        &self,
        room: &RoomName,
        peer: &PeerId,
        username: &str,
        replies: SfuReplies,
    ) -> Result<(), DomainError> {
        let seq = self.shared.next_seq();
        let command = Command::Open {
            seq,
            room: room.clone(),
            peer: peer.clone(),
            username: username.to_owned(),
            replies: replies.clone(),
        };
        match self.commands.try_send(command) {
            Ok(()) => {
                lock(&self.shared.replies).insert(peer.clone(), (seq, replies));
            }
            Err(_) => replies(busy()),
        }
        Ok(())
    }

    fn signal(&self, peer: &PeerId, signal: SfuSignal) {
        let command = Command::Signal {
            peer: peer.clone(),
            signal,
        };
        if self.commands.try_send(command).is_err() {
            let replies = lock(&self.shared.replies).get(peer).map(|r| r.1.clone());
            if let Some(replies) = replies {
                replies(busy());
            }
        }
    }

    fn close(&self, peer: &PeerId) {
        let seq = self.shared.next_seq();
        lock(&self.shared.replies).remove(peer);
        lock(&self.shared.closing).push((peer.clone(), seq));
        self.shared.wake.notify_one();
    }

    fn record(
        &self,
        room: &RoomName,
        recording: Box<dyn RoomRecording>,
    ) -> Result<(), DomainError> {
        if !lock(&self.shared.recording).insert(room.clone()) {
            recording.finish();
            return Err(DomainError::Invalid {
                field: "recording",
                message: "a recording of this room is running",
            });
        }
        let seq = self.shared.next_seq();
        let command = Command::Record {
            seq,
            room: room.clone(),
            recording,
        };
        if let Err(refused) = self.commands.try_send(command) {
            lock(&self.shared.recording).remove(room);
            if let Command::Record { recording, .. } = refused.into_inner() {
                recording.finish();
            }
            return Err(DomainError::Overloaded {
                retry_after: Duration::from_secs(1),
            });
        }
        Ok(())
    }

    fn stop_recording(&self, room: &RoomName) -> bool {
        if !lock(&self.shared.recording).remove(room) {
            return false;
        }
        let seq = self.shared.next_seq();
        lock(&self.shared.stopping).push((room.clone(), seq));
        self.shared.wake.notify_one();
        true
    }
}

impl Drop for Sfu {
    fn drop(&mut self) {
        self.shutdown();
    }
}
