//! Rooms, peers, chat and the events that travel between peers of a room, and
//! moderation in a call: what a host (the room's owner, or an admin) may do to
//! the others, and the rules a room keeps because of it. Who counts as a host
//! is decided in the use cases (`webcall-app`'s `admission::is_host`).
//!
//! A routed room's events (its media mode, the media end's replies, its
//! recording) are here too; what they carry is `media`'s.
//!
//! About 500 lines with its tests: the room events and commands that
//! travel between instances are kept together, so a change to them shows in one place.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::RoomAccess;
pub use crate::ids::{PeerId, RoomName};
use crate::media::{MediaMode, RecordingId, SfuReply};
use crate::model::UserId;
use crate::operations::{KeyGeneration, KeyKind, RelayQuotas};
use crate::DomainError;

/// What a peer shares: microphone, camera, screen, raised hand. Always all four.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerState {
    pub audio: bool,
    pub video: bool,
    pub screen: bool,
    pub hand: bool,
}

/// A peer as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub peer_id: PeerId,
    pub user_id: UserId,
    pub username: String,
    pub state: PeerState,
    /// A host of the room (its owner, or an admin) when it joined: it may
    /// moderate, and speaks when only hosts may.
    #[serde(default)]
    pub host: bool,
    /// Joined by an invite link, without an account (shown with a "guest" badge).
    #[serde(default)]
    pub guest: bool,
}

/// A room: created by its first joiner (or the REST API), who owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub name: RoomName,
    pub owner: UserId,
    pub owner_name: String,
    pub created_at: DateTime<Utc>,
    /// An admin locked it: newcomers are refused (its owner excepted), those
    /// in the call stay.
    pub locked: bool,
    /// Who may enter: access level, password, "ask to join".
    pub access: RoomAccess,
}

/// Chat text: 1–2000 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatText(String);

impl ChatText {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let text = raw.trim();
        if text.is_empty() || text.chars().count() > 2000 {
            return Err(DomainError::Invalid {
                field: "text",
                message: "must be 1-2000 characters",
            });
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A reaction a peer sends to its room: one of a fixed set of emoji, so what
/// floats over a tile is never free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reaction(u8);

impl Reaction {
    /// Every reaction there is, in the order a client offers them.
    pub const ALL: [&'static str; 6] = ["👍", "👏", "😂", "❤️", "🎉", "😮"];

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Self::ALL
            .iter()
            .position(|emoji| *emoji == raw)
            .map(|at| Self(at as u8))
            .ok_or(DomainError::Invalid {
                field: "emoji",
                message: "must be one of 👍 👏 😂 ❤️ 🎉 😮",
            })
    }

    pub fn as_str(&self) -> &'static str {
        Self::ALL[usize::from(self.0)]
    }
}

impl TryFrom<String> for Reaction {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Reaction> for String {
    fn from(reaction: Reaction) -> Self {
        reaction.as_str().to_owned()
    }
}

/// A chat message as stored and delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Increasing over the whole server.
    pub id: i64,
    pub room: RoomName,
    /// The sending peer.
    pub from: PeerId,
    pub user_id: UserId,
    pub username: String,
    /// Empty for a file's message.
    pub text: String,
    pub ts: DateTime<Utc>,
    /// The file this message shares, if it is a file's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Box<AttachmentRef>>,
}

/// What a chat message says of the file it shares (what clients are sent;
/// the record is [`crate::attachments::Attachment`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    /// The preview's size, when there is one.
    pub thumbnail: Option<(u32, u32)>,
}

/// A chat message about to be stored.
#[derive(Debug, Clone)]
pub struct NewChatMessage {
    pub room: RoomName,
    pub from: PeerId,
    pub user_id: UserId,
    pub username: String,
    pub text: ChatText,
    pub ts: DateTime<Utc>,
}

/// Why a peer left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    Left,
    Timeout,
    Kicked,
    RoomDeleted,
}

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

/// Something that happened in a room, for its peers' clients to see (on this
/// instance or, through the cluster, on others).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoomEvent {
    PeerJoined {
        peer: PeerInfo,
    },
    PeerLeft {
        peer_id: PeerId,
        reason: LeaveReason,
    },
    PeerState {
        peer_id: PeerId,
        state: PeerState,
    },
    /// `data` is the client's opaque JSON, as text.
    Signal {
        from: PeerId,
        data: String,
    },
    Chat {
        message: ChatMessage,
    },
    /// A chat message was deleted (a file's, by its sender, a host or the
    /// retention sweep): clients remove it.
    ChatDeleted {
        id: i64,
    },
    /// A peer reacted (an emoji over its tile for a moment); not stored.
    Reaction {
        peer_id: PeerId,
        emoji: Reaction,
    },
    /// A host did `action` to the peer this is addressed to (its client obeys).
    Moderated {
        by: PeerId,
        action: HostAction,
    },
    /// A host switched "only hosts may speak" on or off.
    HostsOnly {
        on: bool,
        by: PeerId,
    },
    /// A newcomer waits in the lobby (for the room's hosts only).
    Knock {
        knock: String,
        user_id: UserId,
        username: String,
    },
    /// A newcomer left the lobby: `admitted`, `denied` or `left` (hosts only).
    KnockEnded {
        knock: String,
        outcome: String,
    },
    /// The room's media mode changed: `by` a host, or `None` when the server
    /// switched it (`reason` says why).
    MediaMode {
        mode: MediaMode,
        by: Option<PeerId>,
        reason: ModeReason,
    },
    /// What the server's media end says to the peer this is addressed to.
    Sfu {
        reply: SfuReply,
    },
    /// A recording of the room started (everyone is told: consent).
    RecordingStarted {
        recording: ActiveRecording,
    },
    /// The room's recording stopped: `by` a host, or `None` (the room
    /// emptied, the server shut down).
    RecordingStopped {
        id: RecordingId,
        by: Option<PeerId>,
    },
    /// The room is routed and the client of the peer this is addressed to
    /// does not know routed calls (it connected without `sfu=1`): it must
    /// reload.
    UpdateRequired,
}

