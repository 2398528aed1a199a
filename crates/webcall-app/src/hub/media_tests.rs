//! Routed calls in the hub (`media`, `recording`): when a room switches and
//! who is told, the `sfu` frames' way to the media end and back, sessions
//! ended when their peer leaves or the room goes back to mesh, recordings
//! started and stopped, old clients told to reload. The media end and the
//! recorder are small in-memory stand-ins that write down what they are asked
//! (the real ones have their own tests); the stand-in media end answers an
//! offer from inside the call, as the real one may. Over 500 lines: one test
//! per rule, each a whole scenario, and the two stand-ins they share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use webcall_domain::media::{
    MediaMode, MediaRouter, RecordedFrame, Recorder, RecordingId, RecordingSummary, RoomRecording,
    SfuReplies, SfuReply, SfuSignal,
};
use webcall_domain::signaling::{ModeReason, PeerId, RoomEvent, RoomName};
use webcall_domain::DomainError;

use super::tests::{config, events, name, request, World};
use super::{Session, SignalingConfig};
use crate::error::MediaRefusal;
use crate::AppError;

/// What the stand-ins were asked, in order.
#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl Log {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

#[derive(Default)]
struct FakeRouter {
    log: Arc<Log>,
    replies: Mutex<HashMap<PeerId, SfuReplies>>,
    recordings: Mutex<HashMap<RoomName, Box<dyn RoomRecording>>>,
}

impl MediaRouter for FakeRouter {
    fn open(
        &self,
        room: &RoomName,
        peer: &PeerId,
        username: &str,
        replies: SfuReplies,
    ) -> Result<(), DomainError> {
        self.log.push(format!("open {room} {peer} {username}"));
        self.replies.lock().unwrap().insert(peer.clone(), replies);
        Ok(())
    }

    fn signal(&self, peer: &PeerId, signal: SfuSignal) {
        let kind = match &signal {
            SfuSignal::Offer { .. } => "offer",
            SfuSignal::Answer { .. } => "answer",
            SfuSignal::Candidate { .. } => "candidate",
            SfuSignal::View { .. } => "view",
        };
        self.log.push(format!("signal {peer} {kind}"));
        let replies = self.replies.lock().unwrap().get(peer).cloned();
        if let (SfuSignal::Offer { .. }, Some(replies)) = (signal, replies) {
            replies(SfuReply::Answer {
                sdp: "v=0 answer".into(),
                tracks: vec![],
            });
        }
    }

    fn close(&self, peer: &PeerId) {
        self.log.push(format!("close {peer}"));
        self.replies.lock().unwrap().remove(peer);
    }

    fn record(
        &self,
        room: &RoomName,
        recording: Box<dyn RoomRecording>,
    ) -> Result<(), DomainError> {
        self.log.push(format!("record {room}"));
        self.recordings
            .lock()
            .unwrap()
            .insert(room.clone(), recording);
        Ok(())
    }

    fn stop_recording(&self, room: &RoomName) -> bool {
        let recording = self.recordings.lock().unwrap().remove(room);
        self.log.push(format!("stop {room}"));
        recording.map(|r| r.finish()).is_some()
    }
}

struct FakeRecorder(Arc<Log>);

struct FakeRecording(Arc<Log>, RecordingId);

