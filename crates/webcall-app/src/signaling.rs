//! The signaling hub: who is connected to which room on this instance, and the
//! room use cases (join, resume, signal, chat, state, kick, leave, delete).
//!
//! Local peers are served directly: an event for the room goes into each local
//! connection's bounded queue with `try_send`, so a slow consumer never stalls the
//! room (it is detached and told to reconnect, keeping what it missed for resume).
//! The [`RoomBus`] port holds presence and carries events to other instances.
//!
//! A connection that drops is *detached*, not gone: for `resume_grace` it keeps its
//! peer id and buffers what is sent to it; a client that comes back with its
//! resume token picks up where it was, and the others see no churn. Only when the
//! grace ends does the peer leave (`timeout`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, watch, OnceCell};
use uuid::Uuid;
use webcall_domain::model::{IceServers, UserId};
use webcall_domain::ports::{
    BusListener, ChatRepository, Clock, LocalPresence, RoomBus, RoomRepository,
};
use webcall_domain::signaling::{
    ChatMessage, ChatText, Envelope, LeaveReason, NewChatMessage, PeerId, PeerInfo, PeerState,
    Room, RoomEvent, RoomName,
};
use webcall_domain::DomainError;

use crate::ice::IceServersService;
use crate::rate::RateLimit;
use crate::recent_chat::RecentChat;
use crate::AppError;

/// Limits and timings of signaling.
#[derive(Debug, Clone)]
pub struct SignalingConfig {
    /// `ROOM_MAX_PEERS`: a mesh call grows as n².
    pub max_peers: usize,
    /// `WS_RESUME_GRACE_SECS`.
    pub resume_grace: Duration,
    /// Frames kept for a detached peer (at least `send_queue`, since a lost
    /// connection's unsent queue comes back here); beyond it, resuming is a fresh join.
    pub resume_buffer: usize,
    /// The same in bytes (at least `send_queue_bytes`): signals may be 64 KiB each.
    pub resume_buffer_bytes: usize,
    /// Frames queued per connection before it counts as a slow consumer.
    pub send_queue: usize,
    /// The same in bytes: what a connection that does not read may cost.
    pub send_queue_bytes: usize,
    /// Chat messages sent with `welcome`.
    pub history: u32,
    /// `ROOMS_PER_USER`: rooms one account may own (made by POST or by the
    /// first join of a new name).
    pub max_rooms_per_user: usize,
    /// `ROOM_CREATIONS_PER_HOUR`: rooms one account may create in an hour
    /// (creating and deleting in a loop is work for the database too).
    pub room_creations_per_hour: usize,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            max_peers: 16,
            resume_grace: Duration::from_secs(20),
            resume_buffer: 1024,
            resume_buffer_bytes: 2 * 1024 * 1024,
            send_queue: 512,
            send_queue_bytes: 1024 * 1024,
            history: 50,
            max_rooms_per_user: 50,
            room_creations_per_hour: 60,
        }
    }
}

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

/// What the hub sends down a connection.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// Shared between every peer it goes to.
    Event(Arc<SharedEvent>),
    Error {
        code: &'static str,
        message: String,
    },
    Pong,
}

impl Outbound {
    /// About what the frame costs while it waits in a queue: its text, its JSON
    /// frame around it, and the queue's own bookkeeping.
    pub fn weight(&self) -> usize {
        const FRAME: usize = 160;
        FRAME
            + match self {
                Outbound::Pong => 0,
                Outbound::Error { message, .. } => message.len(),
                Outbound::Event(event) => match &event.event {
                    RoomEvent::Signal { data, .. } => data.len(),
                    RoomEvent::Chat { message } => message.text.len() + message.username.len(),
                    RoomEvent::PeerJoined { peer } => peer.username.len(),
                    _ => 0,
                },
            }
    }
}

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
struct Mailbox {
    tx: mpsc::Sender<Outbound>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

impl Mailbox {
    fn new(frames: usize, bytes: usize) -> (Self, Outbox) {
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
    fn offer(&self, frame: Outbound) -> Result<(), Outbound> {
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
    frame: OnceLock<Option<String>>,
}

impl SharedEvent {
    pub fn new(event: RoomEvent) -> Arc<Self> {
        Arc::new(Self {
            event,
            frame: OnceLock::new(),
        })
    }

    /// The event's frame: `render`'s result from the first call, reused after.
    pub fn frame(&self, render: impl FnOnce(&RoomEvent) -> Option<String>) -> Option<&str> {
        self.frame.get_or_init(|| render(&self.event)).as_deref()
    }
}

/// A connection's first frame.
#[derive(Debug, Clone)]
pub struct Welcome {
    pub peer_id: PeerId,
    pub room: RoomName,
    pub owner: bool,
    pub user_id: UserId,
    pub username: String,
    pub peers: Vec<PeerInfo>,
    pub chat: Vec<ChatMessage>,
    pub ice_servers: IceServers,
    pub resume_token: String,
    pub resumed: bool,
}

/// A joined connection: its welcome, its queue, and how the hub tells it to close.
pub struct Session {
    pub welcome: Welcome,
    pub peer_id: PeerId,
    /// Identifies this connection of the peer (a resumed peer gets a new one).
    pub generation: u64,
    pub outbound: Outbox,
    pub close: watch::Receiver<Option<CloseReason>>,
}

/// Who is joining.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub room: RoomName,
    pub user_id: UserId,
    pub username: String,
    /// The token the connection was opened with (logout closes it).
    pub jti: Uuid,
    pub resume: Option<String>,
}

/// A room with who is in it now.
#[derive(Debug, Clone)]
pub struct RoomSummary {
    pub room: Room,
    pub peers: Vec<PeerInfo>,
}

enum Link {
    Attached {
        tx: Mailbox,
        close: watch::Sender<Option<CloseReason>>,
    },
    Detached(ResumeBuffer),
}

/// What a detached peer is sent, kept for its resume: at most `resume_buffer`
/// frames and `resume_buffer_bytes`. Past that the resume is a fresh join, so
/// what was kept is let go at once.
#[derive(Default)]
struct ResumeBuffer {
    frames: VecDeque<Outbound>,
    bytes: usize,
    overflowed: bool,
}

impl ResumeBuffer {
    fn holding(frame: Outbound) -> Self {
        Self {
            bytes: frame.weight(),
            frames: VecDeque::from([frame]),
            overflowed: false,
        }
    }

