//! A listener as the crate's server sees it: [`GatedConn`], the `Conn` each
//! crate server reads its clients from — a UDP listening socket, or the TCP or
//! TLS connections of one kind ([`crate::tcp`]) — with the gate in front of it and
//! the data plane beside it. Each datagram it reads is relayed data (handed to
//! the data plane at once, never to the crate) or a control message (inspected
//! by the gate, then handed to the crate or answered). Each response the crate
//! sends goes by the gate too, which tells the data plane what it established.
//!
//! Data flows one way: listener → gate → data plane.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::net::UdpSocket;
use webrtc_util::Conn;

use crate::batch::{with_batch, PAYLOAD_AT, RECV_BATCH, YIELD_AFTER};
use crate::dataplane::{Blocked, ClientPath, DataPlane};
use crate::gate::{Answer, Gate, Pending, Verdict};
use crate::nonces::NonceCache;
use crate::tuple::{FiveTuple, Transport};
use crate::wire;

/// A listening `Conn` with the gate in front of it, and the data plane beside
/// it: relayed data never reaches the crate.
pub(crate) struct GatedConn {
    path: ClientPath,
    gate: Arc<Gate>,
    nonces: Arc<NonceCache>,
    plane: Arc<DataPlane>,
    transport: Transport,
    local: SocketAddr,
    pending: Mutex<Option<Pending>>,
    /// Control messages read in a batch with relayed data, for the crate's read
    /// loop; at most one batch's worth, and no more is read until they are
    /// handed on. The gate inspects each when it is handed on: its `pending`
    /// slot holds one request at a time.
    controls: Mutex<VecDeque<(Vec<u8>, SocketAddr)>>,
}

/// What became of one control message read by a listener.
enum Step {
    /// A control message for the crate, copied into its buffer.
    Deliver(usize, SocketAddr),
    Answer(Vec<u8>, SocketAddr),
    Next,
    /// Both: the crate's answer to it is the gate's to read.
    DeliverAndAnswer(usize, SocketAddr, Vec<u8>),
}

/// Control datagrams larger than this are dropped unread by the gate.
const MAX_CONTROL: usize = 4096;

impl GatedConn {
    pub(crate) fn new(
        path: ClientPath,
        gate: Arc<Gate>,
        nonces: Arc<NonceCache>,
        plane: Arc<DataPlane>,
    ) -> std::io::Result<Self> {
        let (local, transport) = match &path {
            ClientPath::Udp(socket) => (socket.local_addr()?, Transport::Udp),
            ClientPath::Tcp(tcp) => (tcp.local(), tcp.kind()),
        };
        Ok(Self {
            path,
            gate,
            nonces,
            plane,
            transport,
            local,
            pending: Mutex::new(None),
            controls: Mutex::new(VecDeque::new()),
        })
    }

    fn tuple(&self, client: SocketAddr) -> FiveTuple {
        FiveTuple {
            transport: self.transport,
            client,
            server: self.local,
        }
    }

