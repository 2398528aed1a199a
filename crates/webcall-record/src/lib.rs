//! Recordings of routed calls. [`DiskRecorder`] implements the domain's
//! `Recorder` port on a directory (`RECORDING_DIR`): each recording is a
//! directory `ROOM/ID/` holding one WebM per participant (Opus + VP8 as they
//! arrived, no transcoding; a screen share in its own file) and a
//! `manifest.json` with who, which file and when.
//!
//! Depends on `webcall-domain` only (and serde for the manifest); the `webcall`
//! binary wires it in.
//!
//! Layout: this file finds recordings again (list, a file, delete);
//! `recording` is a running one (the media end's handle, the writer thread);
//! `webm` one WebM file written live; `ebml` the bytes of its elements;
//! `manifest` the manifest and safe file names.
//!
//! A recording whose manifest has no `ended_at` and that does not run in this
//! process was cut by a crash or a kill: it is listed with the files it has
//! (each playable up to its last whole cluster).

mod ebml;
mod manifest;
mod recording;
mod webm;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use webcall_domain::media::{
    Recorder, RecordingFile, RecordingId, RecordingSummary, RoomRecording,
};
use webcall_domain::signaling::RoomName;
use webcall_domain::DomainError;

use manifest::{is_safe_name, Manifest, ManifestFile};
use recording::DiskRoomRecording;

/// The recordings running in this process, by room and id.
type Running = Arc<Mutex<HashSet<(String, String)>>>;

/// Recordings in a directory.
pub struct DiskRecorder {
    root: PathBuf,
    running: Running,
}

impl DiskRecorder {
    /// Uses `root` (created if missing).
    pub fn new(root: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        Ok(Self {
            root,
            running: Running::default(),
        })
    }

    fn dir(&self, room: &RoomName, id: &RecordingId) -> PathBuf {
        self.root.join(room.as_str()).join(id.as_str())
    }

    fn is_running(&self, room: &RoomName, id: &RecordingId) -> bool {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&key(room, id))
    }

    /// The files of a recording as they may be downloaded: a running
    /// recording's finished files, every file of one that ended (or was cut).
    fn files<'a>(&self, manifest: &'a Manifest, running: bool) -> Vec<&'a ManifestFile> {
        manifest
            .files
            .iter()
            .filter(|file| !running || file.end_ms.is_some())
            .collect()
    }
}

fn key(room: &RoomName, id: &RecordingId) -> (String, String) {
    (room.as_str().to_owned(), id.as_str().to_owned())
}

fn io_error(err: io::Error) -> DomainError {
    DomainError::infrastructure(err)
}

/// A regular file's size (never a link), `None` when there is none.
fn file_size(path: &Path) -> Option<u64> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    meta.is_file().then_some(meta.len())
}

impl Recorder for DiskRecorder {
    fn start(
        &self,
        room: &RoomName,
        id: &RecordingId,
        started_by: &str,
    ) -> Result<Box<dyn RoomRecording>, DomainError> {
        let dir = self.dir(room, id);
        std::fs::create_dir_all(self.root.join(room.as_str())).map_err(io_error)?;
        if let Err(err) = std::fs::create_dir(&dir) {
            if err.kind() == io::ErrorKind::AlreadyExists {
                return Err(DomainError::Invalid {
                    field: "recording",
                    message: "a recording with this id exists",
                });
            }
            return Err(io_error(err));
        }
        let manifest = Manifest {
            id: id.clone(),
            room: room.clone(),
            started_by: started_by.to_owned(),
            started_at: chrono::Utc::now(),
            ended_at: None,
            files: Vec::new(),
        };
        manifest.write(&dir).map_err(io_error)?;
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key(room, id));
        match DiskRoomRecording::start(dir, manifest, self.running.clone(), key(room, id)) {
            Ok(recording) => {
                tracing::info!(room = %room, recording = %id, "recording started");
                Ok(Box::new(recording))
            }
            Err(err) => {
                self.running
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&key(room, id));
                Err(io_error(err))
            }
        }
    }

    fn list(&self, room: &RoomName) -> Result<Vec<RecordingSummary>, DomainError> {
        let entries = match std::fs::read_dir(self.root.join(room.as_str())) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io_error(err)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error)?;
            let Some(id) = entry.file_name().to_str().and_then(RecordingId::parse) else {
                continue;
            };
            let dir = entry.path();
            let Some(manifest) = Manifest::read(&dir) else {
                continue;
            };
            if manifest.id != id || &manifest.room != room {
                continue;
            }
            let running = self.is_running(room, &id);
            let files = self
                .files(&manifest, running)
                .into_iter()
                .filter_map(|file| {
                    Some(RecordingFile {
                        name: file.name.clone(),
                        bytes: file_size(&dir.join(&file.name))?,
                    })
                })
                .collect();
            found.push(RecordingSummary {
                id,
                room: room.clone(),
                started_by: manifest.started_by,
                started_at: manifest.started_at,
                ended_at: manifest.ended_at,
                files,
            });
        }
        found.sort_by(|a, b| {
            b.started_at
                .cmp(&a.started_at)
                .then(b.id.as_str().cmp(a.id.as_str()))
        });
        Ok(found)
    }

    fn file_path(
        &self,
        room: &RoomName,
        id: &RecordingId,
        name: &str,
    ) -> Result<Option<PathBuf>, DomainError> {
        if !is_safe_name(name) {
            return Ok(None);
        }
        let dir = self.dir(room, id);
        let Some(manifest) = Manifest::read(&dir) else {
            return Ok(None);
        };
        let running = self.is_running(room, id);
        if !self
            .files(&manifest, running)
            .iter()
            .any(|f| f.name == name)
        {
            return Ok(None);
        }
        let path = dir.join(name);
        Ok(file_size(&path).map(|_| path))
    }

    fn delete(&self, room: &RoomName, id: &RecordingId) -> Result<bool, DomainError> {
        if self.is_running(room, id) {
            return Err(DomainError::Invalid {
                field: "recording",
                message: "is still running: stop it first",
            });
        }
        match std::fs::remove_dir_all(self.dir(room, id)) {
            Ok(()) => {
                // The room's directory goes when it holds nothing more.
                let _ = std::fs::remove_dir(self.root.join(room.as_str()));
                tracing::info!(room = %room, recording = %id, "recording deleted");
                Ok(true)
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(io_error(err)),
        }
    }
}
