//! Recordings of routed calls. [`DiskRecorder`] implements the domain's
//! `Recorder` port on a directory (`RECORDING_DIR`): each recording is a
//! directory `ROOM/ID/` holding one WebM per participant (Opus + VP8 as they
//! arrived, no transcoding; a screen share in its own file) and a
//! `manifest.json` with who, which file and when.
//!
//! Depends on `webcall-domain` only (and serde for the manifest); the `webcall`
//! binary wires it in.
//!
//! SKELETON: the public API below is the contract between the helpers
//! (`/work/helpers/CONTRACT.md`); the bodies are filled in on the
//! `recording` branch.

use std::path::PathBuf;

use webcall_domain::media::{Recorder, RecordingId, RecordingSummary, RoomRecording};
use webcall_domain::signaling::RoomName;
use webcall_domain::DomainError;

/// Recordings in a directory.
pub struct DiskRecorder {
    root: PathBuf,
}

impl DiskRecorder {
    /// Uses `root` (created if missing).
    pub fn new(root: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        Ok(Self { root })
    }
}

impl Recorder for DiskRecorder {
    fn start(
        &self,
        _room: &RoomName,
        _id: &RecordingId,
        _started_by: &str,
    ) -> Result<Box<dyn RoomRecording>, DomainError> {
        Err(DomainError::Invalid {
            field: "recording",
            message: "not built yet",
        })
    }

    fn list(&self, _room: &RoomName) -> Result<Vec<RecordingSummary>, DomainError> {
        let _ = &self.root;
        Ok(Vec::new())
    }

    fn file_path(
        &self,
        _room: &RoomName,
        _id: &RecordingId,
        _name: &str,
    ) -> Result<Option<PathBuf>, DomainError> {
        Ok(None)
    }

    fn delete(&self, _room: &RoomName, _id: &RecordingId) -> Result<bool, DomainError> {
        Ok(false)
    }
}
