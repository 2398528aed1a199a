//! Redis as [`Presence`] and [`Cluster`]: with `REDIS_URL` set, presence, resume
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
//! departure ([`ClusterListener::departed`]), within the heartbeat TTL plus one sweep.
//!
//! When Redis goes away, every call fails within [`CALL_TIMEOUT`] as
//! [`DomainError::Unavailable`] and `/readyz` reports it. The subscription is
//! renewed with backoff; once it is, the instance writes its heartbeat, puts its
//! peers back into presence ([`ClusterListener::reconnected`]: a restarted Redis may
//! be empty) and asks the others for a roll call ([`Command::RollCall`]), so
//! every instance's rooms are whole again.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::{AsyncCommands, RedisResult};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use webcall_domain::ports::{Cluster, ClusterListener, HealthCheck, LocalPresence, Presence};
use webcall_domain::signaling::{ClusterMessage, Command, PeerId, PeerInfo, RoomName};
use webcall_domain::DomainError;

/// Timings of the bus.
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

const JOIN: &str = r"
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return false end
local before = redis.call('HVALS', KEYS[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[4])
return before
";

const LEAVE: &str = r"
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return removed
";

const CLAIM: &str = r"
local room = redis.call('HGET', KEYS[1], 'room')
local peer = redis.call('HGET', KEYS[1], 'peer')
if not room or room ~= ARGV[1] then return false end
local record = redis.call('HGET', KEYS[2], peer)
if not record then return false end
return record
";

const UPDATE: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
";

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

    async fn heartbeat(&self) -> Result<(), DomainError> {
        let mut conn = self.conn.clone();
        let ttl = self.timings.heartbeat_ttl.as_millis() as u64;
        call(conn.pset_ex(self.instance_key(&self.instance), 1, ttl)).await
    }

    async fn subscribe(&self) -> Result<PubSub, DomainError> {
        let mut pubsub = call(self.client.get_async_pubsub()).await?;
        call(pubsub.subscribe(self.channel())).await?;
        Ok(pubsub)
    }

    async fn publish_message(&self, message: &Published) -> Result<(), DomainError> {
        let payload = serde_json::to_string(message).map_err(DomainError::infrastructure)?;
        let mut conn = self.conn.clone();
        let _: i64 = call(conn.publish(self.channel(), payload)).await?;
        Ok(())
    }

    /// After a lost subscription: heartbeat, presence restored, events the
    /// listener could not publish published, and a roll call.
    async fn resync(&self, listener: &dyn ClusterListener) -> Result<(), DomainError> {
        self.heartbeat().await?;
        listener.reconnected().await?;
        self.publish(&ClusterMessage::Command(Command::RollCall))
            .await
    }

    /// Reads the subscription until it ends or `shutdown`; true on shutdown.
    async fn relay_events(
        &self,
        pubsub: &mut PubSub,
        listener: &dyn ClusterListener,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut messages = pubsub.on_message();
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => return true,
                message = messages.next() => match message {
                    Some(message) => message,
                    None => return false,
                },
            };
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            match serde_json::from_str::<Published>(&payload) {
                Ok(published) if published.origin == self.instance => {}
                Ok(published) => listener.receive(published.message).await,
                Err(err) => {
                    tracing::warn!(error = %err, "unreadable event on the Redis channel")
                }
            }
        }
    }

    /// Relays events, renewing the subscription with backoff whenever it is
    /// lost (Redis restarted, or the network between), until `shutdown`.
    async fn keep_subscribed(
        self,
        mut pubsub: PubSub,
        listener: Arc<dyn ClusterListener>,
        shutdown: CancellationToken,
    ) {
        loop {
            if self
                .relay_events(&mut pubsub, listener.as_ref(), &shutdown)
                .await
            {
                return;
            }
            self.subscribed.store(false, Ordering::Release);
            tracing::error!("Redis subscription lost: reconnecting");
            let mut wait = Duration::from_millis(100);
            pubsub = loop {
                let renewed = async {
                    let pubsub = self.subscribe().await?;
                    self.resync(listener.as_ref()).await?;
                    Ok::<_, DomainError>(pubsub)
                };
                match renewed.await {
                    Ok(pubsub) => break pubsub,
                    Err(err) => tracing::warn!(error = %err, "Redis still unavailable"),
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(RESUBSCRIBE_MAX_WAIT);
            };
            self.subscribed.store(true, Ordering::Release);
            tracing::info!("Redis subscription renewed, presence restored");
        }
    }

    /// Runs the heartbeat, the subscription and the sweep until `shutdown`;
    /// remote events and departures go to `listener`. The first heartbeat is
    /// written before this returns.
    pub async fn start(
        &self,
        listener: Arc<dyn ClusterListener>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        self.heartbeat().await?;
        let pubsub = self.subscribe().await?;

        let bus = self.clone();
        let stop = shutdown.clone();
        let sweeper = listener.clone();
        tokio::spawn(async move {
            let mut beat = tokio::time::interval(bus.timings.heartbeat_ttl / 3);
            let mut sweep = tokio::time::interval(bus.timings.sweep_every);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = beat.tick() => {
                        if let Err(err) = bus.heartbeat().await {
                            tracing::warn!(error = %err, "Redis heartbeat failed");
                        }
                    }
                    _ = sweep.tick() => {
                        if let Err(err) = bus.sweep(sweeper.as_ref()).await {
                            tracing::warn!(error = %err, "Redis presence sweep failed");
                        }
                    }
                }
            }
            // Leaving on purpose: let the survivors clean up at their next sweep.
            let mut conn = bus.conn.clone();
            let _ = call::<()>(conn.del(bus.instance_key(&bus.instance))).await;
        });
        self.subscribed.store(true, Ordering::Release);
        tokio::spawn(self.clone().keep_subscribed(pubsub, listener, shutdown));
        Ok(())
    }

    /// Removes peers whose instance's heartbeat is gone, announcing each once.
    async fn sweep(&self, listener: &dyn ClusterListener) -> Result<(), DomainError> {
        let mut conn = self.conn.clone();
        let rooms: Vec<String> = call(conn.smembers(self.rooms_key())).await?;
        let mut alive: HashMap<String, bool> = HashMap::new();
        alive.insert(self.instance.clone(), true);
        for room in rooms {
            let Ok(room) = RoomName::parse(&room) else {
                continue;
            };
            let records: HashMap<String, String> = call(conn.hgetall(self.room_key(&room))).await?;
            let mut dead = HashSet::new();
            for (peer, record) in &records {
                let Ok(record) = serde_json::from_str::<Record>(record) else {
                    continue;
                };
                let is_alive = match alive.get(&record.instance) {
                    Some(known) => *known,
                    None => {
                        let exists: bool =
                            call(conn.exists(self.instance_key(&record.instance))).await?;
                        alive.insert(record.instance.clone(), exists);
                        exists
                    }
                };
                if !is_alive {
                    dead.insert(peer.clone());
                }
            }
            for peer in dead {
                let peer = PeerId::from_client(&peer);
                if self.leave(&room, &peer).await? {
                    tracing::info!(%room, peer_id = %peer, "removed a peer of a dead instance");
                    listener.departed(room.clone(), peer).await;
                }
            }
        }
        Ok(())
    }
}

