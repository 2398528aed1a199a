//! The signaling protocol (docs/protocol.md), and the only place that knows its
//! JSON: [`ClientFrame`] is what a client may send, [`ServerFrame`] what the
//! server writes, and [`close_code`] and [`error_code`] are the one table of the
//! close codes and `error` frame codes it uses. No socket and no hub here.
//!
//! Over 500 lines, a quarter of them tests: the wire format is kept
//! whole in one file on purpose, so that a change to it shows in one place
//! (the frames of routed calls, checked more closely, are in `media`).

mod media;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use webcall_app::hub::{CloseReason, Outbound, Welcome};
use webcall_domain::media::{MediaMode, SfuSignal};
use webcall_domain::model::UserId;
use webcall_domain::signaling::AttachmentRef;
use webcall_domain::signaling::{
    ChatMessage, HostAction, LeaveReason, PeerId, PeerInfo, PeerState, RoomEvent,
};

use crate::auth::rfc3339;
use crate::webrtc::IceServersBody;

/// Largest frame a client may send (larger: close 1009).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// The close codes the server sends (docs/protocol.md §5), with the reasons that
/// go with each. Of a client's close, only `NORMAL` is told apart.
pub(super) mod close_code {
    /// 1000 "closed": after the client's `leave`, when its peer resumed on a newer
    /// socket, or when the hub let go of the connection. A client that closes
    /// with 1000 leaves, like `leave`.
    pub const NORMAL: u16 = 1000;
    /// 1001 "server shutting down", or "idle": nothing came (not even a Pong) for
    /// `WS_IDLE_TIMEOUT_SECS`.
    pub const GOING_AWAY: u16 = 1001;
    /// 1009 "frame too big": a frame over [`MAX_FRAME_BYTES`](super::MAX_FRAME_BYTES).
    pub const TOO_BIG: u16 = 1009;
    /// 1011, no reason: the join failed inside the server (after `internal_error`).
    pub const SERVER_ERROR: u16 = 1011;
    /// 1013 "try again later": the join found presence (Redis) down (after
    /// `service_unavailable`).
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// 4003 "kicked": the room's owner kicked this peer.
    pub const KICKED: u16 = 4003;
    /// 4004 "room deleted": the owner deleted the room (or an admin ended its
    /// call); at join, a guest's room no longer exists (after `room_not_found`).
    pub const ROOM_DELETED: u16 = 4004;
    /// 4005 "room locked": an admin locked the room; no newcomers (after `room_locked`).
    pub const ROOM_LOCKED: u16 = 4005;
    /// 4006 "banned from this room": a host banned the account from the room
    /// (after `banned_from_room`).
    pub const BANNED_FROM_ROOM: u16 = 4006;
    /// 4010 "room private": a private room and the account is no member (after
    /// `room_private`).
    pub const ROOM_PRIVATE: u16 = 4010;
    /// 4011 "room password required": no valid room pass came (after
    /// `room_password_required`).
    pub const ROOM_PASSWORD: u16 = 4011;
    /// 4012 "denied": a host did not let the newcomer in from the lobby (after
    /// `denied`).
    pub const DENIED: u16 = 4012;
    /// 4008 "too slow: reconnect and resume": the send queue overflowed.
    pub const TOO_SLOW: u16 = 4008;
    /// 4009, no reason: the room was full at join (after `room_full`).
    pub const ROOM_FULL: u16 = 4009;
    /// 4013, no reason: the join would have created a room past the account's
    /// room limit or creation rate (after `room_limit_reached` or
    /// `room_creation_rate`).
    pub const ROOM_LIMIT: u16 = 4013;
    /// 4029 "rate limit": the client kept sending far above the frame rate.
    pub const RATE_ABUSE: u16 = 4029;
    /// 4401 "token expired" (the socket's token reached its `exp`) or "token
    /// revoked" (logout, a deleted account, a replayed refresh token).
    pub const TOKEN: u16 = 4401;
    /// 4403 "banned": an admin banned the account.
    pub const BANNED: u16 = 4403;
}

