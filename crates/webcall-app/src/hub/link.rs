//! One connection as the hub sees it: its bounded queue of outgoing frames
//! ([`Mailbox`] → [`Outbox`]), how it is told to close ([`CloseReason`]), and
//! what is kept for it while it is detached ([`ResumeBuffer`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{watch, Notify};
use webcall_domain::media::SfuReply;
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
    /// 4403: an admin banned the account.
    Banned,
}

/// What the hub sends down a connection: a room event, shared by every peer
/// it goes to.
pub type Outbound = Arc<SharedEvent>;

/// A connection's queue of outgoing frames, filled by the hub ([`Mailbox`]) and
/// emptied by the connection's writer ([`Outbox`]). It is bounded in frames and
/// in bytes ([`SignalingConfig::send_queue_bytes`]): a signal may be 64 KiB, so a
/// count alone would let a client that does not read hold `send_queue` × 64 KiB.
/// The hub can take back what the writer has not taken yet ([`Unsent`]): when
/// the peer resumes on a new connection, the old one's queue goes first.
struct Queue {
    state: Mutex<Queued>,
    ready: Notify,
}

#[derive(Default)]
struct Queued {
    frames: VecDeque<Outbound>,
    bytes: usize,
    /// The hub let go of this queue: the writer gets `None` once it is empty.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queued> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pop(&self) -> Result<Outbound, bool> {
        let mut queued = self.lock();
        match queued.frames.pop_front() {
            Some(frame) => {
                queued.bytes -= frame.weight();
                Ok(frame)
            }
            None => Err(queued.closed),
        }
    }

    fn take_all(&self) -> Vec<Outbound> {
        let mut queued = self.lock();
        queued.bytes = 0;
        queued.frames.drain(..).collect()
    }
}

/// The writer's end of a connection's queue.
pub struct Outbox {
    queue: Arc<Queue>,
}

impl Outbox {
    /// The next frame, waiting for one; `None` once the hub let go of the
    /// connection and nothing is left. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Outbound> {
        loop {
            match self.queue.pop() {
                Ok(frame) => return Some(frame),
                Err(true) => return None,
                Err(false) => self.queue.ready.notified().await,
            }
        }
    }

    /// The next frame if one is queued now.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        self.queue.pop().ok()
    }
}

/// The hub's end of a connection's queue.
pub(super) struct Mailbox {
    queue: Arc<Queue>,
    frames: usize,
    bytes: usize,
}

impl Mailbox {
    pub(super) fn new(frames: usize, bytes: usize) -> (Self, Outbox) {
        let queue = Arc::new(Queue {
            state: Mutex::default(),
            ready: Notify::new(),
        });
        let mailbox = Self {
            queue: queue.clone(),
            frames,
            bytes,
        };
        (mailbox, Outbox { queue })
    }

    /// Queues `frame` unless that would pass the frame or byte bound.
    pub(super) fn offer(&self, frame: Outbound) -> Result<(), Outbound> {
        let weight = frame.weight();
        {
            let mut queued = self.queue.lock();
            if queued.frames.len() >= self.frames || queued.bytes + weight > self.bytes {
                return Err(frame);
            }
            queued.bytes += weight;
            queued.frames.push_back(frame);
        }
        self.queue.ready.notify_one();
        Ok(())
    }

    /// Lets go of the connection, keeping what its writer has not taken yet.
    pub(super) fn into_unsent(self) -> Unsent {
        Unsent(self.queue.clone())
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.ready.notify_one();
    }
}

/// What a connection the hub let go of had queued and not yet written.
pub(super) struct Unsent(Arc<Queue>);

impl Unsent {
    /// Takes the frames, oldest first (its writer, still winding down, gets none).
    pub(super) fn take(&self) -> Vec<Outbound> {
        self.0.take_all()
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
                RoomEvent::Chat { message } => {
                    message.text.len()
                        + message.username.len()
                        + message
                            .attachment
                            .as_ref()
                            .map_or(0, |a| a.id.len() + a.name.len() + a.content_type.len() + 96)
                }
                RoomEvent::PeerJoined { peer } => peer.username.len(),
                RoomEvent::Knock { username, .. } => username.len(),
                RoomEvent::Sfu { reply } => match reply {
                    SfuReply::Answer { sdp, tracks } | SfuReply::Offer { sdp, tracks } => {
                        sdp.len() + tracks.len() * 64
                    }
                    SfuReply::Error { code, message } => code.len() + message.len(),
                },
                RoomEvent::RecordingStarted { recording } => recording.username.len() + 64,
                RoomEvent::KnockEnded { .. }
                | RoomEvent::MediaMode { .. }
                | RoomEvent::RecordingStopped { .. }
                | RoomEvent::UpdateRequired
                | RoomEvent::PeerLeft { .. }
                | RoomEvent::PeerState { .. }
                | RoomEvent::Reaction { .. }
                | RoomEvent::Moderated { .. }
                | RoomEvent::HostsOnly { .. }
                | RoomEvent::ChatDeleted { .. } => 0,
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
                    let buffer = self.detach();
                    buffer.push_back(frame, config);
                    true
                }
            },
            Link::Detached(buffer) => {
                buffer.push_back(frame, config);
                false
            }
        }
    }

    /// Lets go of the connection (dropping its close signal ends it), keeping
    /// what it had queued but not written for the resume.
    pub(super) fn detach(&mut self) -> &mut ResumeBuffer {
        if let Link::Attached { .. } = self {
            if let Link::Attached { tx, .. } =
                std::mem::replace(self, Link::Detached(ResumeBuffer::default()))
            {
                *self = Link::Detached(ResumeBuffer {
                    unsent: Some(tx.into_unsent()),
                    ..ResumeBuffer::default()
                });
            }
        }
        let Link::Detached(buffer) = self else {
            unreachable!("detached just above")
        };
        buffer
    }

    /// Every frame this link holds that its connection has not taken, oldest
    /// first: a detached link's resume buffer, or an attached connection's
    /// queue. The link is left detached and empty.
    pub(super) fn take_unsent(&mut self) -> Vec<Outbound> {
        self.detach().take_all()
    }
}