/// Why a room's media mode changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeReason {
    /// A join made the room reach `SFU_FROM_PEERS`.
    Size,
    /// A host asked.
    Host,
    /// A recording started (it needs the media on the server).
    Recording,
    /// The room emptied: it starts again as a mesh.
    Empty,
}

impl ModeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Size => "size",
            Self::Host => "host",
            Self::Recording => "recording",
            Self::Empty => "empty",
        }
    }
}

/// A room's recording while it runs, as its peers are told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveRecording {
    pub id: RecordingId,
    /// The host who started it.
    pub by: PeerId,
    pub username: String,
    pub started_at: DateTime<Utc>,
}

/// What one instance asks every instance to do to the peers it serves (each
/// instance also does it to its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// A host of the room removed the peer: close its connection (4003).
    Kick { room: RoomName, peer_id: PeerId },
    /// A host of the room (`by`) moderates: each instance carries it out for
    /// the peers it serves and keeps the room's rules it holds up to date.
    Moderate {
        room: RoomName,
        by: PeerId,
        action: Moderation,
    },
    /// The room was deleted: every connection in it is told that the others
    /// left (`room_deleted`), then closed (4004). `peers` is everyone the
    /// deleting instance saw in the room, on any instance.
    EndRoom {
        room: RoomName,
        #[serde(default)]
        peers: Vec<PeerId>,
    },
    /// A login (token family) logged out or had a token replayed: close the
    /// connections opened with any of its tokens (4401).
    EndLogin { login: Uuid },
    /// The account was deleted: close every connection of this user (4401)
    /// and end its relay allocations.
    RevokeUser { user: UserId },
    /// The peer resumed on another instance: its old home lets go of it and
    /// forwards what it kept for it.
    Release { room: RoomName, peer_id: PeerId },
    /// An instance got its connection to the others back and may have missed
    /// who joined meanwhile: every instance announces its peers again.
    RollCall,
    /// An admin banned the account: forget it (it is read again, banned) and
    /// close every connection of this user (4403).
    BanUser { user: UserId },
    /// An admin changed the account (role, ban lifted, password reset): forget
    /// it, so that it is read again.
    UserChanged { user: UserId },
    /// An admin changed the room (locked, new owner): forget it, so that the
    /// next join reads it again.
    RoomChanged { room: RoomName },
    /// A host of the room admitted or denied the newcomer waiting in its lobby
    /// as `knock`: the instance they wait on tells them.
    Answer {
        room: RoomName,
        knock: String,
        admit: bool,
    },
    /// A host joined the room: the newcomers waiting in its lobby knock again.
    Knocks { room: RoomName },
    /// The operator changed the relay quotas; `version` orders changes made
    /// at once on two instances (the higher one wins everywhere).
    RelayQuotas { quotas: RelayQuotas, version: u64 },
    /// A signing key moved to a new generation (never a key, only its number).
    KeyRotated {
        key: KeyKind,
        generation: KeyGeneration,
    },
    /// The operator ended a relay allocation; the instance holding it ends it.
    EndRelayAllocation { id: String },
}

/// What travels between instances: a room event for the peers they serve, or
/// a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterMessage {
    Event(Envelope),
    Command(Command),
}

/// A room event with its addressing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub room: RoomName,
    /// Only this peer; `None` is everyone in the room.
    pub to: Option<PeerId>,
    /// Everyone but this peer.
    pub except: Option<PeerId>,
    pub event: RoomEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_text_is_trimmed_and_bounded() {
        assert_eq!(ChatText::parse("  hi \n").unwrap().as_str(), "hi");
        assert!(ChatText::parse("   ").is_err());
        assert!(ChatText::parse(&"ж".repeat(2000)).is_ok());
        assert!(ChatText::parse(&"ж".repeat(2001)).is_err());
    }

    #[test]
    fn reactions_are_one_of_the_fixed_set() {
        for ok in Reaction::ALL {
            assert_eq!(Reaction::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "👍👍", "x", "❤", " 👍", "<b>", "💩"] {
            assert!(Reaction::parse(bad).is_err(), "{bad}");
        }
        assert!(Reaction::try_from("💩".to_owned()).is_err());
        assert_eq!(String::from(Reaction::parse("🎉").unwrap()), "🎉");
    }

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

    #[test]
    fn a_routed_rooms_events_travel_as_json_and_back() {
        for event in [
            RoomEvent::MediaMode {
                mode: MediaMode::Sfu,
                by: None,
                reason: ModeReason::Size,
            },
            RoomEvent::Sfu {
                reply: SfuReply::Error {
                    code: "busy".into(),
                    message: "m".into(),
                },
            },
            RoomEvent::RecordingStopped {
                id: RecordingId::new_random(),
                by: Some(PeerId::from_client("host")),
            },
            RoomEvent::UpdateRequired,
        ] {
            let text = serde_json::to_string(&event).unwrap();
            assert_eq!(serde_json::from_str::<RoomEvent>(&text).unwrap(), event);
        }
        // What older instances send still reads.
        let old = r#"{"kind":"hosts_only","on":true,"by":"p"}"#;
        assert!(serde_json::from_str::<RoomEvent>(old).is_ok());
    }
}