/// The `code`s of `error` frames (docs/protocol.md §4).
pub(super) mod error_code {
    /// Not JSON, no string `type`, or a known type with fields missing or mistyped.
    pub const BAD_FRAME: &str = "bad_frame";
    /// `type` is none of the client frames'.
    pub const UNKNOWN_TYPE: &str = "unknown_type";
    /// A binary frame.
    pub const UNSUPPORTED_FRAME: &str = "unsupported_frame";
    /// A `chat` text empty after trimming, or too long; a `reaction` emoji not
    /// in the fixed set.
    pub const VALIDATION_FAILED: &str = "validation_failed";
    /// The `signal` or `kick` target is not in the room.
    pub const PEER_NOT_FOUND: &str = "peer_not_found";
    /// A moderation frame (`kick`, `mute`, …) from someone who is not a host.
    pub const NOT_ROOM_OWNER: &str = "not_room_owner";
    /// Turning the microphone on while only hosts may speak.
    pub const HOSTS_ONLY: &str = "hosts_only";
    /// At join: a host banned the account from the room (close 4006 follows).
    pub const BANNED_FROM_ROOM: &str = "banned_from_room";
    /// Frames are being dropped (at most one such error a second).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// At join: the room is full (close 4009 follows).
    pub const ROOM_FULL: &str = "room_full";
    /// At join: the account owns as many rooms as it may (close 4013 follows).
    pub const ROOM_LIMIT_REACHED: &str = "room_limit_reached";
    /// At join: the account created rooms too fast (close 4013 follows).
    pub const ROOM_CREATION_RATE: &str = "room_creation_rate";
    /// At join: an admin locked the room (close 4005 follows).
    pub const ROOM_LOCKED: &str = "room_locked";
    /// At join, for a guest: the room is gone (deleted since the invite link
    /// was used; close 4004 follows).
    pub const ROOM_NOT_FOUND: &str = "room_not_found";
    /// The room is private and the account no member of it (close 4010).
    pub const ROOM_PRIVATE: &str = "room_private";
    /// The room has a password: join with a room pass (close 4011).
    pub const ROOM_PASSWORD_REQUIRED: &str = "room_password_required";
    /// A host denied the newcomer in the lobby (close 4012).
    pub const DENIED: &str = "denied";
    /// An `admit`/`deny` for no newcomer, or from a socket in the lobby.
    pub const NOT_IN_ROOM: &str = "not_in_room";
    /// Presence (Redis) is down for now (at join, close 1013 follows).
    pub const SERVICE_UNAVAILABLE: &str = "service_unavailable";
    /// A failure inside the server (at join, close 1011 follows).
    pub const INTERNAL_ERROR: &str = "internal_error";
    /// A `media_mode` or `recording` frame from someone who is not a host.
    /// (A routed call's other refusals carry `MediaRefusal::code`:
    /// `update_required`, `sfu_unavailable`, `not_routed`,
    /// `recording_running`, `not_recording`.)
    pub const FORBIDDEN: &str = "forbidden";
}

/// The close code and reason for the hub's `reason`.
pub(super) fn hub_close(reason: CloseReason) -> (u16, &'static str) {
    match reason {
        CloseReason::TokenRevoked => (close_code::TOKEN, "token revoked"),
        CloseReason::Kicked => (close_code::KICKED, "kicked"),
        CloseReason::RoomDeleted => (close_code::ROOM_DELETED, "room deleted"),
        CloseReason::SlowConsumer => (close_code::TOO_SLOW, "too slow: reconnect and resume"),
        CloseReason::Replaced => (close_code::NORMAL, "closed"),
        CloseReason::Shutdown => (close_code::GOING_AWAY, "server shutting down"),
        CloseReason::Banned => (close_code::BANNED, "banned"),
    }
}

/// A frame a client sends (docs/protocol.md §3).
#[derive(Debug)]
pub(super) enum ClientFrame {
    Ping,
    Leave,
    Signal {
        to: PeerId,
        /// Opaque to the server; relayed byte for byte.
        data: Box<RawValue>,
    },
    Chat {
        text: String,
    },
    State {
        state: PeerState,
    },
    Kick {
        peer_id: PeerId,
        /// Also ban the account from the room.
        ban: bool,
    },
    Mute {
        peer_id: PeerId,
    },
    StopScreen {
        peer_id: PeerId,
    },
    MuteAll,
    HostsOnly {
        on: bool,
    },
    /// Checked against the fixed set by the hub.
    Reaction {
        emoji: String,
    },
    /// A host answers a newcomer waiting in the lobby.
    Answer {
        knock: String,
        admit: bool,
    },
    /// To the server's media end (a routed call).
    Sfu {
        signal: SfuSignal,
    },
    /// A host asks for the room's media mode.
    MediaMode {
        mode: MediaMode,
    },
    /// A host starts (`true`) or stops the room's recording.
    Recording {
        start: bool,
    },
}

