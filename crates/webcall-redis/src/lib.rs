//! Redis as the `Presence` and `Cluster` ports: with `REDIS_URL` set, presence, resume
//! tokens and every room event and command between instances go through Redis,
//! so several `webcall` processes behind one load balancer serve the same rooms.
//!
//! Depends on `webcall-domain` (the ports and their types) and the `redis` crate.
//!
//! Keys (under a prefix, `webcall` by default):
//! - `{p}:room:{room}` — hash peer id → `{"info": PeerInfo, "instance": id}`;
//! - `{p}:rooms` — set of rooms with peers;
//! - `{p}:instance:{id}` — an instance's heartbeat, with a TTL it keeps refreshing;
//! - `{p}:resume:{token}` — the room and peer a resume token names;
//! - channel `{p}:events` — every [`ClusterMessage`], tagged with the instance it came from.
//!
//! When an instance dies (`kill -9`), its heartbeat expires; the survivors' sweep
//! removes its peers from presence, and whichever removes a peer announces the
//! departure (`ClusterListener::departed`), within the heartbeat TTL plus one
//! sweep.
//!
//! When Redis goes away, every call fails within [`CALL_TIMEOUT`] as
//! [`DomainError::Unavailable`] and `/readyz` reports it. The subscription is
//! renewed with backoff; once it is, the instance writes its heartbeat, puts its
//! peers back into presence (`ClusterListener::reconnected`: a restarted Redis
//! may be empty) and asks the others for a roll call (`Command::RollCall`), so
//! every instance's rooms are whole again.
//!
//! Layout: this file holds the connection, the keys and the health check;
//! `presence` is the [`Presence`](webcall_domain::ports::Presence) port (Lua
//! scripts), `cluster` the [`Cluster`](webcall_domain::ports::Cluster) port, and
//! `subscription` the heartbeat, the channel and the sweep.

mod cluster;
mod presence;
mod subscription;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisResult};
use serde::{Deserialize, Serialize};
use webcall_domain::ports::HealthCheck;
use webcall_domain::signaling::{ClusterMessage, PeerId, PeerInfo, RoomName};
use webcall_domain::DomainError;

/// Timings of the heartbeat and the sweep.
#[derive(Debug, Clone, Copy)]
pub struct RedisBusTimings {
    /// How long an instance's heartbeat lives without a refresh.
    pub heartbeat_ttl: Duration,
    /// How often survivors look for peers of dead instances.
    pub sweep_every: Duration,
}

impl RedisBusTimings {
    /// Dead instances' peers are announced within `deadline` (WS_IDLE_TIMEOUT_SECS).
    pub fn within(deadline: Duration) -> Self {
        let heartbeat_ttl = (deadline / 3).max(Duration::from_secs(2));
        Self {
            heartbeat_ttl,
            sweep_every: (heartbeat_ttl / 3).max(Duration::from_millis(500)),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Record {
    info: PeerInfo,
    instance: String,
}

/// What goes over the channel: a message, with the instance it came from.
#[derive(Serialize, Deserialize)]
struct Published {
    origin: String,
    message: ClusterMessage,
}

/// The longest any Redis call may take before it fails as unavailable (a
/// request waits no longer for a Redis that is down or unreachable).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest wait between attempts to renew the subscription.
const RESUBSCRIBE_MAX_WAIT: Duration = Duration::from_secs(1);

/// See the crate docs.
#[derive(Clone)]
pub struct RedisBus {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    instance: String,
    timings: RedisBusTimings,
    /// Subscribed, and this instance's presence restored since the last loss.
    subscribed: Arc<AtomicBool>,
}

/// A Redis that is down, restarting or unreachable is unavailable (503, try
/// again); anything else is a failure of ours.
fn infra(err: redis::RedisError) -> DomainError {
    if err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
        || matches!(
            err.kind(),
            redis::ErrorKind::BusyLoadingError | redis::ErrorKind::TryAgain
        )
    {
        DomainError::unavailable(err)
    } else {
        DomainError::infrastructure(err)
    }
}

/// Runs one Redis call, failing as unavailable after [`CALL_TIMEOUT`].
async fn call<T>(op: impl Future<Output = RedisResult<T>>) -> Result<T, DomainError> {
    match tokio::time::timeout(CALL_TIMEOUT, op).await {
        Ok(result) => result.map_err(infra),
        Err(_) => Err(DomainError::unavailable(format!(
            "Redis did not answer within {} s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

/// A resume token outlives any call it could matter for.
const RESUME_KEY_TTL_SECS: i64 = 24 * 3600;

impl RedisBus {
    /// Connects (failing fast if Redis does not answer).
    pub async fn connect(
        url: &str,
        prefix: &str,
        timings: RedisBusTimings,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        // Reconnects quickly and briefly: a call waits at most CALL_TIMEOUT
        // anyway, and the next call tries again (the defaults back off for
        // minutes, and every call waits that long).
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CALL_TIMEOUT / 2)
            .set_response_timeout(CALL_TIMEOUT)
            .set_factor(2)
            .set_max_delay(250)
            .set_number_of_retries(1);
        let mut conn = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| anyhow::anyhow!("Redis did not answer within 5 s"))??;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(Self {
            client,
            conn,
            prefix: prefix.to_owned(),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            timings,
            subscribed: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn room_key(&self, room: &RoomName) -> String {
        format!("{}:room:{room}", self.prefix)
    }

    fn rooms_key(&self) -> String {
        format!("{}:rooms", self.prefix)
    }

    fn instance_key(&self, instance: &str) -> String {
        format!("{}:instance:{instance}", self.prefix)
    }

    fn resume_key(&self, token: &str) -> String {
        format!("{}:resume:{token}", self.prefix)
    }

    /// Adds to `pipe` what makes `token` resume `peer` in `room` anywhere.
    fn resume_into(&self, pipe: &mut redis::Pipeline, token: &str, room: &RoomName, peer: &PeerId) {
        let key = self.resume_key(token);
        pipe.hset_multiple(&key, &[("room", room.as_str()), ("peer", peer.as_str())])
            .ignore()
            .expire(&key, RESUME_KEY_TTL_SECS)
            .ignore();
    }

    fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    fn record(&self, peer: &PeerInfo) -> Result<String, DomainError> {
        serde_json::to_string(&Record {
            info: peer.clone(),
            instance: self.instance.clone(),
        })
        .map_err(DomainError::infrastructure)
    }

    async fn publish_message(&self, message: &Published) -> Result<(), DomainError> {
        let payload = serde_json::to_string(message).map_err(DomainError::infrastructure)?;
        let mut conn = self.conn.clone();
        let _: i64 = call(conn.publish(self.channel(), payload)).await?;
        Ok(())
    }
}

/// `/readyz`: Redis answers, and the subscription is up with this instance's
/// presence restored (else other instances' events would not arrive).
#[async_trait]
impl HealthCheck for RedisBus {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn check(&self) -> Result<(), DomainError> {
        if !self.subscribed.load(Ordering::Acquire) {
            return Err(DomainError::unavailable("the Redis subscription is down"));
        }
        let mut conn = self.conn.clone();
        let _: String = call(redis::cmd("PING").query_async(&mut conn)).await?;
        Ok(())
    }
}
