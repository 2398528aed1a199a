//! The signaling protocol's frames and codes (docs/protocol.md): what the
//! client sends, the JSON the server writes, and the close codes.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use webcall_app::signaling::{CloseReason, Outbound, Welcome};
use webcall_domain::model::UserId;
use webcall_domain::signaling::{ChatMessage, PeerInfo, PeerState, RoomEvent};

use crate::auth::rfc3339;
use crate::webrtc::IceServersBody;

/// Largest frame a client may send (larger: close 1009).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Close codes of the protocol.
pub(super) mod code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const TOO_BIG: u16 = 1009;
    pub const SERVER_ERROR: u16 = 1011;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const KICKED: u16 = 4003;
    pub const ROOM_DELETED: u16 = 4004;
    pub const TOO_SLOW: u16 = 4008;
    pub const ROOM_FULL: u16 = 4009;
    pub const ROOM_LIMIT: u16 = 4013;
    pub const RATE_ABUSE: u16 = 4029;
    pub const TOKEN: u16 = 4401;
}

pub(super) fn close_code(reason: CloseReason) -> (u16, &'static str) {
    match reason {
        CloseReason::TokenRevoked => (code::TOKEN, "token revoked"),
        CloseReason::Kicked => (code::KICKED, "kicked"),
        CloseReason::RoomDeleted => (code::ROOM_DELETED, "room deleted"),
        CloseReason::SlowConsumer => (code::TOO_SLOW, "too slow: reconnect and resume"),
        CloseReason::Replaced => (code::NORMAL, "closed"),
        CloseReason::Shutdown => (code::GOING_AWAY, "server shutting down"),
    }
}

#[derive(Deserialize)]
pub(super) struct SignalFrame {
    pub to: String,
    /// Opaque to the server; relayed byte for byte.
    pub data: Box<RawValue>,
}

#[derive(Deserialize)]
pub(super) struct ChatFrame {
    pub text: String,
}

#[derive(Deserialize)]
pub(super) struct StateFrame {
    pub state: PeerState,
}

#[derive(Deserialize)]
pub(super) struct KickFrame {
    pub peer_id: String,
}

pub(super) fn error_frame(code: &str, message: &str) -> String {
    json!({"type": "error", "code": code, "message": message}).to_string()
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
}

