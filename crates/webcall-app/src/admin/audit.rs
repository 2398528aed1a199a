//! The audit log, for admins: newest first, a page at a time.

use webcall_domain::admin::AuditEntry;

use super::{Actor, Admin};
use crate::AppError;

/// A page of the audit log, and the cursor of the next (older) one.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_cursor: Option<i64>,
}

impl Admin {
    /// Up to `limit` entries older than the entry `before` (all when `None`),
    /// newest first.
    pub async fn audit(
        &self,
        _actor: &Actor,
        before: Option<i64>,
        limit: usize,
    ) -> Result<AuditPage, AppError> {
        let mut entries = self.deps.store.audit_page(before, limit + 1).await?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_cursor = more.then(|| entries.last().map(|e| e.id)).flatten();
        Ok(AuditPage {
            entries,
            next_cursor,
        })
    }
}