impl RoomRecording for FakeRecording {
    fn frame(&mut self, _: RecordedFrame<'_>) {}
    fn left(&mut self, _: &PeerId) {}
    fn finish(self: Box<Self>) {
        self.0.push(format!("finish {}", self.1));
    }
}

impl Recorder for FakeRecorder {
    fn start(
        &self,
        room: &RoomName,
        id: &RecordingId,
        by: &str,
    ) -> Result<Box<dyn RoomRecording>, DomainError> {
        self.0.push(format!("start {room} by {by}"));
        Ok(Box::new(FakeRecording(self.0.clone(), id.clone())))
    }
    fn list(&self, _: &RoomName) -> Result<Vec<RecordingSummary>, DomainError> {
        Ok(vec![])
    }
    fn file_path(
        &self,
        _: &RoomName,
        _: &RecordingId,
        _: &str,
    ) -> Result<Option<std::path::PathBuf>, DomainError> {
        Ok(None)
    }
    fn delete(&self, _: &RoomName, _: &RecordingId) -> Result<bool, DomainError> {
        Ok(false)
    }
}

/// A routed world: the media end and the recorder write into `log`.
fn routed(from_peers: Option<usize>) -> (World, Arc<Log>) {
    let (world, log, _) = routed_through(from_peers);
    (world, log)
}

/// As [`routed`], with the fake media end (to act as it would).
fn routed_through(from_peers: Option<usize>) -> (World, Arc<Log>, Arc<FakeRouter>) {
    let log = Arc::new(Log::default());
    let router = Arc::new(FakeRouter {
        log: log.clone(),
        ..FakeRouter::default()
    });
    let config = SignalingConfig {
        max_peers: 8,
        sfu_from_peers: from_peers,
        ..config()
    };
    let world = World::routed(config, router.clone(), Arc::new(FakeRecorder(log.clone())));
    (world, log, router)
}

/// `n` peers in `room` who know routed calls (the first owns it), their
/// arrivals read.
async fn peers(world: &World, room: &str, n: usize) -> Vec<Session> {
    let mut joined: Vec<Session> = Vec::new();
    for i in 0..n {
        let user = world.user(&format!("user{i}"));
        let session = world.hub.join(new_client(&user, room)).await.unwrap();
        joined.push(session);
    }
    for session in &mut joined {
        events(session);
    }
    joined
}

fn new_client(user: &webcall_domain::model::User, room: &str) -> super::JoinRequest {
    super::JoinRequest {
        sfu: true,
        ..request(user, room)
    }
}

fn mode_event(mode: MediaMode, by: Option<&Session>, reason: ModeReason) -> RoomEvent {
    RoomEvent::MediaMode {
        mode,
        by: by.map(|s| s.peer_id.clone()),
        reason,
    }
}

fn offer() -> SfuSignal {
    SfuSignal::Offer {
        sdp: "v=0 offer".into(),
        tracks: vec![],
        fresh: false,
    }
}

fn refusal(result: Result<(), AppError>) -> MediaRefusal {
    match result {
        Err(AppError::Media(refusal)) => refusal,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_join_that_reaches_the_size_routes_the_room_and_tells_the_others_first() {
    let (world, _) = routed(Some(5));
    let mut four = peers(&world, "team", 4).await;
    assert!(four
        .iter()
        .all(|s| s.welcome.media_mode == MediaMode::Mesh && s.welcome.sfu_available));
    assert_eq!(four[0].welcome.sfu_from_peers, Some(5));
    let fifth = world
        .hub
        .join(new_client(&world.user("eve"), "team"))
        .await
        .unwrap();
    assert_eq!(fifth.welcome.media_mode, MediaMode::Sfu);
    for session in &mut four {
        let seen = events(session);
        assert_eq!(seen[0], mode_event(MediaMode::Sfu, None, ModeReason::Size));
        assert!(
            matches!(&seen[1], RoomEvent::PeerJoined { peer } if peer.peer_id == fifth.peer_id)
        );
        assert_eq!(seen.len(), 2, "{seen:?}");
    }
    // A sixth joins a routed room; nothing switches again.
    let sixth = world.join(&world.user("fay"), "team").await;
    assert_eq!(sixth.welcome.media_mode, MediaMode::Sfu);
    let seen = events(&mut four[0]);
    assert!(matches!(seen.as_slice(), [RoomEvent::PeerJoined { .. }]));
}

#[tokio::test]
async fn without_a_size_a_room_is_never_routed_by_its_joins() {
    let (world, _) = routed(None);
    let sessions = peers(&world, "team", 8).await;
    assert!(sessions
        .iter()
        .all(|s| s.welcome.media_mode == MediaMode::Mesh));
    assert_eq!(sessions[0].welcome.sfu_from_peers, None);
}

#[tokio::test]
async fn an_old_client_is_told_to_reload_when_its_room_is_routed_and_its_signals_are_refused() {
    let (world, _) = routed(Some(3));
    let mut old = world.join(&world.user("old"), "team").await;
    let mut new = peers(&world, "team", 1).await.remove(0);
    events(&mut old);
    let third = world.join(&world.user("late"), "team").await;
    let seen = events(&mut old);
    assert_eq!(seen[0], mode_event(MediaMode::Sfu, None, ModeReason::Size));
    assert_eq!(seen[1], RoomEvent::UpdateRequired);
    assert!(!events(&mut new).contains(&RoomEvent::UpdateRequired));
    // The old joiner that switched it is told too, after its welcome.
    let mut third = third;
    assert!(events(&mut third).contains(&RoomEvent::UpdateRequired));
    let refused = world
        .hub
        .signal(&old.peer_id, &new.peer_id, "{}".into())
        .await;
    assert_eq!(refusal(refused), MediaRefusal::UpdateRequired);
    // A new client's stale mesh signal is dropped, not relayed.
    world
        .hub
        .signal(&new.peer_id, &old.peer_id, "{}".into())
        .await
        .unwrap();
    assert!(events(&mut old).is_empty());
}

#[tokio::test]
async fn a_hosts_request_switches_the_room_a_members_is_refused() {
    let (world, log) = routed(None);
    let mut s = peers(&world, "team", 2).await;
    let member = world.hub.request_media_mode(&s[1].peer_id, MediaMode::Sfu);
    assert!(matches!(member.await, Err(AppError::NotRoomOwner)));
    world
        .hub
        .request_media_mode(&s[0].peer_id, MediaMode::Sfu)
        .await
        .unwrap();
    let switched = mode_event(MediaMode::Sfu, Some(&s[0]), ModeReason::Host);
    for session in &mut s {
        assert_eq!(events(session), std::slice::from_ref(&switched));
    }
    // Both open sessions; back to mesh ends them.
    for session in &mut s {
        world.hub.sfu(&session.peer_id, offer()).unwrap();
        events(session);
    }
    log.take();
    world
        .hub
        .request_media_mode(&s[0].peer_id, MediaMode::Mesh)
        .await
        .unwrap();
    let mut closed = log.take();
    closed.sort();
    let mut expected: Vec<String> = s.iter().map(|p| format!("close {}", p.peer_id)).collect();
    expected.sort();
    assert_eq!(closed, expected);
    assert_eq!(
        events(&mut s[1]),
        [mode_event(MediaMode::Mesh, Some(&s[0]), ModeReason::Host)]
    );
    let refused = world.hub.sfu(&s[1].peer_id, offer());
    assert_eq!(refusal(refused), MediaRefusal::NotRouted);
}

#[tokio::test]
async fn the_first_offer_opens_a_session_whose_replies_reach_only_its_peer() {
    let (world, log) = routed(Some(2));
    let mut s = peers(&world, "team", 2).await;
    let (a, b) = (s[0].peer_id.clone(), s[1].peer_id.clone());
    let candidate = SfuSignal::Candidate {
        candidate: "candidate:1".into(),
        sdp_mid: None,
    };
    world.hub.sfu(&a, candidate.clone()).unwrap();
    let seen = events(&mut s[0]);
    assert!(
        matches!(&seen[..], [RoomEvent::Sfu { reply: SfuReply::Error { code, .. } }] if code == "no_session"),
        "{seen:?}"
    );
    world.hub.sfu(&a, offer()).unwrap();
    world.hub.sfu(&a, candidate).unwrap();
    world.hub.sfu(&a, offer()).unwrap();
    assert_eq!(
        log.take(),
        [
            format!("open team {a} user0"),
            format!("signal {a} offer"),
            format!("signal {a} candidate"),
            format!("signal {a} offer"),
        ]
    );
    let answers = events(&mut s[0]);
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().all(|e| matches!(
        e,
        RoomEvent::Sfu {
            reply: SfuReply::Answer { .. }
        }
    )));
    assert!(events(&mut s[1]).is_empty());
    // Leaving ends the session.
    world.hub.leave(&a, s[0].generation).await;
    assert_eq!(log.take(), [format!("close {a}")]);
    let _ = b;
}

#[tokio::test]
async fn a_session_the_media_end_lost_is_opened_again_by_the_next_offer() {
    let (world, log, router) = routed_through(Some(1));
    let mut s = peers(&world, "team", 1).await;
    let a = s[0].peer_id.clone();
    world.hub.sfu(&a, offer()).unwrap();
    world.hub.sfu(&a, offer()).unwrap();
    assert_eq!(log.take()[0], format!("open team {a} user0"), "once");
    events(&mut s[0]);
    // The media end drops the session (its connection was lost) and says so.
    let replies = router.replies.lock().unwrap().get(&a).cloned().unwrap();
    replies(SfuReply::Error {
        code: "failed".into(),
        message: "the media connection was lost".into(),
    });
    let seen = events(&mut s[0]);
    assert!(
        matches!(&seen[..], [RoomEvent::Sfu { reply: SfuReply::Error { code, .. } }] if code == "failed"),
        "{seen:?}"
    );
    world.hub.sfu(&a, offer()).unwrap();
    assert_eq!(
        log.take(),
        [format!("open team {a} user0"), format!("signal {a} offer")]
    );
    // A failure of a session already replaced changes nothing.
    replies(SfuReply::Error {
        code: "failed".into(),
        message: "late".into(),
    });
    world.hub.sfu(&a, offer()).unwrap();
    assert_eq!(log.take(), [format!("signal {a} offer")]);
}

#[tokio::test]
async fn a_fresh_offer_replaces_the_session_a_later_one_does_not() {
    let (world, log) = routed(Some(1));
    let _s = peers(&world, "team", 1).await;
    let a = _s[0].peer_id.clone();
    let fresh = || SfuSignal::Offer {
        sdp: "v=0 offer".into(),
        tracks: vec![],
        fresh: true,
    };
    world.hub.sfu(&a, fresh()).unwrap();
    world.hub.sfu(&a, offer()).unwrap();
    world.hub.sfu(&a, fresh()).unwrap();
    assert_eq!(
        log.take(),
        [
            format!("open team {a} user0"),
            format!("signal {a} offer"),
            format!("signal {a} offer"),
            format!("open team {a} user0"),
            format!("signal {a} offer"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_peer_keeps_its_session_for_the_grace_and_offers_anew_after_its_resume() {
    let (world, log) = routed(Some(1));
    let user = world.user("ada");
    let first = world.hub.join(new_client(&user, "team")).await.unwrap();
    let peer = first.peer_id.clone();
    world.hub.sfu(&peer, offer()).unwrap();
    log.take();
    world.hub.detach(&peer, first.generation);
    let resume = super::JoinRequest {
        resume: Some(first.welcome.resume_token.clone()),
        ..new_client(&user, "team")
    };
    let mut back = world.hub.join(resume).await.unwrap();
    assert_eq!(back.welcome.media_mode, MediaMode::Sfu);
    assert!(log.take().is_empty(), "the session lives on");
    world.hub.sfu(&peer, offer()).unwrap();
    assert_eq!(log.take()[0], format!("open team {peer} ada"));
    events(&mut back);
    // Gone for good once the grace passes.
    world.hub.detach(&peer, back.generation);
    tokio::time::sleep(config().resume_grace + Duration::from_secs(1)).await;
    assert_eq!(log.take(), [format!("close {peer}")]);
}

#[tokio::test]
async fn a_recording_routes_the_room_everyone_is_told_and_it_stops_by_a_host_or_when_the_room_empties(
) {
    let (world, log) = routed(None);
    let mut s = peers(&world, "team", 2).await;
    let (host, member) = (s[0].peer_id.clone(), s[1].peer_id.clone());
    assert!(matches!(
        world.hub.start_recording(&member).await,
        Err(AppError::NotRoomOwner)
    ));
    world.hub.start_recording(&host).await.unwrap();
    assert_eq!(log.take(), ["start team by user0", "record team"]);
    let seen = events(&mut s[1]);
    assert_eq!(
        seen[0],
        mode_event(MediaMode::Sfu, Some(&s[0]), ModeReason::Recording)
    );
    let RoomEvent::RecordingStarted { recording } = &seen[1] else {
        panic!("{seen:?}")
    };
    assert_eq!(
        (&recording.by, recording.username.as_str()),
        (&host, "user0")
    );
    let late = world.join(&world.user("late"), "team").await;
    assert_eq!(late.welcome.recording.as_ref(), Some(recording));
    let again = world.hub.start_recording(&host).await;
    assert_eq!(refusal(again), MediaRefusal::RecordingRunning);
    let mesh = world.hub.request_media_mode(&host, MediaMode::Mesh).await;
    assert_eq!(refusal(mesh), MediaRefusal::RecordingRunning);
    world.hub.stop_recording(&host).await.unwrap();
    let id = recording.id.clone();
    assert_eq!(log.take(), ["stop team".to_owned(), format!("finish {id}")]);
    assert_eq!(
        events(&mut s[1]).last(),
        Some(&RoomEvent::RecordingStopped {
            id,
            by: Some(host.clone())
        })
    );
    let stopped = world.hub.stop_recording(&host).await;
    assert_eq!(refusal(stopped), MediaRefusal::NotRecording);

    // One more, left running: the room empties and it stops.
    world.hub.start_recording(&host).await.unwrap();
    log.take();
    for session in [&s[0], &s[1], &late] {
        world.hub.leave(&session.peer_id, session.generation).await;
    }
    let log = log.take();
    assert!(log.contains(&"stop team".to_owned()), "{log:?}");
    assert!(log.iter().any(|l| l.starts_with("finish ")), "{log:?}");
}

#[tokio::test]
async fn shutting_down_stops_every_recording() {
    let (world, log) = routed(None);
    let s = peers(&world, "team", 1).await;
    world.hub.start_recording(&s[0].peer_id).await.unwrap();
    log.take();
    world.hub.shutdown();
    let log = log.take();
    assert_eq!(log[0], "stop team", "{log:?}");
}

#[tokio::test]
async fn with_other_instances_rooms_are_never_routed() {
    let first = World::clustered();
    let router = Arc::new(FakeRouter::default());
    let world = first.another_routed_instance(router.clone());
    let mut joined = Vec::new();
    for i in 0..3 {
        let user = world.user(&format!("user{i}"));
        joined.push(world.hub.join(new_client(&user, "team")).await.unwrap());
    }
    let welcome = &joined[2].welcome;
    assert_eq!(
        (
            welcome.media_mode,
            welcome.sfu_available,
            welcome.sfu_from_peers
        ),
        (MediaMode::Mesh, false, None)
    );
    let refused = world
        .hub
        .request_media_mode(&joined[0].peer_id, MediaMode::Sfu)
        .await;
    assert_eq!(refusal(refused), MediaRefusal::SfuUnavailable);
    let refused = world.hub.sfu(&joined[0].peer_id, offer());
    assert_eq!(refusal(refused), MediaRefusal::SfuUnavailable);
    assert!(router.log.take().is_empty());
    let _ = name("team");
}