    fn push_back(&mut self, frame: Outbound, config: &SignalingConfig) {
        if !self.overflowed {
            self.bytes += frame.weight();
            self.frames.push_back(frame);
            self.check(config);
        }
    }

    /// Puts frames never written back in front, oldest first.
    fn put_back(&mut self, frames: Vec<Outbound>, config: &SignalingConfig) {
        if !self.overflowed {
            for frame in frames.into_iter().rev() {
                self.bytes += frame.weight();
                self.frames.push_front(frame);
            }
            self.check(config);
        }
    }

    fn check(&mut self, config: &SignalingConfig) {
        if self.frames.len() > config.resume_buffer || self.bytes > config.resume_buffer_bytes {
            self.overflowed = true;
            self.frames = VecDeque::new();
            self.bytes = 0;
        }
    }
}

struct LocalPeer {
    info: PeerInfo,
    room: RoomName,
    jti: Uuid,
    resume_token: String,
    generation: u64,
    link: Link,
}

/// What this instance knows of a room while it has peers here.
struct LocalRoom {
    peers: Vec<PeerId>,
    /// The room as stored, once a join here has looked it up: it cannot change
    /// while it has peers (deleting it removes them), so later joins skip the lookup.
    stored: Option<Room>,
    chat: RecentChat,
    /// The read of the stored history, shared by the joins that arrive while it
    /// runs: a burst of joins into a room reads it once.
    history: Arc<OnceCell<Vec<ChatMessage>>>,
}

/// A lookup of a room's stored row in flight, shared by the joins that arrive
/// while it runs: a burst of joins into a new room asks the database once.
type RoomLookup = Arc<OnceCell<Room>>;

#[derive(Default)]
struct Local {
    peers: HashMap<PeerId, LocalPeer>,
    rooms: HashMap<RoomName, LocalRoom>,
    resume: HashMap<String, PeerId>,
    /// Rooms being looked up for a join (until one of their joiners is in).
    lookups: HashMap<RoomName, RoomLookup>,
    next_generation: u64,
    /// Room deletions seen so far: a room looked up before one of them may be
    /// gone, so it is not remembered.
    deletions: u64,
}

impl Local {
    fn insert(&mut self, peer: LocalPeer, history: usize) {
        self.rooms
            .entry(peer.room.clone())
            .or_insert_with(|| LocalRoom {
                peers: Vec::new(),
                stored: None,
                chat: RecentChat::new(history),
                history: Arc::default(),
            })
            .peers
            .push(peer.info.peer_id.clone());
        self.resume
            .insert(peer.resume_token.clone(), peer.info.peer_id.clone());
        self.peers.insert(peer.info.peer_id.clone(), peer);
    }

    fn remove(&mut self, peer_id: &PeerId) -> Option<LocalPeer> {
        let peer = self.peers.remove(peer_id)?;
        self.resume.remove(&peer.resume_token);
        if let Some(room) = self.rooms.get_mut(&peer.room) {
            room.peers.retain(|id| id != peer_id);
            if room.peers.is_empty() {
                self.rooms.remove(&peer.room);
            }
        }
        Some(peer)
    }

    /// The room of `peer_id`, if that peer is (still) in `room` here.
    fn room_of_peer(&mut self, room: &RoomName, peer_id: &PeerId) -> Option<&mut LocalRoom> {
        let peer = self.peers.get(peer_id)?;
        if &peer.room != room {
            return None;
        }
        self.rooms.get_mut(room)
    }

