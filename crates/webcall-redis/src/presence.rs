//! [`Presence`] in Redis: a hash per room, changed by Lua scripts so that a
//! join checks the room's capacity and adds the peer at once.

use async_trait::async_trait;
use redis::AsyncCommands;
use webcall_domain::ports::Presence;
use webcall_domain::signaling::{PeerId, PeerInfo, RoomName};
use webcall_domain::DomainError;

use crate::{call, Record, RedisBus};

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

const UPDATE: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
";

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
