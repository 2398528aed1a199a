//! Moderation in a call: what a host ([`is_host`], decided in
//! `crate::admission`) may do (mute one peer or everyone, stop a screen
//! share, kick with an optional ban from the room, "only hosts may speak"), and
//! how each instance carries it out for the peers it serves
//! (`Command::Moderate`).
//!
//! The server changes the target's state itself (`peer_state` to the others)
//! and tells the target's client (`moderated`), which obeys. In a mesh call the
//! media never passes the server, so a modified client could keep sending: what
//! the server enforces is the state (a non-host's unmute is refused while only
//! hosts may speak), and the web client of each listener plays no audio from a
//! non-host while only hosts may speak.
//!
//! The room's rules (bans, "only hosts may speak") are stored with the room
//! ([`RoomModeration`](webcall_domain::ports::RoomModeration)) and held in
//! memory while the room has peers here, kept up to date by the commands.

use webcall_domain::signaling::{
    Command, Envelope, HostAction, LeaveReason, Moderation, PeerId, PeerInfo, PeerState, RoomEvent,
    RoomName, RoomRules,
};

use super::registry::Local;
use super::Hub;
use crate::admission::is_host;
use crate::AppError;

/// When a room's rules were read: the rule changes and room deletions this
/// instance had seen. Rules read before a later change are not kept.
pub(super) type RulesSeen = Option<(u64, u64)>;

impl Hub {
    /// The room of `from`, if `from` is a host of it now (its owner as stored
    /// now, or an admin when it connected); `NotRoomOwner` otherwise.
    pub(super) async fn hosted_room(&self, from: &PeerId) -> Result<RoomName, AppError> {
        let (room, user, role) = {
            let local = self.lock();
            let peer = local.peers.get(from).ok_or(AppError::PeerNotFound)?;
            (peer.room.clone(), peer.info.user_id, peer.role)
        };
        match self.deps.rooms.find(&room).await? {
            Some(stored) if is_host(&stored, user, role) => Ok(room),
            _ => Err(AppError::NotRoomOwner),
        }
    }

    /// `target` as presence has it in `room` (on any instance).
    async fn peer_in(&self, room: &RoomName, target: &PeerId) -> Result<PeerInfo, AppError> {
        self.deps
            .presence
            .peers(room)
            .await?
            .into_iter()
            .find(|p| &p.peer_id == target)
            .ok_or(AppError::PeerNotFound)
    }

    /// A host turns `target`'s microphone off.
    pub async fn mute(&self, from: &PeerId, target: &PeerId) -> Result<(), AppError> {
        let room = self.hosted_room(from).await?;
        self.peer_in(&room, target).await?;
        let action = Moderation::Mute {
            peer_id: target.clone(),
        };
        self.moderate(room, from, action).await;
        Ok(())
    }

    /// A host ends `target`'s screen share.
    pub async fn stop_screen(&self, from: &PeerId, target: &PeerId) -> Result<(), AppError> {
        let room = self.hosted_room(from).await?;
        self.peer_in(&room, target).await?;
        let action = Moderation::StopScreen {
            peer_id: target.clone(),
        };
        self.moderate(room, from, action).await;
        Ok(())
    }

    /// A host turns off every microphone but the hosts'.
    pub async fn mute_all(&self, from: &PeerId) -> Result<(), AppError> {
        let room = self.hosted_room(from).await?;
        self.moderate(room, from, Moderation::MuteAll).await;
        Ok(())
    }

    /// A host switches "only hosts may speak" on (every other microphone is
    /// turned off and may not be turned on) or off. Stored with the room.
    pub async fn set_hosts_only(&self, from: &PeerId, on: bool) -> Result<(), AppError> {
        let room = self.hosted_room(from).await?;
        if !self.deps.moderation.set_hosts_only(&room, on).await? {
            return Err(AppError::RoomNotFound);
        }
        self.moderate(room, from, Moderation::HostsOnly { on })
            .await;
        Ok(())
    }

