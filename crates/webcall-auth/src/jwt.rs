//! HS256 access tokens. The algorithm is pinned (`alg: none` or RS256 headers are
//! refused), and `sub`, `iat`, `exp` and `jti` must all be present and sane.
//!
//! The signing key rotates by generation (see `webcall_domain::operations`):
//! generation 0 is `JWT_SECRET` itself, generation `n` is
//! `HMAC-SHA256(JWT_SECRET, "webcall jwt key" || n)`. Each token names its
//! generation in the header's `kid` (a token without one is generation 0's);
//! the previous generation verifies for one token lifetime after a rotation.

use std::sync::{PoisonError, RwLock};

use chrono::{DateTime, Duration, TimeZone, Utc};
use hmac::{Hmac, Mac};
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;
use webcall_domain::model::{IssuedToken, TokenClaims, TokenError, UserId};
use webcall_domain::operations::KeyGeneration;
use webcall_domain::ports::{RotatingKey, TokenCodec};

/// What derived keys are labelled with (the TURN key has its own label).
const KEY_LABEL: &[u8] = b"webcall jwt key";

/// Mints and checks access tokens with one shared secret and the key
/// generation that signs now.
pub struct JwtCodec {
    secret: SecretString,
    keys: RwLock<Keys>,
    validation: Validation,
    lifetime: Duration,
}

/// The signing generation's keys, and the previous generation's decoding key.
struct Keys {
    generation: KeyGeneration,
    encoding: EncodingKey,
    decoding: DecodingKey,
    previous: Option<DecodingKey>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    iat: i64,
    exp: i64,
    jti: Uuid,
    /// The token family; tokens minted before families existed are their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fam: Option<Uuid>,
}

impl JwtCodec {
    /// A codec signing with generation 0 (the secret itself) until
    /// [`RotatingKey::adopt`].
    pub fn new(secret: &SecretString, lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["sub", "iat", "exp"]);
        // Expiry is checked below against the injected clock, to the second.
        validation.validate_exp = false;
        validation.leeway = 0;
        let key = key_of(secret, 0);
        Self {
            secret: secret.clone(),
            keys: RwLock::new(Keys {
                generation: KeyGeneration::INITIAL,
                encoding: EncodingKey::from_secret(&key),
                decoding: DecodingKey::from_secret(&key),
                previous: None,
            }),
            validation,
            lifetime,
        }
    }

    fn keys(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key that verifies a token of `generation` at `now`, if any does.
    fn decoding_key(&self, generation: u32, now: DateTime<Utc>) -> Option<DecodingKey> {
        let keys = self.keys();
        let current = keys.generation;
        if !current.verifies(generation, self.lifetime(), now) {
            return None;
        }
        if generation == current.generation {
            Some(keys.decoding.clone())
        } else if generation < current.generation {
            keys.previous.clone()
        } else {
            // Another instance rotated first; this one hears of it within a second.
            Some(DecodingKey::from_secret(&key_of(&self.secret, generation)))
        }
    }
}

