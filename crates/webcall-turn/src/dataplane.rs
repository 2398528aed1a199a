//! The data plane: relaying for established allocations, in our own code.
//!
//! The crate keeps the control plane (Allocate, Refresh, CreatePermission,
//! ChannelBind, lifetimes); the gate watches its successful responses and
//! mirrors what they establish here: which relay socket belongs to which client,
//! the permissions (5 min) and channel bindings (10 min) of each allocation.
//! With that, the two hot paths never touch the crate:
//!
//! - client → peer: the listener's read loop takes a ChannelData message or a
//!   Send indication, looks the allocation up by 5-tuple, checks the permission
//!   and sends the payload from the relay socket — no copy, no await unless the
//!   socket is full;
//! - peer → client: each relay socket's read loop (run by the crate's allocation
//!   task through [`RelayConn::recv_from`]) frames the datagram in place as
//!   ChannelData or a Data indication and sends it on the client's transport.
//!
//! Datagrams are read in batches (recvmmsg) into per-thread slots of 64 KiB, so
//! no size is cut (the crate reads 1500 bytes) and 10,000 allocations do not
//! hold 10,000 buffers; frames to UDP clients leave in batches (sendmmsg). See
//! [`crate::batch`].
//! Lookups take uncontended read locks of hash maps (the crate scans its channel
//! list under an async mutex). RFC 8656 rules kept: a permission is needed in
//! both directions, a channel binding also installs one, expired entries count
//! as absent.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::time::Instant;

use async_trait::async_trait;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use turn::relay::RelayAddressGenerator;
use webrtc_util::Conn;

use crate::batch::{self, with_batch, with_scratch, MAX_DATAGRAM, PAYLOAD_AT, RECV_BATCH};
use crate::counters::{count_relayed, Direction};
use crate::permissions::{Table, SWEEP_ABOVE};
use crate::policy::PeerPolicy;
use crate::tcp::TcpTransport;
use crate::tuple::FiveTuple;
use crate::wire;

/// Datagrams one read loop handles before it lets other tasks run.
const BATCH: usize = 64;
/// Relay socket buffers: a burst from a peer waits here, not in loss.
const RELAY_BUFFER_BYTES: usize = 1024 * 1024;

/// How a client is reached: the listening UDP socket its Allocate came in on, or
/// its TCP connection.
#[derive(Clone)]
pub(crate) enum ClientPath {
    Udp(Arc<UdpSocket>),
    Tcp(Arc<TcpTransport>),
}

/// What a successful control response established (seen by the gate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Established {
    Allocation { relay: SocketAddr },
    Permissions(Vec<IpAddr>),
    Channel { number: u16, peer: SocketAddr },
}

/// The client end of an allocation, known once its Allocate succeeded.
struct Link {
    client: SocketAddr,
    path: ClientPath,
}

/// One relayed transport address.
pub(crate) struct Relay {
    socket: UdpSocket,
    /// The address advertised in XOR-RELAYED-ADDRESS: what peers send to.
    addr: SocketAddr,
    link: OnceLock<Link>,
    table: RwLock<Table>,
    closed: CancellationToken,
}

/// A send the socket was too full for, to finish with an await.
pub(crate) enum Blocked {
    ToPeer(Arc<Relay>, SocketAddr, Vec<u8>),
    ToClient(ClientPath, SocketAddr, Vec<u8>),
}

impl Blocked {
    pub(crate) async fn finish(self) {
        match self {
            Blocked::ToPeer(relay, peer, payload) => {
                if relay.socket.send_to(&payload, peer).await.is_ok() {
                    count_relayed(Direction::ToPeer, payload.len());
                }
            }
            Blocked::ToClient(ClientPath::Udp(socket), client, frame) => {
                if socket.send_to(&frame, client).await.is_ok() {
                    count_relayed(Direction::ToClient, frame.len());
                }
            }
            Blocked::ToClient(ClientPath::Tcp(tcp), client, frame) => {
                if tcp.queue(&frame, client) {
                    count_relayed(Direction::ToClient, frame.len());
                }
            }
        }
    }
}

