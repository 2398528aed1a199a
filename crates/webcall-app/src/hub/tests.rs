//! The hub's unit tests: calls as users see them (who is told what, which
//! connection closes why), on in-memory stores, the in-process presence and, for
//! several instances, [`MemoryCluster`]s. Time is tokio's paused clock: the
//! resume grace passes with `advance`, never a sleep.
//!
//! Longer than our usual ~500 lines: one test per rule the hub keeps, and the
//! rules are many; splitting them by file would scatter the shared set-up
//! (moderation's are in `moderation_tests.rs`, on this set-up).

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;
use webcall_domain::media::{MediaRouter, Recorder};
use webcall_domain::model::User;
use webcall_domain::ports::{ChatRepository, Cluster, ClusterListener, Presence};
use webcall_domain::signaling::{
    ClusterMessage, Command, Envelope, LeaveReason, PeerId, PeerInfo, PeerState, Reaction,
    RoomEvent, RoomName,
};
use webcall_domain::DomainError;

use super::{CloseReason, Hub, HubDeps, JoinRequest, Session, SignalingConfig};
use crate::ice::IceServersService;
use crate::presence::InProcessPresence;
use crate::rooms::{RoomDeps, RoomLimits, RoomService};
use crate::testing::{ManualClock, MemoryCluster, MemoryStore};
use crate::AppError;

const GRACE: Duration = Duration::from_secs(20);

/// Small queues and buffers, so that filling them takes a few frames.
pub(super) fn config() -> SignalingConfig {
    SignalingConfig {
        max_peers: 3,
        resume_grace: GRACE,
        resume_buffer: 8,
        resume_buffer_bytes: 64 * 1024,
        send_queue: 4,
        send_queue_bytes: 32 * 1024,
        history: 3,
        sfu_from_peers: Some(5),
    }
}

/// One instance and what it stands on. Instances of one cluster share the
/// store and the presence.
pub(super) struct World {
    pub(super) hub: Arc<Hub>,
    pub(super) store: Arc<MemoryStore>,
    pub(super) rooms: Arc<RoomService>,
    pub(super) presence: Arc<InProcessPresence>,
    cluster: Option<Arc<MemoryCluster>>,
}

impl World {
    pub(super) fn alone() -> Self {
        Self::with(config(), RoomLimits::default())
    }

    fn with(config: SignalingConfig, limits: RoomLimits) -> Self {
        let store = Arc::new(MemoryStore::default());
        let presence = Arc::new(InProcessPresence::default());
        Self::build(store, presence, None, config, limits)
    }

    /// The first instance of a cluster.
    pub(super) fn clustered() -> Self {
        let store = Arc::new(MemoryStore::default());
        let presence = Arc::new(InProcessPresence::default());
        let cluster = Arc::new(MemoryCluster::new(presence.clone()));
        Self::build(
            store,
            presence,
            Some(cluster),
            config(),
            RoomLimits::default(),
        )
    }

    /// Another instance on the same store, presence and cluster.
    pub(super) fn another_instance(&self) -> Self {
        let cluster = self.cluster.as_ref().expect("a clustered world");
        Self::build(
            self.store.clone(),
            self.presence.clone(),
            Some(Arc::new(cluster.another_instance())),
            config(),
            RoomLimits::default(),
        )
    }

    fn build(
        store: Arc<MemoryStore>,
        presence: Arc<InProcessPresence>,
        cluster: Option<Arc<MemoryCluster>>,
        config: SignalingConfig,
        limits: RoomLimits,
    ) -> Self {
        Self::build_with(store, presence, cluster, config, limits, None, None)
    }

    /// One instance with a media end and a recorder (`media_tests`).
    pub(super) fn routed(
        config: SignalingConfig,
        media: Arc<dyn MediaRouter>,
        recorder: Arc<dyn Recorder>,
    ) -> Self {
        let store = Arc::new(MemoryStore::default());
        let presence = Arc::new(InProcessPresence::default());
        let limits = RoomLimits::default();
        Self::build_with(
            store,
            presence,
            None,
            config,
            limits,
            Some(media),
            Some(recorder),
        )
    }

    /// Another instance of this world's cluster, with a media end.
    pub(super) fn another_routed_instance(&self, media: Arc<dyn MediaRouter>) -> Self {
        let cluster = self.cluster.as_ref().expect("a clustered world");
        Self::build_with(
            self.store.clone(),
            self.presence.clone(),
            Some(Arc::new(cluster.another_instance())),
            config(),
            RoomLimits::default(),
            Some(media),
            None,
        )
    }

    fn build_with(
        store: Arc<MemoryStore>,
        presence: Arc<InProcessPresence>,
        cluster: Option<Arc<MemoryCluster>>,
        config: SignalingConfig,
        limits: RoomLimits,
        media: Option<Arc<dyn MediaRouter>>,
        recorder: Option<Arc<dyn Recorder>>,
    ) -> Self {
        let clock = Arc::new(ManualClock::default());
        let rooms = Arc::new(RoomService::new(
            RoomDeps {
                rooms: store.clone(),
                chat: store.clone(),
                presence: presence.clone(),
                clock: clock.clone(),
            },
            limits,
        ));
        let hub = Hub::new(
            HubDeps {
                rooms: rooms.clone(),
                chat: store.clone(),
                moderation: store.clone(),
                access: store.clone(),
                presence: presence.clone(),
                cluster: cluster.clone().map(|c| c as Arc<dyn Cluster>),
                ice: Arc::new(IceServersService::new(vec![], vec![], clock.clone())),
                media,
                recorder,
                clock,
            },
            config,
        );
        Self {
            hub,
            store,
            rooms,
            presence,
            cluster,
        }
    }

    pub(super) fn cluster(&self) -> &MemoryCluster {
        self.cluster.as_ref().expect("a clustered world")
    }

    pub(super) fn user(&self, name: &str) -> User {
        self.store.add_user(name)
    }

