//! [`DiskFileStore`]: files' bytes in one directory, each under its key
//! (`dir/<32 hex>` or `dir/<32 hex>.thumb`). An upload is written to
//! `dir/.partial/<key>.<random>`, flushed to disk and renamed into place on
//! commit, so a file is there whole or not at all; aborted or dropped, its
//! partial file is removed.

use std::io::{ErrorKind, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use uuid::Uuid;
use webcall_domain::attachments::{FileRead, FileStore, FileUpload};
use webcall_domain::DomainError;

/// Where uploads are written until they are committed.
const PARTIAL_DIR: &str = ".partial";
/// The most [`FileRead::next_chunk`] returns at once.
pub const READ_CHUNK: usize = 64 * 1024;

/// A [`FileStore`] on a local directory (or a volume every instance shares).
#[derive(Debug, Clone)]
pub struct DiskFileStore {
    dir: PathBuf,
}

impl DiskFileStore {
    /// Uses `dir`, creating it (and its `.partial` directory) if missing.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(dir.join(PARTIAL_DIR))?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The committed file's path; the key is checked first, so no key can
    /// name a path outside the directory.
    fn path_of(&self, key: &str) -> Result<PathBuf, DomainError> {
        if is_key(key) {
            Ok(self.dir.join(key))
        } else {
            Err(DomainError::Invalid {
                field: "key",
                message: "a file key is 32 lowercase hex digits, optionally followed by .thumb",
            })
        }
    }
}

/// `[0-9a-f]{32}` or that followed by `.thumb`.
fn is_key(key: &str) -> bool {
    let id = key.strip_suffix(".thumb").unwrap_or(key);
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn io_error(err: std::io::Error) -> DomainError {
    DomainError::infrastructure(err)
}

#[async_trait]
impl FileStore for DiskFileStore {
    async fn create(&self, key: &str) -> Result<Box<dyn FileUpload>, DomainError> {
        let target = self.path_of(key)?;
        let partial = self
            .dir
            .join(PARTIAL_DIR)
            .join(format!("{key}.{}", Uuid::new_v4().simple()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .await
            .map_err(io_error)?;
        Ok(Box::new(DiskUpload {
            file: Some(file),
            partial: Some(partial),
            target,
            dir: self.dir.clone(),
        }))
    }

    async fn open(
        &self,
        key: &str,
        offset: u64,
        len: Option<u64>,
    ) -> Result<Option<Box<dyn FileRead>>, DomainError> {
        let path = self.path_of(key)?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io_error(err)),
        };
        let size = file.metadata().await.map_err(io_error)?.len();
        let available = size.saturating_sub(offset);
        let remaining = len.map_or(available, |len| len.min(available));
        if remaining > 0 {
            file.seek(SeekFrom::Start(offset)).await.map_err(io_error)?;
        }
        Ok(Some(Box::new(DiskRead { file, remaining })))
    }

    async fn delete(&self, key: &str) -> Result<bool, DomainError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(false),
            Err(err) => Err(io_error(err)),
        }
    }

    async fn list(
        &self,
        stale_before: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, DomainError> {
        let mut files = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.dir).await.map_err(io_error)?;
        while let Some(entry) = entries.next_entry().await.map_err(io_error)? {
            let Some(key) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !is_key(&key) {
                continue;
            }
            // Gone since it was listed (deleted meanwhile): not a file any more.
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            if meta.is_file() {
                files.push((
                    key,
                    DateTime::<Utc>::from(meta.modified().map_err(io_error)?),
                ));
            }
        }
        let partial_dir = self.dir.join(PARTIAL_DIR);
        let mut partials = match tokio::fs::read_dir(&partial_dir).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(files),
            Err(err) => return Err(io_error(err)),
        };
        while let Some(entry) = partials.next_entry().await.map_err(io_error)? {
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            let modified = DateTime::<Utc>::from(meta.modified().map_err(io_error)?);
            if meta.is_file() && modified < stale_before {
                match tokio::fs::remove_file(entry.path()).await {
                    Ok(()) => tracing::info!(file = ?entry.path(), "stale partial upload removed"),
                    Err(err) if err.kind() == ErrorKind::NotFound => {}
                    Err(err) => return Err(io_error(err)),
                }
            }
        }
        Ok(files)
    }
}

/// An upload in `.partial/`; removed unless committed.
struct DiskUpload {
    /// `None` once committed or aborted.
    file: Option<tokio::fs::File>,
    /// `None` once renamed into place or removed.
    partial: Option<PathBuf>,
    target: PathBuf,
    dir: PathBuf,
}

impl DiskUpload {
    fn file(&mut self) -> Result<&mut tokio::fs::File, DomainError> {
        self.file
            .as_mut()
            .ok_or_else(|| DomainError::infrastructure("upload already finished"))
    }

    async fn finish(&mut self) -> Result<(), DomainError> {
        let file = self.file()?;
        file.flush().await.map_err(io_error)?;
        file.sync_all().await.map_err(io_error)?;
        self.file = None;
        if let Some(partial) = &self.partial {
            tokio::fs::rename(partial, &self.target)
                .await
                .map_err(io_error)?;
            self.partial = None;
        }
        // The rename itself is durable once the directory is synced.
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
            .await
            .map_err(DomainError::infrastructure)?
            .map_err(io_error)
    }
}

#[async_trait]
impl FileUpload for DiskUpload {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), DomainError> {
        self.file()?.write_all(chunk).await.map_err(io_error)
    }

    async fn commit(mut self: Box<Self>) -> Result<(), DomainError> {
        // On failure, dropping `self` removes the partial file.
        self.finish().await
    }

    async fn abort(mut self: Box<Self>) {
        self.file = None;
        let Some(partial) = self.partial.take() else {
            return;
        };
        if let Err(err) = tokio::fs::remove_file(&partial).await {
            if err.kind() != ErrorKind::NotFound {
                tracing::warn!(error = %err, file = ?partial, "cannot remove an aborted upload");
            }
        }
    }
}

impl Drop for DiskUpload {
    fn drop(&mut self) {
        // Best effort: a leftover is removed by `list` once it is stale.
        if let Some(partial) = self.partial.take() {
            let _ = std::fs::remove_file(partial);
        }
    }
}

/// A range of a file, read [`READ_CHUNK`] bytes at a time.
struct DiskRead {
    file: tokio::fs::File,
    remaining: u64,
}

#[async_trait]
impl FileRead for DiskRead {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, DomainError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let want = usize::try_from(self.remaining).map_or(READ_CHUNK, |r| r.min(READ_CHUNK));
        let mut buf = vec![0; want];
        let read = self.file.read(&mut buf).await.map_err(io_error)?;
        if read == 0 {
            // Shorter than when it was opened: the caller promised more bytes.
            return Err(DomainError::infrastructure(
                "file ended before the range did",
            ));
        }
        buf.truncate(read);
        self.remaining -= read as u64;
        Ok(Some(Bytes::from(buf)))
    }
}