impl Relay {
    fn table(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn table_mut(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Relays `buf[at..at + len]`, which came from `peer`, to this allocation's
    /// client: as ChannelData if a channel is bound to the peer, else as a Data
    /// indication if the peer is permitted, else not at all. Frames in place:
    /// `buf` has [`PAYLOAD_AT`] bytes of room before `at` and 3 after the payload.
    fn to_client(
        &self,
        peer: SocketAddr,
        buf: &mut [u8],
        at: usize,
        len: usize,
    ) -> Option<Blocked> {
        let link = self.link.get()?;
        let now = Instant::now();
        let channel = {
            let table = self.table();
            if !table.permitted(peer.ip(), now) {
                return None;
            }
            table.channel_of(peer, now)
        };
        let start = match channel {
            Some(number) => {
                if len > usize::from(u16::MAX) {
                    return None;
                }
                buf[at - 4..at].copy_from_slice(&wire::channel_data_header(number, len));
                at - 4
            }
            None => wire::put_data_indication(buf, at, peer, len, &transaction_id()),
        };
        // Pad to four bytes: required on TCP, harmless on UDP (RFC 8656 §12.5).
        let end = at + wire::padded(len);
        buf[at + len..end].fill(0);
        let frame = &buf[start..end];
        match &link.path {
            // Counted when the outbox is flushed.
            ClientPath::Udp(socket) if batch::queue_to_client(socket, link.client, frame) => {
                return None
            }
            ClientPath::Udp(socket) => match socket.try_send_to(frame, link.client) {
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Some(Blocked::ToClient(
                        link.path.clone(),
                        link.client,
                        frame.to_vec(),
                    ))
                }
                Err(err) => {
                    tracing::debug!(client = %link.client, error = %err, "TURN: could not relay to a client");
                    return None;
                }
            },
            ClientPath::Tcp(tcp) => {
                if !tcp.queue(frame, link.client) {
                    return None;
                }
            }
        }
        count_relayed(Direction::ToClient, frame.len());
        None
    }
}

/// Shared by every listener of every transport.
pub struct DataPlane {
    /// The addresses relay sockets are advertised on (one per family).
    public_ips: Vec<IpAddr>,
    /// Refuses the relay's own address outside the relay ports, per datagram
    /// (a Send indication names any port).
    policy: PeerPolicy,
    by_client: RwLock<HashMap<FiveTuple, Arc<Relay>>>,
    /// Live relays by advertised address, for peers that are relays of ours.
    by_addr: RwLock<HashMap<SocketAddr, Arc<Relay>>>,
    /// Relay sockets the crate asked for whose Allocate response has not been seen
    /// yet, by advertised address. Weak: a failed Allocate frees its socket.
    unclaimed: Mutex<HashMap<SocketAddr, Weak<Relay>>>,
}

impl DataPlane {
    pub fn new(public_ips: Vec<IpAddr>, policy: PeerPolicy) -> Self {
        Self {
            public_ips,
            policy,
            by_client: RwLock::default(),
            by_addr: RwLock::default(),
            unclaimed: Mutex::default(),
        }
    }

    fn relay(&self, tuple: &FiveTuple) -> Option<Arc<Relay>> {
        self.by_client
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tuple)
            .cloned()
    }

