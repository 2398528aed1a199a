//! WebCall's domain: what a user, a password or a token *is*, the ports the
//! outer layers implement, and the errors they share.
//!
//! This crate may depend only on small data crates (uuid, chrono, secrecy,
//! thiserror); it knows nothing of axum, sqlx, redis or webrtc.
//!
//! Layout:
//! - [`model`]: newtypes that validate at the edge (`Email`, `Username`, `Password`) and records.
//! - [`ports`]: the traits adapters implement (storage, hashing, tokens, clock, health).
//! - [`signaling`]: rooms, peers, chat, and the events a room's peers exchange.
//! - [`admin`]: the audit log and the storage port of the admin use cases.
//! - [`moderation`]: what a host may do in a call, and the rules a room keeps.
//! - [`guests`]: invite links and the guests who join by them.
//! - [`error`]: [`DomainError`], the error every port returns.

pub mod admin;
pub mod error;
pub mod guests;
pub mod model;
pub mod moderation;
pub mod ports;
pub mod signaling;

pub use error::DomainError;