    /// Relays data (at `buf[at..at + len]`, framed in place) through the data
    /// plane; a control message is queued for [`Self::control`]. Returns a send
    /// the socket had no room for.
    fn route(
        &self,
        buf: &mut [u8],
        at: usize,
        len: usize,
        src: SocketAddr,
        controls: &mut VecDeque<(Vec<u8>, SocketAddr)>,
    ) -> Option<Blocked> {
        if !wire::is_relayed_data(&buf[at..at + len]) {
            // The crate reads control messages into 1500-byte buffers; larger
            // ones are not worth holding (STUN requests are far smaller).
            if len <= MAX_CONTROL {
                controls.push_back((buf[at..at + len].to_vec(), src));
            }
            return None;
        }
        // Attacker-controlled bytes go through parsers here, inside the relay's
        // read loop: a panic must cost one datagram, not the relay.
        let tuple = self.tuple(src);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.plane.relay_from_client(&tuple, buf, at, len)
        }))
        .unwrap_or(None)
    }

    /// A control message: inspected by the gate, and what passes is copied into
    /// `out` for the crate.
    fn control(&self, data: &[u8], src: SocketAddr, out: &mut [u8]) -> Step {
        let tuple = self.tuple(src);
        let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.gate.inspect(data, tuple, &self.nonces, &self.pending)
        }))
        .unwrap_or(Verdict::Drop);
        match verdict {
            Verdict::Pass if data.len() <= out.len() => {
                out[..data.len()].copy_from_slice(data);
                Step::Deliver(data.len(), src)
            }
            Verdict::Forward(data) if data.len() <= out.len() => {
                out[..data.len()].copy_from_slice(&data);
                Step::Deliver(data.len(), src)
            }
            Verdict::PassAndReply(response) if data.len() <= out.len() => {
                out[..data.len()].copy_from_slice(data);
                Step::DeliverAndAnswer(data.len(), src, response)
            }
            Verdict::Pass | Verdict::Forward(_) | Verdict::Drop => Step::Next,
            Verdict::Reply(response) | Verdict::PassAndReply(response) => {
                Step::Answer(response, src)
            }
        }
    }

    /// Reads a batch of datagrams and routes them without awaiting: relayed
    /// data goes out (sends the socket had no room for are left in `blocked`),
    /// control messages are queued. How many were read; 0 when drained.
    fn udp_batch(&self, socket: &UdpSocket, blocked: &mut Vec<Blocked>) -> usize {
        let mut controls = self.controls.lock().unwrap_or_else(|e| e.into_inner());
        with_batch(|batch| match batch.recv(socket) {
            Ok(n) => {
                for i in 0..n {
                    let (buf, len, src) = batch.datagram(i);
                    if let Some(src) = src {
                        blocked.extend(self.route(buf, PAYLOAD_AT, len, src, &mut controls));
                    }
                }
                n
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => 0,
            // An ICMP error reported on the socket, say: it costs one read.
            Err(err) => {
                tracing::debug!(error = %err, "TURN: listener read error");
                1
            }
        })
    }

    fn next_control(&self) -> Option<(Vec<u8>, SocketAddr)> {
        self.controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    async fn answer(&self, response: &[u8], to: SocketAddr) {
        match &self.path {
            ClientPath::Udp(socket) => {
                if let Err(err) = socket.send_to(response, to).await {
                    tracing::debug!(%to, error = %err, "TURN: could not send a gate response");
                }
            }
            ClientPath::Tcp(tcp) => {
                tcp.queue(response, to);
            }
        }
    }
}

#[async_trait]
impl Conn for GatedConn {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported).into())
    }

    async fn recv(&self, _buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported).into())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let mut since_yield = 0;
        loop {
            let step = match &self.path {
                ClientPath::Udp(socket) => {
                    if let Some((frame, src)) = self.next_control() {
                        self.control(&frame, src, buf)
                    } else {
                        if since_yield >= YIELD_AFTER {
                            // A full share: let the relay sockets' tasks run.
                            since_yield = 0;
                            tokio::task::yield_now().await;
                        }
                        socket.readable().await?;
                        let mut blocked = Vec::new();
                        let read = self.udp_batch(socket, &mut blocked);
                        for blocked in blocked {
                            blocked.finish().await;
                        }
                        // A short read drained the socket (readiness cleared).
                        since_yield = if read < RECV_BATCH {
                            0
                        } else {
                            since_yield + read
                        };
                        Step::Next
                    }
                }
                // Data frames never get here: each TCP connection hands them to
                // the data plane itself.
                ClientPath::Tcp(tcp) => {
                    let (frame, src) = tcp.recv_frame().await?;
                    self.control(&frame, src, buf)
                }
            };
            match step {
                Step::Deliver(n, src) => return Ok((n, src)),
                Step::Answer(response, to) => self.answer(&response, to).await,
                Step::DeliverAndAnswer(n, src, response) => {
                    self.answer(&response, src).await;
                    return Ok((n, src));
                }
                Step::Next => {}
            }
        }
    }

    async fn send(&self, _buf: &[u8]) -> webrtc_util::Result<usize> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported).into())
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        let tuple = self.tuple(target);
        let observed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.gate.observe(buf, tuple, &self.nonces, &self.pending)
        }))
        .unwrap_or_default();
        if let Some(established) = observed.established {
            self.plane.apply(tuple, established, &self.path);
        }
        let bytes = match &observed.answer {
            Answer::Crate => buf,
            Answer::Instead(bytes) => bytes,
            Answer::Nothing => return Ok(buf.len()),
        };
        match &self.path {
            ClientPath::Udp(socket) => socket.send_to(bytes, target).await?,
            ClientPath::Tcp(tcp) => {
                tcp.queue(bytes, target);
                0
            }
        };
        // The crate checks the count against its own buffer.
        Ok(buf.len())
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// Never closes the listener: the crate calls this whenever *an allocation*
    /// ends. The relay drops its sockets itself on shutdown.
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
