//! Batched UDP I/O for the relay's hot paths, and what a relay thread does just
//! before it parks.
//!
//! - **recvmmsg(2)**: a listener or relay socket that is readable gives up to
//!   [`RECV_BATCH`] datagrams to one system call, read into this thread's slots
//!   (each with room to frame the datagram in place, and for the largest one).
//! - **sendmmsg(2)**: frames relayed to clients over UDP while the thread runs
//!   wait in its outbox (at most [`OUTBOX_FRAMES`] frames, [`OUTBOX_BYTES`]
//!   bytes) and go out with one system call per listening socket when the
//!   thread is about to park, or when the outbox is full. If the socket has no
//!   room, one task per thread finishes the rest with awaits and, meanwhile,
//!   frames take the per-packet path (which waits, so a reader stops reading:
//!   nothing grows without bound).
//! - **coalescing** ([`Coalesce`]): a thread that keeps being woken for a
//!   datagram or two sleeps a little before parking, so that the next wake-up
//!   finds many. Most of a relay's CPU per datagram is the kernel waking the
//!   sleeping thread; this trades a bounded delay for far fewer wake-ups.
//!
//! Elsewhere than Linux, the per-datagram calls stand in for both.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::counters::{count_relayed_many, Direction};
use crate::wire;

/// Datagrams a read loop (a listener's or a relay socket's) handles before it
/// lets other tasks run.
pub(crate) const YIELD_AFTER: usize = 64;

/// Largest datagram read: a UDP payload cannot be larger.
pub(crate) const MAX_DATAGRAM: usize = 65_536;
/// Where datagrams are read to in a receive slot (room for the largest Data
/// indication header in front), and where they end at most (leaving room to pad
/// the largest to four bytes).
pub(crate) const PAYLOAD_AT: usize = wire::DATA_INDICATION_HEADROOM;
pub(crate) const READ_END: usize = PAYLOAD_AT + MAX_DATAGRAM;
/// Datagrams read with one system call, at most.
pub(crate) const RECV_BATCH: usize = 32;
/// One slot: headroom to frame a Data indication in place, the largest datagram,
/// and room to pad it to four bytes.
const SLOT: usize = READ_END + 4;
/// Frames that wait in a thread's outbox, at most.
pub(crate) const OUTBOX_FRAMES: usize = 64;
/// Bytes that wait in a thread's outbox, at most (a larger frame is sent alone).
pub(crate) const OUTBOX_BYTES: usize = 64 * 1024;

/// Where datagrams are read: [`RECV_BATCH`] slots of [`SLOT`] bytes (virtual
/// memory mostly: a slot's pages are touched only as far as its datagrams reach).
pub(crate) struct RecvBatch {
    buf: Box<[u8]>,
    len: [usize; RECV_BATCH],
    from: [Option<SocketAddr>; RECV_BATCH],
}

thread_local! {
    static BATCH: RefCell<RecvBatch> = RefCell::new(RecvBatch::new());
    static OUTBOX: RefCell<Outbox> = RefCell::new(Outbox::default());
    /// Set on the relay's own threads, whose runtimes flush the outbox before
    /// parking ([`before_park`]); elsewhere frames are sent one by one.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// Datagrams and frames read on this thread, for [`Coalesce`].
    static HANDLED: Cell<u64> = const { Cell::new(0) };
    static COALESCE: RefCell<Option<Coalesce>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's receive slots.
pub(crate) fn with_batch<R>(f: impl FnOnce(&mut RecvBatch) -> R) -> R {
    BATCH.with(|cell| f(&mut cell.borrow_mut()))
}

/// Runs `f` with one slot of this thread's receive slots (for a frame read
/// elsewhere, e.g. from TCP).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    with_batch(|batch| f(&mut batch.buf[..SLOT]))
}

/// Counts datagrams or frames read on this thread.
pub(crate) fn note_handled(n: usize) {
    HANDLED.with(|handled| handled.set(handled.get() + n as u64));
}

impl RecvBatch {
    fn new() -> Self {
        Self {
            buf: vec![0u8; RECV_BATCH * SLOT].into_boxed_slice(),
            len: [0; RECV_BATCH],
            from: [None; RECV_BATCH],
        }
    }

