//! Wiring the operator's use cases ([`Operations`]): the stored settings, the
//! embedded relay and both rotating keys, restored before anything is signed,
//! and restored again every half minute (a command missed while Redis was
//! away is caught up with; what is already in force is left alone).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use webcall_app::hub::Hub;
use webcall_app::operations::{Operations, OperationsDeps};
use webcall_auth::JwtCodec;
use webcall_db::SqlStore;
use webcall_domain::ports::{RelayControl, RotatingKey, SystemClock};
use webcall_turn::TurnRelay;

/// How often the stored settings are read again.
const RESYNC_EVERY: Duration = Duration::from_secs(30);

/// The operator's use cases of this instance (named `instance` in the
/// allocation list), with the stored settings in force.
pub(crate) async fn start(
    store: &SqlStore,
    relay: Option<&Arc<TurnRelay>>,
    jwt: Arc<JwtCodec>,
    hub: Arc<Hub>,
    instance: String,
    stop: CancellationToken,
) -> anyhow::Result<Arc<Operations>> {
    let operations = Operations::new(OperationsDeps {
        settings: Arc::new(store.clone()),
        relay: relay.map(|relay| relay.clone() as Arc<dyn RelayControl>),
        turn_key: relay.map(|relay| relay.credentials() as Arc<dyn RotatingKey>),
        jwt_key: jwt,
        hub,
        clock: Arc::new(SystemClock),
        instance,
    });
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
