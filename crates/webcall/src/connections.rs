//! Bounds on the HTTP port's client connections, plain or TLS, so that sockets
//! that send nothing, trickle their headers or pile up from one address cannot
//! hold the server's file descriptors:
//!
//! - at most `HTTP_MAX_CONNECTIONS_PER_IP` open connections (WebSockets
//!   included) from one address; `TRUSTED_PROXIES` are exempt, as in `tls::front`.
//!   One over it is closed at accept;
//! - a connection that moves no byte either way for `HTTP_IDLE_TIMEOUT_SECS` is
//!   closed (a WebSocket is kept busy by the server's pings);
//! - a request's headers must be in within `HTTP_HEADER_TIMEOUT_SECS` (hyper's
//!   header read timeout, set by [`ConnectionLimits::http_builder`]).
//!
//! [`serve`] is the plain-HTTP server (axum's `serve` with these bounds); the
//! TLS front wraps its streams in the same [`Guarded`].

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tower_service::Service as _;

/// The bounds, shared by every connection of the port.
pub struct ConnectionLimits {
    max_per_ip: usize,
    proxies: Vec<ipnet::IpNet>,
    idle_timeout: Duration,
    header_timeout: Duration,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnectionLimits {
    /// `max_per_ip` 0 is no cap.
    pub fn new(
        max_per_ip: usize,
        proxies: Vec<ipnet::IpNet>,
        idle_timeout: Duration,
        header_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            max_per_ip,
            proxies,
            idle_timeout,
            header_timeout,
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// No cap, and timeouts of a year.
    pub fn unbounded() -> Arc<Self> {
        let year = Duration::from_secs(365 * 24 * 3600);
        Self::new(0, Vec::new(), year, year)
    }

    /// A place for a connection from `ip` (canonical), or `None` over the cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        if self.max_per_ip == 0 || self.proxies.iter().any(|net| net.contains(&ip)) {
            return Some(IpSlot(None));
        }
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            metrics::counter!("webcall_http_refused_total", "reason" => "per_ip").increment(1);
            return None;
        }
        *count += 1;
        Some(IpSlot(Some((self.clone(), ip))))
    }

    /// `io` with its slot, closed once idle for `HTTP_IDLE_TIMEOUT_SECS`.
    pub fn guard<T>(&self, io: T, slot: IpSlot) -> Guarded<T> {
        Guarded {
            inner: io,
            _slot: slot,
            idle_timeout: self.idle_timeout,
            last_active: Instant::now(),
            deadline: Box::pin(tokio::time::sleep(self.idle_timeout)),
        }
    }

    /// The hyper connection builder with the header read timeout.
    pub fn http_builder(&self, builder: &mut Builder<TokioExecutor>) {
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout);
    }
}

/// One connection's place in its address's count; freed on drop.
pub struct IpSlot(Option<(Arc<ConnectionLimits>, IpAddr)>);

impl Drop for IpSlot {
    fn drop(&mut self) {
        let Some((limits, ip)) = self.0.take() else {
            return;
        };
        let mut per_ip = limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&ip);
            }
        }
    }
}

/// A client stream that holds its address slot and fails with `TimedOut` once
/// no byte has moved either way for the idle timeout.
pub struct Guarded<T> {
    inner: T,
    _slot: IpSlot,
    idle_timeout: Duration,
    last_active: Instant,
    /// Fires at the earliest moment the connection may be idle for too long;
    /// moved on (lazily, when it fires) after activity.
    deadline: Pin<Box<Sleep>>,
}

impl<T> Guarded<T> {
    fn check_idle(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        while self.deadline.as_mut().poll(cx).is_ready() {
            let due = self.last_active + self.idle_timeout;
            if due <= Instant::now() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle"));
            }
            self.deadline.as_mut().reset(due);
        }
        Ok(())
    }

    /// A write's result: bytes written make the connection active; a write that
    /// must wait is where an idle connection is found out.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.last_active = Instant::now();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => match self.check_idle(cx) {
                Ok(()) => Poll::Pending,
                Err(err) => Poll::Ready(Err(err)),
            },
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.last_active = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => match self.check_idle(cx) {
                Ok(()) => Poll::Pending,
                Err(err) => Poll::Ready(Err(err)),
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(cx, written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// An IPv4 client of a dual-stack listener arrives as `::ffff:a.b.c.d`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Serves `router` on `listener` (plain HTTP) within `limits` until `shutdown`,
/// then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: Arc<ConnectionLimits>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let (closed_tx, closed_rx) = tokio::sync::watch::channel(());
    tokio::pin!(shutdown);
    let mut builder = Builder::new(TokioExecutor::new());
    limits.http_builder(&mut builder);
    let builder = Arc::new(builder);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %err, "HTTP: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(slot) = limits.admit(canonical(peer.ip())) else {
            tracing::debug!(%peer, "too many connections from this address, closing");
            continue;
        };
        // Small signaling frames must not wait for the peer's delayed ACK.
        let _ = tcp.set_nodelay(true);
        let io = TokioIo::new(limits.guard(tcp, slot));
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
            let mut request = request.map(axum::body::Body::new);
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            router.clone().call(request)
        });
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        let closed = closed_rx.clone();
        tokio::spawn(async move {
            let conn = builder.serve_connection_with_upgrades(io, service);
            tokio::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(err) = result {
                            tracing::trace!(%peer, error = %err, "HTTP connection ended");
                        }
                        break;
                    }
                    changed = stop.changed(), if !stopping => {
                        stopping = true;
                        let _ = changed;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(closed);
        });
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(());
    drop(closed_rx);
    closed_tx.closed().await;
}
