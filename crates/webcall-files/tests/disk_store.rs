//! [`DiskFileStore`] on a real temporary directory: a file appears whole only
//! when committed; aborted or dropped uploads leave nothing behind; keys that
//! could name another path are refused; ranges read back exactly; the sweep
//! lists committed files and removes only stale partial uploads.

use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use webcall_domain::attachments::{AttachmentId, FileStore};
use webcall_domain::DomainError;
use webcall_files::{DiskFileStore, READ_CHUNK};

fn partials(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join(".partial"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Everything in the store's directory but the `.partial` folder.
fn committed(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".partial")
        .collect();
    names.sort();
    names
}

async fn read_all(store: &DiskFileStore, key: &str, offset: u64, len: Option<u64>) -> Vec<u8> {
    let mut reader = store.open(key, offset, len).await.unwrap().expect("a file");
    let mut out = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.unwrap() {
        assert!(!chunk.is_empty() && chunk.len() <= READ_CHUNK);
        out.extend_from_slice(&chunk);
    }
    out
}

/// 200 KiB of bytes that differ from position to position.
fn content() -> Vec<u8> {
    (0..200 * 1024u32).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn a_file_is_readable_only_once_committed_and_then_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskFileStore::open(dir.path().join("attachments")).unwrap();
    let key = AttachmentId::new_random().file_key();
    let bytes = content();

    let mut upload = store.create(&key).await.unwrap();
    for chunk in bytes.chunks(10_000) {
        upload.write(chunk).await.unwrap();
    }
    assert!(store.open(&key, 0, None).await.unwrap().is_none());
    assert!(committed(store.dir()).is_empty());
    assert_eq!(partials(store.dir()).len(), 1);

    upload.commit().await.unwrap();
    assert_eq!(read_all(&store, &key, 0, None).await, bytes);
    assert_eq!(committed(store.dir()), vec![key.clone()]);
    assert!(partials(store.dir()).is_empty());

    // A preview beside it, then both deleted.
    let thumb = AttachmentId::parse(&key).unwrap().thumbnail_key();
    let mut upload = store.create(&thumb).await.unwrap();
    upload.write(b"preview").await.unwrap();
    upload.commit().await.unwrap();
    assert_eq!(read_all(&store, &thumb, 0, None).await, b"preview");
    assert!(store.delete(&key).await.unwrap());
    assert!(!store.delete(&key).await.unwrap());
    assert!(store.delete(&thumb).await.unwrap());
    assert!(store.open(&key, 0, None).await.unwrap().is_none());
    assert!(committed(store.dir()).is_empty());
}

#[tokio::test]
async fn an_aborted_or_dropped_upload_leaves_no_file_and_no_partial() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskFileStore::open(dir.path()).unwrap();

    let aborted = AttachmentId::new_random().file_key();
    let mut upload = store.create(&aborted).await.unwrap();
    upload.write(&content()).await.unwrap();
    upload.abort().await;

    let dropped = AttachmentId::new_random().file_key();
    let mut upload = store.create(&dropped).await.unwrap();
    upload.write(&content()).await.unwrap();
    assert_eq!(partials(store.dir()).len(), 1);
    drop(upload);

    assert!(partials(store.dir()).is_empty());
    assert!(committed(store.dir()).is_empty());
    for key in [&aborted, &dropped] {
        assert!(store.open(key, 0, None).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn keys_that_are_not_an_attachment_id_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskFileStore::open(dir.path().join("files")).unwrap();
    // A file outside the store that a bad key could reach.
    std::fs::write(dir.path().join("secret"), b"secret").unwrap();
    let id = AttachmentId::new_random().file_key();
    let bad = [
        String::new(),
        "../secret".to_owned(),
        "/etc/passwd".to_owned(),
        ".partial".to_owned(),
        id.to_uppercase(),
        format!("{id}.thumb.thumb"),
        format!("{id}.png"),
        format!("{id}/"),
        format!("../{id}"),
        id[..31].to_owned(),
        format!("{id}0"),
    ];
    for key in &bad {
        let refused = |r: Result<(), DomainError>| matches!(r, Err(DomainError::Invalid { .. }));
        assert!(refused(store.create(key).await.map(drop)), "create {key:?}");
        assert!(
            refused(store.open(key, 0, None).await.map(drop)),
            "open {key:?}"
        );
        assert!(refused(store.delete(key).await.map(drop)), "delete {key:?}");
    }
    assert!(dir.path().join("secret").exists());
    assert!(partials(store.dir()).is_empty());
}

#[tokio::test]
async fn ranges_read_exactly_the_bytes_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskFileStore::open(dir.path()).unwrap();
    let key = AttachmentId::new_random().file_key();
    let bytes = content();
    let size = bytes.len() as u64;
    let mut upload = store.create(&key).await.unwrap();
    upload.write(&bytes).await.unwrap();
    upload.commit().await.unwrap();

    // The start, a middle that spans chunk boundaries, to the end, the last byte.
    assert_eq!(read_all(&store, &key, 0, Some(10)).await, &bytes[..10]);
    assert_eq!(
        read_all(&store, &key, 1000, Some(150_000)).await,
        &bytes[1000..151_000]
    );
    assert_eq!(read_all(&store, &key, 70_000, None).await, &bytes[70_000..]);
    assert_eq!(
        read_all(&store, &key, size - 1, Some(1)).await,
        &bytes[bytes.len() - 1..]
    );
    // A length past the end stops at the end; a start past the end reads nothing.
    assert_eq!(
        read_all(&store, &key, size - 5, Some(100)).await,
        &bytes[bytes.len() - 5..]
    );
    assert!(read_all(&store, &key, size, None).await.is_empty());
    assert!(read_all(&store, &key, size + 10, Some(5)).await.is_empty());
    assert!(read_all(&store, &key, 0, Some(0)).await.is_empty());
}

/// Sets a file's modification time into the past.
fn age(path: &Path, by: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - by).unwrap();
}

