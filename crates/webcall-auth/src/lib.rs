//! Credential adapters for WebCall's ports: [`jwt::JwtCodec`] implements
//! `TokenCodec` with HS256 JWTs, [`password::Argon2Hasher`] implements
//! `PasswordHasher` with argon2id off the async runtime, [`guest::GuestJwt`]
//! implements `GuestTokenCodec` (guest tokens: their own audience and key).
//!
//! Depends on `webcall-domain` and the crypto crates; nothing else of WebCall.

pub mod guest;
pub mod jwt;
pub mod password;

pub use guest::GuestJwt;
pub use jwt::JwtCodec;
pub use password::Argon2Hasher;