/// The HS256 key of `generation`: the secret itself for 0.
fn key_of(secret: &SecretString, generation: u32) -> Vec<u8> {
    let secret = secret.expose_secret().as_bytes();
    if generation == 0 {
        return secret.to_vec();
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(KEY_LABEL);
    mac.update(&generation.to_be_bytes());
    mac.finalize().into_bytes().to_vec()
}

impl RotatingKey for JwtCodec {
    fn generation(&self) -> KeyGeneration {
        self.keys().generation
    }

    fn adopt(&self, generation: KeyGeneration) -> bool {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if generation.generation <= keys.generation.generation {
            return false;
        }
        let key = key_of(&self.secret, generation.generation);
        let previous = key_of(&self.secret, generation.generation - 1);
        *keys = Keys {
            generation,
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            previous: Some(DecodingKey::from_secret(&previous)),
        };
        true
    }

    fn lifetime(&self) -> std::time::Duration {
        self.lifetime.to_std().unwrap_or_default()
    }
}

impl TokenCodec for JwtCodec {
    fn issue_in_family(&self, user: UserId, family: Uuid, now: DateTime<Utc>) -> IssuedToken {
        let issued_at = Utc
            .timestamp_opt(now.timestamp(), 0)
            .single()
            .unwrap_or(now);
        let claims = TokenClaims {
            user_id: user,
            jti: Uuid::new_v4(),
            family,
            issued_at,
            expires_at: issued_at + self.lifetime,
        };
        let body = Claims {
            sub: user.0,
            iat: claims.issued_at.timestamp(),
            exp: claims.expires_at.timestamp(),
            jti: claims.jti,
            fam: Some(family),
        };
        let keys = self.keys();
        let header = Header {
            kid: Some(keys.generation.generation.to_string()),
            ..Header::new(Algorithm::HS256)
        };
        let token = encode(&header, &body, &keys.encoding)
            .expect("HS256 encoding of plain claims cannot fail");
        IssuedToken {
            token: SecretString::from(token),
            claims,
        }
    }

    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<TokenClaims, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Invalid)?;
        let generation = match header.kid.as_deref() {
            None => 0,
            Some(kid) => kid.parse().map_err(|_| TokenError::Invalid)?,
        };
        let key = self
            .decoding_key(generation, now)
            .ok_or(TokenError::Invalid)?;
        let body = decode::<Claims>(token, &key, &self.validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        let at = |secs| {
            Utc.timestamp_opt(secs, 0)
                .single()
                .ok_or(TokenError::Invalid)
        };
        let claims = TokenClaims {
            user_id: UserId(body.sub),
            jti: body.jti,
            family: body.fam.unwrap_or(body.jti),
            issued_at: at(body.iat)?,
            expires_at: at(body.exp)?,
        };
        // A token from the future was not minted by this server's clock.
        if claims.issued_at > now + Duration::seconds(60) || claims.expires_at < claims.issued_at {
            return Err(TokenError::Invalid);
        }
        if now >= claims.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use super::*;

    fn codec(secret: &str) -> JwtCodec {
        JwtCodec::new(&SecretString::from(secret), Duration::minutes(60))
    }

    const SECRET: &str = "a-test-secret-that-is-long-enough-0123456789";

    #[test]
    fn issued_token_verifies_with_the_same_claims() {
        let codec = codec(SECRET);
        let now = Utc::now();
        let issued = codec.issue(UserId::new_random(), now);
        let claims = codec.verify(issued.token.expose_secret(), now).unwrap();
        assert_eq!(claims, issued.claims);
        assert_eq!(issued.expires_in_secs(), 3600);
    }

    #[test]
    fn each_token_has_its_own_jti() {
        let codec = codec(SECRET);
        let now = Utc::now();
        let user = UserId::new_random();
        assert_ne!(
            codec.issue(user, now).claims.jti,
            codec.issue(user, now).claims.jti
        );
    }

    #[test]
    fn expired_token_is_refused_as_expired() {
        let codec = codec(SECRET);
        let then = Utc::now() - Duration::minutes(61);
        let issued = codec.issue(UserId::new_random(), then);
        let err = codec
            .verify(issued.token.expose_secret(), Utc::now())
            .unwrap_err();
        assert_eq!(err, TokenError::Expired);
    }

    #[test]
    fn token_signed_with_another_key_is_invalid() {
        let now = Utc::now();
        let foreign =
            codec("another-secret-of-a-good-length-9876543210").issue(UserId::new_random(), now);
        let err = codec(SECRET)
            .verify(foreign.token.expose_secret(), now)
            .unwrap_err();
        assert_eq!(err, TokenError::Invalid);
    }

    fn unsigned(header: &str, claims: &serde_json::Value) -> String {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn alg_none_is_refused() {
        let now = Utc::now().timestamp();
        let claims = serde_json::json!({"sub": Uuid::new_v4(), "iat": now, "exp": now + 600, "jti": Uuid::new_v4()});
        for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"None"}"#] {
            let token = unsigned(header, &claims);
            assert_eq!(
                codec(SECRET).verify(&token, Utc::now()).unwrap_err(),
                TokenError::Invalid
            );
        }
    }

    #[test]
    fn other_algorithms_are_refused_even_with_the_right_key() {
        let now = Utc::now().timestamp();
        let claims = serde_json::json!({"sub": Uuid::new_v4(), "iat": now, "exp": now + 600, "jti": Uuid::new_v4()});
        let token = encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            codec(SECRET).verify(&token, Utc::now()).unwrap_err(),
            TokenError::Invalid
        );
    }

    #[test]
    fn missing_claims_are_refused() {
        let now = Utc::now().timestamp();
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        let complete = serde_json::json!({"sub": Uuid::new_v4(), "iat": now, "exp": now + 600, "jti": Uuid::new_v4()});
        for missing in ["sub", "iat", "exp", "jti"] {
            let mut claims = complete.clone();
            claims.as_object_mut().unwrap().remove(missing);
            let token = encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
            assert_eq!(
                codec(SECRET).verify(&token, Utc::now()).unwrap_err(),
                TokenError::Invalid,
                "without {missing}"
            );
        }
    }

    fn kid(token: &IssuedToken) -> Option<String> {
        decode_header(token.token.expose_secret()).unwrap().kid
    }

    #[test]
    fn tokens_name_their_key_generation() {
        let codec = codec(SECRET);
        let now = Utc::now();
        assert_eq!(
            kid(&codec.issue(UserId::new_random(), now)).as_deref(),
            Some("0")
        );
        codec.adopt(KeyGeneration::INITIAL.next(now));
        assert_eq!(
            kid(&codec.issue(UserId::new_random(), now)).as_deref(),
            Some("1")
        );
    }

    #[test]
    fn generation_zero_is_the_secret_itself() {
        // A token from before rotation existed (no kid), signed with the secret.
        let now = Utc::now().timestamp();
        let claims = serde_json::json!({"sub": Uuid::new_v4(), "iat": now, "exp": now + 600, "jti": Uuid::new_v4()});
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(codec(SECRET).verify(&token, Utc::now()).is_ok());
    }

    #[test]
    fn after_a_rotation_old_tokens_verify_for_one_lifetime_then_not() {
        let codec = codec(SECRET);
        let rotated_at = Utc::now();
        let old = codec.issue(UserId::new_random(), rotated_at - Duration::minutes(1));
        assert!(codec.adopt(KeyGeneration::INITIAL.next(rotated_at)));
        let new = codec.issue(UserId::new_random(), rotated_at);
        let verify = |token: &IssuedToken, at| codec.verify(token.token.expose_secret(), at);
        assert!(verify(&old, rotated_at).is_ok());
        assert!(verify(&new, rotated_at).is_ok());
        // The old token expires before the window closes anyway; one minted
        // with a forged long life by a holder of the old key is refused after it.
        let forged = JwtCodec::new(&SecretString::from(SECRET), Duration::days(30))
            .issue(UserId::new_random(), rotated_at);
        assert!(verify(&forged, rotated_at + Duration::minutes(59)).is_ok());
        assert_eq!(
            verify(&forged, rotated_at + Duration::minutes(60)).unwrap_err(),
            TokenError::Invalid
        );
        let later = codec.issue(UserId::new_random(), rotated_at + Duration::minutes(60));
        assert!(verify(&later, rotated_at + Duration::minutes(61)).is_ok());
    }

    #[test]
    fn a_later_generation_verifies_and_an_unknown_kid_does_not() {
        let ahead = codec(SECRET);
        ahead.adopt(KeyGeneration::INITIAL.next(Utc::now()).next(Utc::now()));
        let now = Utc::now();
        let token = ahead.issue(UserId::new_random(), now);
        // An instance that has not heard of generation 2 yet.
        assert!(codec(SECRET)
            .verify(token.token.expose_secret(), now)
            .is_ok());
        // A derived key is not the secret: a token signed with the secret but
        // claiming generation 2 is refused.
        let claims = serde_json::json!({"sub": Uuid::new_v4(), "iat": now.timestamp(), "exp": now.timestamp() + 600, "jti": Uuid::new_v4()});
        for kid in ["2", "x", "-1"] {
            let header = Header {
                kid: Some(kid.into()),
                ..Header::new(Algorithm::HS256)
            };
            let token = encode(
                &header,
                &claims,
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .unwrap();
            assert_eq!(
                codec(SECRET).verify(&token, now).unwrap_err(),
                TokenError::Invalid,
                "kid {kid}"
            );
        }
    }

    #[test]
    fn an_older_generation_is_not_adopted() {
        let codec = codec(SECRET);
        let one = KeyGeneration::INITIAL.next(Utc::now());
        assert!(codec.adopt(one));
        assert!(!codec.adopt(one));
        assert!(!codec.adopt(KeyGeneration::INITIAL));
        assert_eq!(codec.generation(), one);
    }

    #[test]
    fn garbage_is_invalid() {
        for token in ["", "abc", "a.b.c", "...."] {
            assert_eq!(
                codec(SECRET).verify(token, Utc::now()).unwrap_err(),
                TokenError::Invalid
            );
        }
    }
}