fn parse_records(values: Vec<String>) -> Vec<PeerInfo> {
    values
        .iter()
        .filter_map(|v| serde_json::from_str::<Record>(v).ok())
        .map(|r| r.info)
        .collect()
}

#[async_trait]
impl Presence for RedisBus {
    async fn join(
        &self,
        room: &RoomName,
        peer: &PeerInfo,
        capacity: usize,
    ) -> Result<Option<Vec<PeerInfo>>, DomainError> {
        let mut conn = self.conn.clone();
        let before: Option<Vec<String>> = call(
            redis::Script::new(JOIN)
                .key(self.room_key(room))
                .key(self.rooms_key())
                .arg(peer.peer_id.as_str())
                .arg(self.record(peer)?)
                .arg(capacity)
                .arg(room.as_str())
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(before.map(parse_records))
    }

    async fn update(&self, room: &RoomName, peer: &PeerInfo) -> Result<(), DomainError> {
        let mut conn = self.conn.clone();
        let _: i64 = call(
            redis::Script::new(UPDATE)
                .key(self.room_key(room))
                .arg(peer.peer_id.as_str())
                .arg(self.record(peer)?)
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(())
    }

    async fn leave(&self, room: &RoomName, peer: &PeerId) -> Result<bool, DomainError> {
        let mut conn = self.conn.clone();
        let removed: i64 = call(
            redis::Script::new(LEAVE)
                .key(self.room_key(room))
                .key(self.rooms_key())
                .arg(peer.as_str())
                .arg(room.as_str())
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(removed == 1)
    }

    async fn peers(&self, room: &RoomName) -> Result<Vec<PeerInfo>, DomainError> {
        let mut conn = self.conn.clone();
        let values: Vec<String> = call(conn.hvals(self.room_key(room))).await?;
        Ok(parse_records(values))
    }

    async fn occupancy(&self) -> Result<Vec<(RoomName, Vec<PeerInfo>)>, DomainError> {
        let mut conn = self.conn.clone();
        let rooms: Vec<String> = call(conn.smembers(self.rooms_key())).await?;
        let mut out = Vec::new();
        for room in rooms {
            let Ok(room) = RoomName::parse(&room) else {
                continue;
            };
            let peers = self.peers(&room).await?;
            if !peers.is_empty() {
                out.push((room, peers));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Cluster for RedisBus {
    async fn remember_resume(
        &self,
        token: &str,
        room: &RoomName,
        peer: &PeerId,
    ) -> Result<(), DomainError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        self.resume_into(&mut pipe, token, room, peer);
        call(pipe.query_async::<()>(&mut conn)).await
    }

    async fn forget_resume(&self, token: &str) -> Result<(), DomainError> {
        let mut conn = self.conn.clone();
        call(conn.del(self.resume_key(token))).await
    }

    async fn claim_resume(
        &self,
        token: &str,
        room: &RoomName,
    ) -> Result<Option<PeerInfo>, DomainError> {
        let mut conn = self.conn.clone();
        let record: Option<String> = call(
            redis::Script::new(CLAIM)
                .key(self.resume_key(token))
                .key(self.room_key(room))
                .arg(room.as_str())
                .invoke_async(&mut conn),
        )
        .await?;
        let Some(info) = record
            .and_then(|r| serde_json::from_str::<Record>(&r).ok())
            .map(|r| r.info)
        else {
            return Ok(None);
        };
        // Ours now: the sweep must not take it for a dead instance's peer.
        self.update(room, &info).await?;
        Ok(Some(info))
    }

    async fn publish(&self, message: &ClusterMessage) -> Result<(), DomainError> {
        self.publish_message(&Published {
            origin: self.instance.clone(),
            message: message.clone(),
        })
        .await
    }

    async fn restore(&self, peers: &[LocalPresence]) -> Result<(), DomainError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for peer in peers {
            pipe.hset(
                self.room_key(&peer.room),
                peer.info.peer_id.as_str(),
                self.record(&peer.info)?,
            )
            .ignore()
            .sadd(self.rooms_key(), peer.room.as_str())
            .ignore();
            self.resume_into(
                &mut pipe,
                &peer.resume_token,
                &peer.room,
                &peer.info.peer_id,
            );
        }
        call(pipe.query_async::<()>(&mut conn)).await?;
        // Ours, but gone while Redis was away (it kept its data): drop them quietly,
        // their departure was announced here and is published by the listener.
        let ours: HashSet<(&str, &str)> = peers
            .iter()
            .map(|p| (p.room.as_str(), p.info.peer_id.as_str()))
            .collect();
        let rooms: Vec<String> = call(conn.smembers(self.rooms_key())).await?;
        for room in rooms {
            let Ok(room) = RoomName::parse(&room) else {
                continue;
            };
            let records: HashMap<String, String> = call(conn.hgetall(self.room_key(&room))).await?;
            for (peer, record) in records {
                let Ok(record) = serde_json::from_str::<Record>(&record) else {
                    continue;
                };
                if record.instance == self.instance
                    && !ours.contains(&(room.as_str(), peer.as_str()))
                {
                    self.leave(&room, &PeerId::from_client(&peer)).await?;
                }
            }
        }
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
