//! TURN REST API credentials, the scheme coturn calls `use-auth-secret`:
//! username `<expiry-unix-seconds>:<user-id>`, password
//! `base64(HMAC-SHA1(secret, username))`. The server needs no per-user state:
//! anyone holding the secret (WebCall, or an external coturn) can check them.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;
use webcall_domain::model::{TurnCredentials, UserId};
use webcall_domain::ports::TurnCredentialMinter;

/// Mints and checks REST credentials with one shared secret.
#[derive(Clone)]
pub struct RestCredentials {
    secret: SecretString,
    ttl: Duration,
}

impl RestCredentials {
    /// How long minted credentials are valid by default (`TURN_CREDENTIAL_TTL_SECS`):
    /// a day. Expiry is checked when a relay allocation is made, not while it
    /// lives, so this only has to cover the time from fetching
    /// `/api/v1/webrtc/ice-servers` to the last allocation a call makes (ICE
    /// restarts included; the web client re-fetches before it runs out). A day
    /// covers an all-day workshop and still bounds how long a leaked credential
    /// is useful.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

    pub fn new(secret: SecretString, ttl: Duration) -> Self {
        Self { secret, ttl }
    }

    /// `base64(HMAC-SHA1(secret, username))`.
    pub fn password_for(&self, username: &str) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(self.secret.expose_secret().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(username.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }

    /// The long-term key (RFC 8489 §9.2.2: MD5 of `username:realm:password`) the
    /// client signs its requests with.
    pub(crate) fn long_term_key(&self, username: &str, realm: &str) -> Vec<u8> {
        turn::auth::generate_auth_key(username, realm, &self.password_for(username))
    }
}

impl TurnCredentialMinter for RestCredentials {
    fn mint(&self, user: UserId, now: DateTime<Utc>) -> TurnCredentials {
        let expiry = now.timestamp().max(0) as u64 + self.ttl.as_secs();
        let username = format!("{expiry}:{user}");
        TurnCredentials {
            credential: self.password_for(&username),
            username,
        }
    }

    fn ttl_secs(&self) -> Option<u64> {
        Some(self.ttl.as_secs())
    }
}

/// A REST username taken apart: when it expires and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RestUsername<'a> {
    pub(crate) expires_at: u64,
    pub(crate) user: &'a str,
}

/// Parses exactly `<expiry-unix-seconds>:<user>` (both parts non-empty).
pub(crate) fn parse_rest_username(username: &str) -> Option<RestUsername<'_>> {
    let (expiry, user) = username.split_once(':')?;
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) || user.is_empty() {
        return None;
    }
    Some(RestUsername {
        expires_at: expiry.parse().ok()?,
        user,
    })
}

/// A fixed username/password for an external TURN server.
pub struct StaticCredentials {
    pub username: String,
    pub password: SecretString,
}

impl TurnCredentialMinter for StaticCredentials {
    fn mint(&self, _user: UserId, _now: DateTime<Utc>) -> TurnCredentials {
        TurnCredentials {
            username: self.username.clone(),
            credential: self.password.expose_secret().to_owned(),
        }
    }

    fn ttl_secs(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_base64_hmac_sha1_of_the_username() {
        // RFC 2202 test case 2: HMAC-SHA1("Jefe", "what do ya want for nothing?").
        let creds = RestCredentials::new(SecretString::from("Jefe"), Duration::from_secs(60));
        let expected = STANDARD.encode(hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"));
        assert_eq!(creds.password_for("what do ya want for nothing?"), expected);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn minted_username_carries_expiry_and_user() {
        let creds = RestCredentials::new(SecretString::from("s"), Duration::from_secs(3600));
        let user = UserId::new_random();
        let now = Utc::now();
        let minted = creds.mint(user, now);
        let parsed = parse_rest_username(&minted.username).unwrap();
        assert_eq!(parsed.expires_at, now.timestamp() as u64 + 3600);
        assert_eq!(parsed.user, user.to_string());
        assert_eq!(minted.credential, creds.password_for(&minted.username));
    }

    #[test]
    fn only_expiry_colon_user_parses() {
        assert_eq!(
            parse_rest_username("1700000000:alice"),
            Some(RestUsername {
                expires_at: 1_700_000_000,
                user: "alice"
            })
        );
        assert_eq!(parse_rest_username("1700000000:a:b").unwrap().user, "a:b");
        for bad in [
            "1700000000",
            "alice",
            ":alice",
            "1700000000:",
            "17x:alice",
            "-1:alice",
            "99999999999999999999999:a",
        ] {
            assert_eq!(parse_rest_username(bad), None, "{bad}");
        }
    }

    #[test]
    fn long_term_key_matches_stun_integrity() {
        let creds = RestCredentials::new(SecretString::from("s"), Duration::from_secs(60));
        let key = creds.long_term_key("1:u", "webcall");
        let integrity = stun::integrity::MessageIntegrity::new_long_term_integrity(
            "1:u".into(),
            "webcall".into(),
            creds.password_for("1:u"),
        );
        assert_eq!(key, integrity.0);
    }
}