    /// A host removes `target` from the call (close 4003). With `ban`, the
    /// target's account may not join the room again while the room exists,
    /// and its other peers in the room are removed too. A guest has no
    /// account to ban (its id is new with each guest token): it is removed,
    /// and revoking its invite link keeps it out.
    pub async fn kick(&self, from: &PeerId, target: &PeerId, ban: bool) -> Result<(), AppError> {
        let room = self.hosted_room(from).await?;
        let peers = self.deps.presence.peers(&room).await?;
        let found = peers
            .iter()
            .find(|p| &p.peer_id == target)
            .ok_or(AppError::PeerNotFound)?;
        let (user, guest) = (found.user_id, found.guest);
        let mut kicked = vec![target.clone()];
        if ban && !guest {
            let now = self.deps.clock.now();
            self.deps.moderation.ban_from_room(&room, user, now).await?;
            self.moderate(room.clone(), from, Moderation::Ban { user })
                .await;
            kicked.extend(
                peers
                    .into_iter()
                    .filter(|p| p.user_id == user && &p.peer_id != target)
                    .map(|p| p.peer_id),
            );
            tracing::info!(room = %room, %user, "banned from the room");
        }
        for peer_id in kicked {
            self.command(Command::Kick {
                room: room.clone(),
                peer_id: peer_id.clone(),
            })
            .await;
            self.announce_departure(&room, &peer_id, LeaveReason::Kicked)
                .await;
        }
        Ok(())
    }

    async fn moderate(&self, room: RoomName, by: &PeerId, action: Moderation) {
        tracing::info!(room = %room, by = %by, ?action, "moderation");
        self.command(Command::Moderate {
            room,
            by: by.clone(),
            action,
        })
        .await;
    }

    /// Refuses turning the microphone on while only hosts may speak, unless
    /// `from` is a host.
    pub(super) async fn may_speak(&self, from: &PeerId) -> Result<(), AppError> {
        let (room, host) = {
            let local = self.lock();
            let peer = local.peers.get(from).ok_or(AppError::PeerNotFound)?;
            (peer.room.clone(), peer.info.host)
        };
        if !host && self.rules(&room).await?.hosts_only {
            return Err(AppError::HostsOnly);
        }
        Ok(())
    }

    /// Carries out a host's `action` in `room` for this instance's peers.
    pub(super) async fn moderate_here(&self, room: &RoomName, by: &PeerId, action: &Moderation) {
        match action {
            Moderation::Mute { peer_id } => {
                self.turn_off(
                    room,
                    by,
                    std::slice::from_ref(peer_id),
                    HostAction::Mute,
                    true,
                )
                .await
            }
            Moderation::StopScreen { peer_id } => {
                let ids = std::slice::from_ref(peer_id);
                self.turn_off(room, by, ids, HostAction::StopScreen, true)
                    .await
            }
            Moderation::MuteAll => self.mute_others(room, by).await,
            Moderation::HostsOnly { on } => {
                self.change_rules(room, |rules| rules.hosts_only = *on);
                self.deliver(&Envelope {
                    room: room.clone(),
                    to: None,
                    except: None,
                    event: RoomEvent::HostsOnly {
                        on: *on,
                        by: by.clone(),
                    },
                })
                .await;
                if *on {
                    self.mute_others(room, by).await;
                }
            }
            Moderation::Ban { user } => self.change_rules(room, |rules| {
                if !rules.is_banned(*user) {
                    rules.banned.push(*user);
                }
            }),
        }
    }

    /// Mutes this instance's peers in `room` that are not hosts.
    async fn mute_others(&self, room: &RoomName, by: &PeerId) {
        let ids: Vec<PeerId> = {
            let local = self.lock();
            let Some(local_room) = local.rooms.get(room) else {
                return;
            };
            local_room
                .peers
                .iter()
                .filter(|id| local.peers.get(*id).is_some_and(|p| !p.info.host))
                .cloned()
                .collect()
        };
        self.turn_off(room, by, &ids, HostAction::Mute, false).await;
    }

