//! Guest tokens: HS256 JWTs with `aud: "guest"`, the room, the guest's name and
//! a fresh guest id as `sub`. They are signed with their own key,
//! `HMAC-SHA256(JWT_SECRET, "webcall guest key")`, so an account token never
//! verifies as a guest token nor the other way round, even if the audience
//! check were lost. The algorithm is pinned as for account tokens.

use chrono::{DateTime, Duration, TimeZone, Utc};
use hmac::{Hmac, Mac};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;
use webcall_domain::guests::{GuestClaims, GuestName, GuestTokenCodec, IssuedGuestToken};
use webcall_domain::model::{TokenError, UserId};
use webcall_domain::signaling::RoomName;

/// The audience every guest token names.
const AUDIENCE: &str = "guest";
/// What the guest key is derived with.
const KEY_LABEL: &[u8] = b"webcall guest key";

/// Mints and checks guest tokens.
pub struct GuestJwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    aud: String,
    room: String,
    name: String,
    iat: i64,
    exp: i64,
    jti: Uuid,
}

impl GuestJwt {
    pub fn new(secret: &SecretString, lifetime: Duration) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(KEY_LABEL);
        let key = mac.finalize().into_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["sub", "aud", "iat", "exp"]);
        validation.set_audience(&[AUDIENCE]);
        // Expiry is checked below against the injected clock, to the second.
        validation.validate_exp = false;
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
            lifetime,
        }
    }
}

impl GuestTokenCodec for GuestJwt {
    fn issue(
        &self,
        guest_id: UserId,
        room: &RoomName,
        name: &GuestName,
        now: DateTime<Utc>,
    ) -> IssuedGuestToken {
        let issued_at = Utc
            .timestamp_opt(now.timestamp(), 0)
            .single()
            .unwrap_or(now);
        let claims = GuestClaims {
            guest_id,
            room: room.clone(),
            name: name.clone(),
            jti: Uuid::new_v4(),
            issued_at,
            expires_at: issued_at + self.lifetime,
        };
        let body = Claims {
            sub: guest_id.0,
            aud: AUDIENCE.to_owned(),
            room: room.as_str().to_owned(),
            name: name.as_str().to_owned(),
            iat: claims.issued_at.timestamp(),
            exp: claims.expires_at.timestamp(),
            jti: claims.jti,
        };
        let token = encode(&Header::new(Algorithm::HS256), &body, &self.encoding)
            .expect("HS256 encoding of plain claims cannot fail");
        IssuedGuestToken {
            token: SecretString::from(token),
            claims,
        }
    }

    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<GuestClaims, TokenError> {
        let body = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        let at = |secs| {
            Utc.timestamp_opt(secs, 0)
                .single()
                .ok_or(TokenError::Invalid)
        };
        let claims = GuestClaims {
            guest_id: UserId(body.sub),
            room: RoomName::parse(&body.room).map_err(|_| TokenError::Invalid)?,
            name: GuestName::parse(&body.name).map_err(|_| TokenError::Invalid)?,
            jti: body.jti,
            issued_at: at(body.iat)?,
            expires_at: at(body.exp)?,
        };
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
    use webcall_domain::ports::TokenCodec;

    use super::*;
    use crate::JwtCodec;

    const SECRET: &str = "a-test-secret-that-is-long-enough-0123456789";

    fn codec() -> GuestJwt {
        GuestJwt::new(&SecretString::from(SECRET), Duration::hours(12))
    }

    fn issue(codec: &GuestJwt, now: DateTime<Utc>) -> IssuedGuestToken {
        let room = RoomName::parse("standup").unwrap();
        let name = GuestName::parse("Anna K.").unwrap();
        codec.issue(UserId::new_random(), &room, &name, now)
    }

    #[test]
    fn a_guest_token_verifies_with_its_claims_until_it_expires() {
        let codec = codec();
        let now = Utc::now();
        let issued = issue(&codec, now);
        let claims = codec.verify(issued.token.expose_secret(), now).unwrap();
        assert_eq!(claims, issued.claims);
        assert_eq!(claims.room.as_str(), "standup");
        assert_eq!(claims.name.as_str(), "Anna K.");
        assert_eq!(
            codec
                .verify(issued.token.expose_secret(), now + Duration::hours(12))
                .unwrap_err(),
            TokenError::Expired
        );
    }

    #[test]
    fn account_and_guest_tokens_are_not_interchangeable() {
        let now = Utc::now();
        let accounts = JwtCodec::new(&SecretString::from(SECRET), Duration::minutes(60));
        let account = accounts.issue(UserId::new_random(), now);
        assert_eq!(
            codec()
                .verify(account.token.expose_secret(), now)
                .unwrap_err(),
            TokenError::Invalid
        );
        let guest = issue(&codec(), now);
        assert_eq!(
            accounts
                .verify(guest.token.expose_secret(), now)
                .unwrap_err(),
            TokenError::Invalid
        );
    }

    #[test]
    fn a_guest_token_signed_with_the_plain_secret_or_without_audience_is_refused() {
        let now = Utc::now().timestamp();
        let claims = serde_json::json!({"sub": Uuid::new_v4(), "aud": "guest", "room": "standup",
            "name": "Eve", "iat": now, "exp": now + 600, "jti": Uuid::new_v4()});
        let plain = EncodingKey::from_secret(SECRET.as_bytes());
        let token = encode(&Header::new(Algorithm::HS256), &claims, &plain).unwrap();
        assert_eq!(
            codec().verify(&token, Utc::now()).unwrap_err(),
            TokenError::Invalid
        );
        let mut no_aud = claims.clone();
        no_aud.as_object_mut().unwrap().remove("aud");
        let token = encode(&Header::new(Algorithm::HS256), &no_aud, &codec().encoding).unwrap();
        assert_eq!(
            codec().verify(&token, Utc::now()).unwrap_err(),
            TokenError::Invalid
        );
        let token = encode(&Header::new(Algorithm::HS256), &claims, &codec().encoding).unwrap();
        assert!(codec().verify(&token, Utc::now()).is_ok());
    }
}
