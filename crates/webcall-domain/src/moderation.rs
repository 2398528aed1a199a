//! Moderation in a call: what a host (the room's owner, or an admin) may do to
//! the others, and the rules a room keeps because of it (who is banned from it,
//! whether only hosts may speak). Who counts as a host is decided in the use
//! cases (`webcall-app`'s `hub::moderation::is_host`), not here.

use serde::{Deserialize, Serialize};

use crate::model::UserId;
use crate::signaling::PeerId;

/// What a host does in a call, as one instance asks every instance to carry it
/// out for the peers it serves (`Command::Moderate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Moderation {
    /// Turn the peer's microphone off.
    Mute { peer_id: PeerId },
    /// End the peer's screen share.
    StopScreen { peer_id: PeerId },
    /// Turn off the microphone of every peer that is not a host.
    MuteAll,
    /// Only hosts may speak (`on`), or everyone again. Turning it on mutes
    /// every peer that is not a host.
    HostsOnly { on: bool },
    /// The account may not join the room again while the room exists (its
    /// peers are kicked as well, by `Command::Kick`).
    Ban { user: UserId },
}

/// What a host did to one peer, as that peer's client is told: it obeys at
/// once (the server has already changed the peer's state for the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostAction {
    Mute,
    StopScreen,
}

impl HostAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mute => "mute",
            Self::StopScreen => "stop_screen",
        }
    }
}

/// A room's moderation rules as stored: they last as long as the room (deleting
/// the room ends them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomRules {
    /// Only hosts may turn their microphone on.
    pub hosts_only: bool,
    /// Accounts refused at join.
    pub banned: Vec<UserId>,
}

impl RoomRules {
    pub fn is_banned(&self, user: UserId) -> bool {
        self.banned.contains(&user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signaling::{Command, RoomName};

    #[test]
    fn a_moderation_command_travels_as_json_and_back() {
        let room = RoomName::parse("team").unwrap();
        for action in [
            Moderation::Mute {
                peer_id: PeerId::from_client("p1"),
            },
            Moderation::StopScreen {
                peer_id: PeerId::from_client("p1"),
            },
            Moderation::MuteAll,
            Moderation::HostsOnly { on: true },
            Moderation::Ban {
                user: UserId(uuid::Uuid::new_v4()),
            },
        ] {
            let command = Command::Moderate {
                room: room.clone(),
                by: PeerId::from_client("host"),
                action,
            };
            let text = serde_json::to_string(&command).unwrap();
            assert_eq!(serde_json::from_str::<Command>(&text).unwrap(), command);
        }
    }
}
