//! The road to other instances, when there are any ([`Cluster`]): events and
//! commands published to them (and kept while the cluster cannot take them),
//! resume tokens shared with them, and what they send ([`ClusterListener`]).
//! Alone, every call here is a no-op: there is no one to tell.

use webcall_domain::ports::{ClusterListener, LocalPresence};
use webcall_domain::signaling::{
    ClusterMessage, Command, Envelope, LeaveReason, PeerId, RoomEvent, RoomName,
};
use webcall_domain::DomainError;

use super::{Hub, UNPUBLISHED_KEPT};

impl Hub {
    /// Delivers a room event here and hands it to the other instances.
    pub(super) async fn dispatch(&self, envelope: Envelope) {
        self.deliver(&envelope).await;
        self.publish(ClusterMessage::Event(envelope)).await;
    }

    /// Whether there are other instances (a cluster) to tell.
    pub fn clustered(&self) -> bool {
        self.deps.cluster.is_some()
    }

    /// Carries out a command here and on the other instances.
    pub async fn command(&self, command: Command) {
        self.execute(&command).await;
        self.publish(ClusterMessage::Command(command)).await;
    }

    /// Hands a message to the other instances. While the cluster is down it is
    /// kept (up to [`UNPUBLISHED_KEPT`]), except signals and reactions: by then
    /// they are stale.
    pub(super) async fn publish(&self, message: ClusterMessage) {
        let Some(cluster) = &self.deps.cluster else {
            return;
        };
        if let Err(err) = cluster.publish(&message).await {
            tracing::warn!(error = %err, "could not publish to the other instances");
            let stale = matches!(
                &message,
                ClusterMessage::Event(Envelope {
                    event: RoomEvent::Signal { .. } | RoomEvent::Reaction { .. },
                    ..
                })
            );
            if !stale {
                let mut unpublished = self.unpublished.lock().unwrap_or_else(|e| e.into_inner());
                if unpublished.len() == UNPUBLISHED_KEPT {
                    unpublished.pop_front();
                }
                unpublished.push_back(message);
            }
        }
    }

    /// Makes the peer's resume token work on every instance.
    pub(super) async fn share_resume(&self, token: &str, room: &RoomName, peer: &PeerId) {
        let Some(cluster) = &self.deps.cluster else {
            return;
        };
        if let Err(err) = cluster.remember_resume(token, room, peer).await {
            tracing::warn!(error = %err, "could not share the resume token: resuming works on this instance only");
        }
    }

    /// The peer is gone for good: its resume token no longer works elsewhere.
    pub(super) async fn forget_resume(&self, token: &str) {
        let Some(cluster) = &self.deps.cluster else {
            return;
        };
        if let Err(err) = cluster.forget_resume(token).await {
            tracing::warn!(error = %err, "could not forget a resume token");
        }
    }

    /// Every peer of this instance where the cluster should have it.
    fn local_presence(&self) -> Vec<LocalPresence> {
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
        let Some(cluster) = &self.deps.cluster else {
            return;
        };
        for peer in self.local_presence() {
            let envelope = Envelope {
                room: peer.room,
                to: None,
                except: Some(peer.info.peer_id.clone()),
                event: RoomEvent::PeerJoined { peer: peer.info },
            };
            if let Err(err) = cluster.publish(&ClusterMessage::Event(envelope)).await {
                tracing::warn!(error = %err, "could not announce peers again");
                return;
            }
        }
    }
}

/// What the other instances send.
#[async_trait::async_trait]
impl ClusterListener for Hub {
    async fn receive(&self, message: ClusterMessage) {
        match message {
            ClusterMessage::Event(envelope) => self.deliver(&envelope).await,
            ClusterMessage::Command(command) => self.execute(&command).await,
        }
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
        if let Some(cluster) = &self.deps.cluster {
            cluster.restore(&self.local_presence()).await?;
        }
        // Moderation published meanwhile was lost: read the rules again.
        self.forget_rules();
        let unpublished: Vec<ClusterMessage> = self
            .unpublished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        if !unpublished.is_empty() {
            tracing::info!(
                messages = unpublished.len(),
                "publishing what the other instances missed"
            );
        }
        for message in unpublished {
            // Kept again if the cluster fails once more.
            self.publish(message).await;
        }
        self.announce_local_peers().await;
        Ok(())
    }
}