/// A client frame refused, or failed: the `error` frame to answer with (the
/// connection stays open).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct FrameError {
    pub code: &'static str,
    pub message: String,
}

impl FrameError {
    pub(super) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The `error` frame's text.
    pub(super) fn to_json(&self) -> String {
        ServerFrame::Error {
            code: self.code,
            message: &self.message,
        }
        .to_json()
    }
}

#[derive(Deserialize)]
struct SignalFields {
    to: String,
    data: Box<RawValue>,
}

#[derive(Deserialize)]
struct ChatFields {
    text: String,
}

#[derive(Deserialize)]
struct StateFields {
    state: PeerState,
}

#[derive(Deserialize)]
struct KickFields {
    peer_id: String,
    #[serde(default)]
    ban: bool,
}

/// `mute` and `stop_screen`.
#[derive(Deserialize)]
struct TargetFields {
    peer_id: String,
}

#[derive(Deserialize)]
struct HostsOnlyFields {
    on: bool,
}

#[derive(Deserialize)]
struct ReactionFields {
    emoji: String,
}

/// `admit` and `deny`.
#[derive(Deserialize)]
struct KnockFields {
    knock: String,
}

impl ClientFrame {
    /// Parses one text frame.
    pub(super) fn parse(text: &str) -> Result<Self, FrameError> {
        #[derive(Deserialize)]
        struct Kind {
            #[serde(rename = "type")]
            kind: String,
        }
        if !text.trim_start().starts_with('{') {
            return Err(FrameError::new(
                error_code::BAD_FRAME,
                "a frame is a JSON object",
            ));
        }
        let Kind { kind } = serde_json::from_str(text).map_err(|e| {
            FrameError::new(
                error_code::BAD_FRAME,
                format!("a frame is a JSON object with a string \"type\": {e}"),
            )
        })?;
        // Each type is read straight from the text (not through a tagged enum, which
        // would buffer `data` and lose it as raw JSON).
        fn parse<'a, T: Deserialize<'a>>(kind: &str, text: &'a str) -> Result<T, FrameError> {
            serde_json::from_str(text)
                .map_err(|e| FrameError::new(error_code::BAD_FRAME, format!("{kind}: {e}")))
        }
        Ok(match kind.as_str() {
            "ping" => Self::Ping,
            "leave" => Self::Leave,
            "signal" => {
                let SignalFields { to, data } = parse(&kind, text)?;
                Self::Signal {
                    to: PeerId::from_client(&to),
                    data,
                }
            }
            "chat" => Self::Chat {
                text: parse::<ChatFields>(&kind, text)?.text,
            },
            "state" => Self::State {
                state: parse::<StateFields>(&kind, text)?.state,
            },
            "kick" => {
                let KickFields { peer_id, ban } = parse(&kind, text)?;
                Self::Kick {
                    peer_id: PeerId::from_client(&peer_id),
                    ban,
                }
            }
            "mute" => Self::Mute {
                peer_id: PeerId::from_client(&parse::<TargetFields>(&kind, text)?.peer_id),
            },
            "stop_screen" => Self::StopScreen {
                peer_id: PeerId::from_client(&parse::<TargetFields>(&kind, text)?.peer_id),
            },
            "mute_all" => Self::MuteAll,
            "hosts_only" => Self::HostsOnly {
                on: parse::<HostsOnlyFields>(&kind, text)?.on,
            },
            "reaction" => Self::Reaction {
                emoji: parse::<ReactionFields>(&kind, text)?.emoji,
            },
            "admit" | "deny" => Self::Answer {
                knock: parse::<KnockFields>(&kind, text)?.knock,
                admit: kind == "admit",
            },
            "sfu" => Self::Sfu {
                signal: media::sfu(text)?,
            },
            "media_mode" => Self::MediaMode {
                mode: media::mode(text)?,
            },
            "recording" => Self::Recording {
                start: media::recording_start(text)?,
            },
            other => {
                return Err(FrameError::new(
                    error_code::UNKNOWN_TYPE,
                    format!("unknown frame type {other:?}"),
                ))
            }
        })
    }
}

