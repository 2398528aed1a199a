//! WebCall's embedded TURN/STUN relay, built on webrtc-rs `turn`, and the TURN
//! REST API credentials (coturn's `use-auth-secret` scheme) that unlock it.
//!
//! Depends on `webcall-domain` (it implements the `TurnCredentialMinter` and
//! `HealthCheck` ports) and the webrtc-rs crates; nothing else of WebCall.
//! Public: what the binary and the tests use (the items re-exported below);
//! every module is private.
//!
//! Start at [`TurnRelay::start`]. The crate's server is used for the control
//! plane (allocations, permissions, channel bindings, lifetimes); what it lacks
//! is added around it. Data flows one way: listener → gate → data plane.
//!
//! Layout, top down (no module uses one of an earlier bullet; there are no
//! import circles):
//! - `relay`: [`TurnConfig`] and [`TurnRelay`]; `worker`: one thread per UDP
//!   listener (`SO_REUSEPORT`, per listening address: IPv4 and IPv6), one for
//!   TCP and one for TLS, each a single-threaded runtime holding its crate
//!   server and relay sockets; `bind`: the listening sockets and the host's
//!   public addresses; `health`: the relay's `/readyz` check; `ice`: what
//!   browsers are told about the relay ([`TurnRelay::ice_servers`]).
//! - `listener`: the `Conn` each crate server reads from (a UDP socket, or the
//!   TCP or TLS connections), with the gate in front and the data plane beside.
//! - `gate`: the STUN front. It checks credentials itself (401, not the crate's
//!   400), refuses peers in private and special ranges (403), enforces quotas
//!   (486), answers requests without an allocation (437) or with another user's
//!   credentials (441), and answers unauthenticated requests without growing
//!   the crate's nonce map. Its state: `allocations` (who holds what, quotas)
//!   and `nonces`.
//! - `operator`: what an operator sees and does while the relay runs (live
//!   allocations with their traffic, ending them, quotas): the domain's
//!   `RelayControl` port.
//! - `relay_sockets`: the relay sockets handed to the crate, whose read loops
//!   relay peer datagrams themselves.
//! - `dataplane`: relaying for established allocations (ChannelData, Send and
//!   Data indications) in our own code; the crate never sees relayed data. Each
//!   allocation's permissions and channels: `permissions`; its packets and
//!   bytes each way and its rate: `traffic`.
//! - `tcp`: TURN over TCP and over TLS (RFC 8656 framing), seen as one packet
//!   socket per kind. TLS streams are decrypted by the caller (the binary's
//!   HTTPS port) and handed in with [`TurnRelay::tls_intake`].
//! - `tuple`: the transport and the 5-tuple that name an allocation; `batch`:
//!   recvmmsg/sendmmsg and wake-up coalescing; `counters`: the per-packet
//!   metrics; `metrics`: the relay's metric catalogue ([`describe_metrics`]);
//!   `wire`: STUN/TURN bytes; `policy`: which peer addresses may be
//!   relayed to; `credentials`: minting and checking `<expiry>:<user>` /
//!   HMAC-SHA1 credentials, and the generations of their key.

#![warn(unreachable_pub)]

mod allocations;
mod batch;
mod bind;
mod counters;
mod credentials;
mod dataplane;
mod gate;
mod health;
mod ice;
mod listener;
mod metrics;
mod nonces;
mod operator;
mod permissions;
mod policy;
mod relay;
mod relay_sockets;
mod tcp;
mod traffic;
mod tuple;
mod wire;
mod worker;

pub use self::metrics::describe_metrics;
pub use bind::{detect_public_ip, detect_public_ip6};
pub use credentials::{RestCredentials, StaticCredentials};
pub use gate::{Gate, GateStats};
pub use ice::RelayIceServers;
pub use policy::PeerPolicy;
pub use relay::{TurnConfig, TurnRelay};
pub use tcp::TcpTransport;
