//! Files in rooms' chat: where they are kept (`ATTACHMENT_DIR`, by default
//! `attachments` beside the SQLite file, or in the working directory with
//! PostgreSQL), the largest file (`ATTACHMENT_MAX_BYTES`), the quotas
//! (`ATTACHMENT_QUOTA_USER_BYTES`, `ATTACHMENT_QUOTA_TOTAL_BYTES`; 0 = none)
//! and how long files are kept (`ATTACHMENT_RETENTION_DAYS`; 0 = forever).
//! Sizes are plain bytes. The limits are [`AttachmentLimits`], with its defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use webcall_app::attachments::AttachmentLimits;

use super::vars::{problem, ConfigError, Vars};

/// Where files are kept and their limits.
#[derive(Debug, Clone)]
pub struct AttachmentSettings {
    /// `ATTACHMENT_DIR`: created at start; every instance must see the same
    /// one (a shared volume).
    pub dir: PathBuf,
    pub limits: AttachmentLimits,
}

const DAY: u64 = 24 * 3600;

impl AttachmentSettings {
    /// `database_url` places the default directory (beside a SQLite file).
    pub(super) fn parse(vars: &Vars, database_url: &str) -> Result<Self, ConfigError> {
        let defaults = AttachmentLimits::default();
        let max_bytes: u64 = vars.parse_or("ATTACHMENT_MAX_BYTES", defaults.max_bytes)?;
        if max_bytes == 0 {
            return Err(problem(
                "ATTACHMENT_MAX_BYTES",
                "must be at least 1 (bytes)",
            ));
        }
        let days: u64 = vars.parse_or(
            "ATTACHMENT_RETENTION_DAYS",
            defaults.retention.map_or(0, |r| r.as_secs() / DAY),
        )?;
        if days > 36_500 {
            return Err(problem(
                "ATTACHMENT_RETENTION_DAYS",
                "must be at most 36500 (0 keeps files forever)",
            ));
        }
        Ok(Self {
            dir: vars
                .get("ATTACHMENT_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| default_dir(database_url)),
            limits: AttachmentLimits {
                max_bytes,
                quota_user: vars.parse_or("ATTACHMENT_QUOTA_USER_BYTES", defaults.quota_user)?,
                quota_total: vars.parse_or("ATTACHMENT_QUOTA_TOTAL_BYTES", defaults.quota_total)?,
                retention: (days > 0).then(|| Duration::from_secs(days * DAY)),
            },
        })
    }
}

/// `attachments` in the directory of the SQLite file, or in the working
/// directory (PostgreSQL, an in-memory SQLite).
pub(super) fn default_dir(database_url: &str) -> PathBuf {
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or_default())
        .filter(|path| !path.is_empty() && !path.starts_with(":memory:"));
    let parent = file
        .and_then(|path| Path::new(path).parent())
        .filter(|parent| !parent.as_os_str().is_empty());
    parent.unwrap_or(Path::new(".")).join("attachments")
}