    /// The live relay of ours at `addr`, if `addr` is one.
    fn local_relay(&self, addr: SocketAddr) -> Option<Arc<Relay>> {
        if !self.public_ips.contains(&addr.ip()) {
            return None;
        }
        self.by_addr
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&addr)
            .cloned()
    }

    /// Relays a ChannelData message or Send indication from a client, found at
    /// `buf[at..at + len]` with [`PAYLOAD_AT`] bytes of room before `at` and 3
    /// after the datagram. What the rules do not allow is dropped (RFC 8656).
    ///
    /// When the peer is another relay of this server (both ends of a call relayed
    /// here, which is common), the datagram goes straight to that relay's client:
    /// one system call and one trip through the kernel instead of three, as if it
    /// had crossed the host's loopback.
    pub(crate) fn relay_from_client(
        &self,
        tuple: &FiveTuple,
        buf: &mut [u8],
        at: usize,
        len: usize,
    ) -> Option<Blocked> {
        let relay = self.relay(tuple)?;
        let now = Instant::now();
        let datagram = &buf[at..at + len];
        let (peer, payload_at, payload_len) =
            if let Some((number, payload)) = wire::parse_channel_data(datagram) {
                (relay.table().peer_of(number, now)?, at + 4, payload.len())
            } else if let Some((peer, payload)) = wire::parse_send_indication(datagram) {
                if !relay.table().permitted(peer.ip(), now) {
                    return None;
                }
                let offset = payload.as_ptr() as usize - datagram.as_ptr() as usize;
                (peer, at + offset, payload.len())
            } else {
                return None;
            };
        if let Some(local) = self.local_relay(peer) {
            count_relayed(Direction::ToPeer, payload_len);
            return local.to_client(relay.addr, buf, payload_at, payload_len);
        }
        if self.policy.own_port_refused(peer) {
            metrics::counter!("webcall_turn_forbidden_peers_total").increment(1);
            return None;
        }
        let payload = &buf[payload_at..payload_at + payload_len];
        match relay.socket.try_send_to(payload, peer) {
            Ok(_) => {
                count_relayed(Direction::ToPeer, payload_len);
                None
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                Some(Blocked::ToPeer(relay, peer, payload.to_vec()))
            }
            Err(err) => {
                tracing::debug!(%peer, error = %err, "TURN: could not relay to a peer");
                None
            }
        }
    }

    /// [`Self::relay_from_client`] for a frame without room around it (TCP).
    pub(crate) fn relay_client_frame(&self, tuple: &FiveTuple, frame: &[u8]) -> Option<Blocked> {
        batch::note_handled(1);
        with_scratch(|buf| {
            let len = frame.len().min(MAX_DATAGRAM);
            buf[PAYLOAD_AT..PAYLOAD_AT + len].copy_from_slice(&frame[..len]);
            self.relay_from_client(tuple, buf, PAYLOAD_AT, len)
        })
    }

    /// Mirrors what a successful control response established.
    pub(crate) fn apply(&self, tuple: FiveTuple, established: Established, path: &ClientPath) {
        let now = Instant::now();
        match established {
            Established::Allocation { relay } => {
                let Some(found) = self
                    .unclaimed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&relay)
                    .and_then(|weak| weak.upgrade())
                else {
                    tracing::warn!(%relay, "TURN: an allocation's relay socket is unknown");
                    return;
                };
                let _ = found.link.set(Link {
                    client: tuple.client,
                    path: path.clone(),
                });
                self.by_addr
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(found.addr, found.clone());
                self.by_client
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(tuple, found);
            }
            Established::Permissions(ips) => {
                if let Some(relay) = self.relay(&tuple) {
                    let mut table = relay.table_mut();
                    for ip in ips {
                        table.permit(ip, now);
                    }
                }
            }
            Established::Channel { number, peer } => {
                if let Some(relay) = self.relay(&tuple) {
                    relay.table_mut().bind(number, peer, now);
                }
            }
        }
    }

    /// The crate closed the allocation of `tuple`.
    pub(crate) fn release(&self, tuple: &FiveTuple) {
        let relay = self
            .by_client
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(tuple);
        if let Some(relay) = relay {
            self.by_addr
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&relay.addr);
            relay.closed.cancel();
        }
    }

    fn adopt(&self, relay: &Arc<Relay>) {
        let mut unclaimed = self
            .unclaimed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if unclaimed.len() >= SWEEP_ABOVE {
            unclaimed.retain(|_, weak| weak.strong_count() > 0);
        }
        unclaimed.insert(relay.addr, Arc::downgrade(relay));
    }
}

/// Where relay sockets of one address family bind, and the address they are
/// advertised on in XOR-RELAYED-ADDRESS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelayFamily {
    pub bind: IpAddr,
    pub public: IpAddr,
}

/// Hands the crate relay sockets in the configured port range, each wrapped as a
/// [`RelayConn`] that relays peer datagrams itself.
pub(crate) struct RelayPorts {
    pub plane: Arc<DataPlane>,
    pub ipv4: Option<RelayFamily>,
    pub ipv6: Option<RelayFamily>,
    pub min_port: u16,
    pub max_port: u16,
}

const PORT_ATTEMPTS: usize = 64;