    /// Datagram `i` of the last read: its slot (the datagram at
    /// [`PAYLOAD_AT`]), its length and its source (`None`: an address family
    /// this relay does not speak, to be skipped).
    pub(crate) fn datagram(&mut self, i: usize) -> (&mut [u8], usize, Option<SocketAddr>) {
        let slot = &mut self.buf[i * SLOT..(i + 1) * SLOT];
        (slot, self.len[i], self.from[i])
    }

    /// Reads what `socket` has, up to [`RECV_BATCH`] datagrams, without waiting:
    /// `WouldBlock` when it has none. A short read means the socket is drained;
    /// its readiness is cleared then, so the next `readable().await` waits for
    /// the next datagram instead of costing one more system call to find none.
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let mut got = 0;
        let read = socket.try_io(tokio::io::Interest::READABLE, || {
            got = self.recv_now(socket)?;
            if got < RECV_BATCH {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        });
        match read {
            Ok(()) => {}
            Err(_) if got > 0 => {}
            Err(err) => return Err(err),
        }
        note_handled(got);
        Ok(got)
    }

    #[cfg(target_os = "linux")]
    fn recv_now(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: all-zero bytes are a valid value of these plain C structs.
        let mut names: [libc::sockaddr_storage; RECV_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above; every pointer in them is set below before use.
        let mut iovs: [libc::iovec; RECV_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
        for (i, slot) in self.buf.chunks_exact_mut(SLOT).enumerate() {
            iovs[i] = libc::iovec {
                iov_base: slot[PAYLOAD_AT..READ_END].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            let hdr = &mut msgs[i].msg_hdr;
            hdr.msg_name = std::ptr::addr_of_mut!(names[i]).cast();
            hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = std::ptr::addr_of_mut!(iovs[i]);
            hdr.msg_iovlen = 1;
        }
        // SAFETY: `msgs` holds RECV_BATCH headers, each pointing at its own
        // sockaddr_storage (with its size as msg_namelen) and at one iovec that
        // covers MAX_DATAGRAM bytes inside its own slot of `self.buf`; all of it
        // lives, and is not otherwise borrowed, until the call returns. The fd is
        // the socket's, open for as long as `socket` is borrowed.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for i in 0..n {
            self.len[i] = (msgs[i].msg_len as usize).min(MAX_DATAGRAM);
            // SAFETY: the kernel wrote a socket address of msg_namelen bytes
            // (at most the storage's size) into names[i].
            let addr = unsafe { socket2::SockAddr::new(names[i], msgs[i].msg_hdr.msg_namelen) };
            self.from[i] = addr.as_socket();
        }
        Ok(n)
    }

    #[cfg(not(target_os = "linux"))]
    fn recv_now(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let mut n = 0;
        for slot in self.buf.chunks_exact_mut(SLOT) {
            match socket.try_recv_from(&mut slot[PAYLOAD_AT..READ_END]) {
                Ok((len, from)) => {
                    self.len[n] = len;
                    self.from[n] = Some(from);
                    n += 1;
                }
                Err(err) if n > 0 && err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) => return Err(err),
            }
        }
        Ok(n)
    }
}

/// Frames for clients on UDP listening sockets, waiting for [`flush`].
#[derive(Default)]
struct Outbox {
    bytes: Vec<u8>,
    frames: Vec<Queued>,
    /// A task is finishing what a socket had no room for: send one by one.
    stalled: bool,
}

struct Queued {
    socket: Arc<UdpSocket>,
    to: socket2::SockAddr,
    start: usize,
    len: usize,
}

/// Queues `frame` for `to` on `socket` (a listening socket), to go out with the
/// rest of the outbox; false when it must be sent now instead (not a relay
/// thread, the outbox is stalled or cannot take it).
pub(crate) fn queue_to_client(socket: &Arc<UdpSocket>, to: SocketAddr, frame: &[u8]) -> bool {
    if !ACTIVE.with(Cell::get) || frame.len() > OUTBOX_BYTES {
        return false;
    }
    OUTBOX.with(|cell| {
        let mut outbox = cell.borrow_mut();
        if outbox.stalled {
            return false;
        }
        if outbox.frames.len() == OUTBOX_FRAMES || outbox.bytes.len() + frame.len() > OUTBOX_BYTES {
            outbox.flush();
            if outbox.stalled {
                return false;
            }
        }
        let start = outbox.bytes.len();
        outbox.bytes.extend_from_slice(frame);
        outbox.frames.push(Queued {
            socket: socket.clone(),
            to: to.into(),
            start,
            len: frame.len(),
        });
        true
    })
}

/// Sends what waits in this thread's outbox.
pub(crate) fn flush() {
    OUTBOX.with(|cell| cell.borrow_mut().flush());
}

impl Outbox {
    fn flush(&mut self) {
        let mut done = 0;
        while done < self.frames.len() {
            // A run of frames for the same socket goes out in one call.
            let socket = self.frames[done].socket.clone();
            let run = self.frames[done..]
                .iter()
                .take_while(|q| Arc::ptr_eq(&q.socket, &socket))
                .count();
            match send_run(&socket, &self.bytes, &self.frames[done..done + run]) {
                Ok(sent) => {
                    let bytes = self.frames[done..done + sent].iter().map(|q| q.len).sum();
                    count_relayed_many(Direction::ToClient, sent, bytes);
                    done += sent;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.stall(done);
                    return;
                }
                // The first frame could not be sent (an unreachable client, say):
                // it is dropped, as the per-packet path drops it.
                Err(err) => {
                    tracing::debug!(error = %err, "TURN: could not relay to a client");
                    done += 1;
                }
            }
        }
        self.frames.clear();
        self.bytes.clear();
    }

