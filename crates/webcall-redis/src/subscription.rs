//! Keeping in touch with the other instances: the heartbeat, the subscription
//! to the channel (renewed with backoff, then a resync), and the sweep that
//! removes the peers of instances whose heartbeat expired.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSub;
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;
use webcall_domain::ports::{Cluster, ClusterListener, Presence};
use webcall_domain::signaling::{ClusterMessage, Command, PeerId, RoomName};
use webcall_domain::DomainError;

use crate::{call, Published, Record, RedisBus, RESUBSCRIBE_MAX_WAIT};

impl RedisBus {
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
