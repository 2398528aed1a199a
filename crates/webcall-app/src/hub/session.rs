//! What a connection gives the hub to join ([`JoinRequest`]) and what it gets
//! back ([`Session`], with its [`Welcome`]).

use tokio::sync::watch;
use uuid::Uuid;
use webcall_domain::media::MediaMode;
use webcall_domain::model::{IceServers, Role, UserId};
use webcall_domain::signaling::{ActiveRecording, ChatMessage, PeerId, PeerInfo, RoomName};

use super::link::{CloseReason, Outbox};
#[cfg(doc)]
use super::Hub;

/// Who is joining.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub room: RoomName,
    pub user_id: UserId,
    pub username: String,
    /// The login (token family) the connection was opened with: logging out,
    /// or a replay of one of its tokens, closes it.
    pub login: Uuid,
    /// The account's role when it connected (an admin is a host in every
    /// room, [`crate::admission::is_host`]).
    pub role: Role,
    /// A guest (by an invite link): never a host, never creates the room, and
    /// its link stands for membership and the room's password.
    pub guest: bool,
    pub resume: Option<String>,
    /// The room pass presented (a right room password bought it).
    pub pass: Option<String>,
    /// A host let this newcomer in from the lobby.
    pub admitted: bool,
    /// The client knows routed calls (`sfu=1`); one that does not is told to
    /// reload when its room is routed.
    pub sfu: bool,
}

/// A connection's first frame.
#[derive(Debug, Clone)]
pub struct Welcome {
    pub peer_id: PeerId,
    pub room: RoomName,
    pub owner: bool,
    /// The room owner's user id (so clients can mark the owner among the peers).
    pub owner_id: UserId,
    /// You are a host of the room ([`crate::admission::is_host`]): you may moderate.
    pub host: bool,
    /// Only hosts may speak in the room now.
    pub hosts_only: bool,
    pub user_id: UserId,
    pub username: String,
    pub peers: Vec<PeerInfo>,
    pub chat: Vec<ChatMessage>,
    pub ice_servers: IceServers,
    pub resume_token: String,
    pub resumed: bool,
    /// How the room's media travels now.
    pub media_mode: MediaMode,
    /// Rooms here may be routed ([`Hub::sfu_available`]).
    pub sfu_available: bool,
    /// A room of this many becomes routed (`None`: never by size, or routed
    /// calls are unavailable).
    pub sfu_from_peers: Option<usize>,
    /// The room's recording, while one runs.
    pub recording: Option<ActiveRecording>,
}

/// A joined connection: its welcome, its queue, and how the hub tells it to close.
pub struct Session {
    pub welcome: Welcome,
    pub peer_id: PeerId,
    /// Identifies this connection of the peer (a resumed peer gets a new one).
    pub generation: u64,
    pub outbound: Outbox,
    pub close: watch::Receiver<Option<CloseReason>>,
}