    /// The socket had no room for the frames from `done` on: a task sends them
    /// with awaits; until it has, frames take the per-packet path.
    fn stall(&mut self, done: usize) {
        let rest: Vec<(Arc<UdpSocket>, SocketAddr, Vec<u8>)> = self.frames[done..]
            .iter()
            .filter_map(|q| {
                let to = q.to.as_socket()?;
                Some((
                    q.socket.clone(),
                    to,
                    self.bytes[q.start..q.start + q.len].to_vec(),
                ))
            })
            .collect();
        self.frames.clear();
        self.bytes.clear();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.stalled = true;
        runtime.spawn(async move {
            for (socket, to, frame) in rest {
                if socket.send_to(&frame, to).await.is_ok() {
                    count_relayed_many(Direction::ToClient, 1, frame.len());
                }
            }
            // This runtime has one thread: the outbox is this task's.
            OUTBOX.with(|cell| cell.borrow_mut().stalled = false);
        });
    }
}

/// Sends `frames` (all for `socket`) with as few calls as the kernel allows;
/// how many went out, or the error of the first.
#[cfg(target_os = "linux")]
fn send_run(socket: &UdpSocket, bytes: &[u8], frames: &[Queued]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut sent = 0;
    while sent < frames.len() {
        let chunk = &frames[sent..];
        let n = chunk.len().min(OUTBOX_FRAMES);
        // SAFETY: all-zero bytes are a valid value of these plain C structs;
        // the pointers in them are set below before use.
        let mut iovs: [libc::iovec; OUTBOX_FRAMES] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; OUTBOX_FRAMES] = unsafe { std::mem::zeroed() };
        for (i, q) in chunk[..n].iter().enumerate() {
            iovs[i] = libc::iovec {
                // The kernel only reads through this pointer.
                iov_base: bytes[q.start..q.start + q.len].as_ptr() as *mut libc::c_void,
                iov_len: q.len,
            };
            let hdr = &mut msgs[i].msg_hdr;
            hdr.msg_name = q.to.as_ptr() as *mut libc::c_void;
            hdr.msg_namelen = q.to.len();
            hdr.msg_iov = std::ptr::addr_of_mut!(iovs[i]);
            hdr.msg_iovlen = 1;
        }
        let result = socket.try_io(tokio::io::Interest::WRITABLE, || {
            // SAFETY: each of the `n` headers points at a socket address owned
            // by `frames` (with its length) and at one iovec over bytes of
            // `bytes`, all alive and unchanged until the call returns; sendmmsg
            // only reads them. The fd is the socket's, open while it is borrowed.
            let r = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    n as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r as usize)
            }
        });
        match result {
            Ok(0) => break,
            Ok(r) => sent += r,
            Err(err) if sent == 0 => return Err(err),
            Err(_) => break,
        }
    }
    Ok(sent)
}

