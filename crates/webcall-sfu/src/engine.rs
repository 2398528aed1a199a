//! The engine's task: one UDP socket, every session's `str0m::Rtc`, the
//! commands from the [`Sfu`](crate::Sfu) handle, and the sessions' lives
//! (open, signals, close, death).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::media::Mid;
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use webcall_domain::signaling::{PeerId, RoomName};

use crate::audio::Loudest;
use crate::session::{Refusal, Session, TrackOut};
use crate::tap::Tap;
use crate::{lock, Command, Shared};

/// How long ICE may stay disconnected (or take to connect) before the session ends.
const DEAD_AFTER: Duration = Duration::from_secs(30);
/// How often layers are chosen again and dead sessions looked for.
const HOUSEKEEPING: Duration = Duration::from_millis(250);
/// How many times one pass drives sessions that are due again at once.
const DRIVE_ROUNDS: usize = 64;
/// Datagrams read in one go before the engine looks at its other work.
const READ_BATCH: usize = 64;

pub(crate) struct Room {
    pub members: Vec<PeerId>,
    pub loudest: Loudest,
    pub tap: Option<Tap>,
}

pub(crate) struct Engine {
    pub(crate) socket: UdpSocket,
    pub(crate) shared: Arc<Shared>,
    pub(crate) rtc_config: RtcConfig,
    pub(crate) candidates: Vec<SocketAddr>,
    /// The socket is IPv6 and takes IPv4 too: IPv4 peers' addresses come
    /// and go as `::ffff:a.b.c.d`.
    dual_stack: bool,
    pub(crate) top_n: usize,
    pub(crate) sessions: HashMap<PeerId, Session>,
    pub(crate) rooms: HashMap<RoomName, Room>,
    pub(crate) by_addr: HashMap<SocketAddr, PeerId>,
    /// Sessions with output to poll.
    pub(crate) dirty: Vec<PeerId>,
    events: VecDeque<(PeerId, Event)>,
    last_housekeeping: Instant,
    pub(crate) last_report: Instant,
    /// Forwarded packets and bytes not yet added to the metrics.
    unreported: (u64, u64),
}

enum Wake {
    Command(Option<Command>),
    Datagram(std::io::Result<(usize, SocketAddr)>),
    Control,
    Timer,
}

