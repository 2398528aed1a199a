//! One connection as the hub sees it: its bounded queue of outgoing frames
//! ([`Mailbox`] → [`Outbox`]), how it is told to close ([`CloseReason`]), and
//! what is kept for it while it is detached ([`ResumeBuffer`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, watch};
use webcall_domain::signaling::RoomEvent;

use super::SignalingConfig;

/// Why the server closes a connection (the WS layer turns it into a close code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// 4401: the token was revoked (logout) or expired.
    TokenRevoked,
    /// 4003.
    Kicked,
    /// 4004.
    RoomDeleted,
    /// 4008: the client could not keep up; reconnect and resume.
    SlowConsumer,
    /// 1000: the same peer resumed on a newer connection.
    Replaced,
    /// 1001.
    Shutdown,
}

/// What the hub sends down a connection: a room event, shared by every peer
/// it goes to.
pub type Outbound = Arc<SharedEvent>;

/// A connection's queue of outgoing frames, as its writer sees it. It is bounded
/// in frames and in bytes ([`SignalingConfig::send_queue_bytes`]): a signal may be
/// 64 KiB, so a count alone would let a client that does not read hold
/// `send_queue` × 64 KiB.
pub struct Outbox {
    rx: mpsc::Receiver<Outbound>,
    queued: Arc<AtomicUsize>,
}

impl Outbox {
    pub async fn recv(&mut self) -> Option<Outbound> {
        let frame = self.rx.recv().await?;
        self.queued.fetch_sub(frame.weight(), Ordering::Relaxed);
        Some(frame)
    }

    /// The next frame if one is queued now.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        let frame = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(frame.weight(), Ordering::Relaxed);
        Some(frame)
    }
}

/// The hub's end of an [`Outbox`].
pub(super) struct Mailbox {
    pub(super) tx: mpsc::Sender<Outbound>,
    pub(super) queued: Arc<AtomicUsize>,
    pub(super) limit: usize,
}

impl Mailbox {
    pub(super) fn new(frames: usize, bytes: usize) -> (Self, Outbox) {
        let (tx, rx) = mpsc::channel(frames);
        let queued = Arc::new(AtomicUsize::new(0));
        let mailbox = Self {
            tx,
            queued: queued.clone(),
            limit: bytes,
        };
        (mailbox, Outbox { rx, queued })
    }

    /// Queues `frame` unless that would pass the frame or byte bound.
    pub(super) fn offer(&self, frame: Outbound) -> Result<(), Outbound> {
        let weight = frame.weight();
        if self.queued.fetch_add(weight, Ordering::Relaxed) + weight > self.limit {
            self.queued.fetch_sub(weight, Ordering::Relaxed);
            return Err(frame);
        }
        self.tx.try_send(frame).map_err(|err| {
            self.queued.fetch_sub(weight, Ordering::Relaxed);
            match err {
                mpsc::error::TrySendError::Full(frame)
                | mpsc::error::TrySendError::Closed(frame) => frame,
            }
        })
    }
}

/// A room event on its way to each peer it goes to, with its frame: the
/// connection layer renders the frame once, at its first recipient, and the
/// others send the same text (a `peer_joined` in a full room goes to 15 peers).
#[derive(Debug)]
pub struct SharedEvent {
    pub event: RoomEvent,
    frame: OnceLock<String>,
}

impl SharedEvent {
    pub fn new(event: RoomEvent) -> Arc<Self> {
        Arc::new(Self {
            event,
            frame: OnceLock::new(),
        })
    }

    /// The event's frame: `render`'s result from the first call, reused after.
    pub fn frame(&self, render: impl FnOnce(&RoomEvent) -> String) -> &str {
        self.frame.get_or_init(|| render(&self.event))
    }

    /// About what the frame costs while it waits in a queue: its text, its JSON
    /// frame around it, and the queue's own bookkeeping.
    pub fn weight(&self) -> usize {
        const FRAME: usize = 160;
        FRAME
            + match &self.event {
                RoomEvent::Signal { data, .. } => data.len(),
                RoomEvent::Chat { message } => message.text.len() + message.username.len(),
                RoomEvent::PeerJoined { peer } => peer.username.len(),
                RoomEvent::PeerLeft { .. } | RoomEvent::PeerState { .. } => 0,
            }
    }
}