#[cfg(not(target_os = "linux"))]
fn send_run(socket: &UdpSocket, bytes: &[u8], frames: &[Queued]) -> io::Result<usize> {
    let mut sent = 0;
    for q in frames {
        let to = q.to.as_socket().ok_or(io::ErrorKind::InvalidInput)?;
        match socket.try_send_to(&bytes[q.start..q.start + q.len], to) {
            Ok(_) => sent += 1,
            Err(err) if sent == 0 => return Err(err),
            Err(_) => break,
        }
    }
    Ok(sent)
}

/// When a relay thread, woken again and again for a datagram or two, sleeps
/// before it parks: for `pause`, if since it last parked it handled datagrams
/// at a rate that brings two or more in `pause`. A datagram then waits at most
/// `pause` (plus the kernel's timer slack) longer than it would have; below
/// that rate nothing changes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Coalesce {
    pause: Duration,
    min_rate: f64,
    last: Option<(Instant, u64)>,
}

impl Coalesce {
    /// `None` for a zero pause: never sleep.
    pub(crate) fn new(pause: Duration) -> Option<Self> {
        (!pause.is_zero()).then(|| Self {
            pause,
            min_rate: 2.0 / pause.as_secs_f64(),
            last: None,
        })
    }

    /// How long to sleep now, given `handled` so far at `now`.
    fn pause_at(&mut self, now: Instant, handled: u64) -> Option<Duration> {
        let (at, before) = self.last.replace((now, handled))?;
        let n = handled.saturating_sub(before);
        let elapsed = now.saturating_duration_since(at).as_secs_f64();
        (n > 0 && n as f64 >= self.min_rate * elapsed).then_some(self.pause)
    }
}

/// Makes this thread a relay thread: its outbox is used, and [`before_park`]
/// coalesces wake-ups as `coalesce` says.
pub(crate) fn enable_on_this_thread(coalesce: Option<Coalesce>) {
    ACTIVE.with(|active| active.set(true));
    COALESCE.with(|cell| *cell.borrow_mut() = coalesce);
}

/// Run by a relay thread's runtime each time it is about to park: flushes the
/// outbox, then perhaps sleeps a little (see [`Coalesce`]).
pub(crate) fn before_park() {
    flush();
    let pause = COALESCE.with(|cell| {
        let mut cell = cell.borrow_mut();
        let coalesce = cell.as_mut()?;
        coalesce.pause_at(Instant::now(), HANDLED.with(Cell::get))
    });
    if let Some(pause) = pause {
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_only_above_the_rate() {
        let base = Instant::now();
        let ms = |n: u64| base + Duration::from_millis(n);
        // Sleeps from 2 datagrams per pause on: 4,000/s.
        let mut c = Coalesce::new(Duration::from_micros(500)).unwrap();
        assert_eq!(c.pause_at(ms(0), 0), None);
        // 1 datagram in 10 ms: 100/s.
        assert_eq!(c.pause_at(ms(10), 1), None);
        // 10 in 1 ms: 10,000/s.
        assert_eq!(c.pause_at(ms(11), 11), Some(Duration::from_micros(500)));
        // 3 in 1 ms: 3,000/s.
        assert_eq!(c.pause_at(ms(12), 14), None);
        // None since.
        assert_eq!(c.pause_at(ms(13), 14), None);
        assert!(Coalesce::new(Duration::ZERO).is_none());
    }

    #[tokio::test]
    async fn batches_in_and_out_over_loopback() {
        let server = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = server.local_addr().unwrap();
        for i in 0..40u8 {
            client.send_to(&[i; 100], to).await.unwrap();
        }
        // Let loopback deliver them all.
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.readable().await.unwrap();
        let mut seen = Vec::new();
        with_batch(|batch| loop {
            match batch.recv(&server) {
                Ok(n) => {
                    for i in 0..n {
                        let (slot, len, from) = batch.datagram(i);
                        assert_eq!(len, 100);
                        assert_eq!(from, Some(client.local_addr().unwrap()));
                        seen.push(slot[PAYLOAD_AT]);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) => panic!("{err}"),
            }
        });
        assert_eq!(seen, (0..40).collect::<Vec<u8>>());

        enable_on_this_thread(None);
        let back = client.local_addr().unwrap();
        for i in 0..70u8 {
            assert!(queue_to_client(&server, back, &[i; 10]));
        }
        flush();
        let mut buf = [0u8; 64];
        for i in 0..70u8 {
            let (n, _) = client.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[i; 10]);
        }
    }
}