/// A frame the server writes (docs/protocol.md §2); [`ServerFrame::to_json`] is
/// its text.
pub(super) enum ServerFrame<'a> {
    /// The welcome, with the largest file the chat takes.
    Welcome(&'a Welcome, u64),
    PeerJoined(&'a PeerInfo),
    PeerLeft {
        peer_id: &'a PeerId,
        reason: LeaveReason,
    },
    PeerState {
        peer_id: &'a PeerId,
        state: PeerState,
    },
    /// `data` is the sender's JSON, passed through as is.
    Signal {
        from: &'a PeerId,
        data: &'a str,
    },
    Chat(&'a ChatMessage),
    /// A chat message (a file's) was deleted: clients remove it.
    ChatDeleted {
        id: i64,
    },
    Reaction {
        peer_id: &'a PeerId,
        emoji: &'static str,
    },
    Moderated {
        by: &'a PeerId,
        action: HostAction,
    },
    HostsOnly {
        on: bool,
        by: &'a PeerId,
    },
    /// A newcomer waits in the lobby (to hosts).
    Knock {
        knock: &'a str,
        user_id: UserId,
        username: &'a str,
    },
    /// A newcomer left the lobby: `admitted`, `denied` or `left` (to hosts).
    KnockEnded {
        knock: &'a str,
        outcome: &'a str,
    },
    /// To a newcomer in the lobby: waiting, and whether a host is there.
    Waiting {
        hosts_present: bool,
    },
    /// A routed call's event, rendered by `media`.
    Routed(&'a RoomEvent),
    /// The answer to a `ping`.
    Pong,
    Error {
        code: &'a str,
        message: &'a str,
    },
}

impl<'a> ServerFrame<'a> {
    /// The frame a room event is sent as.
    pub(super) fn for_event(event: &'a RoomEvent) -> Self {
        match event {
            RoomEvent::PeerJoined { peer } => Self::PeerJoined(peer),
            RoomEvent::PeerLeft { peer_id, reason } => Self::PeerLeft {
                peer_id,
                reason: *reason,
            },
            RoomEvent::PeerState { peer_id, state } => Self::PeerState {
                peer_id,
                state: *state,
            },
            RoomEvent::Signal { from, data } => Self::Signal { from, data },
            RoomEvent::Chat { message } => Self::Chat(message),
            RoomEvent::ChatDeleted { id } => Self::ChatDeleted { id: *id },
            RoomEvent::Reaction { peer_id, emoji } => Self::Reaction {
                peer_id,
                emoji: emoji.as_str(),
            },
            RoomEvent::Moderated { by, action } => Self::Moderated {
                by,
                action: *action,
            },
            RoomEvent::HostsOnly { on, by } => Self::HostsOnly { on: *on, by },
            RoomEvent::Knock {
                knock,
                user_id,
                username,
            } => Self::Knock {
                knock,
                user_id: *user_id,
                username,
            },
            RoomEvent::KnockEnded { knock, outcome } => Self::KnockEnded { knock, outcome },
            RoomEvent::MediaMode { .. }
            | RoomEvent::Sfu { .. }
            | RoomEvent::RecordingStarted { .. }
            | RoomEvent::RecordingStopped { .. }
            | RoomEvent::UpdateRequired => Self::Routed(event),
        }
    }

    /// The frame's text on the wire.
    pub(super) fn to_json(&self) -> String {
        match *self {
            Self::Welcome(welcome, attachment_max_bytes) => {
                to_json(&WelcomeBody::new(welcome, attachment_max_bytes))
            }
            Self::PeerJoined(peer) => to_json(&PeerJoinedBody {
                kind: "peer_joined",
                peer: PeerBody::from(peer),
            }),
            Self::PeerLeft { peer_id, reason } => {
                json!({"type": "peer_left", "peer_id": peer_id.as_str(), "reason": reason})
                    .to_string()
            }
            Self::PeerState { peer_id, state } => {
                json!({"type": "peer_state", "peer_id": peer_id.as_str(), "state": state})
                    .to_string()
            }
            Self::Signal { from, data } => {
                format!(
                    "{{\"type\":\"signal\",\"from\":{},\"data\":{data}}}",
                    json!(from.as_str())
                )
            }
            Self::Chat(message) => to_json(&ChatBody::from(message)),
            Self::ChatDeleted { id } => json!({"type": "chat_deleted", "id": id}).to_string(),
            Self::Reaction { peer_id, emoji } => {
                json!({"type": "reaction", "peer_id": peer_id.as_str(), "emoji": emoji}).to_string()
            }
            Self::Moderated { by, action } => {
                json!({"type": "moderated", "by": by.as_str(), "action": action.as_str()})
                    .to_string()
            }
            Self::HostsOnly { on, by } => {
                json!({"type": "hosts_only", "on": on, "by": by.as_str()}).to_string()
            }
            Self::Knock {
                knock,
                user_id,
                username,
            } => json!({"type": "knock", "knock": knock, "user_id": user_id.to_string(),
                "username": username})
            .to_string(),
            Self::KnockEnded { knock, outcome } => {
                json!({"type": "knock_ended", "knock": knock, "outcome": outcome}).to_string()
            }
            Self::Waiting { hosts_present } => {
                json!({"type": "waiting", "hosts_present": hosts_present}).to_string()
            }
            Self::Routed(event) => media::render(event).unwrap_or_default(),
            Self::Pong => json!({"type": "pong"}).to_string(),
            Self::Error { code, message } => {
                json!({"type": "error", "code": code, "message": message}).to_string()
            }
        }
    }
}

/// The text of the hub's `frame`. A room event is rendered once, for the first
/// of its recipients.
pub(super) fn outbound_frame(frame: &Outbound) -> String {
    frame
        .frame(|event| ServerFrame::for_event(event).to_json())
        .to_owned()
}

// The frames sent most (a welcome per join, a `peer_joined` to each of the
// others, chat) are written straight from these, without building a JSON tree.

/// A peer in `welcome.peers` and `peer_joined`.
#[derive(Serialize)]
struct PeerBody<'a> {
    peer_id: &'a str,
    #[serde(serialize_with = "as_text")]
    user_id: UserId,
    username: &'a str,
    state: PeerState,
    host: bool,
    /// Only when true: a guest (joined by an invite link).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    guest: bool,
}

impl<'a> From<&'a PeerInfo> for PeerBody<'a> {
    fn from(peer: &'a PeerInfo) -> Self {
        Self {
            peer_id: peer.peer_id.as_str(),
            user_id: peer.user_id,
            username: &peer.username,
            state: peer.state,
            host: peer.host,
            guest: peer.guest,
        }
    }
}

/// A `chat` frame.
#[derive(Serialize)]
struct ChatBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: i64,
    from: &'a str,
    #[serde(serialize_with = "as_text")]
    user_id: UserId,
    username: &'a str,
    text: &'a str,
    ts: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    attachment: Option<AttachmentBody<'a>>,
}