impl Engine {
    pub(crate) fn new(
        socket: UdpSocket,
        candidates: Vec<SocketAddr>,
        config: &crate::SfuConfig,
        shared: Arc<Shared>,
    ) -> std::io::Result<Self> {
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| std::io::Error::other("could not make a DTLS certificate"))?;
        let rtc_config = RtcConfig::new()
            .set_crypto_provider(Arc::new(provider))
            .set_dtls_cert(cert)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_bwe(Some(Bitrate::kbps(2_500)));
        let dual_stack = socket.local_addr()?.is_ipv6();
        Ok(Self {
            socket,
            shared,
            rtc_config,
            candidates,
            dual_stack,
            top_n: config.audio_top_n.max(1),
            sessions: HashMap::new(),
            rooms: HashMap::new(),
            by_addr: HashMap::new(),
            dirty: Vec::new(),
            events: VecDeque::new(),
            last_housekeeping: Instant::now(),
            last_report: Instant::now(),
            unreported: (0, 0),
        })
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut buf = vec![0u8; 2048];
        tracing::info!(addr = %self.socket.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "SFU media end started");
        loop {
            let now = Instant::now();
            self.drive(now);
            if self.shared.shutdown.load(Ordering::SeqCst) {
                break;
            }
            let deadline = self.next_deadline();
            let wake = tokio::select! {
                biased;
                () = self.shared.wake.notified() => Wake::Control,
                command = commands.recv() => Wake::Command(command),
                read = self.socket.recv_from(&mut buf) => Wake::Datagram(read),
                () = tokio::time::sleep_until(deadline.into()) => Wake::Timer,
            };
            match wake {
                Wake::Control => self.controls(),
                Wake::Command(Some(command)) => self.command(command, Instant::now()),
                Wake::Command(None) => break,
                Wake::Datagram(Ok((n, source))) => {
                    self.receive(&buf[..n], source, Instant::now());
                    for _ in 1..READ_BATCH {
                        self.flush(Instant::now());
                        match self.socket.try_recv_from(&mut buf) {
                            Ok((n, source)) => self.receive(&buf[..n], source, Instant::now()),
                            Err(_) => break,
                        }
                    }
                }
                Wake::Datagram(Err(e)) => tracing::debug!(error = %e, "SFU socket read failed"),
                Wake::Timer => {}
            }
        }
        // Recordings still queued are finished too (their files exist).
        commands.close();
        while let Ok(command) = commands.try_recv() {
            if let Command::Record { recording, .. } = command {
                recording.finish();
            }
        }
        self.stop_all();
    }

    fn next_deadline(&self) -> Instant {
        let housekeeping = self.last_housekeeping + HOUSEKEEPING;
        self.sessions
            .values()
            .map(|s| s.timeout)
            .fold(housekeeping, Instant::min)
    }

    /// Times the sessions out that are due, polls every session with output
    /// and does the periodic work.
    ///
    /// A session whose Rtc wants another timeout at once (str0m's pacer sends
    /// one packet, and packetizes one frame per m-line, per timeout) is driven
    /// again here, up to [`DRIVE_ROUNDS`] times, rather than after a trip
    /// through the timer.
    fn drive(&mut self, now: Instant) {
        for round in 0..DRIVE_ROUNDS {
            let now = if round == 0 { now } else { Instant::now() };
            let mut due = false;
            for (peer, s) in &mut self.sessions {
                if s.timeout <= now && s.rtc.is_alive() {
                    due = true;
                    if let Err(e) = s.rtc.handle_input(Input::Timeout(now)) {
                        tracing::debug!(%peer, error = %e, "session timeout failed");
                        s.rtc.disconnect();
                    }
                    self.dirty.push(peer.clone());
                }
            }
            if !due {
                break;
            }
            self.flush(now);
        }
        if now.saturating_duration_since(self.last_housekeeping) >= HOUSEKEEPING {
            self.last_housekeeping = now;
            self.housekeeping(now);
            self.flush(now);
        }
    }

    /// Polls the sessions marked dirty until none has output left.
    pub(crate) fn flush(&mut self, now: Instant) {
        while let Some(peer) = self.dirty.pop() {
            self.dirty.retain(|p| *p != peer);
            self.poll(&peer, now);
            while let Some((from, event)) = self.events.pop_front() {
                self.event(&from, event, now);
            }
        }
    }

    fn poll(&mut self, peer: &PeerId, now: Instant) {
        let Some(s) = self.sessions.get_mut(peer) else {
            return;
        };
        loop {
            if !s.rtc.is_alive() {
                s.timeout = now;
                return;
            }
            match s.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    s.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    if is_rtp(&t.contents) {
                        self.unreported.0 += 1;
                        self.unreported.1 += t.contents.len() as u64;
                    }
                    // A full socket buffer drops the datagram, as the network would.
                    let to = if self.dual_stack {
                        crate::socket::mapped(t.destination)
                    } else {
                        t.destination
                    };
                    let _ = self.socket.try_send_to(&t.contents, to);
                }
                Ok(Output::Event(e)) => self.events.push_back((peer.clone(), e)),
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "session failed");
                    s.rtc.disconnect();
                }
            }
        }
    }

    fn event(&mut self, from: &PeerId, event: Event, now: Instant) {
        match event {
            Event::MediaData(data) => self.media(from, data, now),
            Event::KeyframeRequest(req) => self.key_frame_wanted(from, req.mid, now),
            Event::IceConnectionStateChange(state) => {
                let Some(s) = self.sessions.get_mut(from) else {
                    return;
                };
                match state {
                    IceConnectionState::Disconnected => {
                        s.disconnected_since.get_or_insert(now);
                    }
                    IceConnectionState::Connected | IceConnectionState::Completed => {
                        s.connected = true;
                        s.disconnected_since = None;
                    }
                    _ => {}
                }
            }
            Event::MediaAdded(added) if added.direction.is_receiving() => {
                let simulcast = added.simulcast.is_some_and(|s| !s.recv.is_empty());
                self.track_added(from, added.mid, added.kind, simulcast);
            }
            Event::MediaChanged(changed) => {
                let Some(s) = self.sessions.get_mut(from) else {
                    return;
                };
                let known = s.incoming.iter().any(|t| t.mid == changed.mid);
                if known && !changed.direction.is_receiving() {
                    self.track_removed(from, changed.mid);
                } else if !known && changed.direction.is_receiving() {
                    if let Some(kind) = s.rtc.media(changed.mid).map(|m| m.kind()) {
                        self.track_added(from, changed.mid, kind, false);
                    }
                }
            }
            Event::EgressBitrateEstimate(
                BweKind::Twcc { estimate, .. } | BweKind::Remb { estimate, .. },
            ) => {
                if let Some(s) = self.sessions.get_mut(from) {
                    s.estimate = Some(estimate);
                }
                self.retarget(from, now);
            }
            _ => {}
        }
    }

    pub(crate) fn track_added(
        &mut self,
        from: &PeerId,
        mid: Mid,
        kind: str0m::media::MediaKind,
        simulcast: bool,
    ) {
        let Some(s) = self.sessions.get_mut(from) else {
            return;
        };
        let Some(source) = s.add_incoming(mid, kind, simulcast) else {
            return;
        };
        tracing::debug!(room = %s.room, peer = %from, %mid, ?source, simulcast, "track received");
        let room = s.room.clone();
        self.each_other(&room, from, |r| {
            r.outgoing.push(TrackOut::new(from.clone(), mid, source));
            r.negotiate();
        });
    }

    pub(crate) fn track_removed(&mut self, from: &PeerId, mid: Mid) {
        let Some(s) = self.sessions.get_mut(from) else {
            return;
        };
        s.incoming.retain(|t| t.mid != mid);
        let room = s.room.clone();
        if let Some(tap) = self.rooms.get_mut(&room).and_then(|r| r.tap.as_mut()) {
            tap.track_ended(from, mid);
        }
        self.each_other(&room, from, |r| {
            for out in r
                .outgoing
                .iter_mut()
                .filter(|o| o.publisher == *from && o.in_mid == mid)
            {
                out.gone = true;
            }
            r.negotiate();
        });
    }

    /// Runs `f` on every session of `room` but `except`'s, and marks them dirty.
    pub(crate) fn each_other(
        &mut self,
        room: &RoomName,
        except: &PeerId,
        mut f: impl FnMut(&mut Session),
    ) {
        let Some(room) = self.rooms.get(room) else {
            return;
        };
        for peer in room.members.iter().filter(|p| *p != except) {
            if let Some(s) = self.sessions.get_mut(peer) {
                f(s);
                self.dirty.push(peer.clone());
            }
        }
    }

    fn receive(&mut self, bytes: &[u8], source: SocketAddr, now: Instant) {
        let Ok(contents) = bytes.try_into() else {
            return;
        };
        // An IPv4 peer on the dual-stack socket is an IPv4 peer to ICE.
        let source = SocketAddr::new(source.ip().to_canonical(), source.port());
        let destination = self.destination_for(source);
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        let cached = self
            .by_addr
            .get(&source)
            .filter(|p| self.sessions.get(*p).is_some_and(|s| s.rtc.accepts(&input)))
            .cloned();
        let Some(peer) = cached.or_else(|| {
            let found = self
                .sessions
                .iter()
                .find(|(_, s)| s.rtc.accepts(&input))
                .map(|(p, _)| p.clone())?;
            self.by_addr.insert(source, found.clone());
            Some(found)
        }) else {
            return;
        };
        if let Some(s) = self.sessions.get_mut(&peer) {
            if let Err(e) = s.rtc.handle_input(input) {
                tracing::debug!(%peer, error = %e, "datagram refused");
            }
            self.dirty.push(peer);
        }
    }

    /// The local candidate a datagram from `source` was meant for: one socket
    /// serves them all, so one of the source's address family (loopback for
    /// loopback).
    fn destination_for(&self, source: SocketAddr) -> SocketAddr {
        let same_family = |c: &&SocketAddr| c.is_ipv4() == source.is_ipv4();
        self.candidates
            .iter()
            .filter(same_family)
            .find(|c| c.ip().is_loopback() == source.ip().is_loopback())
            .or_else(|| self.candidates.iter().find(same_family))
            .unwrap_or(&self.candidates[0])
            .to_owned()
    }

    fn housekeeping(&mut self, now: Instant) {
        let dead: Vec<PeerId> = self
            .sessions
            .values()
            .filter(|s| {
                !s.rtc.is_alive()
                    || s.disconnected_since
                        .is_some_and(|t| now.saturating_duration_since(t) > DEAD_AFTER)
                    || (!s.connected && now.saturating_duration_since(s.opened) > DEAD_AFTER)
            })
            .map(|s| s.peer.clone())
            .collect();
        for peer in dead {
            self.remove_session(&peer, "media connection lost", true);
        }
        let peers: Vec<PeerId> = self.sessions.keys().cloned().collect();
        for peer in peers {
            self.retarget(&peer, now);
        }
        self.report_now_and_then(now);
        let (packets, bytes) = std::mem::take(&mut self.unreported);
        self.shared.packets.fetch_add(packets, Ordering::Relaxed);
        self.shared.bytes.fetch_add(bytes, Ordering::Relaxed);
        metrics::counter!("webcall_sfu_forwarded_packets_total").increment(packets);
        metrics::counter!("webcall_sfu_forwarded_bytes_total").increment(bytes);
    }

    /// Ends a session and takes its tracks out of the others' sessions.
    pub(crate) fn remove_session(&mut self, peer: &PeerId, reason: &str, tell: bool) {
        let Some(mut s) = self.sessions.remove(peer) else {
            return;
        };
        s.rtc.disconnect();
        self.by_addr.retain(|_, p| p != peer);
        {
            let mut replies = lock(&self.shared.replies);
            if replies.get(peer).is_some_and(|r| r.0 == s.seq) {
                replies.remove(peer);
            }
        }
        if tell {
            s.refuse(Refusal::new("failed", "the media connection was lost"));
        }
        tracing::info!(room = %s.room, %peer, reason, "media session closed");
        if let Some(room) = self.rooms.get_mut(&s.room) {
            room.members.retain(|p| p != peer);
            room.loudest.remove(peer);
            if let Some(tap) = room.tap.as_mut() {
                tap.left(peer);
            }
            if room.members.is_empty() {
                if let Some(tap) = room.tap.take() {
                    lock(&self.shared.recording).remove(&s.room);
                    tracing::info!(room = %s.room, "recording tap finished: the room is empty");
                    tap.finish();
                }
                self.rooms.remove(&s.room);
            }
        }
        self.each_other(&s.room, peer, |r| {
            for out in r.outgoing.iter_mut().filter(|o| o.publisher == *peer) {
                out.gone = true;
            }
            r.negotiate();
        });
        self.publish_counts();
    }

    pub(crate) fn publish_counts(&self) {
        self.shared
            .sessions
            .store(self.sessions.len(), Ordering::Relaxed);
        self.shared.rooms.store(self.rooms.len(), Ordering::Relaxed);
        metrics::gauge!("webcall_sfu_sessions").set(self.sessions.len() as f64);
    }

    fn stop_all(&mut self) {
        let peers: Vec<PeerId> = self.sessions.keys().cloned().collect();
        for peer in peers {
            self.remove_session(&peer, "shutdown", false);
        }
        for (room, entry) in self.rooms.drain() {
            if let Some(tap) = entry.tap {
                tracing::info!(%room, "recording tap finished: shutdown");
                tap.finish();
            }
        }
        lock(&self.shared.recording).clear();
        self.publish_counts();
        tracing::info!("SFU media end stopped");
    }
}

/// An RTP packet (not RTCP, STUN or DTLS): version 2, payload type outside
/// RTCP's 200..=206 (RFC 5761).
fn is_rtp(datagram: &[u8]) -> bool {
    datagram.len() >= 12 && datagram[0] >> 6 == 2 && !(72..=78).contains(&(datagram[1] & 0x7f))
}