pub(super) enum Link {
    Attached {
        tx: Mailbox,
        close: watch::Sender<Option<CloseReason>>,
    },
    Detached(ResumeBuffer),
}

impl Link {
    /// Queues `frame`. A full queue (in frames or bytes) detaches the link (its
    /// connection is told to reconnect and resume) and keeps the frame for it;
    /// returns true then, so the caller starts the peer's grace period.
    pub(super) fn push(&mut self, frame: Outbound, config: &SignalingConfig) -> bool {
        match self {
            Link::Attached { tx, close } => match tx.offer(frame) {
                Ok(()) => false,
                Err(frame) => {
                    let _ = close.send(Some(CloseReason::SlowConsumer));
                    *self = Link::Detached(ResumeBuffer::holding(frame));
                    true
                }
            },
            Link::Detached(buffer) => {
                buffer.push_back(frame, config);
                false
            }
        }
    }
}

/// What a detached peer is sent, kept for its resume: at most `resume_buffer`
/// frames and `resume_buffer_bytes`. Past that the resume is a fresh join, so
/// what was kept is let go at once.
#[derive(Default)]
pub(super) struct ResumeBuffer {
    pub(super) frames: VecDeque<Outbound>,
    pub(super) bytes: usize,
    pub(super) overflowed: bool,
}

impl ResumeBuffer {
    pub(super) fn holding(frame: Outbound) -> Self {
        Self {
            bytes: frame.weight(),
            frames: VecDeque::from([frame]),
            overflowed: false,
        }
    }

    pub(super) fn push_back(&mut self, frame: Outbound, config: &SignalingConfig) {
        if !self.overflowed {
            self.bytes += frame.weight();
            self.frames.push_back(frame);
            self.check(config);
        }
    }

    /// Puts frames never written back in front, oldest first.
    pub(super) fn put_back(&mut self, frames: Vec<Outbound>, config: &SignalingConfig) {
        if !self.overflowed {
            for frame in frames.into_iter().rev() {
                self.bytes += frame.weight();
                self.frames.push_front(frame);
            }
            self.check(config);
        }
    }

    pub(super) fn check(&mut self, config: &SignalingConfig) {
        if self.frames.len() > config.resume_buffer || self.bytes > config.resume_buffer_bytes {
            self.overflowed = true;
            self.frames = VecDeque::new();
            self.bytes = 0;
        }
    }
}

pub(super) fn close(link: &Link, reason: CloseReason) {
    if let Link::Attached { close, .. } = link {
        let _ = close.send(Some(reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webcall_domain::signaling::PeerId;

    fn signal(bytes: usize) -> Outbound {
        SharedEvent::new(RoomEvent::Signal {
            from: PeerId::from_client("p"),
            data: "x".repeat(bytes),
        })
    }

    #[tokio::test]
    async fn a_queue_is_bounded_in_bytes_and_gives_them_back_as_it_is_read() {
        let (mailbox, mut outbox) = Mailbox::new(512, 256 * 1024);
        let accepted = (0..512)
            .take_while(|_| mailbox.offer(signal(60 * 1024)).is_ok())
            .count();
        assert_eq!(accepted, 4, "4 × 60 KiB fit in 256 KiB, not 512 frames");
        assert!(outbox.recv().await.is_some());
        assert!(mailbox.offer(signal(60 * 1024)).is_ok());
        while outbox.try_recv().is_some() {}
        assert_eq!(mailbox.queued.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_overflowing_resume_buffer_lets_its_frames_go() {
        let config = SignalingConfig::default();
        let mut buffer = ResumeBuffer::holding(signal(60 * 1024));
        for _ in 0..33 {
            buffer.push_back(signal(60 * 1024), &config);
        }
        assert!(!buffer.overflowed, "{} bytes", buffer.bytes);
        buffer.put_back(vec![signal(60 * 1024); 3], &config);
        assert!(buffer.overflowed);
        assert!(buffer.frames.is_empty() && buffer.bytes == 0);
        buffer.push_back(signal(10), &config);
        assert!(buffer.frames.is_empty());
    }
}