/// A file's message's `attachment`.
#[derive(Serialize)]
struct AttachmentBody<'a> {
    id: &'a str,
    name: &'a str,
    size: u64,
    #[serde(rename = "type")]
    content_type: &'a str,
    /// The preview's size; `null` when there is no preview.
    thumbnail: Option<ThumbnailBody>,
}

#[derive(Serialize)]
struct ThumbnailBody {
    width: u32,
    height: u32,
}

impl<'a> From<&'a AttachmentRef> for AttachmentBody<'a> {
    fn from(file: &'a AttachmentRef) -> Self {
        Self {
            id: &file.id,
            name: &file.name,
            size: file.size,
            content_type: &file.content_type,
            thumbnail: file
                .thumbnail
                .map(|(width, height)| ThumbnailBody { width, height }),
        }
    }
}

impl<'a> From<&'a ChatMessage> for ChatBody<'a> {
    fn from(message: &'a ChatMessage) -> Self {
        Self {
            kind: "chat",
            id: message.id,
            from: message.from.as_str(),
            user_id: message.user_id,
            username: &message.username,
            text: &message.text,
            ts: rfc3339(message.ts),
            attachment: message.attachment.as_deref().map(AttachmentBody::from),
        }
    }
}

#[derive(Serialize)]
struct PeerJoinedBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    peer: PeerBody<'a>,
}