    /// Forgets `lookup` (done, or failed so the next join tries again) unless a
    /// newer one has taken its place.
    fn end_lookup(&mut self, room: &RoomName, lookup: &RoomLookup) {
        if self
            .lookups
            .get(room)
            .is_some_and(|current| Arc::ptr_eq(current, lookup))
        {
            self.lookups.remove(room);
        }
    }

    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }
}

/// The ports and settings the hub works with.
pub struct HubDeps {
    pub rooms: Arc<dyn RoomRepository>,
    pub chat: Arc<dyn ChatRepository>,
    pub bus: Arc<dyn RoomBus>,
    pub ice: Arc<IceServersService>,
    pub clock: Arc<dyn Clock>,
}

/// Events kept while the bus cannot publish, to publish once it can.
const UNPUBLISHED_KEPT: usize = 1024;

/// See the module docs.
pub struct Hub {
    deps: HubDeps,
    config: SignalingConfig,
    local: Mutex<Local>,
    /// Room creations per user in the last hour.
    creations: RateLimit<UserId>,
    /// Events the bus could not publish (it is down), oldest first: departures,
    /// revocations, deletions and chat must still reach the other instances when
    /// it is back. Signals are not kept: by then they are stale.
    unpublished: Mutex<VecDeque<Envelope>>,
    me: Weak<Hub>,
}

impl Hub {
    pub fn new(deps: HubDeps, config: SignalingConfig) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            deps,
            creations: RateLimit::new(config.room_creations_per_hour, Duration::from_secs(3600)),
            config,
            local: Mutex::new(Local::default()),
            unpublished: Mutex::default(),
            me: me.clone(),
        })
    }

    pub fn config(&self) -> &SignalingConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Peers connected (or detached within grace) on this instance.
    pub fn local_peer_count(&self) -> usize {
        self.lock().peers.len()
    }

    /// Rooms with peers on this instance.
    pub fn local_room_count(&self) -> usize {
        self.lock().rooms.len()
    }

    /// Joins a room (creating it, owned by the joiner, if it does not exist), or
    /// resumes a detached peer when `resume` names one of this user in this room.
    #[tracing::instrument(skip_all, fields(room = %request.room))]
    pub async fn join(&self, request: JoinRequest) -> Result<Session, AppError> {
        if let Some(session) = self.try_resume(&request).await? {
            return Ok(session);
        }
        let (known, deletions) = {
            let mut local = self.lock();
            let known = match local
                .rooms
                .get(&request.room)
                .and_then(|room| room.stored.clone())
            {
                Some(room) => Ok(room),
                None => Err(local
                    .lookups
                    .entry(request.room.clone())
                    .or_default()
                    .clone()),
            };
            (known, local.deletions)
        };
        let (room, lookup) = match known {
            Ok(room) => (room, None),
            Err(lookup) => {
                let found = lookup
                    .get_or_try_init(|| self.find_or_create_room(&request.room, request.user_id))
                    .await
                    .cloned();
                match found {
                    Ok(room) => (room, Some(lookup)),
                    Err(err) => {
                        self.lock().end_lookup(&request.room, &lookup);
                        return Err(err);
                    }
                }
            }
        };
        let info = PeerInfo {
            peer_id: PeerId::new_random(),
            user_id: request.user_id,
            username: request.username.clone(),
            state: PeerState::default(),
        };
        // Receive the room's events from before presence says we are here, so that
        // no one who joins at the same moment is missed (at worst a peer is both in
        // `welcome.peers` and announced by `peer_joined`; clients treat that as one).
        let (tx, rx) = Mailbox::new(self.config.send_queue, self.config.send_queue_bytes);
        let (close_tx, close_rx) = watch::channel(None);
        let resume_token = Uuid::new_v4().simple().to_string();
        let generation = {
            let mut local = self.lock();
            let generation = local.generation();
            local.insert(
                LocalPeer {
                    info: info.clone(),
                    room: request.room.clone(),
                    jti: request.jti,
                    resume_token: resume_token.clone(),
                    generation,
                    link: Link::Attached {
                        tx,
                        close: close_tx,
                    },
                },
                self.config.history as usize,
            );
            if local.deletions == deletions {
                if let Some(local_room) = local.rooms.get_mut(&request.room) {
                    local_room.stored.get_or_insert_with(|| room.clone());
                }
            }
            if let Some(lookup) = &lookup {
                local.end_lookup(&request.room, lookup);
            }
            generation
        };
        let joined = self
            .deps
            .bus
            .join(&request.room, &info, self.config.max_peers)
            .await;
        let peers = match joined {
            Ok(Some(peers)) => peers,
            Ok(None) => {
                self.lock().remove(&info.peer_id);
                return Err(AppError::RoomFull);
            }
            Err(err) => {
                self.lock().remove(&info.peer_id);
                return Err(err.into());
            }
        };
        let chat = match self.recent_chat(&request.room, &info.peer_id).await {
            Ok(chat) => chat,
            Err(err) => {
                self.remove_and_announce(&info.peer_id, LeaveReason::Left)
                    .await;
                return Err(err);
            }
        };
        if let Err(err) = self
            .deps
            .bus
            .remember_resume(&resume_token, &request.room, &info.peer_id)
            .await
        {
            tracing::warn!(error = %err, "could not share the resume token: resuming works on this instance only");
        }
        tracing::info!(peer_id = %info.peer_id, user_id = %info.user_id, "peer joined");
        self.dispatch(Envelope {
            room: request.room.clone(),
            to: None,
            except: Some(info.peer_id.clone()),
            event: RoomEvent::PeerJoined { peer: info.clone() },
        })
        .await;
        Ok(Session {
            welcome: Welcome {
                peer_id: info.peer_id.clone(),
                room: request.room,
                owner: room.owner == request.user_id,
                user_id: request.user_id,
                username: request.username,
                peers,
                chat,
                ice_servers: self.deps.ice.for_user(request.user_id),
                resume_token,
                resumed: false,
            },
            peer_id: info.peer_id,
            generation,
            outbound: rx,
            close: close_rx,
        })
    }

    /// The room's latest chat for the welcome of `peer_id`, who is in the room
    /// already, so a message sent meanwhile is in both the history and its queue
    /// (clients dedupe by id), never in neither. Served from memory once a join
    /// here has read the stored history (see [`RecentChat`]).
    async fn recent_chat(
        &self,
        room: &RoomName,
        peer_id: &PeerId,
    ) -> Result<Vec<ChatMessage>, AppError> {
        let read = {
            let mut local = self.lock();
            match local.room_of_peer(room, peer_id) {
                Some(local_room) => match local_room.chat.latest() {
                    Some(chat) => return Ok(chat),
                    None => local_room.history.clone(),
                },
                // Gone already (kicked, say): a read of its own.
                None => Arc::default(),
            }
        };
        let stored = read
            .get_or_try_init(|| async {
                let stored = self
                    .deps
                    .chat
                    .chat_before(room, None, self.config.history)
                    .await?;
                // Read while the room had a peer here: everything stored before is
                // in it, everything delivered since was recorded in the same entry.
                if let Some(local_room) = self.lock().rooms.get_mut(room) {
                    if Arc::ptr_eq(&local_room.history, &read) {
                        local_room.chat.load(&stored);
                    }
                }
                Ok::<_, AppError>(stored)
            })
            .await?;
        let mut local = self.lock();
        Ok(local
            .room_of_peer(room, peer_id)
            .and_then(|local_room| local_room.chat.latest())
            .unwrap_or_else(|| stored.clone()))
    }

    async fn find_or_create_room(&self, name: &RoomName, user: UserId) -> Result<Room, AppError> {
        if let Some(room) = self.deps.rooms.find_room(name).await? {
            return Ok(room);
        }
        match self.store_new_room(name, user).await {
            Ok(room) => Ok(room),
            // Two first joiners at once: the other one created it.
            Err(AppError::Domain(DomainError::RoomExists)) => self
                .deps
                .rooms
                .find_room(name)
                .await?
                .ok_or(AppError::RoomNotFound),
            Err(err) => Err(err),
        }
    }

    async fn try_resume(&self, request: &JoinRequest) -> Result<Option<Session>, AppError> {
        let Some(token) = request.resume.as_deref() else {
            return Ok(None);
        };
        let (peer_id, generation, outbound, close) = match self.reattach(token, request) {
            Reattach::Unknown => return self.resume_from_elsewhere(token, request).await,
            Reattach::Overflowed(peer_id) => {
                // It missed more than its buffer holds: it leaves, and joins afresh.
                self.remove_and_announce(&peer_id, LeaveReason::Timeout)
                    .await;
                return Ok(None);
            }
            Reattach::Done {
                peer_id,
                generation,
                outbound,
                close,
            } => (peer_id, generation, outbound, close),
        };
        tracing::info!(%peer_id, "peer resumed");
        let resumed = Resumed {
            peer_id,
            generation,
            outbound,
            close,
        };
        self.resumed_session(request, token, resumed)
            .await
            .map(Some)
    }

    /// The session of a resumed peer: a welcome with `resumed: true` and the
    /// room as it is now.
    async fn resumed_session(
        &self,
        request: &JoinRequest,
        token: &str,
        resumed: Resumed,
    ) -> Result<Session, AppError> {
        let room = self
            .deps
            .rooms
            .find_room(&request.room)
            .await?
            .ok_or(AppError::RoomNotFound)?;
        let peers = self.deps.bus.peers(&request.room).await?;
        let chat = self
            .deps
            .chat
            .chat_before(&request.room, None, self.config.history)
            .await?;
        Ok(Session {
            welcome: Welcome {
                peer_id: resumed.peer_id.clone(),
                room: request.room.clone(),
                owner: room.owner == request.user_id,
                user_id: request.user_id,
                username: request.username.clone(),
                peers: peers
                    .into_iter()
                    .filter(|p| p.peer_id != resumed.peer_id)
                    .collect(),
                chat,
                ice_servers: self.deps.ice.for_user(request.user_id),
                resume_token: token.to_owned(),
                resumed: true,
            },
            peer_id: resumed.peer_id,
            generation: resumed.generation,
            outbound: resumed.outbound,
            close: resumed.close,
        })
    }

    /// Re-attaches a peer of this user in this room, whether its old connection is
    /// already known dead (detached) or not yet (the client usually notices a
    /// network switch first): that old connection is then closed. What was buffered
    /// while detached goes into the new queue, behind the welcome.
    fn reattach(&self, token: &str, request: &JoinRequest) -> Reattach {
        let mut local = self.lock();
        let Some(peer_id) = local.resume.get(token).cloned() else {
            return Reattach::Unknown;
        };
        let generation = local.generation();
        let Some(peer) = local.peers.get_mut(&peer_id) else {
            return Reattach::Unknown;
        };
        if peer.room != request.room || peer.info.user_id != request.user_id {
            return Reattach::Unknown;
        }
        if matches!(&peer.link, Link::Detached(buffer) if buffer.overflowed) {
            return Reattach::Overflowed(peer_id);
        }
        // Room for what was buffered (which may be more than a queue's worth).
        let (tx, outbound) = Mailbox::new(
            self.config.send_queue.max(self.config.resume_buffer),
            self.config.send_queue_bytes + self.config.resume_buffer_bytes,
        );
        let (close_tx, close) = watch::channel(None);
        let old = std::mem::replace(
            &mut peer.link,
            Link::Attached {
                tx,
                close: close_tx,
            },
        );
        match old {
            Link::Detached(buffer) => {
                if let Link::Attached { tx, .. } = &peer.link {
                    for frame in buffer.frames {
                        let _ = tx.offer(frame);
                    }
                }
            }
            Link::Attached { close, .. } => {
                let _ = close.send(Some(CloseReason::Replaced));
            }
        }
        peer.generation = generation;
        peer.jti = request.jti;
        Reattach::Done {
            peer_id,
            generation,
            outbound,
            close,
        }
    }

    /// The connection of `peer_id` (this `generation` of it) ended without a
    /// `leave`: keep the peer for the resume grace, buffering what it is sent.
    pub fn detach(&self, peer_id: &PeerId, generation: u64) {
        let detached = {
            let mut local = self.lock();
            match local.peers.get_mut(peer_id) {
                Some(peer)
                    if peer.generation == generation
                        && matches!(peer.link, Link::Attached { .. }) =>
                {
                    peer.link = Link::Detached(ResumeBuffer::default());
                    true
                }
                _ => false,
            }
        };
        if detached {
            self.start_grace(peer_id.clone(), generation);
        }
    }

    /// Frames that were queued for connection `generation` but never written
    /// (it was lost, or too slow): put them back, oldest first, ahead of what was
    /// buffered since, so a resume replays them.
    pub fn requeue(&self, peer_id: &PeerId, generation: u64, frames: Vec<Outbound>) {
        if frames.is_empty() {
            return;
        }
        let mut local = self.lock();
        let Some(peer) = local.peers.get_mut(peer_id) else {
            return;
        };
        if peer.generation != generation {
            return;
        }
        if let Link::Detached(buffer) = &mut peer.link {
            buffer.put_back(frames, &self.config);
        }
    }

    fn start_grace(&self, peer_id: PeerId, generation: u64) {
        let Some(hub) = self.me.upgrade() else { return };
        let grace = self.config.resume_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let expired = {
                let local = hub.lock();
                local.peers.get(&peer_id).is_some_and(|p| {
                    p.generation == generation && matches!(p.link, Link::Detached(_))
                })
            };
            if expired {
                hub.remove_and_announce(&peer_id, LeaveReason::Timeout)
                    .await;
            }
        });
    }

    /// The peer left on purpose (`leave` frame or a normal close) on its
    /// connection `generation` (a close on a connection it has since resumed away
    /// from is not a departure).
    pub async fn leave(&self, peer_id: &PeerId, generation: u64) {
        let current = self
            .lock()
            .peers
            .get(peer_id)
            .is_some_and(|p| p.generation == generation);
        if current {
            self.remove_and_announce(peer_id, LeaveReason::Left).await;
        }
    }

    async fn remove_and_announce(&self, peer_id: &PeerId, reason: LeaveReason) {
        let Some(peer) = self.lock().remove(peer_id) else {
            return;
        };
        if let Link::Attached { close, .. } = &peer.link {
            let _ = close.send(Some(CloseReason::Replaced));
        }
        self.forget(&peer).await;
        self.announce_departure(&peer.room, peer_id, reason).await;
    }

    /// The peer is gone for good: its resume token no longer works anywhere.
    async fn forget(&self, peer: &LocalPeer) {
        if let Err(err) = self.deps.bus.forget_resume(&peer.resume_token).await {
            tracing::warn!(peer_id = %peer.info.peer_id, error = %err, "could not forget a resume token");
        }
    }

    /// A resume token this instance does not know: with a shared bus, the peer may
    /// have been served by another instance (or one that died). Take it over.
    async fn resume_from_elsewhere(
        &self,
        token: &str,
        request: &JoinRequest,
    ) -> Result<Option<Session>, AppError> {
        let Some(info) = self.deps.bus.claim_resume(token, &request.room).await? else {
            return Ok(None);
        };
        if info.user_id != request.user_id {
            return Ok(None);
        }
        let (tx, outbound) = Mailbox::new(self.config.send_queue, self.config.send_queue_bytes);
        let (close_tx, close) = watch::channel(None);
        let generation = {
            let mut local = self.lock();
            let generation = local.generation();
            local.insert(
                LocalPeer {
                    info: info.clone(),
                    room: request.room.clone(),
                    jti: request.jti,
                    resume_token: token.to_owned(),
                    generation,
                    link: Link::Attached {
                        tx,
                        close: close_tx,
                    },
                },
                self.config.history as usize,
            );
            generation
        };
        // The old home (if alive) lets go and forwards what it kept for the peer.
        self.publish(&Envelope {
            room: request.room.clone(),
            to: None,
            except: None,
            event: RoomEvent::Resumed {
                peer_id: info.peer_id.clone(),
            },
        })
        .await;
        tracing::info!(peer_id = %info.peer_id, "peer resumed from another instance");
        let resumed = Resumed {
            peer_id: info.peer_id,
            generation,
            outbound,
            close,
        };
        self.resumed_session(request, token, resumed)
            .await
            .map(Some)
    }

    /// Removes the peer from presence and, if this call removed it, tells the room.
    async fn announce_departure(&self, room: &RoomName, peer_id: &PeerId, reason: LeaveReason) {
        match self.deps.bus.leave(room, peer_id).await {
            Ok(true) => tracing::info!(%peer_id, ?reason, "peer left"),
            Ok(false) => return,
            // The bus is down: the room here hears it now, the other instances
            // when the bus is back (and presence is restored without the peer).
            Err(err) => {
                tracing::warn!(%peer_id, error = %err, "could not remove a peer from presence")
            }
        }
        self.dispatch(Envelope {
            room: room.clone(),
            to: None,
            except: Some(peer_id.clone()),
            event: RoomEvent::PeerLeft {
                peer_id: peer_id.clone(),
                reason,
            },
        })
        .await;
    }

    fn room_of(&self, peer_id: &PeerId) -> Result<(RoomName, PeerInfo), AppError> {
        let local = self.lock();
        let peer = local.peers.get(peer_id).ok_or(AppError::PeerNotFound)?;
        Ok((peer.room.clone(), peer.info.clone()))
    }

    /// Relays opaque SDP/ICE `data` to `to`, only inside the sender's room.
    pub async fn signal(&self, from: &PeerId, to: &PeerId, data: String) -> Result<(), AppError> {
        let (room, _) = self.room_of(from)?;
        let envelope = Envelope {
            room: room.clone(),
            to: Some(to.clone()),
            except: None,
            event: RoomEvent::Signal {
                from: from.clone(),
                data,
            },
        };
        let local = self.lock().peers.get(to).is_some_and(|p| p.room == room);
        if local {
            self.deliver_local(&envelope).await;
            return Ok(());
        }
        if !self.present(&room, to).await? {
            return Err(AppError::PeerNotFound);
        }
        self.publish(&envelope).await;
        Ok(())
    }

    /// Whether `peer` is in `room` on any instance.
    async fn present(&self, room: &RoomName, peer: &PeerId) -> Result<bool, AppError> {
        Ok(self
            .deps
            .bus
            .peers(room)
            .await?
            .iter()
            .any(|p| &p.peer_id == peer))
    }

    /// Stores a chat message, then sends it to everyone in the room, sender included.
    pub async fn chat(&self, from: &PeerId, text: &str) -> Result<(), AppError> {
        let text = ChatText::parse(text)?;
        let (room, info) = self.room_of(from)?;
        let message = self
            .deps
            .chat
            .append_chat(NewChatMessage {
                room: room.clone(),
                from: from.clone(),
                user_id: info.user_id,
                username: info.username,
                text,
                ts: self.deps.clock.now(),
            })
            .await?;
        self.dispatch(Envelope {
            room,
            to: None,
            except: None,
            event: RoomEvent::Chat { message },
        })
        .await;
        Ok(())
    }

    /// Updates what the peer shares and tells the others.
    pub async fn set_state(&self, from: &PeerId, state: PeerState) -> Result<(), AppError> {
        let (room, info) = {
            let mut local = self.lock();
            let peer = local.peers.get_mut(from).ok_or(AppError::PeerNotFound)?;
            peer.info.state = state;
            (peer.room.clone(), peer.info.clone())
        };
        self.deps.bus.update(&room, &info).await?;
        self.dispatch(Envelope {
            room,
            to: None,
            except: Some(from.clone()),
            event: RoomEvent::PeerState {
                peer_id: from.clone(),
                state,
            },
        })
        .await;
        Ok(())
    }

    /// The room's owner removes `target` from the call.
    pub async fn kick(&self, from: &PeerId, target: &PeerId) -> Result<(), AppError> {
        let (room, info) = self.room_of(from)?;
        let owner = self.deps.rooms.find_room(&room).await?.map(|r| r.owner);
        if owner != Some(info.user_id) {
            return Err(AppError::NotRoomOwner);
        }
        if !self.present(&room, target).await? {
            return Err(AppError::PeerNotFound);
        }
        self.dispatch(Envelope {
            room: room.clone(),
            to: Some(target.clone()),
            except: None,
            event: RoomEvent::Kicked {
                peer_id: target.clone(),
            },
        })
        .await;
        self.announce_departure(&room, target, LeaveReason::Kicked)
            .await;
        Ok(())
    }

    /// Closes, with 4401, every connection opened with the token `jti` (logout),
    /// on every instance.
    pub async fn revoke_token(&self, jti: Uuid) {
        self.revoke_local(|peer| peer.jti == jti).await;
        self.publish(&Envelope {
            // Revocation is not about one room; the name is not used.
            room: RoomName::parse("_").expect("a valid room name"),
            to: None,
            except: None,
            event: RoomEvent::TokenRevoked { jti },
        })
        .await;
    }

    /// Closes, with 4401, every connection of `user`, on every instance (a token
    /// family was replayed, or the account was deleted).
    pub async fn revoke_user(&self, user: UserId) {
        self.revoke_local(|peer| peer.info.user_id == user).await;
        self.publish(&Envelope {
            // Not about one room; the name is not used.
            room: RoomName::parse("_").expect("a valid room name"),
            to: None,
            except: None,
            event: RoomEvent::UserRevoked { user },
        })
        .await;
    }

    async fn revoke_local(&self, which: impl Fn(&LocalPeer) -> bool) {
        let revoked: Vec<LocalPeer> = {
            let mut local = self.lock();
            let ids: Vec<PeerId> = local
                .peers
                .values()
                .filter(|p| which(p))
                .map(|p| p.info.peer_id.clone())
                .collect();
            ids.iter().filter_map(|id| local.remove(id)).collect()
        };
        for peer in revoked {
            close(&peer.link, CloseReason::TokenRevoked);
            self.forget(&peer).await;
            self.announce_departure(&peer.room, &peer.info.peer_id, LeaveReason::Left)
                .await;
        }
    }

    /// Creates an empty room owned by `owner` (REST).
    pub async fn create_room(&self, name: &RoomName, owner: UserId) -> Result<Room, AppError> {
        self.store_new_room(name, owner).await
    }

    /// Creates a room within the owner's hourly rate and room limit.
    async fn store_new_room(&self, name: &RoomName, owner: UserId) -> Result<Room, AppError> {
        let now = self.deps.clock.now();
        self.creations
            .admit(owner, now)
            .map_err(|retry_after| AppError::RoomCreationRate { retry_after })?;
        Ok(self
            .deps
            .rooms
            .create_room(name, owner, now, self.config.max_rooms_per_user)
            .await?)
    }

    /// A page of rooms by name (those after `after`, up to `limit`), each with
    /// who is in it now; and whether more follow.
    pub async fn list_rooms(
        &self,
        after: Option<&RoomName>,
        limit: usize,
    ) -> Result<(Vec<RoomSummary>, bool), AppError> {
        let mut rooms = self.deps.rooms.list_rooms(after, limit + 1).await?;
        let more = rooms.len() > limit;
        rooms.truncate(limit);
        let mut occupancy: HashMap<RoomName, Vec<PeerInfo>> =
            self.deps.bus.occupancy().await?.into_iter().collect();
        let summaries = rooms
            .into_iter()
            .map(|room| RoomSummary {
                peers: occupancy.remove(&room.name).unwrap_or_default(),
                room,
            })
            .collect();
        Ok((summaries, more))
    }

    /// The owner deletes a room: the call ends for everyone in it (close 4004).
    pub async fn delete_room(&self, name: &RoomName, user: UserId) -> Result<(), AppError> {
        let room = self
            .deps
            .rooms
            .find_room(name)
            .await?
            .ok_or(AppError::RoomNotFound)?;
        if room.owner != user {
            return Err(AppError::NotRoomOwner);
        }
        // Who is in the call, on every instance, so that each is told the others
        // left. Without the list (the bus failed) each instance still tells its own.
        let peers = match self.deps.bus.peers(name).await {
            Ok(peers) => peers.into_iter().map(|peer| peer.peer_id).collect(),
            Err(err) => {
                tracing::warn!(room = %name, error = %err, "room deleted: presence unavailable");
                Vec::new()
            }
        };
        self.deps.rooms.delete_room(name).await?;
        self.dispatch(Envelope {
            room: name.clone(),
            to: None,
            except: None,
            event: RoomEvent::RoomDeleted { peers },
        })
        .await;
        tracing::info!(room = %name, "room deleted");
        Ok(())
    }

    /// Deletes every room `owner` owns, as [`Self::delete_room`] does (its calls
    /// end with 4004), before the account goes.
    pub async fn delete_rooms_of(&self, owner: UserId) -> Result<(), AppError> {
        let mut after: Option<RoomName> = None;
        loop {
            let page = self.deps.rooms.list_rooms(after.as_ref(), 500).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.name.clone());
            for room in page.iter().filter(|room| room.owner == owner) {
                match self.delete_room(&room.name, owner).await {
                    Ok(()) | Err(AppError::RoomNotFound) => {}
                    Err(err) => return Err(err),
                }
            }
        }
    }

    /// A page of chat history, oldest first (`before` an id, at most `limit`).
    pub async fn messages(
        &self,
        name: &RoomName,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, AppError> {
        self.deps
            .rooms
            .find_room(name)
            .await?
            .ok_or(AppError::RoomNotFound)?;
        Ok(self.deps.chat.chat_before(name, before, limit).await?)
    }

    /// Closes every local connection with 1001 (server shutting down).
    pub fn shutdown(&self) {
        let local = self.lock();
        for peer in local.peers.values() {
            close(&peer.link, CloseReason::Shutdown);
        }
    }

    /// Delivers locally and hands to the other instances.
    async fn dispatch(&self, envelope: Envelope) {
        self.deliver_local(&envelope).await;
        self.publish(&envelope).await;
    }

    async fn publish(&self, envelope: &Envelope) {
        if let Err(err) = self.deps.bus.publish(envelope).await {
            tracing::warn!(room = %envelope.room, error = %err, "could not publish a room event");
            if !matches!(envelope.event, RoomEvent::Signal { .. }) {
                let mut unpublished = self.unpublished.lock().unwrap_or_else(|e| e.into_inner());
                if unpublished.len() == UNPUBLISHED_KEPT {
                    unpublished.pop_front();
                }
                unpublished.push_back(envelope.clone());
            }
        }
    }

    /// Every peer of this instance where the bus should have it.
    fn local_presence(&self) -> Vec<LocalPresence> {
        self.lock()
            .peers
            .values()
            .map(|peer| LocalPresence {
                room: peer.room.clone(),
                info: peer.info.clone(),
                resume_token: peer.resume_token.clone(),
            })
            .collect()
    }

    /// Tells the other instances about each peer here again (`peer_joined`; a
    /// client that knows the peer already only takes its state).
    async fn announce_local_peers(&self) {
        for peer in self.local_presence() {
            let envelope = Envelope {
                room: peer.room,
                to: None,
                except: Some(peer.info.peer_id.clone()),
                event: RoomEvent::PeerJoined { peer: peer.info },
            };
            if let Err(err) = self.deps.bus.publish(&envelope).await {
                tracing::warn!(error = %err, "could not announce peers again");
                return;
            }
        }
    }

    /// Delivers an event to this instance's peers (the bus calls this for events
    /// from other instances).
    pub async fn deliver_local(&self, envelope: &Envelope) {
        match &envelope.event {
            RoomEvent::Kicked { peer_id } => {
                let peer = self.lock().remove(peer_id);
                if let Some(peer) = peer {
                    close(&peer.link, CloseReason::Kicked);
                    self.forget(&peer).await;
                }
            }
            RoomEvent::Resumed { peer_id } => {
                // This was the peer's home; another instance serves it now.
                let peer = self.lock().remove(peer_id);
                if let Some(peer) = peer {
                    match peer.link {
                        Link::Attached { close, .. } => {
                            let _ = close.send(Some(CloseReason::Replaced));
                        }
                        Link::Detached(buffer) => {
                            for frame in buffer.frames {
                                if let Outbound::Event(event) = frame {
                                    self.publish(&Envelope {
                                        room: peer.room.clone(),
                                        to: Some(peer_id.clone()),
                                        except: None,
                                        event: event.event.clone(),
                                    })
                                    .await;
                                }
                            }
                        }
                    }
                }
            }
            RoomEvent::RoomDeleted { peers: everyone } => {
                let removed: Vec<LocalPeer> = {
                    let mut local = self.lock();
                    local.deletions += 1;
                    local.lookups.remove(&envelope.room);
                    let ids = local
                        .rooms
                        .get(&envelope.room)
                        .map(|room| room.peers.clone())
                        .unwrap_or_default();
                    ids.iter().filter_map(|id| local.remove(id)).collect()
                };
                let mut gone = everyone.clone();
                for peer in &removed {
                    if !gone.contains(&peer.info.peer_id) {
                        gone.push(peer.info.peer_id.clone());
                    }
                }
                for peer in removed {
                    // The others' `peer_left`, then the close (4004), which the
                    // writer sends after what is queued. Best effort: a full
                    // queue just gets the close.
                    if let Link::Attached { tx, .. } = &peer.link {
                        for other in gone.iter().filter(|id| **id != peer.info.peer_id) {
                            let _ =
                                tx.offer(Outbound::Event(SharedEvent::new(RoomEvent::PeerLeft {
                                    peer_id: other.clone(),
                                    reason: LeaveReason::RoomDeleted,
                                })));
                        }
                    }
                    close(&peer.link, CloseReason::RoomDeleted);
                    self.forget(&peer).await;
                    let _ = self.deps.bus.leave(&peer.room, &peer.info.peer_id).await;
                }
            }
            // Boxed: revoking announces departures, which deliver events again.
            RoomEvent::TokenRevoked { jti } => {
                Box::pin(self.revoke_local(|peer| peer.jti == *jti)).await
            }
            RoomEvent::UserRevoked { user } => {
                Box::pin(self.revoke_local(|peer| peer.info.user_id == *user)).await
            }
            event => {
                let event = SharedEvent::new(event.clone());
                let slow = {
                    let mut local = self.lock();
                    let Local { peers, rooms, .. } = &mut *local;
                    let Some(room) = rooms.get_mut(&envelope.room) else {
                        return;
                    };
                    if let RoomEvent::Chat { message } = &event.event {
                        room.chat.record(message);
                    }
                    let mut slow = Vec::new();
                    for id in &room.peers {
                        if envelope.to.as_ref().is_some_and(|to| to != id)
                            || envelope.except.as_ref() == Some(id)
                        {
                            continue;
                        }
                        if let Some(peer) = peers.get_mut(id) {
                            if push(peer, Outbound::Event(event.clone()), &self.config) {
                                slow.push((id.clone(), peer.generation));
                            }
                        }
                    }
                    slow
                };
                for (peer_id, generation) in slow {
                    metrics::counter!("webcall_ws_slow_consumers_total").increment(1);
                    tracing::info!(%peer_id, "slow consumer detached");
                    self.start_grace(peer_id, generation);
                }
            }
        }
    }
}