#[tokio::test]
async fn the_listing_names_committed_files_and_removes_only_stale_partials() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskFileStore::open(dir.path()).unwrap();
    let file = AttachmentId::new_random();
    let mut upload = store.create(&file.file_key()).await.unwrap();
    upload.write(b"whole").await.unwrap();
    upload.commit().await.unwrap();
    let mut upload = store.create(&file.thumbnail_key()).await.unwrap();
    upload.write(b"thumb").await.unwrap();
    upload.commit().await.unwrap();
    // Not a key: never listed, never removed.
    std::fs::write(store.dir().join("README"), b"not ours").unwrap();

    // A partial left by a crash two hours ago, and an upload going on now.
    let crashed = store
        .dir()
        .join(".partial")
        .join(format!("{}.0123456789abcdef", AttachmentId::new_random()));
    std::fs::write(&crashed, b"half").unwrap();
    age(&crashed, Duration::from_secs(2 * 3600));
    let ongoing_key = AttachmentId::new_random().file_key();
    let mut ongoing = store.create(&ongoing_key).await.unwrap();
    ongoing.write(b"still coming").await.unwrap();

    let listed = store
        .list(Utc::now() - chrono::Duration::hours(1))
        .await
        .unwrap();
    let mut keys: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort();
    let mut want = vec![file.file_key(), file.thumbnail_key()];
    want.sort();
    assert_eq!(keys, want);
    for (_, written) in &listed {
        assert!((Utc::now() - *written).num_minutes().abs() < 5);
    }
    assert!(!crashed.exists());
    assert_eq!(partials(store.dir()).len(), 1);
    assert!(store.dir().join("README").exists());

    // The ongoing upload is unharmed.
    ongoing.write(b" and done").await.unwrap();
    ongoing.commit().await.unwrap();
    assert_eq!(
        read_all(&store, &ongoing_key, 0, None).await,
        b"still coming and done"
    );
}