#[derive(Serialize)]
struct SelfBody<'a> {
    #[serde(serialize_with = "as_text")]
    user_id: UserId,
    username: &'a str,
}

#[derive(Serialize)]
struct WelcomeBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    protocol: u32,
    peer_id: &'a str,
    room: &'a str,
    owner: bool,
    #[serde(serialize_with = "as_text")]
    owner_id: UserId,
    host: bool,
    hosts_only: bool,
    #[serde(rename = "self")]
    me: SelfBody<'a>,
    peers: Vec<PeerBody<'a>>,
    chat: Vec<ChatBody<'a>>,
    ice_servers: IceServersBody,
    resume_token: &'a str,
    resumed: bool,
    attachment_max_bytes: u64,
    media_mode: MediaMode,
    sfu_available: bool,
    sfu_from_peers: Option<usize>,
    recording: Option<Value>,
}

impl<'a> WelcomeBody<'a> {
    fn new(welcome: &'a Welcome, attachment_max_bytes: u64) -> Self {
        Self {
            kind: "welcome",
            protocol: 1,
            peer_id: welcome.peer_id.as_str(),
            room: welcome.room.as_str(),
            owner: welcome.owner,
            owner_id: welcome.owner_id,
            host: welcome.host,
            hosts_only: welcome.hosts_only,
            me: SelfBody {
                user_id: welcome.user_id,
                username: &welcome.username,
            },
            peers: welcome.peers.iter().map(PeerBody::from).collect(),
            chat: welcome.chat.iter().map(ChatBody::from).collect(),
            ice_servers: welcome.ice_servers.clone().into(),
            resume_token: &welcome.resume_token,
            resumed: welcome.resumed,
            attachment_max_bytes,
            media_mode: welcome.media_mode,
            sfu_available: welcome.sfu_available,
            sfu_from_peers: welcome.sfu_from_peers,
            recording: welcome.recording.as_ref().map(media::recording_body),
        }
    }
}

fn as_text<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn to_json(body: &impl Serialize) -> String {
    serde_json::to_string(body).expect("frames serialise to JSON")
}

