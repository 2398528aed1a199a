//! TURN REST API credentials, the scheme coturn calls `use-auth-secret`:
//! username `<expiry-unix-seconds>:<user-id>`, password
//! `base64(HMAC-SHA1(key, username))`. The server needs no per-user state:
//! anyone holding the key (WebCall, or an external coturn) can check them.
//!
//! The key rotates by generation (see `webcall_domain::operations`):
//! generation 0 is `TURN_SECRET` itself, so credentials stay what coturn
//! expects until the operator first rotates; generation `n` is
//! `HMAC-SHA256(TURN_SECRET, "webcall turn key" || n)`, and its usernames say
//! so: `<expiry>:k<n>:<user-id>`. The generation in the username picks the key
//! (the crate must sign its answers with the key the client used); whether
//! that generation still verifies is the gate's question ([`RestCredentials::verifies`]).

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;
use sha2::Sha256;
use webcall_domain::model::{TurnCredentials, UserId};
use webcall_domain::operations::KeyGeneration;
use webcall_domain::ports::{RotatingKey, TurnCredentialMinter};

/// What derived keys are labelled with, so that no other use of the secret
/// (the same `TURN_SECRET` in a coturn, say) ever computes one.
const KEY_LABEL: &[u8] = b"webcall turn key";

/// Mints and checks REST credentials with one shared secret and the key
/// generation that signs now. Clones share the generation: the relay's gate,
/// its key handler and the ICE servers' minter rotate together.
#[derive(Clone)]
pub struct RestCredentials {
    secret: SecretString,
    ttl: Duration,
    generation: Arc<RwLock<KeyGeneration>>,
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

    /// Credentials of generation 0 (the secret itself) until [`RotatingKey::adopt`].
    pub fn new(secret: SecretString, ttl: Duration) -> Self {
        Self {
            secret,
            ttl,
            generation: Arc::new(RwLock::new(KeyGeneration::INITIAL)),
        }
    }

    fn current(&self) -> KeyGeneration {
        *self
            .generation
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The HMAC-SHA1 key of `generation`: the secret itself for 0.
    fn key(&self, generation: u32) -> Vec<u8> {
        let secret = self.secret.expose_secret().as_bytes();
        if generation == 0 {
            return secret.to_vec();
        }
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
        mac.update(KEY_LABEL);
        mac.update(&generation.to_be_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// `base64(HMAC-SHA1(key, username))`, with the key of the generation the
    /// username names (0 when it names none).
    pub fn password_for(&self, username: &str) -> String {
        let generation = parse_rest_username(username).map_or(0, |rest| rest.generation);
        let mut mac = Hmac::<Sha1>::new_from_slice(&self.key(generation))
            .expect("HMAC accepts keys of any length");
        mac.update(username.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }

    /// The long-term key (RFC 8489 §9.2.2: MD5 of `username:realm:password`) the
    /// client signs its requests with.
    pub(crate) fn long_term_key(&self, username: &str, realm: &str) -> Vec<u8> {
        turn::auth::generate_auth_key(username, realm, &self.password_for(username))
    }

    /// Whether credentials of `rest`'s generation still verify now (the
    /// previous generation lapses one credential lifetime after a rotation).
    pub(crate) fn verifies(&self, rest: &RestUsername<'_>) -> bool {
        self.current()
            .verifies(rest.generation, self.ttl, Utc::now())
    }
}

impl TurnCredentialMinter for RestCredentials {
    fn mint(&self, user: UserId, now: DateTime<Utc>) -> TurnCredentials {
        let expiry = now.timestamp().max(0) as u64 + self.ttl.as_secs();
        let username = match self.current().generation {
            0 => format!("{expiry}:{user}"),
            n => format!("{expiry}:k{n}:{user}"),
        };
        TurnCredentials {
            credential: self.password_for(&username),
            username,
        }
    }

    fn ttl_secs(&self) -> Option<u64> {
        Some(self.ttl.as_secs())
    }
}

impl RotatingKey for RestCredentials {
    fn generation(&self) -> KeyGeneration {
        self.current()
    }

    fn adopt(&self, generation: KeyGeneration) -> bool {
        let mut current = self
            .generation
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let newer = generation.generation > current.generation;
        if newer {
            *current = generation;
        }
        newer
    }

    fn lifetime(&self) -> Duration {
        self.ttl
    }
}

/// A REST username taken apart: when it expires, which key generation signed
/// it, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RestUsername<'a> {
    pub(crate) expires_at: u64,
    pub(crate) generation: u32,
    pub(crate) user: &'a str,
}

/// Parses exactly `<expiry-unix-seconds>:<user>` or `<expiry>:k<generation>:<user>`
/// (every part non-empty).
pub(crate) fn parse_rest_username(username: &str) -> Option<RestUsername<'_>> {
    let (expiry, rest) = username.split_once(':')?;
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) || rest.is_empty() {
        return None;
    }
    let (generation, user) = rest
        .split_once(':')
        .and_then(|(tag, user)| {
            let digits = tag.strip_prefix('k')?;
            let valid = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            Some((digits.parse().ok().filter(|_| valid)?, user))
        })
        .unwrap_or((0, rest));
    if user.is_empty() {
        return None;
    }
    Some(RestUsername {
        expires_at: expiry.parse().ok()?,
        generation,
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
                generation: 0,
                user: "alice"
            })
        );
        assert_eq!(
            parse_rest_username("1700000000:k12:alice"),
            Some(RestUsername {
                expires_at: 1_700_000_000,
                generation: 12,
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
            "1700000000:k1:",
        ] {
            assert_eq!(parse_rest_username(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_rotated_generation_signs_with_a_derived_key_and_says_so() {
        let creds = RestCredentials::new(SecretString::from("s"), Duration::from_secs(3600));
        let user = UserId::new_random();
        let now = Utc::now();
        let before = creds.mint(user, now);
        assert!(creds.adopt(KeyGeneration::INITIAL.next(now)));
        let after = creds.mint(user, now);
        let parsed = parse_rest_username(&after.username).unwrap();
        assert_eq!((parsed.generation, parsed.user), (1, &*user.to_string()));
        // Generation 0 stays the secret itself (what coturn computes); later
        // ones are not.
        let coturn = |username: &str| {
            let mut mac = Hmac::<Sha1>::new_from_slice(b"s").unwrap();
            mac.update(username.as_bytes());
            STANDARD.encode(mac.finalize().into_bytes())
        };
        assert_eq!(before.credential, coturn(&before.username));
        assert_ne!(after.credential, coturn(&after.username));
        assert_eq!(after.credential, creds.password_for(&after.username));
        // Both still verify right after the rotation; an older generation is not adopted.
        assert!(creds.verifies(&parse_rest_username(&before.username).unwrap()));
        assert!(creds.verifies(&parsed));
        assert!(!creds.adopt(KeyGeneration::INITIAL));
        assert_eq!(creds.generation().generation, 1);
    }

    #[test]
    fn the_previous_generation_stops_verifying_one_lifetime_after_the_rotation() {
        let creds = RestCredentials::new(SecretString::from("s"), Duration::from_secs(3600));
        let old = parse_rest_username("1:u").unwrap();
        creds.adopt(KeyGeneration::INITIAL.next(Utc::now() - chrono::Duration::seconds(3601)));
        assert!(!creds.verifies(&old));
        assert!(creds.verifies(&parse_rest_username("1:k1:u").unwrap()));
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