    pub(super) async fn join(&self, user: &User, room: &str) -> Session {
        self.hub.join(request(user, room)).await.expect("joined")
    }

    pub(super) async fn resume(&self, user: &User, room: &str, token: &str) -> Session {
        let request = JoinRequest {
            resume: Some(token.to_owned()),
            ..request(user, room)
        };
        self.hub.join(request).await.expect("joined")
    }

    pub(super) async fn present(&self, room: &str) -> Vec<PeerId> {
        let peers = self.presence.peers(&name(room)).await.unwrap();
        peers.into_iter().map(|p| p.peer_id).collect()
    }
}

pub(super) fn name(room: &str) -> RoomName {
    RoomName::parse(room).unwrap()
}

pub(super) fn request(user: &User, room: &str) -> JoinRequest {
    JoinRequest {
        room: name(room),
        user_id: user.id,
        username: user.username.as_str().to_owned(),
        login: Uuid::new_v4(),
        role: user.role,
        guest: false,
        resume: None,
        pass: None,
        admitted: false,
        sfu: false,
    }
}

/// What the connection has been sent and not read yet, in order.
pub(super) fn events(session: &mut Session) -> Vec<RoomEvent> {
    std::iter::from_fn(|| session.outbound.try_recv())
        .map(|frame| frame.event.clone())
        .collect()
}

/// Why a join was refused (it must have been).
pub(super) fn refused(joined: Result<Session, AppError>) -> AppError {
    match joined {
        Ok(session) => panic!("{} joined", session.peer_id),
        Err(err) => err,
    }
}

pub(super) fn closed(session: &Session) -> Option<CloseReason> {
    *session.close.borrow()
}

pub(super) fn left(peer: &Session, reason: LeaveReason) -> RoomEvent {
    RoomEvent::PeerLeft {
        peer_id: peer.peer_id.clone(),
        reason,
    }
}

fn signal_from(peer: &Session, data: &str) -> RoomEvent {
    RoomEvent::Signal {
        from: peer.peer_id.clone(),
        data: data.to_owned(),
    }
}

/// The texts of the chat events among `events`.
fn chat_texts(events: &[RoomEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            RoomEvent::Chat { message } => Some(message.text.clone()),
            _ => None,
        })
        .collect()
}

/// Lets the paused clock move on by `by`, and the grace timers that fall due run.
async fn pass(by: Duration) {
    // Each grace timer is a task of its own, which starts its sleep when it
    // first runs: give every one its turn before and after the clock moves.
    settle().await;
    tokio::time::advance(by).await;
    settle().await;
}

async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

// Joining.

#[tokio::test]
async fn the_first_joiner_creates_the_room_and_owns_it_later_joiners_are_told_who_is_in() {
    let world = World::alone();
    let (ada, bob) = (world.user("ada"), world.user("bob"));
    let mut first = world.join(&ada, "lobby").await;
    assert!(first.welcome.owner);
    assert!(first.welcome.peers.is_empty());
    assert!(!first.welcome.resumed);
    let room = world.rooms.find(&name("lobby")).await.unwrap().unwrap();
    assert_eq!(room.owner, ada.id);

    let mut second = world.join(&bob, "lobby").await;
    assert!(!second.welcome.owner);
    let peers: Vec<&PeerId> = second.welcome.peers.iter().map(|p| &p.peer_id).collect();
    assert_eq!(peers, [&first.peer_id]);
    assert_ne!(second.peer_id, first.peer_id);
    let joined = RoomEvent::PeerJoined {
        peer: PeerInfo {
            peer_id: second.peer_id.clone(),
            user_id: bob.id,
            username: "bob".into(),
            state: PeerState::default(),
            host: false,
            guest: false,
        },
    };
    assert_eq!(events(&mut first), [joined]);
    assert_eq!(events(&mut second), []);
}

#[tokio::test]
async fn a_full_room_refuses_the_next_joiner_and_adds_nobody() {
    let world = World::alone();
    let mut sessions = Vec::new();
    for user in ["ada", "bob", "carol"] {
        sessions.push(world.join(&world.user(user), "lobby").await);
    }
    sessions.iter_mut().for_each(|s| drop(events(s)));

    let dave = world.user("dave");
    let err = refused(world.hub.join(request(&dave, "lobby")).await);
    assert!(matches!(err, AppError::RoomFull), "{err:?}");
    assert_eq!(world.present("lobby").await.len(), 3);
    assert_eq!(world.hub.local_peer_count(), 3);
    for session in &mut sessions {
        assert_eq!(events(session), [], "no one was announced");
    }
}

#[tokio::test]
async fn the_welcome_brings_the_rooms_latest_chat_oldest_first() {
    let world = World::alone();
    let (ada, bob, carol) = (world.user("ada"), world.user("bob"), world.user("carol"));
    let first = world.join(&ada, "lobby").await;
    for text in ["one", "two", "three", "four"] {
        world.hub.chat(&first.peer_id, text).await.unwrap();
    }
    // While the room has peers here, and again once it is empty and read from storage.
    let second = world.join(&bob, "lobby").await;
    assert_eq!(chat_texts_of(&second), ["two", "three", "four"]);
    world.hub.leave(&first.peer_id, first.generation).await;
    world.hub.leave(&second.peer_id, second.generation).await;
    assert_eq!(world.hub.local_room_count(), 0);
    let third = world.join(&carol, "lobby").await;
    assert_eq!(chat_texts_of(&third), ["two", "three", "four"]);
}

fn chat_texts_of(session: &Session) -> Vec<&str> {
    session
        .welcome
        .chat
        .iter()
        .map(|m| m.text.as_str())
        .collect()
}