    /// Turns off what `action` is about for each of `ids` served here: the
    /// others see the new state, the peer's client is told (when its state
    /// changed, or `always`).
    async fn turn_off(
        &self,
        room: &RoomName,
        by: &PeerId,
        ids: &[PeerId],
        action: HostAction,
        always: bool,
    ) {
        for id in ids {
            let changed = {
                let mut local = self.lock();
                let Some(peer) = local.peers.get_mut(id).filter(|p| &p.room == room) else {
                    continue;
                };
                let before = peer.info.state;
                peer.info.state = match action {
                    HostAction::Mute => PeerState {
                        audio: false,
                        ..before
                    },
                    HostAction::StopScreen => PeerState {
                        screen: false,
                        ..before
                    },
                };
                (peer.info.state != before).then(|| peer.info.clone())
            };
            if changed.is_none() && !always {
                continue;
            }
            self.deliver(&Envelope {
                room: room.clone(),
                to: Some(id.clone()),
                except: None,
                event: RoomEvent::Moderated {
                    by: by.clone(),
                    action,
                },
            })
            .await;
            let Some(info) = changed else { continue };
            if let Err(err) = self.deps.presence.update(room, &info).await {
                tracing::warn!(peer_id = %id, error = %err, "moderated state not in presence");
            }
            self.dispatch(Envelope {
                room: room.clone(),
                to: None,
                except: Some(id.clone()),
                event: RoomEvent::PeerState {
                    peer_id: id.clone(),
                    state: info.state,
                },
            })
            .await;
        }
    }

    /// Changes the rules held here for `room` (if any: otherwise they are read
    /// from storage when needed), and makes rules read before now stale.
    fn change_rules(&self, room: &RoomName, change: impl FnOnce(&mut RoomRules)) {
        let mut local = self.lock();
        local.rule_changes += 1;
        if let Some(rules) = local.rooms.get_mut(room).and_then(|r| r.rules.as_mut()) {
            change(rules);
        }
    }

    /// Forgets every room's rules held here (the other instances' changes may
    /// have been missed while the connection to them was lost): they are read
    /// from storage when next needed.
    pub(super) fn forget_rules(&self) {
        let mut local = self.lock();
        local.rule_changes += 1;
        for room in local.rooms.values_mut() {
            room.rules = None;
        }
    }

    /// The room's rules, from memory while it has peers here, else from storage
    /// (and then kept, if it has peers here and no change came meanwhile).
    pub(super) async fn rules(&self, room: &RoomName) -> Result<RoomRules, AppError> {
        let (rules, seen) = self.read_rules(room).await?;
        keep_rules(&mut self.lock(), room, &rules, seen);
        Ok(rules)
    }

    /// The room's rules and, when read from storage, when ([`keep_rules`]).
    pub(super) async fn read_rules(
        &self,
        room: &RoomName,
    ) -> Result<(RoomRules, RulesSeen), AppError> {
        let seen = {
            let local = self.lock();
            if let Some(rules) = local.rooms.get(room).and_then(|r| r.rules.clone()) {
                return Ok((rules, None));
            }
            (local.rule_changes, local.deletions)
        };
        let rules = self.deps.moderation.room_rules(room).await?;
        Ok((rules, Some(seen)))
    }
}

/// Holds `rules`, read from storage when `seen` says, for `room` while it has
/// peers here, unless a rule changed or a room was deleted since.
pub(super) fn keep_rules(local: &mut Local, room: &RoomName, rules: &RoomRules, seen: RulesSeen) {
    let Some(seen) = seen else { return };
    if (local.rule_changes, local.deletions) != seen {
        return;
    }
    if let Some(local_room) = local.rooms.get_mut(room) {
        local_room.rules.get_or_insert_with(|| rules.clone());
    }
}