/// Chat messages as `GET /api/v1/rooms/{room}/messages` returns them.
pub(crate) fn chat_frames(messages: &[ChatMessage]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| serde_json::to_value(ChatBody::from(m)).expect("frames serialise to JSON"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use webcall_app::hub::SharedEvent;
    use webcall_domain::signaling::RoomName;

    #[test]
    fn client_frames_are_read_by_type_and_bad_ones_get_a_code() {
        let frame = ClientFrame::parse(r#"{"type":"signal","to":"p1","data": {"a" : [1, 2.50]} }"#);
        let Ok(ClientFrame::Signal { to, data }) = frame else {
            panic!("{frame:?}")
        };
        assert_eq!((to.as_str(), data.get()), ("p1", r#"{"a" : [1, 2.50]}"#));
        let code = |text| ClientFrame::parse(text).unwrap_err().code;
        assert_eq!(code("[]"), error_code::BAD_FRAME);
        assert_eq!(code(r#"{"type":1}"#), error_code::BAD_FRAME);
        assert_eq!(code(r#"{"type":"chat"}"#), error_code::BAD_FRAME);
        assert_eq!(code(r#"{"type":"dance"}"#), error_code::UNKNOWN_TYPE);
        assert_eq!(
            code(r#"{"type":"reaction","emoji":1}"#),
            error_code::BAD_FRAME
        );
        let Ok(ClientFrame::Reaction { emoji }) =
            ClientFrame::parse(r#"{"type":"reaction","emoji":"👍"}"#)
        else {
            panic!("a reaction")
        };
        assert_eq!(emoji, "👍");
        let Ok(ClientFrame::Kick { ban: false, .. }) =
            ClientFrame::parse(r#"{"type":"kick","peer_id":"p1"}"#)
        else {
            panic!("a kick without a ban")
        };
        let Ok(ClientFrame::Kick { ban: true, .. }) =
            ClientFrame::parse(r#"{"type":"kick","peer_id":"p1","ban":true}"#)
        else {
            panic!("a kick with a ban")
        };
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"hosts_only","on":true}"#),
            Ok(ClientFrame::HostsOnly { on: true })
        ));
        assert_eq!(code(r#"{"type":"hosts_only"}"#), error_code::BAD_FRAME);
        assert_eq!(
            code(r#"{"type":"mute","peer_id":7}"#),
            error_code::BAD_FRAME
        );
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"mute_all"}"#),
            Ok(ClientFrame::MuteAll)
        ));
        let bad = ClientFrame::parse(r#"{"type":"kick"}"#).unwrap_err();
        assert_eq!(
            bad.message,
            "kick: missing field `peer_id` at line 1 column 15"
        );
    }

    #[test]
    fn peer_joined_and_chat_frames_have_the_documented_fields() {
        let user_id = UserId(uuid::Uuid::new_v4());
        let peer = PeerInfo {
            peer_id: PeerId::from_client("p1"),
            user_id,
            username: "ada".into(),
            state: PeerState::default(),
            host: true,
            guest: false,
        };
        let joined = outbound_frame(&SharedEvent::new(RoomEvent::PeerJoined { peer }));
        let expected = json!({"type": "peer_joined", "peer": {
            "peer_id": "p1", "user_id": user_id.to_string(), "username": "ada",
            "state": {"audio": false, "video": false, "screen": false, "hand": false},
            "host": true}});
        assert_eq!(serde_json::from_str::<Value>(&joined).unwrap(), expected);

        let message = ChatMessage {
            id: 7,
            room: RoomName::parse("r").unwrap(),
            from: PeerId::from_client("p1"),
            user_id,
            username: "ada".into(),
            text: "hi <b>\"all\"</b>".into(),
            ts: "2026-11-27T22:06:56.204Z".parse().unwrap(),
            attachment: None,
        };
        let expected = json!({"type": "chat", "id": 7, "from": "p1",
            "user_id": user_id.to_string(), "username": "ada", "text": "hi <b>\"all\"</b>",
            "ts": "2026-11-27T22:06:56.204Z"});
        let chat = outbound_frame(&SharedEvent::new(RoomEvent::Chat {
            message: message.clone(),
        }));
        assert_eq!(serde_json::from_str::<Value>(&chat).unwrap(), expected);
        assert_eq!(chat_frames(&[message]), [expected]);

        let deleted = outbound_frame(&SharedEvent::new(RoomEvent::ChatDeleted { id: 7 }));
        assert_eq!(
            serde_json::from_str::<Value>(&deleted).unwrap(),
            json!({"type": "chat_deleted", "id": 7})
        );
    }

    #[test]
    fn a_room_event_is_rendered_once_for_all_its_recipients() {
        let event = SharedEvent::new(RoomEvent::PeerJoined {
            peer: PeerInfo {
                peer_id: PeerId::from_client("p1"),
                user_id: UserId(uuid::Uuid::new_v4()),
                username: "ada".into(),
                state: PeerState::default(),
                host: false,
                guest: false,
            },
        });
        let recipients: Vec<Outbound> = (0..15).map(|_| event.clone()).collect();
        let first = outbound_frame(&recipients[0]);
        for frame in &recipients[1..] {
            assert_eq!(outbound_frame(frame), first);
        }
        let kept = event.frame(|_| panic!("rendered a second time"));
        assert_eq!(kept, first);
    }

    #[test]
    fn signal_data_passes_through_verbatim() {
        let frame = outbound_frame(&SharedEvent::new(RoomEvent::Signal {
            from: PeerId::from_client("p\"1"),
            data: r#"{"sdp":{"type":"offer","sdp":"v=0\r\n"}}"#.into(),
        }));
        let value: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(value["type"], "signal");
        assert_eq!(value["from"], "p\"1");
        assert_eq!(value["data"]["sdp"]["type"], "offer");
    }
}
