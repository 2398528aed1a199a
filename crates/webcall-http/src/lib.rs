//! WebCall's HTTP presentation: the JSON REST API on axum. Handlers parse input,
//! call a use case from `webcall-app`, and turn the result (or [`ApiError`]) into a
//! response; no SQL or crypto lives here.
//!
//! May depend on `webcall-app`, `webcall-domain` and the HTTP stack; never on a
//! concrete adapter (those are wired by the `webcall` binary into [`AppState`]).
//!
//! Layout: [`router`] merges each feature's `router()` ([`auth`], [`health`],
//! [`webrtc`], [`rooms`], [`ws`], [`web`]) and
//! adds the shared layers; [`error`] holds the one JSON error shape; [`extract`]
//! the JSON body, bearer-token and client-address extractors.

pub mod auth;
pub mod client_ip;
pub mod error;
pub mod extract;
pub mod health;
mod memory;
pub mod metrics;
pub mod rooms;
mod router;
mod state;
pub mod web;
pub mod webrtc;
pub mod ws;

pub use client_ip::TrustedProxies;
pub use error::ApiError;
pub use router::{router, HttpOptions};
pub use state::AppState;