/// What a detached peer is sent, kept for its resume: what its connection had
/// queued and not written (`unsent`), then at most `resume_buffer` frames and
/// `resume_buffer_bytes` more. Past that the resume is a fresh join, so what was
/// kept is let go at once.
#[derive(Default)]
pub(super) struct ResumeBuffer {
    pub(super) unsent: Option<Unsent>,
    pub(super) frames: VecDeque<Outbound>,
    pub(super) bytes: usize,
    pub(super) overflowed: bool,
}

impl ResumeBuffer {
    pub(super) fn push_back(&mut self, frame: Outbound, config: &SignalingConfig) {
        if !self.overflowed {
            self.bytes += frame.weight();
            self.frames.push_back(frame);
            self.check(config);
        }
    }

    /// Puts frames its connection took but never wrote back in front, oldest
    /// first (they are older than what is still in its queue).
    pub(super) fn put_back(&mut self, frames: Vec<Outbound>, config: &SignalingConfig) {
        if !self.overflowed {
            let still_queued = self.unsent.take().map(|u| u.take()).unwrap_or_default();
            for frame in frames.into_iter().chain(still_queued).rev() {
                self.bytes += frame.weight();
                self.frames.push_front(frame);
            }
            self.check(config);
        }
    }

    /// Everything kept, oldest first.
    pub(super) fn take_all(&mut self) -> Vec<Outbound> {
        let mut frames = self.unsent.take().map(|u| u.take()).unwrap_or_default();
        frames.extend(self.frames.drain(..));
        self.bytes = 0;
        frames
    }

    pub(super) fn check(&mut self, config: &SignalingConfig) {
        if self.frames.len() > config.resume_buffer || self.bytes > config.resume_buffer_bytes {
            self.overflowed = true;
            self.unsent = None;
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
        assert_eq!(mailbox.queue.lock().bytes, 0);
    }

    #[test]
    fn an_overflowing_resume_buffer_lets_its_frames_go() {
        let config = SignalingConfig::default();
        let mut buffer = ResumeBuffer::default();
        for _ in 0..34 {
            buffer.push_back(signal(60 * 1024), &config);
        }
        assert!(!buffer.overflowed, "{} bytes", buffer.bytes);
        buffer.put_back(vec![signal(60 * 1024); 3], &config);
        assert!(buffer.overflowed);
        assert!(buffer.frames.is_empty() && buffer.bytes == 0);
        buffer.push_back(signal(10), &config);
        assert!(buffer.frames.is_empty());
    }

    #[tokio::test]
    async fn a_writer_waiting_for_frames_wakes_for_each_and_ends_when_let_go() {
        let (mailbox, mut outbox) = Mailbox::new(8, 1024 * 1024);
        let writer = tokio::spawn(async move {
            let mut got = 0;
            while outbox.recv().await.is_some() {
                got += 1;
            }
            got
        });
        for _ in 0..3 {
            tokio::task::yield_now().await;
            mailbox.offer(signal(10)).unwrap();
        }
        drop(mailbox);
        assert_eq!(writer.await.unwrap(), 3);
    }

    #[test]
    fn what_a_connection_had_not_taken_goes_to_the_resume_first() {
        let config = SignalingConfig::default();
        let (mailbox, mut outbox) = Mailbox::new(8, 1024 * 1024);
        let (close, _) = watch::channel(None);
        let mut link = Link::Attached { tx: mailbox, close };
        for n in 0..3 {
            link.push(signal(n), &config);
        }
        let taken = outbox.try_recv().unwrap();
        link.detach();
        link.push(signal(3), &config);
        // The writer took frame 0 and never wrote it: handed back, it goes first.
        if let Link::Detached(buffer) = &mut link {
            buffer.put_back(vec![taken], &config);
        }
        let sizes: Vec<usize> = link
            .take_unsent()
            .iter()
            .map(|f| match &f.event {
                RoomEvent::Signal { data, .. } => data.len(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(sizes, [0, 1, 2, 3]);
        assert!(
            outbox.try_recv().is_none(),
            "the old writer gets none of it"
        );
    }
}