#[async_trait]
impl RelayAddressGenerator for RelayPorts {
    fn validate(&self) -> Result<(), turn::Error> {
        if self.min_port == 0 {
            return Err(turn::Error::ErrMinPortNotZero);
        }
        if self.max_port < self.min_port {
            return Err(turn::Error::ErrMaxPortLessThanMinPort);
        }
        Ok(())
    }

    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        // The gate answers 440 for a family without a public address first.
        let family = if use_ipv4 { self.ipv4 } else { self.ipv6 };
        let Some(family) = family else {
            return Err(turn::Error::ErrInvalidRequestedFamilyValue);
        };
        let span = u32::from(self.max_port - self.min_port) + 1;
        let ports = (0..PORT_ATTEMPTS).map(|_| {
            if requested_port != 0 {
                requested_port
            } else {
                self.min_port + (rand_u32() % span) as u16
            }
        });
        for port in ports {
            let Ok(socket) = bind_relay(SocketAddr::new(family.bind, port)) else {
                if requested_port != 0 {
                    break;
                }
                continue;
            };
            let advertised = SocketAddr::new(family.public, socket.local_addr()?.port());
            let relay = Arc::new(Relay {
                socket,
                addr: advertised,
                link: OnceLock::new(),
                table: RwLock::new(Table::default()),
                closed: CancellationToken::new(),
            });
            self.plane.adopt(&relay);
            return Ok((Arc::new(RelayConn(relay)), advertised));
        }
        Err(turn::Error::ErrMaxRetriesExceeded)
    }
}

fn bind_relay(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if addr.is_ipv6() {
        // An IPv6 relay port is not also an IPv4 one.
        socket.set_only_v6(true)?;
    }
    let _ = socket.set_recv_buffer_size(RELAY_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(RELAY_BUFFER_BYTES);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

/// A random number for port choice (not for anything secret): each
/// `RandomState` is freshly keyed.
fn rand_u32() -> u32 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(()) as u32
}

/// A relay socket as the crate sees it. The crate's allocation task calls
/// `recv_from` once and expects datagrams back; this never returns one — it
/// relays them itself — until the allocation closes.
pub(crate) struct RelayConn(Arc<Relay>);

impl RelayConn {
    /// Reads a batch of datagrams from peers and relays each to the client, all
    /// without awaiting (the slots are this thread's); sends the socket had no
    /// room for are left in `blocked`. `Ok(false)` when the socket is drained.
    fn relay_batch(&self, blocked: &mut Vec<Blocked>) -> io::Result<bool> {
        let relay = &self.0;
        with_batch(|batch| {
            let n = match batch.recv(&relay.socket) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) => return Err(err),
            };
            for i in 0..n {
                let (buf, len, peer) = batch.datagram(i);
                let Some(peer) = peer else { continue };
                blocked.extend(relay.to_client(peer, buf, PAYLOAD_AT, len));
            }
            Ok(n == RECV_BATCH)
        })
    }
}

/// Data indications need a transaction id; any value does (RFC 8656 §11.4).
fn transaction_id() -> [u8; 12] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut txid = [0u8; 12];
    txid[4..].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    txid
}

#[async_trait]
impl Conn for RelayConn {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported).into())
    }

    async fn recv(&self, _buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Err(io::Error::from(io::ErrorKind::Unsupported).into())
    }

    async fn recv_from(&self, _buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let relay = &self.0;
        loop {
            tokio::select! {
                ready = relay.socket.readable() => ready?,
                _ = relay.closed.cancelled() => {
                    return Err(io::Error::from(io::ErrorKind::NotConnected).into())
                }
            }
            let mut blocked = Vec::new();
            let mut more = false;
            for _ in 0..BATCH / RECV_BATCH {
                match self.relay_batch(&mut blocked) {
                    Ok(true) => more = true,
                    Ok(false) => {
                        more = false;
                        break;
                    }
                    // An ICMP error reported on the socket: nothing to relay.
                    Err(err) => {
                        tracing::debug!(error = %err, "TURN: relay socket read error");
                    }
                }
            }
            for blocked in blocked {
                blocked.finish().await;
            }
            // Still readable after a full share: let the other tasks run first.
            if more {
                tokio::task::yield_now().await;
            }
        }
    }

    async fn send(&self, _buf: &[u8]) -> webrtc_util::Result<usize> {
        Err(io::Error::from(io::ErrorKind::Unsupported).into())
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        Ok(self.0.socket.send_to(buf, target).await?)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.0.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// The crate closes the relay socket when the allocation ends.
    async fn close(&self) -> webrtc_util::Result<()> {
        self.0.closed.cancel();
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
