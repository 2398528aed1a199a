//! The attachments use cases on the in-memory store and files: who may upload
//! and download, the limits (size, in flight, quotas) and that every way an
//! upload ends gives its reservation back and leaves no partial file,
//! deletion, the sweep, and a deleted room's files.
//!
//! Over 500 lines: one test per way an upload can end, each on its own
//! world, with the stand-in bodies (chunks, a stalled client, one that must
//! not be read) they share kept beside them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use sha2::{Digest, Sha256};
use webcall_domain::access::Access;
use webcall_domain::access::RoomAccess;
use webcall_domain::attachments::AttachmentRepository;
use webcall_domain::model::{Role, User};
use webcall_domain::ports::RoomAccessRepository;
use webcall_domain::ports::{ChatRepository, RoomRepository};

use super::*;
use crate::error::Quota;
use crate::hub::{HubDeps, SignalingConfig};
use crate::ice::IceServersService;
use crate::presence::InProcessPresence;
use crate::room_access::AccessDeps;
use crate::rooms::{RoomDeps, RoomLimits};
use crate::testing::{FakeThumbnailer, FastHasher, ManualClock, MemoryFiles, MemoryStore};
use crate::throttle::ThrottleConfig;

struct World {
    store: Arc<MemoryStore>,
    files: Arc<MemoryFiles>,
    clock: Arc<ManualClock>,
    hub: Arc<Hub>,
    attachments: Arc<Attachments>,
}

fn world(limits: AttachmentLimits) -> World {
    let store = Arc::new(MemoryStore::default());
    let files = Arc::new(MemoryFiles::default());
    let presence = Arc::new(InProcessPresence::default());
    let clock = Arc::new(ManualClock::default());
    let rooms = Arc::new(RoomService::new(
        RoomDeps {
            rooms: store.clone(),
            chat: store.clone(),
            presence: presence.clone(),
            clock: clock.clone(),
        },
        RoomLimits::default(),
    ));
    let hub = Hub::new(
        HubDeps {
            rooms: rooms.clone(),
            chat: store.clone(),
            moderation: store.clone(),
            access: store.clone(),
            presence: presence.clone(),
            cluster: None,
            ice: Arc::new(IceServersService::new(vec![], vec![], clock.clone())),
            media: None,
            recorder: None,
            clock: clock.clone(),
        },
        SignalingConfig::default(),
    );
    let access = Arc::new(AccessService::new(
        AccessDeps {
            rooms: rooms.clone(),
            access: store.clone(),
            moderation: store.clone(),
            users: store.clone(),
            hasher: Arc::new(FastHasher::default()),
            presence: presence.clone(),
            clock: clock.clone(),
            hub: hub.clone(),
        },
        ThrottleConfig::default(),
    ));
    let attachments = Attachments::new(
        AttachmentsDeps {
            records: store.clone(),
            files: files.clone(),
            thumbnailer: Arc::new(FakeThumbnailer),
            access,
            rooms,
            presence,
            hub: hub.clone(),
            clock: clock.clone(),
        },
        limits,
    );
    let hook: Arc<dyn RoomFiles> = attachments.clone();
    assert!(hub.files_with(&hook));
    World {
        store,
        files,
        clock,
        hub,
        attachments,
    }
}

fn room(raw: &str) -> RoomName {
    RoomName::parse(raw).unwrap()
}

fn account(user: &User) -> FileCaller {
    FileCaller::Account {
        caller: caller(user),
        username: user.username.as_str().to_owned(),
    }
}

fn caller(user: &User) -> Caller {
    Caller {
        user: user.id,
        role: Role::Member,
    }
}

fn request(name: &str, len: u64) -> UploadRequest {
    UploadRequest {
        room: room("team"),
        pass: None,
        name: name.into(),
        content_type: Some("text/plain".into()),
        declared_len: Some(len),
        peer: None,
    }
}

/// A body of these chunks (an `Err` is a client gone mid-body).
struct Chunks(VecDeque<Result<Bytes, AppError>>);

