//! SQL storage for WebCall through sqlx's `Any` driver: one set of queries serves
//! SQLite (the zero-setup default) and PostgreSQL. [`SqlStore`] implements the
//! domain's `UserRepository`, `TokenRevocations`, `RoomRepository`,
//! `ChatRepository`, `AttachmentRepository`, `OperatorSettings` and `HealthCheck` ports.
//!
//! Depends on `webcall-domain` and sqlx. Migrations live in the repository's
//! top-level `migrations/{sqlite,postgres}` and are embedded in the binary.
//!
//! Portable schema rules: ids are UUID strings, times are Unix milliseconds
//! (`BIGINT`), placeholders are `$1, $2, …` in the order they are bound.

mod store;

pub use store::{Backend, SqlStore};
