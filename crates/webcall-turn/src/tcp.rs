//! TURN over TCP and TLS (RFC 8656 §5 / RFC 8489 §6.2.2): each connection's
//! stream is cut into STUN messages and ChannelData frames (padded to 4 bytes on
//! a stream). TCP connections come from the relay's own listener; TLS ones are
//! decrypted elsewhere (the HTTPS port, or `TURN_TLS_LISTEN`) and handed over
//! with [`TcpTransport::adopt`]. Every frame is first offered to the `on_data`
//! hook by the connection's own task (the relay wires it to the data plane,
//! which relays ChannelData and Send indications); control messages go to the
//! crate's read loop (through the gate) as datagrams from the connection's
//! address. What is sent to that address is queued to the connection and
//! written in batches (over TLS, a record per frame, flushed once per batch).
//! This module knows nothing of the gate or the data plane.
//!
//! Bounds: at most `max_connections` at once; per connection at most
//! [`MAX_QUEUED_BYTES`] waiting to be written (beyond that frames are dropped, as
//! a congested UDP path would, so one slow client never stalls the relay's single
//! read loop); a connection must send its first frame within
//! [`FIRST_FRAME_TIMEOUT`] and then something every [`IDLE_TIMEOUT`].

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::tuple::Transport;

/// Bytes that may wait to be written to one connection.
pub(crate) const MAX_QUEUED_BYTES: usize = 256 * 1024;
/// Time a new connection has to send its first frame.
pub(crate) const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection silent this long is closed (clients refresh every few minutes).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(11 * 60);
/// Frames waiting for the crate's read loop, from all connections together.
const INBOUND_QUEUE: usize = 1024;
/// The crate reads control messages into 1500-byte buffers; a larger one could
/// only be cut. (Relayed data does not go through the crate.)
const MAX_CONTROL_FRAME: usize = 1500;
/// Frames written to a connection with one write, at most.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// Called when a connection ends; may return a datagram to hand to the crate as
/// if that client had sent it (the gate's Refresh(0) that frees its allocation).
pub(crate) type OnClose = Arc<dyn Fn(SocketAddr) -> Option<Vec<u8>> + Send + Sync>;

/// A send that relaying a frame could not finish at once (the socket had no
/// room): the connection's task awaits it before it reads on.
pub(crate) type Unfinished = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Offered every frame a connection reads, with the client's address: `None`
/// when it is not relayed data (it goes to the crate), else whether relaying it
/// left a send to finish.
pub(crate) type OnData = Arc<dyn Fn(SocketAddr, &[u8]) -> Option<Option<Unfinished>> + Send + Sync>;

struct Outbound {
    tx: mpsc::Sender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
}

/// Counters for the TCP side.
#[derive(Debug, Default)]
pub(crate) struct TcpStats {
    pub(crate) accepted: AtomicU64,
    pub(crate) refused_over_limit: AtomicU64,
    pub(crate) dropped_frames: AtomicU64,
}

/// The stream connections of one kind (TCP or TLS), seen as one packet socket.
pub struct TcpTransport {
    kind: Transport,
    local: SocketAddr,
    inbound: tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
    connections: Arc<Mutex<HashMap<SocketAddr, Outbound>>>,
    acceptor: Arc<Acceptor>,
    pub(crate) stats: Arc<TcpStats>,
}

impl TcpTransport {
    /// Starts a transport of `kind` seen by the crate at `local`; accepts the
    /// connections of each of `listeners` until `shutdown` is cancelled.
    pub(crate) fn start(
        kind: Transport,
        local: SocketAddr,
        listeners: Vec<TcpListener>,
        max_connections: usize,
        on_data: OnData,
        on_close: OnClose,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let connections = Arc::new(Mutex::new(HashMap::new()));
        let stats = Arc::new(TcpStats::default());
        let acceptor = Arc::new(Acceptor {
            connections: connections.clone(),
            stats: stats.clone(),
            inbound: inbound_tx,
            on_data,
            on_close,
            shutdown,
            limit: Arc::new(Semaphore::new(max_connections)),
        });
        for listener in listeners {
            tokio::spawn(acceptor.clone().run(listener));
        }
        Arc::new(Self {
            kind,
            local,
            inbound: tokio::sync::Mutex::new(inbound_rx),
            connections,
            acceptor,
            stats,
        })
    }