/// What the bus brings from other instances.
#[async_trait::async_trait]
impl BusListener for Hub {
    async fn deliver(&self, envelope: Envelope) {
        self.deliver_local(&envelope).await;
    }

    async fn departed(&self, room: RoomName, peer: PeerId) {
        self.dispatch(Envelope {
            room,
            to: None,
            except: Some(peer.clone()),
            event: RoomEvent::PeerLeft {
                peer_id: peer,
                reason: LeaveReason::Timeout,
            },
        })
        .await;
    }

    async fn reconnected(&self) -> Result<(), DomainError> {
        self.deps.bus.restore(&self.local_presence()).await?;
        let unpublished: Vec<Envelope> = self
            .unpublished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        if !unpublished.is_empty() {
            tracing::info!(events = unpublished.len(), "publishing what the bus missed");
        }
        for envelope in &unpublished {
            // Kept again if the bus fails once more.
            self.publish(envelope).await;
        }
        self.announce_local_peers().await;
        Ok(())
    }

    async fn roll_call(&self) {
        self.announce_local_peers().await;
    }
}

/// A peer re-attached to a new connection, before its welcome is built.
struct Resumed {
    peer_id: PeerId,
    generation: u64,
    outbound: Outbox,
    close: watch::Receiver<Option<CloseReason>>,
}

enum Reattach {
    Unknown,
    Overflowed(PeerId),
    Done {
        peer_id: PeerId,
        generation: u64,
        outbound: Outbox,
        close: watch::Receiver<Option<CloseReason>>,
    },
}

fn close(link: &Link, reason: CloseReason) {
    if let Link::Attached { close, .. } = link {
        let _ = close.send(Some(reason));
    }
}

/// Queues `frame` for `peer`. A full queue (in frames or bytes) detaches the
/// peer (it is told to reconnect and resume) and keeps the frame for it; returns
/// true then, so the caller starts its grace period.
fn push(peer: &mut LocalPeer, frame: Outbound, config: &SignalingConfig) -> bool {
    match &mut peer.link {
        Link::Attached { tx, close } => match tx.offer(frame) {
            Ok(()) => false,
            Err(frame) => {
                let _ = close.send(Some(CloseReason::SlowConsumer));
                peer.link = Link::Detached(ResumeBuffer::holding(frame));
                true
            }
        },
        Link::Detached(buffer) => {
            buffer.push_back(frame, config);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(bytes: usize) -> Outbound {
        Outbound::Event(SharedEvent::new(RoomEvent::Signal {
            from: PeerId::from_client("p"),
            data: "x".repeat(bytes),
        }))
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
