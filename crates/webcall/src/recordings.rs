//! Wiring recordings of routed calls: the [`DiskRecorder`] on
//! `RECORDING_DIR` (created at start) and the hosts' use cases over it. The
//! same recorder is the one the hub starts recordings with: a recording runs
//! in the recorder that started it, and only that one knows it is running.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use webcall_app::recordings::RecordingsService;
use webcall_app::rooms::RoomService;
use webcall_domain::media::Recorder;
use webcall_record::DiskRecorder;

/// The recorder on `dir` and the use cases that list, serve and delete
/// what it wrote.
pub(crate) fn start(
    dir: &Path,
    rooms: Arc<RoomService>,
) -> anyhow::Result<(Arc<dyn Recorder>, Arc<RecordingsService>)> {
    let recorder: Arc<dyn Recorder> = Arc::new(
        DiskRecorder::new(dir.to_owned())
            .with_context(|| format!("cannot create {} (RECORDING_DIR)", dir.display()))?,
    );
    let service = Arc::new(RecordingsService::new(recorder.clone(), rooms));
    Ok((recorder, service))
}