    /// Serves a connection accepted (and decrypted) elsewhere, from `peer`, on the
    /// caller's runtime. Refused (dropped) over the connection limit.
    pub fn adopt<S>(&self, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let Some(permit) = self.acceptor.admit() else {
            return;
        };
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            let (read, write) = tokio::io::split(stream);
            acceptor.serve(read, write, peer, true).await;
            drop(permit);
        });
    }

    /// TCP or TLS.
    pub(crate) fn kind(&self) -> Transport {
        self.kind
    }

    /// Connections open now.
    pub(crate) fn connection_count(&self) -> usize {
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub(crate) fn local(&self) -> SocketAddr {
        self.local
    }

    /// The next control frame any connection read, and that connection's address.
    pub(crate) async fn recv_frame(&self) -> io::Result<(Vec<u8>, SocketAddr)> {
        self.inbound
            .lock()
            .await
            .recv()
            .await
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// Queues `buf` for the connection at `target`, or drops it when that
    /// connection is gone or has [`MAX_QUEUED_BYTES`] waiting already (as a
    /// congested UDP path would). True when queued.
    pub(crate) fn queue(&self, buf: &[u8], target: SocketAddr) -> bool {
        let connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let Some(conn) = connections.get(&target) else {
            return false;
        };
        let len = buf.len();
        if conn.queued.fetch_add(len, Ordering::Relaxed) + len > MAX_QUEUED_BYTES
            || conn.tx.try_send(buf.to_vec()).is_err()
        {
            conn.queued.fetch_sub(len, Ordering::Relaxed);
            self.stats.dropped_frames.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

struct Acceptor {
    connections: Arc<Mutex<HashMap<SocketAddr, Outbound>>>,
    stats: Arc<TcpStats>,
    inbound: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    on_data: OnData,
    on_close: OnClose,
    shutdown: CancellationToken,
    limit: Arc<Semaphore>,
}

impl Acceptor {
    /// A place for one more connection, or `None` (counted) at the limit.
    fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let permit = self.limit.clone().try_acquire_owned().ok();
        match &permit {
            Some(_) => self.stats.accepted.fetch_add(1, Ordering::Relaxed),
            None => self
                .stats
                .refused_over_limit
                .fetch_add(1, Ordering::Relaxed),
        };
        permit
    }

    async fn run(self: Arc<Self>, listener: TcpListener) {
        let this = self;
        loop {
            let accepted = tokio::select! {
                () = this.shutdown.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %err, "TURN TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(permit) = this.admit() else {
                drop(stream);
                continue;
            };
            let this = this.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let (read, write) = stream.into_split();
                this.serve(read, write, peer, false).await;
                drop(permit);
            });
        }
    }

    /// Serves one connection; `record_per_frame` writes each frame on its own
    /// (over TLS: a record each, as coturn does; clients that read one message
    /// per record, such as coturn's own, lose the rest of a shared record).
    async fn serve<R, W>(&self, read: R, mut write: W, peer: SocketAddr, record_per_frame: bool)
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1024);
        let queued = Arc::new(AtomicUsize::new(0));
        {
            let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
            // Two live connections from one address (possible when they come in
            // on different listeners): the second would take the first's frames.
            if connections.contains_key(&peer) {
                tracing::debug!(%peer, "TURN: a second connection from the same address, refused");
                return;
            }
            connections.insert(
                peer,
                Outbound {
                    tx,
                    queued: queued.clone(),
                },
            );
        }

        let writer = tokio::spawn(async move {
            // Whatever queued up meanwhile goes out in one write.
            let mut batch = Vec::with_capacity(WRITE_BATCH_BYTES);
            let mut ends = Vec::new();
            while let Some(frame) = rx.recv().await {
                batch.extend_from_slice(&frame);
                ends.push(batch.len());
                while batch.len() < WRITE_BATCH_BYTES {
                    match rx.try_recv() {
                        Ok(frame) => {
                            batch.extend_from_slice(&frame);
                            ends.push(batch.len());
                        }
                        Err(_) => break,
                    }
                }
                let written = write_batch(&mut write, &batch, &ends, record_per_frame).await;
                queued.fetch_sub(batch.len(), Ordering::Relaxed);
                batch.clear();
                ends.clear();
                if written.is_err() {
                    break;
                }
            }
            let _ = write.shutdown().await;
        });

        let mut reader = BufReader::new(read);
        let mut timeout = FIRST_FRAME_TIMEOUT;
        let mut frame = Vec::new();
        loop {
            let read = tokio::select! {
                () = self.shutdown.cancelled() => break,
                read = tokio::time::timeout(timeout, read_frame(&mut reader, &mut frame)) => read,
            };
            match read {
                Ok(Ok(true)) => {
                    timeout = IDLE_TIMEOUT;
                    if let Some(relayed) = (self.on_data)(peer, &frame) {
                        if let Some(unfinished) = relayed {
                            unfinished.await;
                        }
                        continue;
                    }
                    if frame.len() > MAX_CONTROL_FRAME {
                        self.stats.dropped_frames.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if self.inbound.send((frame.clone(), peer)).await.is_err() {
                        break;
                    }
                }
                Ok(Ok(false)) => break,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "TURN TCP connection closed on a framing error");
                    break;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TURN TCP connection idle, closing");
                    break;
                }
            }
        }
        // Dropping the sender ends the writer, which closes the socket.
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&peer);
        let _ = writer.await;
        if !self.shutdown.is_cancelled() {
            if let Some(refresh) = (self.on_close)(peer) {
                let _ = self.inbound.send((refresh, peer)).await;
            }
        }
    }
}

/// Writes a batch of frames (ending at `ends`) in one write, or each on its own
/// with `per_frame`; then flushes (a TLS stream may hold what it accepted).
async fn write_batch<W: AsyncWrite + Unpin>(
    write: &mut W,
    batch: &[u8],
    ends: &[usize],
    per_frame: bool,
) -> io::Result<()> {
    if per_frame {
        let mut start = 0;
        for &end in ends {
            write.write_all(&batch[start..end]).await?;
            start = end;
        }
    } else {
        write.write_all(batch).await?;
    }
    write.flush().await
}

fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// Reads one STUN message or ChannelData frame into `frame`; `false` at a clean
/// end of stream.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    frame: &mut Vec<u8>,
) -> io::Result<bool> {
    let mut head = [0u8; 4];
    match reader.read_exact(&mut head).await {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(err) => return Err(err),
    }
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let total = match head[0] >> 6 {
        // STUN: 20-byte header, attributes are 4-byte aligned.
        0b00 if len % 4 == 0 => 20 + len,
        // ChannelData (channel numbers 0x4000-0x7FFF), padded to 4 on streams.
        0b01 => 4 + padded(len),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "neither STUN nor ChannelData",
            ))
        }
    };
    frame.clear();
    frame.resize(total, 0);
    frame[..4].copy_from_slice(&head);
    reader.read_exact(&mut frame[4..]).await?;
    Ok(true)
}