impl<'a> From<&'a PeerInfo> for PeerBody<'a> {
    fn from(peer: &'a PeerInfo) -> Self {
        Self {
            peer_id: peer.peer_id.as_str(),
            user_id: peer.user_id,
            username: &peer.username,
            state: peer.state,
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
    #[serde(rename = "self")]
    me: SelfBody<'a>,
    peers: Vec<PeerBody<'a>>,
    chat: Vec<ChatBody<'a>>,
    ice_servers: IceServersBody,
    resume_token: &'a str,
    resumed: bool,
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

fn chat_frame(message: &ChatMessage) -> String {
    to_json(&ChatBody::from(message))
}

/// Chat messages as `GET /api/v1/rooms/{room}/messages` returns them.
pub(crate) fn chat_frames(messages: &[ChatMessage]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| serde_json::to_value(ChatBody::from(m)).expect("frames serialise to JSON"))
        .collect()
}

pub(super) fn welcome_frame(welcome: &Welcome) -> String {
    to_json(&WelcomeBody {
        kind: "welcome",
        protocol: 1,
        peer_id: welcome.peer_id.as_str(),
        room: welcome.room.as_str(),
        owner: welcome.owner,
        me: SelfBody {
            user_id: welcome.user_id,
            username: &welcome.username,
        },
        peers: welcome.peers.iter().map(PeerBody::from).collect(),
        chat: welcome.chat.iter().map(ChatBody::from).collect(),
        ice_servers: welcome.ice_servers.clone().into(),
        resume_token: &welcome.resume_token,
        resumed: welcome.resumed,
    })
}

/// The JSON frame for `frame`; `None` for control events the hub acts on itself.
/// A room event is rendered once, for the first of its recipients.
pub(super) fn outbound_frame(frame: &Outbound) -> Option<String> {
    match frame {
        Outbound::Pong => Some(json!({"type": "pong"}).to_string()),
        Outbound::Error { code, message } => Some(error_frame(code, message)),
        Outbound::Event(event) => event.frame(event_frame).map(str::to_owned),
    }
}

fn event_frame(event: &RoomEvent) -> Option<String> {
    Some(match event {
        RoomEvent::PeerJoined { peer } => to_json(&PeerJoinedBody {
            kind: "peer_joined",
            peer: PeerBody::from(peer),
        }),
        RoomEvent::PeerLeft { peer_id, reason } => {
            json!({"type": "peer_left", "peer_id": peer_id.as_str(), "reason": reason}).to_string()
        }
        RoomEvent::PeerState { peer_id, state } => {
            json!({"type": "peer_state", "peer_id": peer_id.as_str(), "state": state}).to_string()
        }
        // `data` is the sender's JSON, passed through as is.
        RoomEvent::Signal { from, data } => {
            format!(
                "{{\"type\":\"signal\",\"from\":{},\"data\":{data}}}",
                json!(from.as_str())
            )
        }
        RoomEvent::Chat { message } => chat_frame(message),
        RoomEvent::Kicked { .. }
        | RoomEvent::RoomDeleted { .. }
        | RoomEvent::TokenRevoked { .. }
        | RoomEvent::UserRevoked { .. }
        | RoomEvent::Resumed { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use webcall_app::signaling::SharedEvent;
    use webcall_domain::signaling::{PeerId, RoomName};

    #[test]
    fn peer_joined_and_chat_frames_have_the_documented_fields() {
        let user_id = UserId(uuid::Uuid::new_v4());
        let peer = PeerInfo {
            peer_id: PeerId::from_client("p1"),
            user_id,
            username: "ada".into(),
            state: PeerState::default(),
        };
        let joined = outbound_frame(&Outbound::Event(SharedEvent::new(RoomEvent::PeerJoined {
            peer,
        })))
        .unwrap();
        let expected = json!({"type": "peer_joined", "peer": {
            "peer_id": "p1", "user_id": user_id.to_string(), "username": "ada",
            "state": {"audio": false, "video": false, "screen": false, "hand": false}}});
        assert_eq!(serde_json::from_str::<Value>(&joined).unwrap(), expected);

        let message = ChatMessage {
            id: 7,
            room: RoomName::parse("r").unwrap(),
            from: PeerId::from_client("p1"),
            user_id,
            username: "ada".into(),
            text: "hi <b>\"all\"</b>".into(),
            ts: "2026-11-27T22:06:56.204Z".parse().unwrap(),
        };
        let expected = json!({"type": "chat", "id": 7, "from": "p1",
            "user_id": user_id.to_string(), "username": "ada", "text": "hi <b>\"all\"</b>",
            "ts": "2026-11-27T22:06:56.204Z"});
        let chat = outbound_frame(&Outbound::Event(SharedEvent::new(RoomEvent::Chat {
            message: message.clone(),
        })))
        .unwrap();
        assert_eq!(serde_json::from_str::<Value>(&chat).unwrap(), expected);
        assert_eq!(chat_frames(&[message]), [expected]);
    }

    #[test]
    fn a_room_event_is_rendered_once_for_all_its_recipients() {
        let event = SharedEvent::new(RoomEvent::PeerJoined {
            peer: PeerInfo {
                peer_id: PeerId::from_client("p1"),
                user_id: UserId(uuid::Uuid::new_v4()),
                username: "ada".into(),
                state: PeerState::default(),
            },
        });
        let recipients: Vec<Outbound> = (0..15).map(|_| Outbound::Event(event.clone())).collect();
        let first = outbound_frame(&recipients[0]).unwrap();
        for frame in &recipients[1..] {
            assert_eq!(outbound_frame(frame).unwrap(), first);
        }
        let kept = event.frame(|_| panic!("rendered a second time"));
        assert_eq!(kept, Some(first.as_str()));
    }

    #[test]
    fn signal_data_passes_through_verbatim() {
        let frame = outbound_frame(&Outbound::Event(SharedEvent::new(RoomEvent::Signal {
            from: PeerId::from_client("p\"1"),
            data: r#"{"sdp":{"type":"offer","sdp":"v=0\r\n"}}"#.into(),
        })))
        .unwrap();
        let value: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(value["type"], "signal");
        assert_eq!(value["from"], "p\"1");
        assert_eq!(value["data"]["sdp"]["type"], "offer");
    }
}
