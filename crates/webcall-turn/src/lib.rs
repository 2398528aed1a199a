//! WebCall's embedded TURN/STUN relay, built on webrtc-rs `turn`, and the TURN
//! REST API credentials (coturn's `use-auth-secret` scheme) that unlock it.
//!
//! Depends on `webcall-domain` (it implements the `TurnCredentialMinter` and
//! `HealthCheck` ports) and the webrtc-rs crates; nothing else of WebCall.
//!
//! Start at [`TurnRelay::start`]. The crate's server is used for the control
//! plane (allocations, permissions, channel bindings, lifetimes); what it lacks
//! is added around it:
//! - [`gate`]: a STUN "front" wrapped around each listening socket. It checks
//!   credentials itself (401, not the crate's 400), refuses peers in private and
//!   special ranges (403), enforces quotas (486), answers requests without an
//!   allocation (437) or with another user's credentials (441), and answers
//!   unauthenticated requests without growing the crate's nonce map.
//! - `dataplane`: relaying for established allocations (ChannelData, Send and
//!   Data indications) in our own code; the crate never sees relayed data.
//! - [`tcp`]: TURN over TCP and over TLS (RFC 8656 framing): data frames to the
//!   data plane, control messages to the crate as datagrams. TLS streams are
//!   decrypted by the caller (the binary's HTTPS port) and handed in with
//!   [`TurnRelay::tls_intake`].
//! - `relay`: one thread per UDP listener (`SO_REUSEPORT`, per listening
//!   address: IPv4 and IPv6), one for TCP and one for TLS, each a single-threaded
//!   runtime holding its crate server and relay sockets.
//! - [`policy`]: which peer addresses may be relayed to.
//! - [`credentials`]: minting and checking `<expiry>:<user>` / HMAC-SHA1 credentials.

mod allocations;
mod batch;
mod bind;
mod counters;
pub mod credentials;
mod dataplane;
pub mod gate;
mod health;
mod listener;
mod nonces;
mod permissions;
pub mod policy;
mod relay;
mod relay_sockets;
pub mod tcp;
mod tuple;
mod wire;
mod worker;

pub use bind::{detect_public_ip, detect_public_ip6};
pub use credentials::{RestCredentials, StaticCredentials};
pub use policy::PeerPolicy;
pub use relay::{TurnConfig, TurnRelay};