impl Chunks {
    fn of(bytes: &[u8]) -> Self {
        Self(
            bytes
                .chunks(3)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect(),
        )
    }
}

#[async_trait]
impl UploadBody for Chunks {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, AppError> {
        self.0.pop_front().transpose()
    }
}

/// A body that never ends (a slow client).
struct Stalled;

#[async_trait]
impl UploadBody for Stalled {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, AppError> {
        std::future::pending().await
    }
}

/// A body that must not be read.
struct Untouched;

#[async_trait]
impl UploadBody for Untouched {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, AppError> {
        panic!("the body was read");
    }
}

async fn with_room(w: &World, access: Access) -> User {
    let owner = w.store.add_user("ada");
    w.store
        .create_room_with_access(
            &room("team"),
            owner.id,
            Utc::now(),
            10,
            &RoomAccess {
                access,
                ..RoomAccess::default()
            },
        )
        .await
        .unwrap();
    owner
}

/// Nothing of an upload stays anywhere: no file, no unfinished upload, no
/// reservation.
fn nothing_left(w: &World, user: &User) {
    assert_eq!(w.files.keys(), Vec::<String>::new());
    assert_eq!(w.files.open_uploads(), 0);
    assert_eq!(w.attachments.in_flight(user.id), (0, 0));
}

#[tokio::test]
async fn an_upload_is_stored_whole_with_its_hash_and_becomes_a_chat_message() {
    let w = world(AttachmentLimits::default());
    let ada = with_room(&w, Access::Public).await;
    let body = b"hello, files".to_vec();
    let message = w
        .attachments
        .upload(
            account(&ada),
            request("../../notes\u{202E}.txt", body.len() as u64),
            Chunks::of(&body),
        )
        .await
        .unwrap();
    let file = message.attachment.as_deref().unwrap();
    assert_eq!(file.name, "notes.txt");
    assert_eq!(file.size, body.len() as u64);
    assert_eq!(file.content_type, "text/plain");
    assert_eq!(file.thumbnail, None);
    assert_eq!(message.text, "");
    assert_eq!(message.username, "ada");
    let id = AttachmentId::parse(&file.id).unwrap();
    assert_eq!(w.files.get(&id.file_key()).unwrap(), body);
    let record = w.store.attachment(&id).await.unwrap().unwrap();
    assert_eq!(record.sha256, format!("{:x}", Sha256::digest(&body)));
    assert_eq!(record.message_id, message.id);
    assert_eq!(w.attachments.in_flight(ada.id), (0, 0));
    // The room's history has it.
    let found = w
        .attachments
        .find(&account(&ada), &room("team"), &file.id, None)
        .await
        .unwrap();
    assert_eq!(found.id, id);
}

#[tokio::test]
async fn an_image_gets_a_preview_stored_beside_it() {
    let w = world(AttachmentLimits::default());
    let ada = with_room(&w, Access::Public).await;
    let body = b"IMG pixels".to_vec();
    let message = w
        .attachments
        .upload(account(&ada), request("cat.png", 10), Chunks::of(&body))
        .await
        .unwrap();
    let file = message.attachment.as_deref().unwrap();
    assert_eq!(file.thumbnail, Some((2, 1)));
    let record = w
        .attachments
        .find(&account(&ada), &room("team"), &file.id, None)
        .await
        .unwrap();
    let (preview, media_type) = w.attachments.thumbnail(&record).await.unwrap();
    assert_eq!(preview, FakeThumbnailer::PREVIEW);
    assert_eq!(media_type, "image/png");
}

#[tokio::test]
async fn a_file_that_is_no_image_is_not_read_back_for_a_preview() {
    let w = world(AttachmentLimits::default());
    let ada = with_room(&w, Access::Public).await;
    let body = vec![b'x'; 1_000_000];
    let message = w
        .attachments
        .upload(
            account(&ada),
            request("notes.txt", 1_000_000),
            Chunks::of(&body),
        )
        .await
        .unwrap();
    assert_eq!(message.attachment.as_deref().unwrap().thumbnail, None);
    assert!(w.files.bytes_read() <= 32, "read {}", w.files.bytes_read());
}

