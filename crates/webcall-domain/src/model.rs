//! Domain models. Newtypes validate when they are built, so a value of the type
//! is always valid (parse, don't validate).

use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use uuid::Uuid;

pub use crate::role::Role;
use crate::DomainError;

pub use crate::ice::{IceServer, IceServers, TurnCredentials};

/// An account's id (a UUID, a string in JSON).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct UserId(pub Uuid);

impl UserId {
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An e-mail address: trimmed, in Unicode NFC, 3–254 characters, one `@`, a
/// dotted domain, no control or invisible characters. Compared case-insensitively
/// through [`Email::normalized`], so one address typed two ways is one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

/// Characters that print as nothing (or steer the text's direction): controls
/// (Cc), format characters (Cf: zero-width spaces and joiners, bidi controls,
/// the BOM, tags) and the other default-ignorable code points.
fn is_invisible(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
    ) || matches!(
        c,
        '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let invalid = |message| DomainError::Invalid {
            field: "email",
            message,
        };
        let email: String = raw.trim().nfc().collect();
        if email.is_empty() {
            return Err(invalid("is required"));
        }
        if email.chars().count() > 254 {
            return Err(invalid("must be at most 254 characters"));
        }
        if email.chars().any(char::is_whitespace) {
            return Err(invalid("must not contain spaces"));
        }
        if email.chars().any(is_invisible) {
            return Err(invalid("must not contain control or invisible characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(invalid("must look like name@example.com"));
        };
        let domain_ok = domain.contains('.')
            && !domain.contains('@')
            && domain.split('.').all(|label| !label.is_empty());
        if local.is_empty() || local.chars().count() > 64 || !domain_ok {
            return Err(invalid("must look like name@example.com"));
        }
        Ok(Self(email))
    }

    /// An address as stored, in NFC, even one today's rules would refuse (an
    /// account made before them must keep working).
    pub fn from_stored(stored: &str) -> Self {
        Self(stored.nfc().collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness and login compare: lower case, NFC.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase().nfc().collect()
    }
}

/// A username: 3–32 of ASCII letters, digits, `.`, `_`, `-`. Shown to others in
/// calls; unique case-insensitively so nobody can pose as `Alice` next to `alice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let name = raw.trim();
        let len = name.chars().count();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if !(3..=32).contains(&len) || !name.chars().all(allowed) {
            return Err(DomainError::Invalid {
                field: "username",
                message: "must be 3-32 letters, digits, '.', '_' or '-'",
            });
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A plain-text password on its way to the hasher: 8–128 characters, never printed.
pub struct Password(SecretString);

impl Password {
    pub fn parse(raw: String) -> Result<Self, DomainError> {
        let len = raw.chars().count();
        if !(8..=128).contains(&len) {
            return Err(DomainError::Invalid {
                field: "password",
                message: "must be 8-128 characters",
            });
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// A password as typed at login: any length is checked against the hash, but an
    /// absurdly long one is refused before it reaches the hasher.
    pub fn for_login(raw: String) -> Result<Self, DomainError> {
        if raw.is_empty() || raw.chars().count() > 1024 {
            return Err(DomainError::Invalid {
                field: "password",
                message: "is required",
            });
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

/// A password hash in PHC string format.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(pub String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([REDACTED])")
    }
}

/// How a login names its account: exactly one of e-mail or username.
#[derive(Debug, Clone)]
pub enum LoginIdentifier {
    Email(Email),
    Username(Username),
}

impl LoginIdentifier {
    /// Exactly one of the two must be given.
    pub fn parse(email: Option<&str>, username: Option<&str>) -> Result<Self, DomainError> {
        match (email, username) {
            (Some(email), None) => Ok(Self::Email(Email::parse(email)?)),
            (None, Some(name)) => Ok(Self::Username(Username::parse(name)?)),
            _ => Err(DomainError::Invalid {
                field: "email",
                message: "give exactly one of email or username",
            }),
        }
    }

    /// The key failed logins are counted under.
    pub fn throttle_key(&self) -> String {
        match self {
            Self::Email(email) => format!("email:{}", email.normalized()),
            Self::Username(name) => format!("username:{}", name.normalized()),
        }
    }
}

/// A registered account, as others may see it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub username: Username,
    pub created_at: DateTime<Utc>,
    pub role: Role,
    /// Set while the account is banned: it cannot log in and its tokens are refused.
    pub banned_at: Option<DateTime<Utc>>,
    /// Tokens issued (`iat`, whole seconds) before this time are refused: a
    /// password reset ends every login of the account (and a login in the
    /// rest of that second, which `iat` cannot tell from one just before).
    pub tokens_valid_from: Option<DateTime<Utc>>,
}

impl User {
    /// Whether a token issued at `issued_at` is still accepted for this account
    /// (not from before a password reset).
    pub fn accepts_token_from(&self, issued_at: DateTime<Utc>) -> bool {
        self.tokens_valid_from.is_none_or(|from| issued_at >= from)
    }

    /// The issue time to give a token made `now`: `now`, except in the second
    /// of a password reset, where `iat` (whole seconds) would read as before
    /// the reset and the new token would be refused at once (a person who
    /// signs in right after resetting would be sent back to sign in). Then the
    /// reset's next whole second, at most a second ahead.
    pub fn token_time(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let Some(from) = self.tokens_valid_from else {
            return now;
        };
        let whole = |secs: i64| DateTime::from_timestamp(secs, 0).unwrap_or(now);
        if whole(now.timestamp()) >= from {
            return now;
        }
        whole(from.timestamp() + i64::from(from.timestamp_subsec_nanos() > 0)).max(now)
    }
}

/// An account about to be stored.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub user: User,
    pub password_hash: PasswordHash,
}

/// What an access token says once its signature and expiry have been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClaims {
    pub user_id: UserId,
    /// Unique per token; logout revokes by it.
    pub jti: Uuid,
    /// The login this token descends from (through refreshes). Replaying a
    /// refreshed-away token revokes the whole family.
    pub family: Uuid,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Who holds a token, as storage knows it: looked up in one round trip so that
/// opening a connection costs one query, not one for the revocation and one for
/// the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenHolder {
    /// The token is not revoked and its account exists.
    Active(User),
    /// The token (or its family) was revoked.
    Revoked,
    /// The account no longer exists.
    Unknown,
}

/// A freshly minted access token.
pub struct IssuedToken {
    pub token: SecretString,
    pub claims: TokenClaims,
}

impl IssuedToken {
    /// Seconds until it expires, as `expires_in` in the API.
    pub fn expires_in_secs(&self) -> i64 {
        (self.claims.expires_at - self.claims.issued_at).num_seconds()
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"[REDACTED]")
            .field("claims", &self.claims)
            .finish()
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_accepts_ordinary_addresses_and_normalizes_case() {
        let email = Email::parse("  Ada.Lovelace+calls@Example.ORG ").unwrap();
        assert_eq!(email.as_str(), "Ada.Lovelace+calls@Example.ORG");
        assert_eq!(email.normalized(), "ada.lovelace+calls@example.org");
    }

    #[test]
    fn email_rejects_malformed_addresses() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a@b@c.com",
            "a b@c.com",
            "a@c..com",
            "a@.com",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert!(
                matches!(err, DomainError::Invalid { field: "email", .. }),
                "{bad:?}"
            );
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn email_in_nfc_and_nfd_is_one_address() {
        let nfc = Email::parse("jos\u{E9}@example.org").unwrap();
        let nfd = Email::parse("jose\u{301}@example.org").unwrap();
        assert_eq!(nfd.as_str(), "jos\u{E9}@example.org", "stored in NFC");
        assert_eq!(nfc.normalized(), nfd.normalized());
        let upper_nfd = Email::parse("JOSE\u{301}@EXAMPLE.ORG").unwrap();
        assert_eq!(upper_nfd.normalized(), nfc.normalized());
        let a = LoginIdentifier::parse(Some("jose\u{301}@example.org"), None).unwrap();
        let b = LoginIdentifier::parse(Some("JOS\u{C9}@example.org"), None).unwrap();
        assert_eq!(a.throttle_key(), b.throttle_key());
    }

    #[test]
    fn email_refuses_control_and_invisible_characters() {
        for c in [
            '\u{0}',
            '\u{7}',
            '\u{85}',
            '\u{AD}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{202E}',
            '\u{2060}',
            '\u{2066}',
            '\u{FEFF}',
            '\u{E0041}',
            '\u{034F}',
            '\u{3164}',
            '\u{FE0F}',
            '\u{E000}',
        ] {
            let raw = format!("ad{c}a@example.org");
            match Email::parse(&raw) {
                Err(DomainError::Invalid {
                    field: "email",
                    message,
                }) => assert!(
                    message.contains("invisible") || message.contains("spaces"),
                    "{c:?}: {message}"
                ),
                other => panic!("{c:?} accepted: {other:?}"),
            }
        }
        assert!(Email::parse("caf\u{E9}+\u{1F600}@b\u{FC}cher.example").is_ok());
    }

    #[test]
    fn username_allows_letters_digits_and_dot_underscore_dash() {
        assert_eq!(
            Username::parse("Ada_L-1.0").unwrap().normalized(),
            "ada_l-1.0"
        );
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn username_rejects_wrong_length_or_characters() {
        for bad in [
            "ab",
            &"a".repeat(33),
            "has space",
            "emoji🙂",
            "semi;colon",
            "кириллица",
        ] {
            assert!(
                matches!(
                    Username::parse(bad),
                    Err(DomainError::Invalid {
                        field: "username",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn password_length_is_counted_in_characters() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("пароль12".into()).is_ok());
        assert!(Password::parse("x".repeat(128)).is_ok());
        assert!(Password::parse("x".repeat(129)).is_err());
    }

    #[test]
    fn password_is_never_printed() {
        let password = Password::parse("hunter2hunter2".into()).unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
    }

    #[test]
    fn login_needs_exactly_one_identifier() {
        assert!(LoginIdentifier::parse(Some("a@b.co"), None).is_ok());
        assert!(LoginIdentifier::parse(None, Some("alice")).is_ok());
        assert!(LoginIdentifier::parse(None, None).is_err());
        assert!(LoginIdentifier::parse(Some("a@b.co"), Some("alice")).is_err());
    }

    #[test]
    fn throttle_key_ignores_case() {
        let a = LoginIdentifier::parse(None, Some("Alice")).unwrap();
        let b = LoginIdentifier::parse(None, Some("alice")).unwrap();
        assert_eq!(a.throttle_key(), b.throttle_key());
    }
}
