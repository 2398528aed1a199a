//! WebCall's use cases. They speak the domain's language and reach the world only
//! through the domain's ports, so they run the same on SQLite, PostgreSQL or in a test.
//!
//! May depend on `webcall-domain` and small utility crates; never on axum, sqlx,
//! redis or webrtc.
//!
//! Start with [`accounts::Accounts`]: register, log in, refresh, log out, and
//! check a bearer token. [`throttle::LoginThrottle`] slows down password guessing.
//! [`ice::IceServersService`] hands out STUN/TURN servers with fresh credentials.
//! [`rooms::RoomService`] keeps rooms as stored (create within limits, list,
//! history). [`hub::Hub`] runs calls: joins, SDP/ICE relay, chat, resume, kicks
//! and ended rooms, through the [`Presence`](webcall_domain::ports::Presence)
//! port ([`presence::InProcessPresence`] when WebCall runs as one instance) and,
//! with other instances, the [`Cluster`](webcall_domain::ports::Cluster) port.
//! [`auth_cache::CachedRevocations`] holds logouts in memory (with
//! [`auth_cache::CachedUsers`], a join asks no database);
//! [`rate::RateLimit`] caps how often one user may do something (create rooms);
//! `recent_chat` keeps a room's latest chat for joins while the room has peers here.
//! [`metrics::describe_metrics`] describes the metrics the use cases record.
//! [`admin::Admin`] is the admin API's use cases, and [`admin::Admin::admit`]
//! the one check of who may call them.
//! [`operations::Operations`] runs the embedded relay (allocations, quotas) and
//! rotates the signing keys, on every instance. [`admission::decide`] is the one
//! decision of who may enter a room (access level, members, password, lobby).
//! [`guests::Guests`] is guest links: invite links a room's hosts make, and
//! the guest tokens they give. [`attachments::Attachments`] is files in a
//! room's chat: upload, download, delete, and the retention sweep.
//! [`recordings::RecordingsService`] is recordings of routed calls for the
//! room's hosts: list, download, delete.

pub mod accounts;
pub mod admin;
pub mod admission;
pub mod attachments;
pub mod auth_cache;
pub mod error;
pub mod guests;
pub mod hub;
pub mod ice;
pub mod metrics;
pub mod operations;
pub mod presence;
pub mod rate;
mod recent_chat;
pub mod recordings;
pub mod room_access;
pub mod rooms;
#[cfg(test)]
pub(crate) mod testing;
pub mod throttle;

pub use error::AppError;