#[tokio::test]
async fn guests_non_members_and_oversized_files_are_refused_before_the_body_is_read() {
    let w = world(AttachmentLimits {
        max_bytes: 100,
        ..AttachmentLimits::default()
    });
    let ada = with_room(&w, Access::Private).await;
    let bob = w.store.add_user("bob");
    let guest = FileCaller::Guest { room: room("team") };
    assert!(matches!(
        w.attachments
            .upload(guest, request("a", 1), Untouched)
            .await,
        Err(AppError::GuestUploadForbidden)
    ));
    assert!(matches!(
        w.attachments
            .upload(account(&ada), request("a", 101), Untouched)
            .await,
        Err(AppError::FileTooLarge { max: 100 })
    ));
    let mut no_length = request("a", 1);
    no_length.declared_len = None;
    assert!(matches!(
        w.attachments
            .upload(account(&ada), no_length, Untouched)
            .await,
        Err(AppError::LengthRequired)
    ));
    assert!(matches!(
        w.attachments
            .upload(account(&bob), request("a", 1), Untouched)
            .await,
        Err(AppError::RoomPrivate)
    ));
    let mut elsewhere = request("a", 1);
    elsewhere.room = room("nowhere");
    assert!(matches!(
        w.attachments
            .upload(account(&ada), elsewhere, Untouched)
            .await,
        Err(AppError::RoomNotFound)
    ));
    nothing_left(&w, &ada);
}