#[tokio::test]
async fn a_join_that_would_make_a_room_past_the_owners_limit_is_refused() {
    let limits = RoomLimits {
        per_user: 1,
        creations_per_hour: 10,
    };
    let world = World::with(config(), limits);
    let (ada, bob) = (world.user("ada"), world.user("bob"));
    let _own = world.join(&ada, "mine").await;
    let err = refused(world.hub.join(request(&ada, "another")).await);
    assert!(
        matches!(err, AppError::Domain(DomainError::RoomLimit { max: 1 })),
        "{err:?}"
    );
    assert_eq!(world.rooms.find(&name("another")).await.unwrap(), None);
    assert_eq!(world.hub.local_peer_count(), 1);
    // Joining someone else's room makes none.
    let _bobs = world.join(&bob, "bobs").await;
    let guest = world.join(&ada, "bobs").await;
    assert!(!guest.welcome.owner);
}

#[tokio::test]
async fn a_join_that_would_make_rooms_too_fast_is_refused() {
    let limits = RoomLimits {
        per_user: 10,
        creations_per_hour: 1,
    };
    let world = World::with(config(), limits);
    let ada = world.user("ada");
    let _first = world.join(&ada, "one").await;
    let err = refused(world.hub.join(request(&ada, "two")).await);
    assert!(matches!(err, AppError::RoomCreationRate { .. }), "{err:?}");
    assert_eq!(world.rooms.find(&name("two")).await.unwrap(), None);
    assert_eq!(world.hub.local_peer_count(), 1);
    assert!(world.present("two").await.is_empty());
}

// In the call.

#[tokio::test]
async fn a_signal_reaches_only_its_addressee_and_only_inside_the_senders_room() {
    let world = World::alone();
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let mut bob = world.join(&world.user("bob"), "lobby").await;
    let mut carol = world.join(&world.user("carol"), "lobby").await;
    let mut dave = world.join(&world.user("dave"), "other").await;
    [&mut ada, &mut bob]
        .into_iter()
        .for_each(|s| drop(events(s)));

    let hub = &world.hub;
    hub.signal(&ada.peer_id, &bob.peer_id, "{\"sdp\":1}".into())
        .await
        .unwrap();
    assert_eq!(events(&mut bob), [signal_from(&ada, "{\"sdp\":1}")]);
    let elsewhere = hub.signal(&ada.peer_id, &dave.peer_id, "x".into()).await;
    assert!(matches!(elsewhere, Err(AppError::PeerNotFound)));
    let nobody = PeerId::from_client("nobody");
    let unknown = hub.signal(&ada.peer_id, &nobody, "x".into()).await;
    assert!(matches!(unknown, Err(AppError::PeerNotFound)));
    let stranger = hub.signal(&nobody, &bob.peer_id, "x".into()).await;
    assert!(matches!(stranger, Err(AppError::PeerNotFound)));
    for session in [&mut ada, &mut bob, &mut carol, &mut dave] {
        assert_eq!(events(session), []);
    }
}

#[tokio::test]
async fn chat_is_stored_and_reaches_everyone_in_the_room_sender_included() {
    let world = World::alone();
    let ada_user = world.user("ada");
    let mut ada = world.join(&ada_user, "lobby").await;
    let mut bob = world.join(&world.user("bob"), "lobby").await;
    let mut dave = world.join(&world.user("dave"), "other").await;
    drop(events(&mut ada));

    world.hub.chat(&ada.peer_id, "  hello  ").await.unwrap();
    let sender = ada.peer_id.clone();
    for session in [&mut ada, &mut bob] {
        let got = events(session);
        assert_eq!(chat_texts(&got), ["hello"]);
        let RoomEvent::Chat { message } = &got[0] else {
            unreachable!()
        };
        assert_eq!((&message.from, message.user_id), (&sender, ada_user.id));
        assert_eq!(message.username, "ada");
    }
    assert_eq!(events(&mut dave), []);
    let stored = world.store.chat_before(&name("lobby"), None, 10).await;
    assert_eq!(chat_texts_of_stored(stored.unwrap()), ["hello"]);

    let empty = world.hub.chat(&ada.peer_id, "   ").await;
    assert!(matches!(
        empty,
        Err(AppError::Domain(DomainError::Invalid { .. }))
    ));
    assert_eq!(events(&mut bob), []);
    let stored = world.store.chat_before(&name("lobby"), None, 10).await;
    assert_eq!(stored.unwrap().len(), 1);
}

#[tokio::test]
async fn a_reaction_from_the_fixed_set_reaches_everyone_in_the_room_and_crosses_instances() {
    let world = World::clustered();
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let mut bob = world.join(&world.user("bob"), "lobby").await;
    let mut dave = world.join(&world.user("dave"), "other").await;
    drop(events(&mut ada));
    drop(world.cluster().take_published());

    world.hub.react(&bob.peer_id, "🎉").await.unwrap();
    let expected = RoomEvent::Reaction {
        peer_id: bob.peer_id.clone(),
        emoji: Reaction::parse("🎉").unwrap(),
    };
    assert_eq!(events(&mut ada), std::slice::from_ref(&expected));
    assert_eq!(events(&mut bob), std::slice::from_ref(&expected));
    assert_eq!(events(&mut dave), []);
    let published = world.cluster().take_published();
    assert!(matches!(
        &published[..],
        [ClusterMessage::Event(Envelope { event, to: None, except: None, .. })] if *event == expected
    ));

    for bad in ["💩", "", "<img src=x>", "👍👍"] {
        let refused = world.hub.react(&bob.peer_id, bad).await;
        assert!(
            matches!(refused, Err(AppError::Domain(DomainError::Invalid { .. }))),
            "{bad}: {refused:?}"
        );
    }
    let stranger = world.hub.react(&PeerId::from_client("nobody"), "👍").await;
    assert!(matches!(stranger, Err(AppError::PeerNotFound)));
    assert_eq!(events(&mut ada), []);
    assert!(world.cluster().take_published().is_empty());
}

fn chat_texts_of_stored(messages: Vec<webcall_domain::signaling::ChatMessage>) -> Vec<String> {
    messages.into_iter().map(|m| m.text).collect()
}

