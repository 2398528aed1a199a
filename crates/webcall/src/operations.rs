//! Wiring the operator's use cases ([`Operations`]): the stored settings, the
//! embedded relay and both rotating keys, restored before anything is signed,
//! and restored again every half minute (a command missed while Redis was
//! away is caught up with; what is already in force is left alone).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use webcall_app::operations::{Operations, OperationsDeps};

/// How often the stored settings are read again.
const RESYNC_EVERY: Duration = Duration::from_secs(30);

/// The operator's use cases of this instance, with the stored settings in
/// force, read again every [`RESYNC_EVERY`] until `stop`.
pub(crate) async fn start(
    deps: OperationsDeps,
    stop: CancellationToken,
) -> anyhow::Result<Arc<Operations>> {
    let operations = Operations::new(deps);
    operations
        .restore()
        .await
        .context("reading the operator's settings (relay quotas, key generations)")?;
    let resync = operations.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(RESYNC_EVERY);
        every.tick().await;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = stop.cancelled() => return,
            }
            if let Err(err) = resync.restore().await {
                tracing::warn!(error = %err, "could not read the operator's settings again");
            }
        }
    });
    Ok(operations)
}
