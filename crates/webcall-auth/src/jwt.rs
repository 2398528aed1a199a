//! HS256 access tokens. The algorithm is pinned (`alg: none` or RS256 headers are
//! refused), and `sub`, `iat`, `exp` and `jti` must all be present and sane.

use chrono::{DateTime, Duration, TimeZone, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webcall_domain::model::{IssuedToken, TokenClaims, TokenError, UserId};
use webcall_domain::ports::TokenCodec;

/// Mints and checks access tokens with one shared secret.
pub struct JwtCodec {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
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
    pub fn new(secret: &SecretString, lifetime: Duration) -> Self {
        let key = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["sub", "iat", "exp"]);
        // Expiry is checked below against the injected clock, to the second.
        validation.validate_exp = false;
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            lifetime,
        }
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
        let token = encode(&Header::new(Algorithm::HS256), &body, &self.encoding)
            .expect("HS256 encoding of plain claims cannot fail");
        IssuedToken {
            token: SecretString::from(token),
            claims,
        }
    }

    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<TokenClaims, TokenError> {
        let body = decode::<Claims>(token, &self.decoding, &self.validation)
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
