//! The one UDP socket every routed session shares, and the addresses it is
//! offered at: large kernel buffers, one dual-stack socket for IPv6 and IPv4,
//! and the host candidates (port 0 in the configuration: the bound port).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// What the media socket asks the kernel to buffer each way: every
/// participant's packets arrive on this one socket, and a burst (key frames of
/// several publishers at once) must wait there while the engine works.
const SOCKET_BUFFER: usize = 8 << 20;
/// Below this the kernel's cap (`net.core.rmem_max`) is worth raising.
const SOCKET_BUFFER_WARN: usize = 1 << 20;

/// The one UDP socket of every session, with large kernel buffers (up to the
/// system's caps: `net.core.rmem_max`, `net.core.wmem_max`), non-blocking.
pub(crate) fn media_socket(bind: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))?;
    for (which, set) in [
        (
            "receive",
            Socket::set_recv_buffer_size as fn(&Socket, usize) -> std::io::Result<()>,
        ),
        ("send", Socket::set_send_buffer_size),
    ] {
        if let Err(e) = set(&socket, SOCKET_BUFFER) {
            tracing::warn!(which, error = %e, "could not size the SFU socket's buffer");
        }
    }
    let got = socket.recv_buffer_size().unwrap_or(0);
    if got < SOCKET_BUFFER_WARN {
        tracing::warn!(
            bytes = got,
            "the SFU socket's receive buffer is small: raise net.core.rmem_max (docs/PRODUCTION.md)"
        );
    }
    if bind.is_ipv6() {
        // One socket for both families: IPv4 peers arrive as ::ffff:a.b.c.d.
        socket.set_only_v6(false)?;
    }
    socket.bind(&bind.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The host candidates offered: the configured addresses (port 0: the bound
/// port), else the bound address; all addresses bound and none configured:
/// loopback (both families on a dual-stack socket).
pub(crate) fn offered(configured: &[SocketAddr], local: SocketAddr) -> Vec<SocketAddr> {
    let mut candidates: Vec<SocketAddr> = configured
        .iter()
        .map(|c| match c.port() {
            0 => SocketAddr::new(c.ip(), local.port()),
            _ => *c,
        })
        .collect();
    if candidates.is_empty() {
        if !local.ip().is_unspecified() {
            candidates.push(local);
        } else {
            tracing::warn!(addr = %local, "SFU bound to all addresses without candidates: offering loopback only");
            candidates.push(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port()));
            if local.is_ipv6() {
                candidates.push(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), local.port()));
            }
        }
    }
    candidates
}

/// An address as the dual-stack socket sends to it (IPv4 as `::ffff:a.b.c.d`).
pub(crate) fn mapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) => SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()),
        v6 => v6,
    }
}
