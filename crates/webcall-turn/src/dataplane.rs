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
//!   task through [`crate::relay_sockets::RelayConn`]) hands each datagram to
//!   [`Relay::to_client`], which frames it in place as ChannelData or a Data
//!   indication and sends it on the client's transport.
//!
//! Datagrams are read in batches (recvmmsg) into per-thread slots of 64 KiB, so
//! no size is cut (the crate reads 1500 bytes) and 10,000 allocations do not
//! hold 10,000 buffers; frames to UDP clients leave in batches (sendmmsg). See
//! [`crate::batch`].
//! Lookups take uncontended read locks of hash maps (the crate scans its channel
//! list under an async mutex). The RFC 8656 rules (a permission is needed in
//! both directions, a channel binding also installs one, expired entries count
//! as absent) are kept by each relay's table ([`crate::permissions`]).
//! Each allocation counts what it relays on counters of its own, held with its
//! relay socket ([`crate::traffic`]): two relaxed atomic adds per datagram.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::batch::{self, with_scratch, MAX_DATAGRAM, PAYLOAD_AT};
use crate::counters::{count_relayed, Direction};
use crate::permissions::{Table, SWEEP_ABOVE};
use crate::policy::PeerPolicy;
use crate::tcp::TcpTransport;
use crate::traffic::Traffic;
use crate::tuple::FiveTuple;
use crate::wire;

/// How a client is reached: the listening UDP socket its Allocate came in on, or
/// its TCP connection.
#[derive(Clone)]
pub(crate) enum ClientPath {
    Udp(Arc<UdpSocket>),
    Tcp(Arc<TcpTransport>),
}

/// What a successful control response established (seen by the gate).
pub(crate) enum Established {
    /// With the counters the allocation's relaying bumps.
    Allocation {
        relay: SocketAddr,
        traffic: Arc<Traffic>,
    },
    Permissions(Vec<IpAddr>),
    Channel {
        number: u16,
        peer: SocketAddr,
    },
}

/// The client end of an allocation, known once its Allocate succeeded.
struct Link {
    client: SocketAddr,
    path: ClientPath,
    traffic: Arc<Traffic>,
}

/// One relayed transport address.
pub(crate) struct Relay {
    pub(crate) socket: UdpSocket,
    /// The address advertised in XOR-RELAYED-ADDRESS: what peers send to.
    addr: SocketAddr,
    link: OnceLock<Link>,
    table: RwLock<Table>,
    /// Cancelled when the allocation ends: the socket's read loop stops.
    pub(crate) closed: CancellationToken,
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
    /// A relay socket, advertised at `addr`, not yet linked to a client.
    pub(crate) fn new(socket: UdpSocket, addr: SocketAddr) -> Self {
        Self {
            socket,
            addr,
            link: OnceLock::new(),
            table: RwLock::new(Table::default()),
            closed: CancellationToken::new(),
        }
    }

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
    pub(crate) fn to_client(
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
        link.traffic.count_out(len);
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
pub(crate) struct DataPlane {
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
    pub(crate) fn new(public_ips: Vec<IpAddr>, policy: PeerPolicy) -> Self {
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
        let traffic = &relay.link.get()?.traffic;
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
            traffic.count_in(payload_len);
            return local.to_client(relay.addr, buf, payload_at, payload_len);
        }
        if self.policy.own_port_refused(peer) {
            metrics::counter!("webcall_turn_forbidden_peers_total").increment(1);
            return None;
        }
        traffic.count_in(payload_len);
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
            Established::Allocation { relay, traffic } => {
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
                    traffic,
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

    /// Keeps `relay` (just handed to the crate) until its Allocate succeeds.
    pub(crate) fn adopt(&self, relay: &Arc<Relay>) {
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

/// Data indications need a transaction id; any value does (RFC 8656 §11.4).
fn transaction_id() -> [u8; 12] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut txid = [0u8; 12];
    txid[4..].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    txid
}
