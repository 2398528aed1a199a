//! The lobby: newcomers the admission decision put to wait (a locked room, or
//! one that asks to join). Their socket is open but they are not in the room.
//! The room's hosts, on every instance, hear `Knock` (who waits) and answer
//! admit or deny (`Command::Answer`, carried out by the instance the newcomer
//! waits on); a newcomer who gives up is taken off the hosts' lists
//! (`KnockEnded`). A host who joins later asks every instance to knock again
//! (`Command::Knocks`), and the newcomers there hear that a host is present.

use std::collections::HashMap;

use tokio::sync::{oneshot, watch};
use uuid::Uuid;
use webcall_domain::model::UserId;
use webcall_domain::signaling::{Command, Envelope, PeerId, RoomEvent, RoomName};

use super::{Hub, JoinRequest};
use crate::AppError;

/// One newcomer waiting here, as the connection holds it.
pub struct Knock {
    pub id: String,
    pub room: RoomName,
    /// A host's answer: admitted (`true`) or denied.
    pub answer: oneshot::Receiver<bool>,
    /// Whether a host is in the room now (else: "waiting for the host").
    pub hosts_present: watch::Receiver<bool>,
}

/// The newcomers waiting on this instance, by knock id.
#[derive(Default)]
pub(super) struct Waiting(HashMap<String, Waiter>);

pub(super) struct Waiter {
    room: RoomName,
    user_id: UserId,
    username: String,
    answer: oneshot::Sender<bool>,
    hosts_present: watch::Sender<bool>,
}

impl Hub {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.lobby.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts the newcomer of `request` in the room's lobby (after `join`
    /// answered [`AppError::MustWait`]): the room's hosts hear them knock.
    pub async fn knock(&self, request: &JoinRequest) -> Result<Knock, AppError> {
        let hosts = self
            .deps
            .presence
            .peers(&request.room)
            .await?
            .iter()
            .any(|peer| peer.host);
        let id = Uuid::new_v4().simple().to_string();
        let (answer_tx, answer) = oneshot::channel();
        let (hosts_tx, hosts_present) = watch::channel(hosts);
        self.waiting().0.insert(
            id.clone(),
            Waiter {
                room: request.room.clone(),
                user_id: request.user_id,
                username: request.username.clone(),
                answer: answer_tx,
                hosts_present: hosts_tx,
            },
        );
        tracing::info!(room = %request.room, knock = %id, "newcomer waits in the lobby");
        self.announce_knock(&request.room, &id, request.user_id, &request.username)
            .await;
        Ok(Knock {
            id,
            room: request.room.clone(),
            answer,
            hosts_present,
        })
    }

    /// The newcomer gave up (or their socket went): the hosts' lists drop them.
    pub async fn end_knock(&self, knock: &Knock) {
        if self.waiting().0.remove(&knock.id).is_some() {
            self.knock_ended(&knock.room, &knock.id, "left").await;
        }
    }

    /// A host (`from`) admits or denies the newcomer `knock`, wherever they wait.
    pub async fn answer_knock(
        &self,
        from: &PeerId,
        knock: &str,
        admit: bool,
    ) -> Result<(), AppError> {
        let room = self.hosted_room(from).await?;
        self.command(Command::Answer {
            room,
            knock: knock.to_owned(),
            admit,
        })
        .await;
        Ok(())
    }

    /// Carries out a host's answer if the newcomer waits here.
    pub(super) async fn answer_here(&self, room: &RoomName, knock: &str, admit: bool) {
        let waiter = {
            let mut waiting = self.waiting();
            match waiting.0.get(knock) {
                Some(waiter) if &waiter.room == room => waiting.0.remove(knock),
                _ => None,
            }
        };
        let Some(waiter) = waiter else {
            return;
        };
        let _ = waiter.answer.send(admit);
        tracing::info!(%room, %knock, admit, "lobby answered");
        let outcome = if admit { "admitted" } else { "denied" };
        self.knock_ended(room, knock, outcome).await;
    }

    /// A host joined `room`: every newcomer waiting for it here knocks again
    /// (for the new host's list) and hears that a host is present.
    pub(super) async fn knock_again(&self, room: &RoomName) {
        let knocks: Vec<(String, UserId, String)> = self
            .waiting()
            .0
            .iter()
            .filter(|(_, waiter)| &waiter.room == room)
            .map(|(id, waiter)| {
                waiter.hosts_present.send_replace(true);
                (id.clone(), waiter.user_id, waiter.username.clone())
            })
            .collect();
        for (id, user_id, username) in knocks {
            self.announce_knock(room, &id, user_id, &username).await;
        }
    }

    /// After a host joined: the newcomers waiting for the room on every
    /// instance knock again.
    pub(super) async fn host_joined(&self, room: &RoomName) {
        self.command(Command::Knocks { room: room.clone() }).await;
    }

    async fn announce_knock(&self, room: &RoomName, id: &str, user_id: UserId, username: &str) {
        self.dispatch(Envelope {
            room: room.clone(),
            to: None,
            except: None,
            event: RoomEvent::Knock {
                knock: id.to_owned(),
                user_id,
                username: username.to_owned(),
            },
        })
        .await;
    }

    async fn knock_ended(&self, room: &RoomName, id: &str, outcome: &str) {
        self.dispatch(Envelope {
            room: room.clone(),
            to: None,
            except: None,
            event: RoomEvent::KnockEnded {
                knock: id.to_owned(),
                outcome: outcome.to_owned(),
            },
        })
        .await;
    }
}

/// Lobby events are for hosts only.
pub(super) fn hosts_only(event: &RoomEvent) -> bool {
    matches!(
        event,
        RoomEvent::Knock { .. } | RoomEvent::KnockEnded { .. }
    )
}
