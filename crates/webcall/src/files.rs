//! Wiring files in rooms' chat ([`Attachments`]): the bytes in
//! `ATTACHMENT_DIR` ([`DiskFileStore`], the directory created at start;
//! every instance must see the same one), previews by [`ImageThumbnailer`],
//! the records in the SQL store; a deleted room's files go with it (the hub's
//! hook); and the sweep (retention, orphans, unfinished uploads) once at
//! start and every hour until shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use webcall_app::attachments::{Attachments, AttachmentsDeps};
use webcall_app::hub::{Hub, RoomFiles};
use webcall_app::room_access::AccessService;
use webcall_app::rooms::RoomService;
use webcall_db::SqlStore;
use webcall_domain::ports::{Presence, SystemClock};
use webcall_files::{DiskFileStore, ImageThumbnailer};

use crate::config::AttachmentSettings;

/// How often the sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// What the attachments use cases are wired with besides their settings.
pub(crate) struct FilesWiring {
    pub store: SqlStore,
    pub access: Arc<AccessService>,
    pub rooms: Arc<RoomService>,
    pub presence: Arc<dyn Presence>,
    pub hub: Arc<Hub>,
}

/// The attachments use cases on `settings.dir`, the hub told of them, and
/// the sweep running until `stop`.
pub(crate) fn start(
    settings: &AttachmentSettings,
    wiring: FilesWiring,
    stop: CancellationToken,
) -> anyhow::Result<Arc<Attachments>> {
    let files = DiskFileStore::open(&settings.dir)
        .with_context(|| format!("cannot create {} (ATTACHMENT_DIR)", settings.dir.display()))?;
    let attachments = Attachments::new(
        AttachmentsDeps {
            records: Arc::new(wiring.store),
            files: Arc::new(files),
            thumbnailer: Arc::new(ImageThumbnailer::new()),
            access: wiring.access,
            rooms: wiring.rooms,
            presence: wiring.presence,
            hub: wiring.hub.clone(),
            clock: Arc::new(SystemClock),
        },
        settings.limits,
    );
    let hook: Arc<dyn RoomFiles> = attachments.clone();
    wiring.hub.files_with(&hook);
    let sweeper = attachments.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = stop.cancelled() => return,
            }
            if let Err(err) = sweeper.sweep(chrono::Utc::now()).await {
                tracing::warn!(error = %err, "could not sweep the files");
            }
        }
    });
    Ok(attachments)
}
