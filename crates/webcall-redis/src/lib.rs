//! The Redis [`RoomBus`]: with `REDIS_URL` set, presence and every room event go
//! through Redis, so several `webcall` processes behind one load balancer serve
//! the same rooms.
//!
//! Depends on `webcall-domain` (the port and its types) and the `redis` crate.
//!
//! Keys (under a prefix, `webcall` by default):
//! - `{p}:room:{room}` — hash peer id → `{"info": PeerInfo, "instance": id}`;
//! - `{p}:rooms` — set of rooms with peers;
//! - `{p}:instance:{id}` — an instance's heartbeat, with a TTL it keeps refreshing;
//! - channel `{p}:events` — every envelope, tagged with the instance it came from.
//!
//! When an instance dies (`kill -9`), its heartbeat expires; the survivors' sweep
//! removes its peers from presence, and whichever removes a peer announces the
//! departure ([`BusListener::departed`]), within the heartbeat TTL plus one sweep.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use webcall_domain::ports::{BusListener, RoomBus};
use webcall_domain::signaling::{Envelope, PeerId, PeerInfo, RoomName};
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

#[derive(Serialize, Deserialize)]
struct Published {
    origin: String,
    envelope: Envelope,
}

/// See the crate docs.
#[derive(Clone)]
pub struct RedisBus {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    instance: String,
    timings: RedisBusTimings,
}

fn infra(err: redis::RedisError) -> DomainError {
    DomainError::infrastructure(err)
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
        let mut conn =
            tokio::time::timeout(Duration::from_secs(5), client.get_connection_manager())
                .await
                .map_err(|_| anyhow::anyhow!("Redis did not answer within 5 s"))??;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(Self {
            client,
            conn,
            prefix: prefix.to_owned(),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            timings,
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

    async fn heartbeat(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let ttl = self.timings.heartbeat_ttl.as_millis() as u64;
        conn.pset_ex(self.instance_key(&self.instance), 1, ttl)
            .await
    }

    /// Runs the heartbeat, the subscription and the sweep until `shutdown`;
    /// remote events and departures go to `listener`. The first heartbeat is
    /// written before this returns.
    pub async fn start(
        &self,
        listener: Arc<dyn BusListener>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        self.heartbeat().await?;
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.channel()).await?;

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
            let _: redis::RedisResult<()> = conn.del(bus.instance_key(&bus.instance)).await;
        });

        let bus = self.clone();
        let listener_for_events = listener;
        tokio::spawn(async move {
            let mut messages = pubsub.on_message();
            loop {
                let message = tokio::select! {
                    () = shutdown.cancelled() => break,
                    message = messages.next() => match message {
                        Some(message) => message,
                        None => {
                            tracing::error!("Redis subscription ended: other instances' events no longer arrive");
                            break;
                        }
                    },
                };
                let Ok(payload) = message.get_payload::<String>() else {
                    continue;
                };
                match serde_json::from_str::<Published>(&payload) {
                    Ok(published) if published.origin != bus.instance => {
                        listener_for_events.deliver(published.envelope).await;
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "unreadable event on the Redis channel")
                    }
                }
            }
        });
        Ok(())
    }

    /// Removes peers whose instance's heartbeat is gone, announcing each once.
    async fn sweep(&self, listener: &dyn BusListener) -> Result<(), DomainError> {
        let mut conn = self.conn.clone();
        let rooms: Vec<String> = conn.smembers(self.rooms_key()).await.map_err(infra)?;
        let mut alive: HashMap<String, bool> = HashMap::new();
        alive.insert(self.instance.clone(), true);
        for room in rooms {
            let Ok(room) = RoomName::parse(&room) else {
                continue;
            };
            let records: HashMap<String, String> =
                conn.hgetall(self.room_key(&room)).await.map_err(infra)?;
            let mut dead = HashSet::new();
            for (peer, record) in &records {
                let Ok(record) = serde_json::from_str::<Record>(record) else {
                    continue;
                };
                let is_alive = match alive.get(&record.instance) {
                    Some(known) => *known,
                    None => {
                        let exists: bool = conn
                            .exists(self.instance_key(&record.instance))
                            .await
                            .map_err(infra)?;
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
impl RoomBus for RedisBus {
    async fn join(
        &self,
        room: &RoomName,
        peer: &PeerInfo,
        capacity: usize,
    ) -> Result<Option<Vec<PeerInfo>>, DomainError> {
        let mut conn = self.conn.clone();
        let before: Option<Vec<String>> = redis::Script::new(JOIN)
            .key(self.room_key(room))
            .key(self.rooms_key())
            .arg(peer.peer_id.as_str())
            .arg(self.record(peer)?)
            .arg(capacity)
            .arg(room.as_str())
            .invoke_async(&mut conn)
            .await
            .map_err(infra)?;
        Ok(before.map(parse_records))
    }

    async fn update(&self, room: &RoomName, peer: &PeerInfo) -> Result<(), DomainError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::Script::new(UPDATE)
            .key(self.room_key(room))
            .arg(peer.peer_id.as_str())
            .arg(self.record(peer)?)
            .invoke_async(&mut conn)
            .await
            .map_err(infra)?;
        Ok(())
    }

    async fn leave(&self, room: &RoomName, peer: &PeerId) -> Result<bool, DomainError> {
        let mut conn = self.conn.clone();
        let removed: i64 = redis::Script::new(LEAVE)
            .key(self.room_key(room))
            .key(self.rooms_key())
            .arg(peer.as_str())
            .arg(room.as_str())
            .invoke_async(&mut conn)
            .await
            .map_err(infra)?;
        Ok(removed == 1)
    }

    async fn peers(&self, room: &RoomName) -> Result<Vec<PeerInfo>, DomainError> {
        let mut conn = self.conn.clone();
        let values: Vec<String> = conn.hvals(self.room_key(room)).await.map_err(infra)?;
        Ok(parse_records(values))
    }

    async fn occupancy(&self) -> Result<Vec<(RoomName, Vec<PeerInfo>)>, DomainError> {
        let mut conn = self.conn.clone();
        let rooms: Vec<String> = conn.smembers(self.rooms_key()).await.map_err(infra)?;
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

    async fn remember_resume(
        &self,
        token: &str,
        room: &RoomName,
        peer: &PeerId,
    ) -> Result<(), DomainError> {
        let mut conn = self.conn.clone();
        let key = self.resume_key(token);
        redis::pipe()
            .hset_multiple(&key, &[("room", room.as_str()), ("peer", peer.as_str())])
            .ignore()
            .expire(&key, RESUME_KEY_TTL_SECS)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(infra)
    }

    async fn forget_resume(&self, token: &str) -> Result<(), DomainError> {
        let mut conn = self.conn.clone();
        conn.del(self.resume_key(token)).await.map_err(infra)
    }

    async fn claim_resume(
        &self,
        token: &str,
        room: &RoomName,
    ) -> Result<Option<PeerInfo>, DomainError> {
        let mut conn = self.conn.clone();
        let record: Option<String> = redis::Script::new(CLAIM)
            .key(self.resume_key(token))
            .key(self.room_key(room))
            .arg(room.as_str())
            .invoke_async(&mut conn)
            .await
            .map_err(infra)?;
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

    async fn publish(&self, envelope: &Envelope) -> Result<(), DomainError> {
        let payload = serde_json::to_string(&Published {
            origin: self.instance.clone(),
            envelope: envelope.clone(),
        })
        .map_err(DomainError::infrastructure)?;
        let mut conn = self.conn.clone();
        let _: i64 = conn.publish(self.channel(), payload).await.map_err(infra)?;
        Ok(())
    }
}
