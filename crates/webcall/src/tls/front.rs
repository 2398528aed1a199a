//! The TLS front of the HTTP port and of `TURN_TLS_LISTEN`: per connection,
//! the handshake under bounds and the decision whether it is HTTPS or TURN over
//! TLS (RFC 8656 §3.1 / RFC 7443).
//!
//! After the handshake a connection is routed by its ALPN protocol when the
//! client sent one (`stun.turn` or `stun.nat-discovery` to the relay, `h2` or
//! `http/1.1` to axum; rustls-acme answers `acme-tls/1` itself), otherwise by its
//! first decrypted bytes: a STUN header (top two bits 0, magic cookie
//! `0x2112A442` at offset 4) is TURN, anything else is HTTP. Browsers send no
//! ALPN on `turns:`, so the byte check is the path that matters. No more than
//! those 8 bytes are read to decide, and they are handed on with the stream.
//!
//! Bounds, so a handshake flood cannot starve established calls: at most
//! [`MAX_HANDSHAKES`] connections at once between accept and that decision, at
//! most [`MAX_HANDSHAKES_PER_IP`] of them from one address, each within
//! [`HANDSHAKE_TIMEOUT`] for the handshake and [`FIRST_BYTES_TIMEOUT`] for its
//! first bytes; a connection over a bound is closed at once.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use webcall_turn::TcpTransport;

use super::certificates::{Alpn, Certificates, TlsIo};
use crate::connections::{ConnectionLimits, Guarded};

/// Connections between accept and the routing decision, at most.
pub const MAX_HANDSHAKES: usize = 256;
/// Of those, from one client address at most.
pub const MAX_HANDSHAKES_PER_IP: usize = 16;
/// Time a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has, after the handshake, to send its first bytes.
pub const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(5);

const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// The TLS front: handshakes under bounds, then routes HTTP to axum and TURN to
/// the relay's TLS intake.
#[derive(Clone)]
pub struct TlsFront {
    certificates: Certificates,
    turn: Option<Arc<TcpTransport>>,
    limits: Arc<Limits>,
    /// Proxies (`TRUSTED_PROXIES`) whose connections all come from one
    /// address: exempt from the per-address bound, not from the total.
    proxies: Arc<Vec<ipnet::IpNet>>,
    /// The HTTP port's bounds on open connections (see `connections.rs`).
    connections: Option<Arc<ConnectionLimits>>,
}

/// Where one connection goes.
enum Route {
    Http(Rewind),
    Turn(Rewind),
}

impl TlsFront {
    pub fn new(
        certificates: Certificates,
        turn: Option<Arc<TcpTransport>>,
        proxies: Vec<ipnet::IpNet>,
    ) -> Self {
        Self {
            certificates,
            turn,
            limits: Arc::new(Limits::default()),
            proxies: Arc::new(proxies),
            connections: None,
        }
    }

    /// HTTPS connections held to `limits` (per address, idle).
    pub fn with_connection_limits(mut self, limits: Arc<ConnectionLimits>) -> Self {
        self.connections = Some(limits);
        self
    }