#[tokio::test]
async fn a_state_change_reaches_the_others_and_later_joiners() {
    let world = World::alone();
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let mut bob = world.join(&world.user("bob"), "lobby").await;
    drop(events(&mut ada));
    let state = PeerState {
        audio: true,
        hand: true,
        ..PeerState::default()
    };
    world.hub.set_state(&ada.peer_id, state).await.unwrap();
    let changed = RoomEvent::PeerState {
        peer_id: ada.peer_id.clone(),
        state,
    };
    assert_eq!(events(&mut bob), [changed]);
    assert_eq!(events(&mut ada), []);
    let carol = world.join(&world.user("carol"), "lobby").await;
    let seen = carol
        .welcome
        .peers
        .iter()
        .find(|p| p.peer_id == ada.peer_id);
    assert_eq!(seen.map(|p| p.state), Some(state));
}

// Leaving, dropping and resuming.

#[tokio::test]
async fn a_peer_that_leaves_is_announced_once_as_left() {
    let world = World::alone();
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let bob = world.join(&world.user("bob"), "lobby").await;
    drop(events(&mut ada));
    world.hub.leave(&bob.peer_id, bob.generation).await;
    world.hub.leave(&bob.peer_id, bob.generation).await;
    assert_eq!(events(&mut ada), [left(&bob, LeaveReason::Left)]);
    assert_eq!(world.present("lobby").await, [ada.peer_id.clone()]);
    assert_eq!(world.hub.local_peer_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_peer_resumes_within_the_grace_with_what_it_was_sent_and_no_one_sees_it_go() {
    let world = World::alone();
    let bob_user = world.user("bob");
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let bob = world.join(&bob_user, "lobby").await;
    drop(events(&mut ada));

    world.hub.detach(&bob.peer_id, bob.generation);
    pass(GRACE - Duration::from_millis(1)).await;
    assert_eq!(events(&mut ada), [], "nothing while bob may come back");
    let hub = &world.hub;
    hub.signal(&ada.peer_id, &bob.peer_id, "1".into())
        .await
        .unwrap();
    hub.chat(&ada.peer_id, "are you there?").await.unwrap();
    hub.signal(&ada.peer_id, &bob.peer_id, "2".into())
        .await
        .unwrap();

    let mut back = world
        .resume(&bob_user, "lobby", &bob.welcome.resume_token)
        .await;
    assert!(back.welcome.resumed);
    assert_eq!(back.peer_id, bob.peer_id);
    assert_eq!(back.welcome.resume_token, bob.welcome.resume_token);
    let peers: Vec<&PeerId> = back.welcome.peers.iter().map(|p| &p.peer_id).collect();
    assert_eq!(peers, [&ada.peer_id], "the others, not itself");
    let missed = events(&mut back);
    assert_eq!(missed.len(), 3, "{missed:?}");
    assert_eq!(missed[0], signal_from(&ada, "1"));
    assert_eq!(chat_texts(&missed[1..2]), ["are you there?"]);
    assert_eq!(missed[2], signal_from(&ada, "2"));
    assert_eq!(
        chat_texts(&events(&mut ada)),
        ["are you there?"],
        "no churn"
    );

    // The first connection's grace ends: bob, back, stays.
    pass(Duration::from_secs(1)).await;
    assert_eq!(events(&mut ada), []);
    assert_eq!(world.present("lobby").await.len(), 2);
}

#[tokio::test]
async fn a_replaced_connections_unwritten_frames_reach_the_connection_that_replaced_it() {
    let world = World::alone();
    let bob_user = world.user("bob");
    let ada = world.join(&world.user("ada"), "lobby").await;
    let mut old = world.join(&bob_user, "lobby").await;
    let hub = &world.hub;
    hub.signal(&ada.peer_id, &old.peer_id, "1".into())
        .await
        .unwrap();
    // The client noticed the network switch first: "1" was never written.
    let mut new = world
        .resume(&bob_user, "lobby", &old.welcome.resume_token)
        .await;
    assert_eq!(closed(&old), Some(CloseReason::Replaced));
    // The old connection ends as the WS layer ends it: lost, its queue handed back.
    let unsent: Vec<_> = std::iter::from_fn(|| old.outbound.try_recv()).collect();
    hub.detach(&old.peer_id, old.generation);
    hub.requeue(&old.peer_id, old.generation, unsent);
    hub.signal(&ada.peer_id, &old.peer_id, "2".into())
        .await
        .unwrap();
    assert_eq!(
        events(&mut new),
        [signal_from(&ada, "1"), signal_from(&ada, "2")]
    );
}

#[tokio::test]
async fn a_lost_connection_back_before_its_old_one_hands_back_its_queue_misses_nothing() {
    let world = World::alone();
    let bob_user = world.user("bob");
    let ada = world.join(&world.user("ada"), "lobby").await;
    let mut old = world.join(&bob_user, "lobby").await;
    let hub = &world.hub;
    for data in ["1", "2"] {
        hub.signal(&ada.peer_id, &old.peer_id, data.into())
            .await
            .unwrap();
    }
    // The network went before the writer took them.
    hub.detach(&old.peer_id, old.generation);
    hub.signal(&ada.peer_id, &old.peer_id, "3".into())
        .await
        .unwrap();
    // The client is back before the old connection, lingering for a close
    // reply that never comes, hands back what it had queued.
    let mut new = world
        .resume(&bob_user, "lobby", &old.welcome.resume_token)
        .await;
    let unsent: Vec<_> = std::iter::from_fn(|| old.outbound.try_recv()).collect();
    hub.requeue(&old.peer_id, old.generation, unsent);
    assert_eq!(
        events(&mut new),
        [
            signal_from(&ada, "1"),
            signal_from(&ada, "2"),
            signal_from(&ada, "3")
        ]
    );
}

#[tokio::test]
async fn a_slow_consumer_back_before_its_old_connection_hands_back_its_queue_misses_nothing() {
    let world = World::alone();
    let bob_user = world.user("bob");
    let ada = world.join(&world.user("ada"), "lobby").await;
    let mut old = world.join(&bob_user, "lobby").await;
    for i in 0..=config().send_queue {
        world
            .hub
            .signal(&ada.peer_id, &old.peer_id, i.to_string())
            .await
            .unwrap();
    }
    assert_eq!(closed(&old), Some(CloseReason::SlowConsumer));
    let mut new = world
        .resume(&bob_user, "lobby", &old.welcome.resume_token)
        .await;
    let unsent: Vec<_> = std::iter::from_fn(|| old.outbound.try_recv()).collect();
    world.hub.requeue(&old.peer_id, old.generation, unsent);
    let got = events(&mut new);
    let expected: Vec<RoomEvent> = (0..=config().send_queue)
        .map(|i| signal_from(&ada, &i.to_string()))
        .collect();
    assert_eq!(got, expected);
}

#[tokio::test(start_paused = true)]
async fn a_peer_not_back_within_the_grace_leaves_as_timed_out() {
    let world = World::alone();
    let bob_user = world.user("bob");
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let bob = world.join(&bob_user, "lobby").await;
    drop(events(&mut ada));

    world.hub.detach(&bob.peer_id, bob.generation);
    pass(GRACE).await;
    assert_eq!(events(&mut ada), [left(&bob, LeaveReason::Timeout)]);
    assert_eq!(world.present("lobby").await, [ada.peer_id.clone()]);
    let late = world
        .resume(&bob_user, "lobby", &bob.welcome.resume_token)
        .await;
    assert!(!late.welcome.resumed);
    assert_ne!(late.peer_id, bob.peer_id);
    assert!(matches!(
        &events(&mut ada)[..],
        [RoomEvent::PeerJoined { .. }]
    ));
}

#[tokio::test(start_paused = true)]
async fn each_drop_gets_a_whole_grace_of_its_own() {
    let world = World::alone();
    let bob_user = world.user("bob");
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let bob = world.join(&bob_user, "lobby").await;
    drop(events(&mut ada));
    let token = bob.welcome.resume_token.clone();

    world.hub.detach(&bob.peer_id, bob.generation);
    pass(GRACE / 2).await;
    let again = world.resume(&bob_user, "lobby", &token).await;
    world.hub.detach(&again.peer_id, again.generation);
    pass(GRACE / 2).await;
    assert_eq!(
        events(&mut ada),
        [],
        "the first grace is over, not the second"
    );
    pass(GRACE / 2).await;
    assert_eq!(events(&mut ada), [left(&bob, LeaveReason::Timeout)]);
}

#[tokio::test(start_paused = true)]
async fn a_resume_token_of_another_user_or_room_is_a_fresh_join() {
    let world = World::alone();
    let (bob_user, carol_user) = (world.user("bob"), world.user("carol"));
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let bob = world.join(&bob_user, "lobby").await;
    drop(events(&mut ada));
    let token = bob.welcome.resume_token.clone();
    world.hub.detach(&bob.peer_id, bob.generation);

    let carol = world.resume(&carol_user, "lobby", &token).await;
    assert!(!carol.welcome.resumed);
    assert_ne!(carol.peer_id, bob.peer_id);
    let elsewhere = world.resume(&bob_user, "other", &token).await;
    assert!(!elsewhere.welcome.resumed);
    assert_ne!(elsewhere.peer_id, bob.peer_id);
    assert_ne!(elsewhere.welcome.resume_token, token);

    let back = world.resume(&bob_user, "lobby", &token).await;
    assert!(back.welcome.resumed, "the token still works for its peer");
    assert_eq!(back.peer_id, bob.peer_id);
    let announced = events(&mut ada);
    assert!(
        matches!(&announced[..], [RoomEvent::PeerJoined { peer }] if peer.peer_id == carol.peer_id)
    );
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_missed_more_than_its_resume_buffer_holds_leaves_and_joins_afresh() {
    let world = World::alone();
    let bob_user = world.user("bob");
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let bob = world.join(&bob_user, "lobby").await;
    drop(events(&mut ada));
    world.hub.detach(&bob.peer_id, bob.generation);
    for i in 0..=config().resume_buffer {
        world
            .hub
            .signal(&ada.peer_id, &bob.peer_id, i.to_string())
            .await
            .unwrap();
    }

    let mut fresh = world
        .resume(&bob_user, "lobby", &bob.welcome.resume_token)
        .await;
    assert!(!fresh.welcome.resumed);
    assert_ne!(fresh.peer_id, bob.peer_id);
    assert_eq!(events(&mut fresh), [], "what it missed is let go");
    let seen = events(&mut ada);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], left(&bob, LeaveReason::Timeout));
    assert!(matches!(&seen[1], RoomEvent::PeerJoined { peer } if peer.peer_id == fresh.peer_id));
    assert_eq!(world.present("lobby").await.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_close_of_a_connection_it_resumed_away_from_is_not_a_departure() {
    let world = World::alone();
    let bob_user = world.user("bob");
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let old = world.join(&bob_user, "lobby").await;
    drop(events(&mut ada));
    // The client noticed the network switch before the server did.
    let new = world
        .resume(&bob_user, "lobby", &old.welcome.resume_token)
        .await;
    assert!(new.welcome.resumed);
    assert_eq!(closed(&old), Some(CloseReason::Replaced));
    assert_eq!(closed(&new), None);
    world.hub.detach(&old.peer_id, old.generation);
    world.hub.leave(&old.peer_id, old.generation).await;
    pass(GRACE * 2).await;
    assert_eq!(events(&mut ada), []);
    assert_eq!(world.present("lobby").await.len(), 2);
}

// Slow consumers.

#[tokio::test(start_paused = true)]
async fn a_connection_that_does_not_read_is_closed_as_slow_and_resumes_with_what_it_missed() {
    // By frames (small signals past `send_queue`) and by bytes (a few large ones
    // past `send_queue_bytes`).
    for (size, fit) in [(10, config().send_queue), (12 * 1024, 2)] {
        let world = World::alone();
        let bob_user = world.user("bob");
        let mut ada = world.join(&world.user("ada"), "lobby").await;
        let mut bob = world.join(&bob_user, "lobby").await;
        drop(events(&mut ada));
        let sent: Vec<String> = (0..=fit)
            .map(|i| format!("{i}{}", "x".repeat(size)))
            .collect();
        for (i, data) in sent.iter().enumerate() {
            assert_eq!(closed(&bob), None, "{i} frames of {size} bytes fit");
            world
                .hub
                .signal(&ada.peer_id, &bob.peer_id, data.clone())
                .await
                .unwrap();
        }
        assert_eq!(closed(&bob), Some(CloseReason::SlowConsumer), "{size}");
        assert_eq!(events(&mut ada), [], "the room goes on");

        // As the connection does: what it never wrote goes back to the hub.
        let unsent: Vec<_> = std::iter::from_fn(|| bob.outbound.try_recv()).collect();
        assert_eq!(unsent.len(), fit);
        world.hub.detach(&bob.peer_id, bob.generation);
        world.hub.requeue(&bob.peer_id, bob.generation, unsent);
        world
            .hub
            .signal(&ada.peer_id, &bob.peer_id, "later".into())
            .await
            .unwrap();

        let mut back = world
            .resume(&bob_user, "lobby", &bob.welcome.resume_token)
            .await;
        assert!(back.welcome.resumed);
        let expected: Vec<RoomEvent> = sent
            .iter()
            .chain([&"later".to_owned()])
            .map(|data| signal_from(&ada, data))
            .collect();
        assert_eq!(events(&mut back), expected, "{size}");
        pass(GRACE).await;
        assert_eq!(events(&mut ada), [], "no churn");
    }
}

// The owner's powers.

#[tokio::test]
async fn the_owner_kicks_a_peer_out_and_the_others_see_it_kicked() {
    let world = World::alone();
    let bob_user = world.user("bob");
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let mut bob = world.join(&bob_user, "lobby").await;
    let mut carol = world.join(&world.user("carol"), "lobby").await;
    [&mut ada, &mut bob]
        .into_iter()
        .for_each(|s| drop(events(s)));

    world
        .hub
        .kick(&ada.peer_id, &bob.peer_id, false)
        .await
        .unwrap();
    assert_eq!(closed(&bob), Some(CloseReason::Kicked));
    for session in [&mut ada, &mut carol] {
        assert_eq!(events(session), [left(&bob, LeaveReason::Kicked)]);
        assert_eq!(closed(session), None);
    }
    assert_eq!(world.present("lobby").await.len(), 2);
    let again = world
        .resume(&bob_user, "lobby", &bob.welcome.resume_token)
        .await;
    assert!(!again.welcome.resumed, "a kicked peer cannot resume");
}

#[tokio::test]
async fn only_the_owner_may_kick_and_only_someone_in_the_room() {
    let world = World::alone();
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let mut bob = world.join(&world.user("bob"), "lobby").await;
    let mut carol = world.join(&world.user("carol"), "lobby").await;
    let dave = world.join(&world.user("dave"), "other").await;
    [&mut ada, &mut bob]
        .into_iter()
        .for_each(|s| drop(events(s)));

    let by_guest = world.hub.kick(&bob.peer_id, &carol.peer_id, false).await;
    assert!(
        matches!(by_guest, Err(AppError::NotRoomOwner)),
        "{by_guest:?}"
    );
    let elsewhere = world.hub.kick(&ada.peer_id, &dave.peer_id, false).await;
    assert!(matches!(elsewhere, Err(AppError::PeerNotFound)));
    assert_eq!(closed(&carol), None);
    assert_eq!(closed(&dave), None);
    for session in [&mut ada, &mut bob, &mut carol] {
        assert_eq!(events(session), []);
    }
    assert_eq!(world.present("lobby").await.len(), 3);
}

#[tokio::test]
async fn deleting_a_room_ends_its_call_for_everyone_in_it() {
    let world = World::alone();
    let (ada_user, bob_user) = (world.user("ada"), world.user("bob"));
    let mut ada = world.join(&ada_user, "lobby").await;
    let mut bob = world.join(&bob_user, "lobby").await;
    let mut carol = world.join(&world.user("carol"), "lobby").await;
    let mut dave = world.join(&world.user("dave"), "other").await;
    [&mut ada, &mut bob]
        .into_iter()
        .for_each(|s| drop(events(s)));

    let by_guest = world.hub.delete_room(&name("lobby"), bob_user.id).await;
    assert!(matches!(by_guest, Err(AppError::NotRoomOwner)));
    assert_eq!(closed(&bob), None);

    world
        .hub
        .delete_room(&name("lobby"), ada_user.id)
        .await
        .unwrap();
    let everyone = [&ada.peer_id, &bob.peer_id, &carol.peer_id].map(Clone::clone);
    for session in [&mut ada, &mut bob, &mut carol] {
        let mut told: Vec<PeerId> = events(session)
            .into_iter()
            .map(|event| match event {
                RoomEvent::PeerLeft {
                    peer_id,
                    reason: LeaveReason::RoomDeleted,
                } => peer_id,
                other => panic!("{other:?}"),
            })
            .collect();
        let mut others: Vec<PeerId> = everyone
            .iter()
            .filter(|id| **id != session.peer_id)
            .cloned()
            .collect();
        told.sort();
        others.sort();
        assert_eq!(told, others);
        assert_eq!(closed(session), Some(CloseReason::RoomDeleted));
    }
    assert_eq!(world.rooms.find(&name("lobby")).await.unwrap(), None);
    assert!(world.present("lobby").await.is_empty());
    assert_eq!((events(&mut dave), closed(&dave)), (vec![], None));
    assert_eq!(world.hub.local_room_count(), 1);

    let anew = world.join(&bob_user, "lobby").await;
    assert!(anew.welcome.owner, "the name is free again");
    assert!(anew.welcome.chat.is_empty());
}

#[tokio::test]
async fn deleting_an_owners_rooms_ends_each_of_their_calls_and_no_one_elses() {
    let world = World::alone();
    let (ada_user, bob_user) = (world.user("ada"), world.user("bob"));
    let in_lobby = world.join(&ada_user, "lobby").await;
    let guest = world.join(&bob_user, "lobby").await;
    let in_other = world.join(&ada_user, "other").await;
    let in_bobs = world.join(&bob_user, "bobs").await;
    let _empty = world
        .rooms
        .create(&name("empty"), ada_user.id)
        .await
        .unwrap();

    world.hub.delete_rooms_of(ada_user.id).await.unwrap();
    for session in [&in_lobby, &guest, &in_other] {
        assert_eq!(closed(session), Some(CloseReason::RoomDeleted));
    }
    assert_eq!(closed(&in_bobs), None);
    let (left, _) = world.rooms.list(None, 10).await.unwrap();
    let names: Vec<&str> = left.iter().map(|r| r.room.name.as_str()).collect();
    assert_eq!(names, ["bobs"]);
}

// Revocations and shutdown.

#[tokio::test]
async fn ending_a_login_closes_its_connections_and_revoking_a_user_all_theirs() {
    let world = World::alone();
    let ada_user = world.user("ada");
    let login = Uuid::new_v4();
    let mut of_login = Vec::new();
    for room in ["lobby", "other"] {
        let request = JoinRequest {
            login,
            ..request(&ada_user, room)
        };
        of_login.push(world.hub.join(request).await.unwrap());
    }
    let another_login = world.join(&ada_user, "third").await;
    let mut bob = world.join(&world.user("bob"), "lobby").await;

    world.hub.end_login(login).await;
    for session in &of_login {
        assert_eq!(closed(session), Some(CloseReason::TokenRevoked));
    }
    assert_eq!(closed(&another_login), None);
    assert_eq!(closed(&bob), None);
    assert_eq!(events(&mut bob), [left(&of_login[0], LeaveReason::Left)]);

    world.hub.revoke_user(ada_user.id).await;
    assert_eq!(closed(&another_login), Some(CloseReason::TokenRevoked));
    assert_eq!(closed(&bob), None);
    assert_eq!(world.hub.local_peer_count(), 1);
    assert!(world.present("third").await.is_empty());
}

#[tokio::test]
async fn shutdown_closes_every_connection() {
    let world = World::alone();
    let ada = world.join(&world.user("ada"), "lobby").await;
    let bob = world.join(&world.user("bob"), "other").await;
    world.hub.shutdown();
    assert_eq!(closed(&ada), Some(CloseReason::Shutdown));
    assert_eq!(closed(&bob), Some(CloseReason::Shutdown));
}

// With other instances.

#[tokio::test]
async fn events_and_commands_are_published_to_the_other_instances() {
    let world = World::clustered();
    let ada_user = world.user("ada");
    let ada = world.join(&ada_user, "lobby").await;
    let bob = world.join(&world.user("bob"), "lobby").await;
    let published = world.cluster().take_published();
    let joined: Vec<&PeerId> = published
        .iter()
        .filter_map(|message| match message {
            ClusterMessage::Event(Envelope {
                event: RoomEvent::PeerJoined { peer },
                except,
                ..
            }) if except.as_ref() == Some(&peer.peer_id) => Some(&peer.peer_id),
            _ => None,
        })
        .collect();
    assert_eq!(joined, [&ada.peer_id, &bob.peer_id]);

    world.hub.chat(&bob.peer_id, "hi").await.unwrap();
    let published = world.cluster().take_published();
    assert!(matches!(
        &published[..],
        [ClusterMessage::Event(Envelope { event: RoomEvent::Chat { message }, to: None, .. })]
            if message.text == "hi"
    ));

    world
        .hub
        .kick(&ada.peer_id, &bob.peer_id, false)
        .await
        .unwrap();
    let kick = ClusterMessage::Command(Command::Kick {
        room: name("lobby"),
        peer_id: bob.peer_id.clone(),
    });
    let departure = ClusterMessage::Event(Envelope {
        room: name("lobby"),
        to: None,
        except: Some(bob.peer_id.clone()),
        event: left(&bob, LeaveReason::Kicked),
    });
    assert_eq!(world.cluster().take_published(), [kick, departure]);

    let login = Uuid::new_v4();
    world.hub.end_login(login).await;
    world.hub.revoke_user(ada_user.id).await;
    let published = world.cluster().take_published();
    for command in [
        Command::EndLogin { login },
        Command::RevokeUser { user: ada_user.id },
    ] {
        assert!(
            published.contains(&ClusterMessage::Command(command.clone())),
            "{command:?} in {published:?}"
        );
    }
}

#[tokio::test]
async fn what_another_instance_sends_reaches_the_local_peers_it_is_for() {
    let world = World::clustered();
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let mut bob = world.join(&world.user("bob"), "lobby").await;
    let mut dave = world.join(&world.user("dave"), "other").await;
    drop(events(&mut ada));
    world.cluster().take_published();

    let remote = PeerId::from_client("remote");
    let from_remote = RoomEvent::Signal {
        from: remote.clone(),
        data: "offer".into(),
    };
    world
        .hub
        .receive(ClusterMessage::Event(Envelope {
            room: name("lobby"),
            to: Some(bob.peer_id.clone()),
            except: None,
            event: from_remote.clone(),
        }))
        .await;
    let gone = RoomEvent::PeerLeft {
        peer_id: remote,
        reason: LeaveReason::Left,
    };
    world
        .hub
        .receive(ClusterMessage::Event(Envelope {
            room: name("lobby"),
            to: None,
            except: None,
            event: gone.clone(),
        }))
        .await;
    assert_eq!(events(&mut bob), [from_remote, gone.clone()]);
    assert_eq!(events(&mut ada), [gone]);
    assert_eq!(events(&mut dave), []);

    world
        .hub
        .receive(ClusterMessage::Command(Command::Kick {
            room: name("lobby"),
            peer_id: bob.peer_id.clone(),
        }))
        .await;
    assert_eq!(closed(&bob), Some(CloseReason::Kicked));
    assert_eq!(closed(&ada), None);
    assert_eq!(
        world.cluster().take_published(),
        [],
        "what others sent is not sent on"
    );
}

#[tokio::test]
async fn a_peer_of_a_crashed_instance_is_announced_once_as_timed_out() {
    let world = World::clustered();
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    world.cluster().take_published();
    let remote = PeerId::from_client("remote");
    world.hub.departed(name("lobby"), remote.clone()).await;
    let timed_out = RoomEvent::PeerLeft {
        peer_id: remote.clone(),
        reason: LeaveReason::Timeout,
    };
    assert_eq!(events(&mut ada), std::slice::from_ref(&timed_out));
    assert_eq!(
        world.cluster().take_published(),
        [ClusterMessage::Event(Envelope {
            room: name("lobby"),
            to: None,
            except: Some(remote),
            event: timed_out,
        })]
    );
}

#[tokio::test]
async fn what_could_not_be_published_is_published_once_the_cluster_is_back_but_not_signals() {
    let world = World::clustered();
    let ada = world.join(&world.user("ada"), "lobby").await;
    let remote = PeerInfo {
        peer_id: PeerId::from_client("remote"),
        user_id: world.user("bob").id,
        username: "bob".into(),
        state: PeerState::default(),
        host: false,
        guest: false,
    };
    world
        .presence
        .join(&name("lobby"), &remote, 16)
        .await
        .unwrap();
    world.cluster().take_published();

    world.cluster().set_down(true);
    world
        .hub
        .signal(&ada.peer_id, &remote.peer_id, "stale soon".into())
        .await
        .unwrap();
    world.hub.chat(&ada.peer_id, "kept").await.unwrap();
    assert_eq!(world.cluster().take_published(), []);

    world.cluster().set_down(false);
    world.hub.reconnected().await.unwrap();
    let restored = world.cluster().restored();
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0].info.peer_id, ada.peer_id);
    assert_eq!(restored[0].resume_token, ada.welcome.resume_token);
    let published = world.cluster().take_published();
    assert_eq!(published.len(), 2, "{published:?}");
    assert!(matches!(
        &published[0],
        ClusterMessage::Event(Envelope { event: RoomEvent::Chat { message }, .. })
            if message.text == "kept"
    ));
    assert!(matches!(
        &published[1],
        ClusterMessage::Event(Envelope { event: RoomEvent::PeerJoined { peer }, .. })
            if peer.peer_id == ada.peer_id
    ));
    world.hub.reconnected().await.unwrap();
    assert_eq!(world.cluster().take_published().len(), 1, "published once");
}

#[tokio::test(start_paused = true)]
async fn a_peer_resumes_on_another_instance_and_its_old_home_forwards_what_it_kept() {
    let home = World::clustered();
    let other = home.another_instance();
    let bob_user = home.user("bob");
    let mut ada = home.join(&home.user("ada"), "lobby").await;
    let bob = home.join(&bob_user, "lobby").await;
    let mut carol = other.join(&home.user("carol"), "lobby").await;
    drop(events(&mut ada));
    home.cluster().take_published();
    other.cluster().take_published();

    // Bob's connection drops; carol, on the other instance, sends him a signal.
    home.hub.detach(&bob.peer_id, bob.generation);
    other
        .hub
        .signal(&carol.peer_id, &bob.peer_id, "offer".into())
        .await
        .unwrap();
    for message in other.cluster().take_published() {
        home.hub.receive(message).await;
    }

    // He comes back on the other instance.
    let mut back = other
        .resume(&bob_user, "lobby", &bob.welcome.resume_token)
        .await;
    assert!(back.welcome.resumed);
    assert_eq!(back.peer_id, bob.peer_id);
    let release = ClusterMessage::Command(Command::Release {
        room: name("lobby"),
        peer_id: bob.peer_id.clone(),
    });
    assert_eq!(
        other.cluster().take_published(),
        std::slice::from_ref(&release)
    );
    home.hub.receive(release).await;
    assert_eq!(home.hub.local_peer_count(), 1, "home let go of bob");
    for message in home.cluster().take_published() {
        other.hub.receive(message).await;
    }
    assert_eq!(events(&mut back), [signal_from(&carol, "offer")]);
    pass(GRACE).await;
    assert_eq!(events(&mut ada), [], "no churn on the old home");
    assert_eq!(events(&mut carol), [], "nor on the new one");
    assert_eq!(home.cluster().take_published(), []);
}

#[tokio::test]
async fn another_users_resume_token_is_a_fresh_join_on_another_instance_too() {
    let home = World::clustered();
    let other = home.another_instance();
    let (bob_user, carol_user) = (home.user("bob"), home.user("carol"));
    let bob = home.join(&bob_user, "lobby").await;
    home.hub.detach(&bob.peer_id, bob.generation);
    other.cluster().take_published();

    let carol = other
        .resume(&carol_user, "lobby", &bob.welcome.resume_token)
        .await;
    assert!(!carol.welcome.resumed);
    assert_ne!(carol.peer_id, bob.peer_id);
    let released = other
        .cluster()
        .take_published()
        .into_iter()
        .any(|message| matches!(message, ClusterMessage::Command(Command::Release { .. })));
    assert!(!released, "bob's home keeps him");
    assert_eq!(home.hub.local_peer_count(), 1);
}
