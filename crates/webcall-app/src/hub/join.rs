//! Joining a room: the room looked up once per burst (or created by its first
//! joiner), a ban from it checked, the peer registered here before presence
//! says it is in (so no simultaneous joiner is missed), the room routed when
//! the joiner makes it large enough (`media`), and the welcome with the latest
//! chat and the room's media.

use std::sync::Arc;

use uuid::Uuid;
use webcall_domain::media::MediaMode;
use webcall_domain::signaling::RoomRules;
use webcall_domain::signaling::{
    ChatMessage, Envelope, LeaveReason, ModeReason, PeerId, PeerInfo, PeerState, Room, RoomEvent,
    RoomName,
};

use super::moderation::keep_rules;
use super::{Hub, JoinRequest, Session, Welcome};
use crate::admission::is_host;
use crate::admission::{self, Admission, Caller, Facts, RoomPasses};
use crate::AppError;

impl Hub {
    /// Joins a room (creating it, owned by the joiner, if it does not exist and
    /// the joiner is no guest), or
    /// resumes a detached peer when `resume` names one of this user in this room.
    #[tracing::instrument(skip_all, fields(room = %request.room))]
    pub async fn join(&self, request: JoinRequest) -> Result<Session, AppError> {
        if let Some(session) = self.try_resume(&request).await? {
            return Ok(session);
        }
        let (known, deletions) = {
            let mut local = self.lock();
            let known = match local
                .rooms
                .get(&request.room)
                .and_then(|room| room.stored.clone())
            {
                Some(room) => Ok(room),
                None => Err(local
                    .lookups
                    .entry(request.room.clone())
                    .or_default()
                    .clone()),
            };
            (known, local.deletions)
        };
        let (room, lookup) = match known {
            Ok(room) => (room, None),
            Err(lookup) => {
                let found = lookup
                    .get_or_try_init(|| async {
                        if request.guest {
                            let found = self.deps.rooms.find(&request.room).await?;
                            found.ok_or(AppError::RoomNotFound)
                        } else {
                            let rooms = &self.deps.rooms;
                            rooms.find_or_create(&request.room, request.user_id).await
                        }
                    })
                    .await
                    .cloned();
                match found {
                    Ok(room) => (room, Some(lookup)),
                    Err(err) => {
                        self.lock().end_lookup(&request.room, &lookup);
                        return Err(err);
                    }
                }
            }
        };
        let host = !request.guest && is_host(&room, request.user_id, request.role);
        let (rules, rules_seen) = match self.read_rules(&request.room).await {
            Ok(read) => read,
            Err(err) => {
                if let Some(lookup) = &lookup {
                    self.lock().end_lookup(&request.room, lookup);
                }
                return Err(err);
            }
        };
        // Who may enter is the admission decision's; a resume (above) is no
        // newcomer and is not asked again.
        let admission = self.admission(&room, &request, &rules).await;
        if let Err(err) = admission {
            if let Some(lookup) = &lookup {
                self.lock().end_lookup(&request.room, lookup);
            }
            return Err(err);
        }
        let info = PeerInfo {
            peer_id: PeerId::new_random(),
            user_id: request.user_id,
            username: request.username.clone(),
            state: PeerState::default(),
            host,
            guest: request.guest,
        };
        // Receive the room's events from before presence says we are here, so that
        // no one who joins at the same moment is missed (at worst a peer is both in
        // `welcome.peers` and announced by `peer_joined`; clients treat that as one).
        let resume_token = Uuid::new_v4().simple().to_string();
        let attached = {
            let mut local = self.lock();
            let attached = self.register(&mut local, &info, &request, &resume_token);
            if local.deletions == deletions {
                if let Some(local_room) = local.rooms.get_mut(&request.room) {
                    local_room.stored.get_or_insert_with(|| room.clone());
                }
            }
            if let Some(lookup) = &lookup {
                local.end_lookup(&request.room, lookup);
            }
            keep_rules(&mut local, &request.room, &rules, rules_seen);
            attached
        };
        let joined = self
            .deps
            .presence
            .join(&request.room, &info, self.config.max_peers)
            .await;
        let peers = match joined {
            Ok(Some(peers)) => peers,
            Ok(None) => {
                self.lock().remove(&info.peer_id);
                return Err(AppError::RoomFull);
            }
            Err(err) => {
                self.lock().remove(&info.peer_id);
                return Err(err.into());
            }
        };
        let media = self.media_at_join(&request.room);
        let chat = match self.recent_chat(&request.room, &info.peer_id).await {
            Ok(chat) => chat,
            Err(err) => {
                self.remove_and_announce(&info.peer_id, LeaveReason::Left)
                    .await;
                return Err(err);
            }
        };
        self.share_resume(&resume_token, &request.room, &info.peer_id)
            .await;
        tracing::info!(peer_id = %info.peer_id, user_id = %info.user_id, "peer joined");
        // The others switch first, so that none offers a mesh connection to
        // the joiner.
        if media.switched {
            let room = &request.room;
            let (mode, reason) = (MediaMode::Sfu, ModeReason::Size);
            self.announce_mode(room, mode, None, reason, Some(&info.peer_id))
                .await;
        }
        if media.mode == MediaMode::Sfu && !request.sfu {
            self.push_to(&info.peer_id, None, RoomEvent::UpdateRequired);
        }
        self.dispatch(Envelope {
            room: request.room.clone(),
            to: None,
            except: Some(info.peer_id.clone()),
            event: RoomEvent::PeerJoined { peer: info.clone() },
        })
        .await;
        if host && (room.locked || room.access.ask_to_join) {
            self.host_joined(&request.room).await;
        }
        Ok(Session {
            welcome: Welcome {
                peer_id: info.peer_id.clone(),
                room: request.room,
                owner: room.owner == request.user_id,
                owner_id: room.owner,
                host,
                hosts_only: rules.hosts_only,
                user_id: request.user_id,
                username: request.username,
                peers,
                chat,
                ice_servers: self.deps.ice.for_user(request.user_id),
                resume_token,
                resumed: false,
                media_mode: media.mode,
                sfu_available: self.sfu_available(),
                sfu_from_peers: self.sfu_from_peers(),
                recording: media.recording,
            },
            peer_id: info.peer_id,
            generation: attached.generation,
            outbound: attached.outbound,
            close: attached.close,
        })
    }