    /// Handshake and routing decision for one accepted connection from `peer`
    /// (canonical: see [`canonical`]); `None` when it is closed (over a bound,
    /// timed out, failed, or an ACME challenge).
    async fn route(&self, tcp: TcpStream, peer: SocketAddr) -> Option<Route> {
        let proxy = self.proxies.iter().any(|net| net.contains(&peer.ip()));
        let _admitted = self.limits.admit(peer.ip(), proxy)?;
        let _ = tcp.set_nodelay(true);
        let (mut io, alpn) =
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.certificates.handshake(tcp)).await {
                Ok(Ok(Some(done))) => done,
                Ok(Ok(None)) => return None,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                    return None;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return None;
                }
            };
        match alpn {
            Alpn::Http => return Some(Route::Http(Rewind::new(io, Vec::new()))),
            Alpn::Turn => return Some(Route::Turn(Rewind::new(io, Vec::new()))),
            Alpn::None => {}
        }
        let first = match tokio::time::timeout(FIRST_BYTES_TIMEOUT, first_bytes(&mut io)).await {
            Ok(Ok(first)) if !first.is_empty() => first,
            Ok(_) => return None,
            Err(_) => {
                tracing::debug!(%peer, "TLS client sent nothing, closing");
                return None;
            }
        };
        let turn = is_stun_header(&first);
        let io = Rewind::new(io, first);
        Some(if turn {
            Route::Turn(io)
        } else {
            Route::Http(io)
        })
    }

    /// Hands a TURN connection to the relay (or closes it when no relay runs here).
    fn to_relay(&self, io: Rewind, peer: SocketAddr) {
        match &self.turn {
            Some(intake) => intake.adopt(io, peer),
            None => tracing::debug!(%peer, "TURN over TLS without an embedded relay, closing"),
        }
    }

    /// Serves `TURN_TLS_LISTEN`: every connection is TURN over TLS (HTTP there is
    /// closed) until `stop`.
    pub async fn serve_turn_only(self, listener: TcpListener, stop: CancellationToken) {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "TURN over TLS listening");
        }
        loop {
            let (tcp, peer) = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %err, "TURN_TLS_LISTEN: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let front = self.clone();
            let peer = canonical(peer);
            tokio::spawn(async move {
                match front.route(tcp, peer).await {
                    Some(Route::Turn(io)) => front.to_relay(io, peer),
                    Some(Route::Http(_)) => {
                        tracing::debug!(%peer, "HTTP on the TURN/TLS port, closing");
                    }
                    None => {}
                }
            });
        }
    }
}

/// axum-server's hook: HTTP connections are served, TURN ones handed to the relay
/// (the error tells axum-server there is nothing left for it to serve).
impl<S: Send + 'static> axum_server::accept::Accept<TcpStream, S> for TlsFront {
    type Stream = Guarded<Rewind>;
    type Service = S;
    type Future = BoxFuture<'static, io::Result<(Guarded<Rewind>, S)>>;

    fn accept(&self, tcp: TcpStream, service: S) -> Self::Future {
        let front = self.clone();
        Box::pin(async move {
            let peer = canonical(tcp.peer_addr()?);
            let limits = front
                .connections
                .clone()
                .unwrap_or_else(ConnectionLimits::unbounded);
            let slot = limits
                .admit(peer.ip())
                .ok_or_else(|| io::Error::other("too many connections from this address"))?;
            match front.route(tcp, peer).await {
                Some(Route::Http(io)) => Ok((limits.guard(io, slot), service)),
                Some(Route::Turn(io)) => {
                    front.to_relay(io, peer);
                    Err(io::Error::other("TURN over TLS, handed to the relay"))
                }
                None => Err(io::Error::other("TLS connection closed before routing")),
            }
        })
    }
}

/// `addr` with its IP as [`crate::connections::canonical`] sees it, so bounds, trusted
/// proxies and the relay's XOR-MAPPED-ADDRESS see the address the client has.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(crate::connections::canonical(addr.ip()), addr.port())
}

/// Reads until 8 bytes are in, or the bytes so far already rule out STUN.
async fn first_bytes(io: &mut Box<dyn TlsIo>) -> io::Result<Vec<u8>> {
    let mut buf = [0u8; 8];
    let mut filled = 0;
    while filled < buf.len() {
        let n = io.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
        if !could_be_stun(&buf[..filled]) {
            break;
        }
    }
    Ok(buf[..filled].to_vec())
}

/// False once `bytes` cannot begin a STUN message.
fn could_be_stun(bytes: &[u8]) -> bool {
    let cookie = bytes.get(4..).unwrap_or_default();
    let cookie = &cookie[..cookie.len().min(4)];
    bytes.first().is_none_or(|b| b & 0xC0 == 0) && STUN_MAGIC_COOKIE.starts_with(cookie)
}

