//! Binding the TCP ports the binary serves (HTTP, metrics, the HTTPS redirect,
//! `TURN_TLS_LISTEN`), and whether this host has IPv6 at all.

use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpListener;

/// Binds the HTTP port with a backlog that absorbs a burst of joins (the
/// default 128 drops connections when a class joins at once; they retry a
/// second later). `[::]` is dual stack (IPv4 clients arrive as `::ffff:a.b.c.d`,
/// which every address check folds back); on a host without IPv6 it falls back
/// to `0.0.0.0`.
pub(crate) fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let addr = match addr.ip() {
        IpAddr::V6(ip) if ip.is_unspecified() && !ipv6_available() => {
            tracing::warn!(%addr, "IPv6 is off on this host: listening on IPv4 only");
            SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), addr.port())
        }
        _ => addr,
    };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if addr.is_ipv6() {
        socket.set_only_v6(!addr.ip().is_unspecified())?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Whether this host can use IPv6 at all (it may be switched off); asked of the
/// kernel once.
pub(crate) fn ipv6_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| std::net::UdpSocket::bind((std::net::Ipv6Addr::LOCALHOST, 0)).is_ok())
}
