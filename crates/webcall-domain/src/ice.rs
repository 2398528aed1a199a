//! What a browser is told about STUN/TURN servers (`RTCConfiguration.iceServers`).
//! Also reachable as `model::IceServer` and so on.

use std::fmt;

/// One entry of a browser's `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServer {
    pub urls: Vec<String>,
    /// Present for TURN servers.
    pub credentials: Option<TurnCredentials>,
}

/// What a browser needs to reach our STUN/TURN servers, and for how long the
/// credentials inside stay valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServers {
    pub servers: Vec<IceServer>,
    pub ttl_secs: u64,
}

/// A username/credential pair for a TURN server. The credential is handed to the
/// user's browser, but it is still never printed in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    pub username: String,
    pub credential: String,
}

impl fmt::Debug for TurnCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnCredentials")
            .field("username", &self.username)
            .field("credential", &"[REDACTED]")
            .finish()
    }
}
