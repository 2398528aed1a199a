//! WebCall's HTTP presentation: the JSON REST API on axum. Handlers parse input,
//! call a use case from `webcall-app`, and turn the result (or [`ApiError`]) into a
//! response; no SQL or crypto lives here.
//!
//! May depend on `webcall-app`, `webcall-domain` and the HTTP stack; never on a
//! concrete adapter (those are wired by the `webcall` binary into [`AppState`]).
//!
//! Layout: [`router`] merges each feature's `router()` ([`auth`], [`health`],
//! [`webrtc`], [`rooms`], [`ws`], [`web`], [`admin`], [`guests`],
//! [`attachments`], [`recordings`]) and
//! adds the shared layers; [`error`] holds the one JSON error shape; [`extract`]
//! the JSON body, bearer-token and client-address extractors; `download` the
//! headers and byte ranges every file download shares. [`AppState`] is
//! here, at the top, so that every feature reaches it and it reaches down to
//! theirs (no module imports one that imports it back).

pub mod admin;
pub mod attachments;
pub mod auth;
pub mod client_ip;
mod download;
pub mod error;
pub mod extract;
pub mod guests;
pub mod health;
mod memory;
pub mod metrics;
pub mod recordings;
pub mod room_access;
pub mod rooms;
mod router;
pub mod web;
pub mod webrtc;
pub mod ws;

pub use client_ip::TrustedProxies;
pub use error::ApiError;
pub use router::{router, HttpOptions};

use std::sync::Arc;

use webcall_app::accounts::Accounts;
use webcall_app::admin::Admin;
use webcall_app::attachments::Attachments;
use webcall_app::guests::Guests;
use webcall_app::hub::Hub;
use webcall_app::ice::IceServersService;
use webcall_app::operations::Operations;
use webcall_app::recordings::RecordingsService;
use webcall_app::room_access::AccessService;
use webcall_app::rooms::RoomService;
use webcall_domain::ports::HealthCheck;
use ws::{WsOptions, WsUsers};

/// Everything a handler may reach, cloned per request (all `Arc`s).
#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<Accounts>,
    /// The admin API's use cases (and its guard).
    pub admin: Arc<Admin>,
    /// Who may enter a room: access levels, members, room passwords.
    pub access: Arc<AccessService>,
    /// Guest links and guest tokens.
    pub guests: Arc<Guests>,
    /// Files in rooms' chat.
    pub attachments: Arc<Attachments>,
    /// Recordings of routed calls (`None`: this server does not record).
    pub recordings: Option<Arc<RecordingsService>>,
    /// The relay's allocations and quotas, and the signing keys' rotation.
    pub operations: Arc<Operations>,
    pub ice: Arc<IceServersService>,
    pub rooms: Arc<RoomService>,
    pub hub: Arc<Hub>,
    pub ws: WsOptions,
    /// Signaling sockets open per account here.
    pub ws_users: Arc<WsUsers>,
    /// What `/readyz` checks.
    pub health: Arc<[Arc<dyn HealthCheck>]>,
    pub trusted_proxies: Arc<TrustedProxies>,
}
