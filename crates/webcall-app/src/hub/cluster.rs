//! The road to other instances: publishing events (and keeping what the bus
//! could not publish), and what the bus brings back ([`BusListener`]).

use webcall_domain::ports::{BusListener, LocalPresence};
use webcall_domain::signaling::{Envelope, LeaveReason, PeerId, RoomEvent, RoomName};
use webcall_domain::DomainError;

use super::{Hub, UNPUBLISHED_KEPT};

impl Hub {
    /// Delivers locally and hands to the other instances.
    pub(super) async fn dispatch(&self, envelope: Envelope) {
        self.deliver_local(&envelope).await;
        self.publish(&envelope).await;
    }

    pub(super) async fn publish(&self, envelope: &Envelope) {
        if let Err(err) = self.deps.bus.publish(envelope).await {
            tracing::warn!(room = %envelope.room, error = %err, "could not publish a room event");
            if !matches!(envelope.event, RoomEvent::Signal { .. }) {
                let mut unpublished = self.unpublished.lock().unwrap_or_else(|e| e.into_inner());
                if unpublished.len() == UNPUBLISHED_KEPT {
                    unpublished.pop_front();
                }
                unpublished.push_back(envelope.clone());
            }
        }
    }

    /// Every peer of this instance where the bus should have it.
    pub(super) fn local_presence(&self) -> Vec<LocalPresence> {
        self.lock()
            .peers
            .values()
            .map(|peer| LocalPresence {
                room: peer.room.clone(),
                info: peer.info.clone(),
                resume_token: peer.resume_token.clone(),
            })
            .collect()
    }

    /// Tells the other instances about each peer here again (`peer_joined`; a
    /// client that knows the peer already only takes its state).
    pub(super) async fn announce_local_peers(&self) {
        for peer in self.local_presence() {
            let envelope = Envelope {
                room: peer.room,
                to: None,
                except: Some(peer.info.peer_id.clone()),
                event: RoomEvent::PeerJoined { peer: peer.info },
            };
            if let Err(err) = self.deps.bus.publish(&envelope).await {
                tracing::warn!(error = %err, "could not announce peers again");
                return;
            }
        }
    }
}

/// What the bus brings from other instances.
#[async_trait::async_trait]
impl BusListener for Hub {
    async fn deliver(&self, envelope: Envelope) {
        self.deliver_local(&envelope).await;
    }

    async fn departed(&self, room: RoomName, peer: PeerId) {
        self.dispatch(Envelope {
            room,
            to: None,
            except: Some(peer.clone()),
            event: RoomEvent::PeerLeft {
                peer_id: peer,
                reason: LeaveReason::Timeout,
            },
        })
        .await;
    }

    async fn reconnected(&self) -> Result<(), DomainError> {
        self.deps.bus.restore(&self.local_presence()).await?;
        let unpublished: Vec<Envelope> = self
            .unpublished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        if !unpublished.is_empty() {
            tracing::info!(events = unpublished.len(), "publishing what the bus missed");
        }
        for envelope in &unpublished {
            // Kept again if the bus fails once more.
            self.publish(envelope).await;
        }
        self.announce_local_peers().await;
        Ok(())
    }

    async fn roll_call(&self) {
        self.announce_local_peers().await;
    }
}
