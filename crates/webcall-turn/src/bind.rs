//! The host's side of the relay: binding its listening sockets (UDP, with
//! `SO_REUSEPORT` when there are several per address, and TCP, all on one port)
//! and finding the addresses it can advertise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdpSocket};

use anyhow::Context as _;

/// UDP socket buffers: the kernel's defaults (about 200 KiB) overflow under bursts.
const UDP_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Binds UDP (`udp_listeners` sockets each) and TCP on every address, all on one
/// port; with port 0 first, retries until the port the first UDP socket got is
/// free for everything else too.
pub(crate) fn bind_all(
    listen: &[SocketAddr],
    udp_listeners: usize,
) -> anyhow::Result<(Vec<StdUdpSocket>, Vec<std::net::TcpListener>)> {
    let Some(first) = listen.first() else {
        anyhow::bail!("TURN_LISTEN names no address");
    };
    for _ in 0..16 {
        let primary = bind_udp(*first, udp_listeners > 1)
            .with_context(|| format!("cannot bind TURN UDP {first} (TURN_LISTEN)"))?;
        let port = primary.local_addr()?.port();
        match bind_rest(listen, port, primary, udp_listeners) {
            Ok(bound) => return Ok(bound),
            Err(err) if first.port() == 0 && err.kind() == std::io::ErrorKind::AddrInUse => {
                continue
            }
            Err(err) => return Err(err).context("cannot bind TURN_LISTEN"),
        }
    }
    anyhow::bail!("no port free for TURN UDP and TCP on {listen:?}")
}

/// With the first UDP socket bound on `port`: the rest of its UDP sockets and
/// TCP, then both on every other address (those with port 0 take `port` too).
fn bind_rest(
    listen: &[SocketAddr],
    port: u16,
    primary: StdUdpSocket,
    udp_listeners: usize,
) -> std::io::Result<(Vec<StdUdpSocket>, Vec<std::net::TcpListener>)> {
    let reuse = udp_listeners > 1;
    let mut udp = vec![primary];
    let mut tcp = Vec::with_capacity(listen.len());
    for (index, addr) in listen.iter().enumerate() {
        let addr = match addr.port() {
            0 => SocketAddr::new(addr.ip(), port),
            _ => *addr,
        };
        tcp.push(bind_tcp(addr)?);
        // The same port again with SO_REUSEPORT: the kernel spreads clients over
        // the sockets by their address (a client always lands on the same one),
        // and each socket has a read loop of its own.
        let more = if index == 0 { 1 } else { 0 };
        for _ in more..udp_listeners {
            udp.push(bind_udp(addr, reuse)?);
        }
    }
    Ok((udp, tcp))
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn bind_udp(addr: SocketAddr, reuse_port: bool) -> std::io::Result<StdUdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The host's primary non-loopback address: the source address the kernel
/// would use for an outside destination (a UDP `connect` sends nothing).
pub fn detect_public_ip() -> Option<IpAddr> {
    let socket = StdUdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

/// The host's global IPv6 address, if it has one: the source address the kernel
/// would use for an outside IPv6 destination (nothing is sent). Unique-local,
/// link-local and documentation addresses do not count.
pub fn detect_public_ip6() -> Option<Ipv6Addr> {
    let socket = StdUdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).ok()?;
    socket
        .connect((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9))
        .ok()?;
    match socket.local_addr().ok()?.ip() {
        // Global unicast is 2000::/3; 2001:db8::/32 is documentation.
        IpAddr::V6(ip)
            if (ip.segments()[0] & 0xe000) == 0x2000
                && !(ip.segments()[0] == 0x2001 && ip.segments()[1] == 0xdb8) =>
        {
            Some(ip)
        }
        _ => None,
    }
}