/// A whole STUN header start: top two bits 0 and the magic cookie at offset 4.
fn is_stun_header(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && could_be_stun(&bytes[..8])
}

/// Bounds on connections that have not been routed yet.
struct Limits {
    in_flight: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
            per_ip: Mutex::new(HashMap::new()),
        }
    }
}

/// One connection's place among those being routed; freed on drop.
struct Admitted<'a> {
    limits: &'a Limits,
    ip: IpAddr,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Limits {
    /// A place for a connection from `ip`; a `proxy` is only held to the total.
    fn admit(&self, ip: IpAddr, proxy: bool) -> Option<Admitted<'_>> {
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            metrics::counter!("webcall_tls_refused_total", "reason" => "handshakes").increment(1);
            return None;
        };
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= MAX_HANDSHAKES_PER_IP && !proxy {
            metrics::counter!("webcall_tls_refused_total", "reason" => "per_ip").increment(1);
            return None;
        }
        *count += 1;
        Some(Admitted {
            limits: self,
            ip,
            _permit: permit,
        })
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let mut per_ip = self.limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// A decrypted stream with the bytes read to route it put back in front.
pub struct Rewind {
    prefix: Vec<u8>,
    at: usize,
    inner: Box<dyn TlsIo>,
}

impl Rewind {
    fn new(inner: Box<dyn TlsIo>, prefix: Vec<u8>) -> Self {
        Self {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = (self.prefix.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            if self.at == self.prefix.len() {
                self.prefix = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_is_told_from_http_by_its_first_bytes() {
        let binding = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
        assert!(is_stun_header(&binding));
        assert!(could_be_stun(&binding[..1]));
        assert!(could_be_stun(&binding[..3]));
        assert!(could_be_stun(&binding[..4]));
        assert!(could_be_stun(&binding[..6]));
        // HTTP methods start with an upper-case letter: ruled out at the first byte.
        for request in [&b"GET / HT"[..], b"POST /ap", b"PRI * HT"] {
            assert!(!could_be_stun(&request[..1]), "{request:?}");
            assert!(!is_stun_header(request));
        }
        // Top bits 0 but no magic cookie (RFC 3489 STUN, garbage): not TURN.
        assert!(!is_stun_header(&[
            0x00, 0x01, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef
        ]));
        assert!(!could_be_stun(&[0x00, 0x01, 0x00, 0x00, 0x21, 0x13]));
        // Too short to decide is not STUN.
        assert!(!is_stun_header(&binding[..7]));
        // ChannelData (0x40..) is never the first thing a TURN client sends.
        assert!(!could_be_stun(&[0x40, 0x00]));
    }

    #[tokio::test]
    async fn rewind_gives_back_the_routing_bytes_first() {
        let (mut client, server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"rest")
            .await
            .unwrap();
        let mut rewound = Rewind::new(Box::new(server), b"first-".to_vec());
        let mut got = [0u8; 10];
        rewound.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"first-rest");
    }

    #[test]
    fn handshakes_are_bounded_per_address_and_in_all() {
        let limits = Limits::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let held: Vec<_> = (0..MAX_HANDSHAKES_PER_IP)
            .map(|_| limits.admit(a, false).expect("under the per-address bound"))
            .collect();
        assert!(
            limits.admit(a, false).is_none(),
            "one address over its bound"
        );
        assert!(
            limits.admit(a, true).is_some(),
            "a trusted proxy is not held to it"
        );
        assert!(
            limits.admit(b, false).is_some(),
            "another address still gets in"
        );
        drop(held);
        assert!(
            limits.admit(a, false).is_some(),
            "places come back when freed"
        );
        assert!(limits.per_ip.lock().unwrap().is_empty());
        let many: Vec<_> = (0..MAX_HANDSHAKES)
            .map(|i| {
                let ip = IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
                limits.admit(ip, false).expect("under the total bound")
            })
            .collect();
        assert!(
            limits.admit(b, true).is_none(),
            "over the total bound, proxy or not"
        );
        drop(many);
    }
}
