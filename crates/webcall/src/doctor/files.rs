//! The doctor's check of the directory that keeps files shared in the chat
//! (`ATTACHMENT_DIR`).

use webcall_domain::attachments::{AttachmentId, FileStore};
use webcall_domain::DomainError;
use webcall_files::DiskFileStore;

use super::report::{fail, ok, Outcome};
use crate::config::Config;

/// The directory of files shared in the chat: there (made if missing) and
/// writable, found by storing and removing a small file the way an upload is
/// stored (written aside, then renamed into place).
pub(super) async fn check(config: &Config) -> Outcome {
    let dir = &config.attachments.dir;
    let fix = "make ATTACHMENT_DIR a directory the user running WebCall may write to \
               (or point ATTACHMENT_DIR elsewhere)";
    let store = match DiskFileStore::open(dir) {
        Ok(store) => store,
        Err(e) => return fail(format!("{}: {e}", dir.display()), fix),
    };
    let key = AttachmentId::new_random().file_key();
    let stored: Result<(), DomainError> = async {
        let mut upload = store.create(&key).await?;
        upload.write(b"webcall doctor").await?;
        upload.commit().await?;
        store.delete(&key).await.map(|_| ())
    }
    .await;
    match stored {
        Ok(()) => ok(format!(
            "{} writable (files up to {} bytes)",
            dir.display(),
            config.attachments.limits.max_bytes
        )),
        Err(e) => fail(format!("{}: {e}", dir.display()), fix),
    }
}