#[tokio::test]
async fn a_body_longer_or_shorter_than_declared_or_cut_off_leaves_nothing() {
    let w = world(AttachmentLimits::default());
    let ada = with_room(&w, Access::Public).await;
    for (declared, body) in [(5, Chunks::of(b"too long")), (50, Chunks::of(b"short"))] {
        assert!(matches!(
            w.attachments
                .upload(account(&ada), request("a", declared), body)
                .await,
            Err(AppError::SizeMismatch)
        ));
        nothing_left(&w, &ada);
    }
    let cut = Chunks(VecDeque::from([
        Ok(Bytes::from_static(b"abc")),
        Err(AppError::SizeMismatch),
    ]));
    assert!(matches!(
        w.attachments
            .upload(account(&ada), request("a", 6), cut)
            .await,
        Err(AppError::SizeMismatch)
    ));
    nothing_left(&w, &ada);
    // A client gone mid-body: its request (this future) is dropped.
    let attachments = w.attachments.clone();
    let (caller, req) = (account(&ada), request("a", 6));
    let upload = tokio::spawn(async move { attachments.upload(caller, req, Stalled).await });
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(w.attachments.in_flight(ada.id), (1, 6));
    upload.abort();
    let _ = upload.await;
    nothing_left(&w, &ada);
    assert!(w
        .store
        .chat_before(&room("team"), None, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn quotas_count_what_is_stored_and_what_is_in_flight() {
    let w = world(AttachmentLimits {
        quota_user: 10,
        quota_total: 15,
        ..AttachmentLimits::default()
    });
    let ada = with_room(&w, Access::Public).await;
    let bob = w.store.add_user("bob");
    w.attachments
        .upload(account(&ada), request("a", 6), Chunks::of(b"123456"))
        .await
        .unwrap();
    // 6 stored and 3 in flight: 2 more pass the user's 10.
    let attachments = w.attachments.clone();
    let (caller, req) = (account(&ada), request("b", 3));
    let stalled = tokio::spawn(async move { attachments.upload(caller, req, Stalled).await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(matches!(
        w.attachments
            .upload(account(&ada), request("c", 2), Chunks::of(b"12"))
            .await,
        Err(AppError::QuotaExceeded(Quota::User))
    ));
    // Everyone: 6 stored + 3 in flight + 7 > 15.
    assert!(matches!(
        w.attachments
            .upload(account(&bob), request("d", 7), Chunks::of(b"1234567"))
            .await,
        Err(AppError::QuotaExceeded(Quota::Server))
    ));
    stalled.abort();
    let _ = stalled.await;
    // The stalled upload's bytes are free again.
    w.attachments
        .upload(account(&ada), request("c", 4), Chunks::of(b"1234"))
        .await
        .unwrap();
}

#[tokio::test]
async fn four_uploads_at_once_per_user_and_sixty_started_in_ten_minutes() {
    let w = world(AttachmentLimits::default());
    let ada = with_room(&w, Access::Public).await;
    let mut stalled = Vec::new();
    for _ in 0..IN_FLIGHT_PER_USER {
        let attachments = w.attachments.clone();
        let (caller, req) = (account(&ada), request("s", 1));
        stalled.push(tokio::spawn(async move {
            attachments.upload(caller, req, Stalled).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(matches!(
        w.attachments
            .upload(account(&ada), request("x", 1), Untouched)
            .await,
        Err(AppError::TooManyUploads { .. })
    ));
    for task in &stalled {
        task.abort();
    }
    for task in stalled {
        let _ = task.await;
    }
    assert_eq!(w.attachments.in_flight(ada.id), (0, 0));
    // 4 started already; 56 more pass, the next waits.
    for _ in 0..STARTED_PER_WINDOW - IN_FLIGHT_PER_USER {
        w.attachments
            .upload(account(&ada), request("x", 1), Chunks::of(b"x"))
            .await
            .unwrap();
    }
    assert!(matches!(
        w.attachments
            .upload(account(&ada), request("x", 1), Chunks::of(b"x"))
            .await,
        Err(AppError::TooManyUploads { .. })
    ));
    w.clock.advance(chrono::Duration::minutes(11));
    w.attachments
        .upload(account(&ada), request("x", 1), Chunks::of(b"x"))
        .await
        .unwrap();
}

#[tokio::test]
async fn downloads_follow_the_history_rule_and_a_guest_its_own_room() {
    let w = world(AttachmentLimits::default());
    let ada = with_room(&w, Access::Private).await;
    let bob = w.store.add_user("bob");
    let message = w
        .attachments
        .upload(account(&ada), request("a", 3), Chunks::of(b"abc"))
        .await
        .unwrap();
    let id = message.attachment.unwrap().id;
    let team = room("team");
    assert!(matches!(
        w.attachments.find(&account(&bob), &team, &id, None).await,
        Err(AppError::RoomPrivate)
    ));
    w.store.add_member(&team, bob.id, Utc::now()).await.unwrap();
    assert!(w
        .attachments
        .find(&account(&bob), &team, &id, None)
        .await
        .is_ok());
    let guest = FileCaller::Guest { room: team.clone() };
    assert!(w.attachments.find(&guest, &team, &id, None).await.is_ok());
    let other = FileCaller::Guest {
        room: room("other"),
    };
    assert!(matches!(
        w.attachments.find(&other, &team, &id, None).await,
        Err(AppError::Forbidden)
    ));
    for bad in ["0".repeat(32), "../etc".into(), id.to_uppercase()] {
        assert!(matches!(
            w.attachments.find(&account(&ada), &team, &bad, None).await,
            Err(AppError::AttachmentNotFound)
        ));
    }
    let record = w.attachments.find(&guest, &team, &id, None).await.unwrap();
    let mut read = w.attachments.read(&record, 1, Some(1)).await.unwrap();
    assert_eq!(read.next_chunk().await.unwrap().unwrap(), "b");
    assert!(matches!(
        w.attachments.thumbnail(&record).await,
        Err(AppError::ThumbnailNotFound)
    ));
}

#[tokio::test]
async fn the_sender_or_a_host_deletes_a_file_with_its_message() {
    let w = world(AttachmentLimits::default());
    let ada = with_room(&w, Access::Public).await;
    let (bob, cy) = (w.store.add_user("bob"), w.store.add_user("cyd"));
    let team = room("team");
    let upload = |who: &User| {
        let (attachments, caller) = (w.attachments.clone(), account(who));
        async move {
            attachments
                .upload(caller, request("IMG", 3), Chunks::of(b"IMG"))
                .await
                .unwrap()
        }
    };
    let bobs = upload(&bob).await.attachment.unwrap().id;
    assert_eq!(w.files.keys().len(), 2, "the file and its preview");
    assert!(matches!(
        w.attachments.delete(caller(&cy), &team, &bobs).await,
        Err(AppError::NotSender)
    ));
    w.attachments
        .delete(caller(&bob), &team, &bobs)
        .await
        .unwrap();
    assert_eq!(w.files.keys(), Vec::<String>::new());
    assert!(w
        .store
        .chat_before(&team, None, 10)
        .await
        .unwrap()
        .is_empty());
    // The owner (a host) deletes another's file.
    let cys = upload(&cy).await.attachment.unwrap().id;
    w.attachments
        .delete(caller(&ada), &team, &cys)
        .await
        .unwrap();
    assert!(matches!(
        w.attachments.delete(caller(&ada), &team, &cys).await,
        Err(AppError::AttachmentNotFound)
    ));
}

#[tokio::test]
async fn the_sweep_applies_retention_and_removes_orphans_older_than_an_hour() {
    let w = world(AttachmentLimits {
        retention: Some(Duration::from_secs(24 * 3600)),
        ..AttachmentLimits::default()
    });
    let ada = with_room(&w, Access::Public).await;
    let old = w
        .attachments
        .upload(account(&ada), request("old", 3), Chunks::of(b"old"))
        .await
        .unwrap();
    w.clock.advance(chrono::Duration::hours(20));
    let fresh = w
        .attachments
        .upload(account(&ada), request("new", 3), Chunks::of(b"new"))
        .await
        .unwrap();
    let now = w.clock.now() + chrono::Duration::hours(5);
    let orphan = AttachmentId::new_random();
    w.files
        .put(&orphan.file_key(), b"x", now - chrono::Duration::hours(2));
    let young = AttachmentId::new_random();
    w.files
        .put(&young.file_key(), b"y", now - chrono::Duration::minutes(5));
    w.files
        .put("not-ours", b"z", now - chrono::Duration::hours(9));
    let swept = w.attachments.sweep(now).await.unwrap();
    assert_eq!(
        swept,
        Swept {
            expired: 1,
            orphans: 1
        }
    );
    let left: Vec<i64> = w
        .store
        .chat_before(&room("team"), None, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, vec![fresh.id]);
    let mut keys = vec![
        AttachmentId::parse(&fresh.attachment.unwrap().id)
            .unwrap()
            .file_key(),
        young.file_key(),
        "not-ours".to_owned(),
    ];
    keys.sort();
    assert_eq!(w.files.keys(), keys);
    assert!(old.attachment.is_some());
}

#[tokio::test]
async fn deleting_a_room_removes_its_files() {
    let w = world(AttachmentLimits::default());
    let ada = with_room(&w, Access::Public).await;
    w.attachments
        .upload(account(&ada), request("IMG", 3), Chunks::of(b"IMG"))
        .await
        .unwrap();
    assert_eq!(w.files.keys().len(), 2);
    w.hub.delete_room(&room("team"), ada.id).await.unwrap();
    assert_eq!(w.files.keys(), Vec::<String>::new());
    assert!(w.store.find_room(&room("team")).await.unwrap().is_none());
}

/// A body whose room is deleted while it is sent (so the record cannot be
/// written).
struct RoomGoesMidway(Arc<MemoryStore>, bool);

#[async_trait]
impl UploadBody for RoomGoesMidway {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, AppError> {
        if self.1 {
            return Ok(None);
        }
        self.1 = true;
        self.0.delete_room(&room("team")).await.unwrap();
        Ok(Some(Bytes::from_static(b"IMG")))
    }
}

#[tokio::test]
async fn a_record_that_cannot_be_written_takes_its_file_and_preview_with_it() {
    let w = world(AttachmentLimits::default());
    let ada = with_room(&w, Access::Public).await;
    let failed = w
        .attachments
        .upload(
            account(&ada),
            request("IMG", 3),
            RoomGoesMidway(w.store.clone(), false),
        )
        .await;
    assert!(matches!(failed, Err(AppError::Domain(_))), "{failed:?}");
    nothing_left(&w, &ada);
}
