//! [`Cluster`] in Redis: publishing on the channel, resume tokens shared by
//! every instance, and restoring this instance's presence after Redis came back.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use redis::AsyncCommands;
use webcall_domain::ports::{Cluster, LocalPresence, Presence};
use webcall_domain::signaling::{ClusterMessage, PeerId, PeerInfo, RoomName};
use webcall_domain::DomainError;

use crate::{call, Published, Record, RedisBus};

const CLAIM: &str = r"
local room = redis.call('HGET', KEYS[1], 'room')
local peer = redis.call('HGET', KEYS[1], 'peer')
if not room or room ~= ARGV[1] then return false end
local record = redis.call('HGET', KEYS[2], peer)
if not record then return false end
return record
";

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
