//! The relay sockets the crate's allocations get: [`RelayPorts`] binds one in
//! the configured port range for each Allocate, and hands the crate a
//! [`RelayConn`] for it, whose read loop (run by the crate's allocation task)
//! relays each peer datagram to the client itself, through the data plane's
//! [`Relay`] — the crate never sees relayed data.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::net::UdpSocket;
use turn::relay::RelayAddressGenerator;
use webrtc_util::Conn;

use crate::batch::{with_batch, PAYLOAD_AT, RECV_BATCH, YIELD_AFTER};
use crate::dataplane::{Blocked, DataPlane, Relay};

/// Relay socket buffers: a burst from a peer waits here, not in loss.
const RELAY_BUFFER_BYTES: usize = 1024 * 1024;

/// Where relay sockets of one address family bind, and the address they are
/// advertised on in XOR-RELAYED-ADDRESS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelayFamily {
    pub(crate) bind: IpAddr,
    pub(crate) public: IpAddr,
}

/// Hands the crate relay sockets in the configured port range, each wrapped as a
/// [`RelayConn`] that relays peer datagrams itself.
pub(crate) struct RelayPorts {
    pub(crate) plane: Arc<DataPlane>,
    pub(crate) ipv4: Option<RelayFamily>,
    pub(crate) ipv6: Option<RelayFamily>,
    pub(crate) min_port: u16,
    pub(crate) max_port: u16,
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
                self.min_port + (rand::random::<u32>() % span) as u16
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
            let relay = Arc::new(Relay::new(socket, advertised));
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
            for _ in 0..YIELD_AFTER / RECV_BATCH {
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
