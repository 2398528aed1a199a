//! WebCall's domain: what a user, a password or a token *is*, the ports the
//! outer layers implement, and the errors they share.
//!
//! This crate may depend only on small data crates (uuid, chrono, secrecy,
//! thiserror); it knows nothing of axum, sqlx, redis or webrtc.
//!
//! Layout:
//! - [`model`]: newtypes that validate at the edge (`Email`, `Username`, `Password`) and records.
//! - [`ice`]: what a browser is told about STUN/TURN servers.
//! - [`role`]: an account's [`role::Role`] (admin or member).
//! - [`ports`]: the traits adapters implement (storage, hashing, tokens, clock, health).
//! - [`ids`]: [`ids::RoomName`] and [`ids::PeerId`], which the others refer to.
//! - [`signaling`]: rooms, peers, chat, the events a room's peers exchange, and moderation.
//! - [`access`]: who may enter a room (access level, password, members).
//! - [`admin`]: the audit log and the storage port of the admin use cases.
//! - [`attachments`]: files shared in a room's chat, their names made safe,
//!   and the ports for their records, their bytes and their previews.
//! - [`guests`]: invite links and the guests who join by them.
//! - [`media`]: calls routed through the server (SFU mode), the port of the
//!   server's media end, and recordings.
//! - [`operations`]: what an operator manages at run time (relay allocations and
//!   quotas, signing-key generations).
//! - [`error`]: [`DomainError`], the error every port returns.

pub mod access;
pub mod admin;
pub mod attachments;
pub mod error;
pub mod guests;
pub mod ice;
pub mod ids;
pub mod media;
pub mod model;
pub mod operations;
pub mod ports;
pub mod role;
pub mod signaling;

pub use error::DomainError;
