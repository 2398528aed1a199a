//! A recording's `manifest.json`: who started it and when, and each file
//! with whose media it holds and when it starts and ends on the recording's
//! timeline. Rewritten whole and atomically (a temporary file, synced, then
//! renamed over the old one): at the start, when a file opens or finishes,
//! and at the end. A file still open (or cut by a crash) has no `end_ms`;
//! a recording still running (or cut by a crash) has no `ended_at`.
//!
//! Also the file names: what a username or peer id may leave in a name.

use std::io::{self, Write};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use webcall_domain::media::RecordingId;
use webcall_domain::signaling::RoomName;

pub(crate) const MANIFEST: &str = "manifest.json";
const MANIFEST_TMP: &str = "manifest.json.tmp";
/// The longest username or peer id kept in a file name (in bytes).
const NAME_PART_MAX: usize = 64;

/// Which of a participant's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FileSource {
    /// Microphone and camera.
    Camera,
    /// A screen share.
    Screen,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ManifestFile {
    pub name: String,
    pub peer_id: String,
    pub username: String,
    pub source: FileSource,
    /// The file's first frame, from the recording's start.
    pub start_ms: u64,
    /// Its media's end, once it is finished.
    pub end_ms: Option<u64>,
    /// `opus`, `vp8`.
    pub tracks: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub id: RecordingId,
    pub room: RoomName,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub files: Vec<ManifestFile>,
}

impl Manifest {
    /// Writes `dir/manifest.json` atomically.
    pub(crate) fn write(&self, dir: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        let tmp = dir.join(MANIFEST_TMP);
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, dir.join(MANIFEST))?;
        Ok(())
    }

    /// Reads `dir/manifest.json`; `None` when it is missing, unreadable or
    /// names a file that is not a safe name (never trusted blindly).
    pub(crate) fn read(dir: &Path) -> Option<Self> {
        let bytes = std::fs::read(dir.join(MANIFEST)).ok()?;
        let manifest: Self = match serde_json::from_slice(&bytes) {
            Ok(manifest) => manifest,
            Err(err) => {
                tracing::warn!(dir = %dir.display(), error = %err, "unreadable recording manifest");
                return None;
            }
        };
        manifest
            .files
            .iter()
            .all(|f| is_safe_name(&f.name))
            .then_some(manifest)
    }
}

/// `raw` reduced to `[A-Za-z0-9._-]` (anything else becomes `_`), at most
/// [`NAME_PART_MAX`] bytes, never empty, never starting with a dot.
pub(crate) fn name_part(raw: &str) -> String {
    let mut part: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(NAME_PART_MAX)
        .collect();
    if part.is_empty() {
        part.push('_');
    }
    if part.starts_with('.') {
        part.replace_range(..1, "_");
    }
    part
}

/// A name that can only be a file inside its recording's directory.
pub(crate) fn is_safe_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_only_safe_characters() {
        assert_eq!(name_part("alice"), "alice");
        assert_eq!(name_part("../../etc/passwd"), "_._.._etc_passwd");
        assert_eq!(name_part("Вася Пупкин"), "___________");
        assert_eq!(name_part(""), "_");
        assert_eq!(name_part(&"a".repeat(300)).len(), NAME_PART_MAX);
        for name in ["a.webm", "alice-0123.webm", "b_c-screen.webm"] {
            assert!(is_safe_name(name), "{name}");
        }
        for name in ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "a b", "é"] {
            assert!(!is_safe_name(name), "{name}");
        }
    }
}