    /// The room's latest chat for the welcome of `peer_id`, who is in the room
    /// already, so a message sent meanwhile is in both the history and its queue
    /// (clients dedupe by id), never in neither. Served from memory once a join
    /// here has read the stored history (see [`RecentChat`]).
    async fn recent_chat(
        &self,
        room: &RoomName,
        peer_id: &PeerId,
    ) -> Result<Vec<ChatMessage>, AppError> {
        let read = {
            let mut local = self.lock();
            match local.room_of_peer(room, peer_id) {
                Some(local_room) => match local_room.chat.latest() {
                    Some(chat) => return Ok(chat),
                    None => local_room.history.clone(),
                },
                // Gone already (kicked, say): a read of its own.
                None => Arc::default(),
            }
        };
        let stored = read
            .get_or_try_init(|| async {
                let stored = self
                    .deps
                    .chat
                    .chat_before(room, None, self.config.history)
                    .await?;
                // Read while the room had a peer here: everything stored before is
                // in it, everything delivered since was recorded in the same entry.
                if let Some(local_room) = self.lock().rooms.get_mut(room) {
                    if Arc::ptr_eq(&local_room.history, &read) {
                        local_room.chat.load(&stored);
                    }
                }
                Ok::<_, AppError>(stored)
            })
            .await?;
        let mut local = self.lock();
        Ok(local
            .room_of_peer(room, peer_id)
            .and_then(|local_room| local_room.chat.latest())
            .unwrap_or_else(|| stored.clone()))
    }
}

impl Hub {
    /// Asks the admission decision whether `request` may enter `room` now:
    /// `MustWait` sends the newcomer to the lobby, a refusal is its error.
    async fn admission(
        &self,
        room: &Room,
        request: &JoinRequest,
        rules: &RoomRules,
    ) -> Result<(), AppError> {
        let caller = Caller {
            user: request.user_id,
            role: request.role,
        };
        // A guest's invite link stands for a private room's membership and for
        // its password (the host handed it out); the lobby still holds guests,
        // and there is no account to ban.
        let facts = if request.guest {
            Facts {
                member: true,
                banned: false,
                pass_ok: true,
                admitted: request.admitted,
            }
        } else {
            let member = if admission::needs_membership(room, caller) {
                self.deps.access.is_member(&room.name, caller.user).await?
            } else {
                false
            };
            Facts {
                member,
                banned: rules.is_banned(caller.user),
                pass_ok: admission::pass_ok(
                    &RoomPasses::default(),
                    room,
                    caller,
                    request.pass.as_deref(),
                    self.deps.clock.now(),
                ),
                admitted: request.admitted,
            }
        };
        match admission::decide(room, caller, facts) {
            Admission::Admit => Ok(()),
            Admission::Wait => Err(AppError::MustWait),
            Admission::Refuse(refusal) => Err(refusal.into()),
        }
    }
}
