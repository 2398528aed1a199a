//! Accounts: register, log in, refresh, log out, and authenticate a bearer token.
//!
//! Over ~500 lines because its unit tests sit beside the code (below, against
//! the in-memory ports of `crate::testing`); the use cases themselves are ~340.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use webcall_domain::model::{
    Email, IssuedToken, LoginIdentifier, NewUser, Password, Role, TokenClaims, TokenError,
    TokenHolder, User, UserId, Username,
};
use webcall_domain::ports::{Clock, PasswordHasher, TokenCodec, TokenRevocations, UserRepository};

use uuid::Uuid;
use webcall_domain::DomainError;

use crate::throttle::{LoginThrottle, RegistrationThrottle, ThrottleConfig};
use crate::AppError;

/// A registration form as it arrives: every field optional so that a missing one
/// gets the same clear error as a malformed one.
#[derive(Debug, Default)]
pub struct Registration {
    pub email: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub secret: Option<String>,
}

/// A login form as it arrives.
#[derive(Debug, Default)]
pub struct Login {
    pub email: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The ports [`Accounts`] works through.
pub struct AccountsDeps {
    pub users: Arc<dyn UserRepository>,
    pub revocations: Arc<dyn TokenRevocations>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub tokens: Arc<dyn TokenCodec>,
    pub clock: Arc<dyn Clock>,
}

/// The account use cases.
pub struct Accounts {
    deps: AccountsDeps,
    registration_secret: [u8; 32],
    throttle: LoginThrottle,
    registrations: RegistrationThrottle,
    /// `ADMIN_EMAILS`, normalised: these register as admins.
    admin_emails: Vec<String>,
}

impl Accounts {
    pub fn new(
        deps: AccountsDeps,
        registration_secret: &SecretString,
        throttle: ThrottleConfig,
    ) -> Self {
        Self {
            deps,
            registration_secret: digest(registration_secret.expose_secret()),
            throttle: LoginThrottle::new(throttle),
            registrations: RegistrationThrottle::new(throttle.registration_per_address),
            admin_emails: Vec::new(),
        }
    }

    /// Accounts registered with one of these addresses are admins
    /// (`ADMIN_EMAILS`; the first account ever registered is one anyway).
    pub fn with_admin_emails(mut self, emails: &[Email]) -> Self {
        self.admin_emails = emails.iter().map(Email::normalized).collect();
        self
    }

    /// Creates an account. The registration secret is checked first (in constant
    /// time, 403), so nobody without it learns which addresses or names exist;
    /// wrong secrets are limited per client address like failed logins (429).
    #[tracing::instrument(skip_all, fields(client = %client))]
    pub async fn register(&self, form: Registration, client: IpAddr) -> Result<User, AppError> {
        let now = self.deps.clock.now();
        self.registrations
            .reserve(client, now)
            .map_err(|retry_after| {
                metrics::counter!("webcall_auth_failures_total", "kind" => "throttled")
                    .increment(1);
                AppError::TooManyAttempts { retry_after }
            })?;
        let secret = form.secret.as_deref().unwrap_or_default();
        let secret_ok: bool = digest(secret).ct_eq(&self.registration_secret).into();
        if !secret_ok {
            metrics::counter!("webcall_auth_failures_total", "kind" => "registration_secret")
                .increment(1);
            tracing::info!("wrong registration secret");
            return Err(AppError::RegistrationSecretInvalid);
        }
        self.registrations.succeeded(client, now);
        let email = Email::parse(form.email.as_deref().unwrap_or_default())?;
        let username = Username::parse(form.username.as_deref().unwrap_or_default())?;
        let password = Password::parse(form.password.unwrap_or_default())?;
        // Taken names are refused before the (expensive) hashing; the unique
        // constraints still decide when two registrations race.
        let email_login = LoginIdentifier::Email(email.clone());
        if self
            .deps
            .users
            .find_for_login(&email_login)
            .await?
            .is_some()
        {
            return Err(DomainError::EmailTaken.into());
        }
        let name_login = LoginIdentifier::Username(username.clone());
        if self.deps.users.find_for_login(&name_login).await?.is_some() {
            return Err(DomainError::UsernameTaken.into());
        }
        let password_hash = self.deps.hasher.hash(&password).await?;
        // Storage makes the very first account an admin too.
        let role = if self.admin_emails.contains(&email.normalized()) {
            Role::Admin
        } else {
            Role::Member
        };
        let user = User {
            id: UserId::new_random(),
            email,
            username,
            created_at: self.deps.clock.now(),
            role,
            banned_at: None,
            tokens_valid_from: None,
        };
        let user = self
            .deps
            .users
            .insert(NewUser {
                user,
                password_hash,
            })
            .await?;
        tracing::info!(user_id = %user.id, "account registered");
        Ok(user)
    }

    /// Checks a password and mints an access token. Unknown accounts and wrong
    /// passwords get the same error after the same amount of hashing work.
    ///
    /// The attempt is counted against the account (by id, so its username and
    /// email share one budget; an unknown account by its normalised name) and the
    /// client address before the hash, so concurrent guesses cannot all pass.
    #[tracing::instrument(skip_all, fields(client = %client))]
    pub async fn login(&self, form: Login, client: IpAddr) -> Result<IssuedToken, AppError> {
        let login = LoginIdentifier::parse(form.email.as_deref(), form.username.as_deref())?;
        let password = Password::for_login(form.password.unwrap_or_default())?;
        let found = self.deps.users.find_for_login(&login).await?;
        let key = match &found {
            Some((user, _)) => format!("user:{}", user.id),
            None => login.throttle_key(),
        };
        let now = self.deps.clock.now();
        self.throttle
            .reserve(&key, client, now)
            .map_err(|retry_after| {
                metrics::counter!("webcall_auth_failures_total", "kind" => "throttled")
                    .increment(1);
                AppError::TooManyAttempts { retry_after }
            })?;

        let hash = found.as_ref().map(|(_, hash)| hash);
        let password_ok = match self.deps.hasher.verify(&password, hash).await {
            Ok(ok) => ok,
            Err(err) => {
                self.throttle.release(&key, client, now);
                return Err(err.into());
            }
        };
        match found {
            Some((user, _)) if password_ok => {
                self.throttle.succeeded(&key, client, now);
                // Said only to whoever knows the password.
                if user.banned_at.is_some() {
                    tracing::info!(user_id = %user.id, "login refused: banned");
                    return Err(AppError::Banned);
                }
                tracing::info!(user_id = %user.id, "login succeeded");
                let now = self.deps.clock.now();
                Ok(self.deps.tokens.issue(user.id, user.token_time(now)))
            }
            _ => {
                metrics::counter!("webcall_auth_failures_total", "kind" => "login").increment(1);
                tracing::info!("login failed");
                Err(AppError::InvalidCredentials)
            }
        }
    }

    /// Checks a bearer token: signature, algorithm, expiry, that neither it nor
    /// its family was revoked, and that its account still exists.
    pub async fn authenticate(&self, token: &str) -> Result<TokenClaims, AppError> {
        self.authenticate_user(token)
            .await
            .map(|(claims, _)| claims)
    }

    /// Checks a bearer token like [`Self::authenticate`] and finds its account,
    /// with one storage round trip for both (opening a call's connection).
    pub async fn authenticate_user(&self, token: &str) -> Result<(TokenClaims, User), AppError> {
        let claims = self.deps.tokens.verify(token, self.deps.clock.now())?;
        match self
            .deps
            .revocations
            .holder(claims.jti, claims.family, claims.user_id)
            .await?
        {
            TokenHolder::Active(user) => Ok((claims, admitted(&claims, user)?)),
            TokenHolder::Revoked => Err(AppError::TokenRevoked),
            TokenHolder::Unknown => Err(AppError::TokenInvalid),
        }
    }

    /// The account behind an authenticated token.
    pub async fn me(&self, claims: &TokenClaims) -> Result<User, AppError> {
        self.deps
            .users
            .find_by_id(claims.user_id)
            .await?
            .ok_or(AppError::TokenInvalid)
    }

    /// A fresh token for a still-valid one, so a long call outlives
    /// `JWT_EXPIRES_MIN`. The presented token is revoked (rotation); presenting
    /// it again means two parties hold it (one stole it), so the whole family
    /// (every token descended from that login) is revoked:
    /// [`AppError::TokenReplayed`].
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, token: &str) -> Result<IssuedToken, AppError> {
        let now = self.deps.clock.now();
        let claims = self.deps.tokens.verify(token, now)?;
        let revocations = &self.deps.revocations;
        let user = match revocations
            .holder(claims.jti, claims.family, claims.user_id)
            .await?
        {
            TokenHolder::Active(user) => admitted(&claims, user)?,
            TokenHolder::Unknown => return Err(AppError::TokenInvalid),
            TokenHolder::Revoked => return Err(self.replayed(&claims, now).await?),
        };
        // Of two refreshes racing with one token, only one rotates it.
        if !revocations
            .revoke(claims.jti, user.id, claims.expires_at)
            .await?
        {
            return Err(self.replayed(&claims, now).await?);
        }
        // A token from before families has its own id as its family: revoking
        // it above revoked that family too, so its successor starts a new one.
        let family = if claims.family == claims.jti {
            Uuid::new_v4()
        } else {
            claims.family
        };
        Ok(self
            .deps
            .tokens
            .issue_in_family(user.id, family, user.token_time(now)))
    }

    /// Revokes `claims`' family for as long as any token in it can live, and
    /// says so as an error. A family already revoked is just `TokenRevoked`.
    async fn replayed(
        &self,
        claims: &TokenClaims,
        now: DateTime<Utc>,
    ) -> Result<AppError, AppError> {
        let lifetime = claims.expires_at - claims.issued_at;
        let newly = self
            .deps
            .revocations
            .revoke(claims.family, claims.user_id, now + lifetime)
            .await;
        match newly {
            Ok(true) => {
                metrics::counter!("webcall_auth_failures_total", "kind" => "token_replayed")
                    .increment(1);
                tracing::warn!(user_id = %claims.user_id, "a refreshed-away token was replayed: its family is revoked");
                Ok(AppError::TokenReplayed {
                    login: claims.family,
                })
            }
            Ok(false) => Ok(AppError::TokenRevoked),
            // The account is gone (its revocations went with it).
            Err(_) if self.deps.users.find_by_id(claims.user_id).await?.is_none() => {
                Ok(AppError::TokenInvalid)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Confirms the caller's password before a deletion, with the same limits as
    /// a login (401 / 429).
    #[tracing::instrument(skip_all, fields(user_id = %claims.user_id, client = %client))]
    pub async fn confirm_password(
        &self,
        claims: &TokenClaims,
        password: Option<String>,
        client: IpAddr,
    ) -> Result<(), AppError> {
        let password = Password::for_login(password.unwrap_or_default())?;
        let user = self.me(claims).await?;
        let login = LoginIdentifier::Username(user.username.clone());
        let Some((_, hash)) = self.deps.users.find_for_login(&login).await? else {
            return Err(AppError::TokenInvalid);
        };
        let key = format!("user:{}", user.id);
        let now = self.deps.clock.now();
        self.throttle
            .reserve(&key, client, now)
            .map_err(|retry_after| AppError::TooManyAttempts { retry_after })?;
        let password_ok = match self.deps.hasher.verify(&password, Some(&hash)).await {
            Ok(ok) => ok,
            Err(err) => {
                self.throttle.release(&key, client, now);
                return Err(err.into());
            }
        };
        if !password_ok {
            return Err(AppError::InvalidCredentials);
        }
        self.throttle.succeeded(&key, client, now);
        Ok(())
    }

    /// Deletes the caller's account (its remaining rooms and revocations go
    /// with it). The caller confirms the password first, ends the account's
    /// rooms and then closes its connections (`Hub::revoke_user`).
    #[tracing::instrument(skip_all, fields(user_id = %claims.user_id))]
    pub async fn delete_account(&self, claims: &TokenClaims) -> Result<(), AppError> {
        self.deps.users.delete(claims.user_id).await?;
        tracing::info!("account deleted");
        Ok(())
    }

    /// Ends the login: revokes the token and its family (every token refreshed
    /// from the same login) until they would have expired.
    #[tracing::instrument(skip_all, fields(user_id = %claims.user_id))]
    pub async fn logout(&self, claims: &TokenClaims) -> Result<(), AppError> {
        let revocations = &self.deps.revocations;
        revocations
            .revoke(claims.jti, claims.user_id, claims.expires_at)
            .await?;
        // The whole login ends: the tokens it refreshed away, and so a refresh
        // of this one is refused as revoked, not taken for a replay.
        let lifetime = claims.expires_at - claims.issued_at;
        revocations
            .revoke(
                claims.family,
                claims.user_id,
                self.deps.clock.now() + lifetime,
            )
            .await?;
        tracing::info!("logged out");
        Ok(())
    }
}

/// The token's account, unless it is banned or the token is from before its
/// last password reset.
fn admitted(claims: &TokenClaims, user: User) -> Result<User, AppError> {
    if user.banned_at.is_some() {
        return Err(AppError::Banned);
    }
    if !user.accepts_token_from(claims.issued_at) {
        return Err(AppError::TokenRevoked);
    }
    Ok(user)
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

impl From<TokenError> for AppError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Expired => Self::TokenExpired,
            TokenError::Invalid => Self::TokenInvalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use async_trait::async_trait;
    use uuid::Uuid;
    use webcall_auth::JwtCodec;
    use webcall_domain::ports::RoomRepository;
    use webcall_domain::signaling::RoomName;

    use super::*;
    use crate::testing::{FastHasher, ManualClock, MemoryStore};

    const SECRET: &str = "let-me-in-please";
    const JWT_SECRET: &str = "a-test-secret-that-is-long-enough-0123456789";
    const PASSWORD: &str = "correct horse battery";
    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    const OTHER_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    const LIFETIME_MIN: i64 = 60;

    /// Asserts that `$result` is the error `$pattern`, printing what it was if not.
    macro_rules! assert_err {
        ($result:expr, $pattern:pat $(if $guard:expr)?) => {
            match $result {
                Err($pattern) $(if $guard)? => {}
                other => panic!("expected {}, got {other:?}", stringify!($pattern)),
            }
        };
    }

    struct Harness {
        accounts: Arc<Accounts>,
        store: Arc<MemoryStore>,
        hasher: Arc<FastHasher>,
        clock: Arc<ManualClock>,
        codec: Arc<JwtCodec>,
        config: ThrottleConfig,
    }

    fn harness() -> Harness {
        harness_with(|store| store)
    }

    /// A harness whose revocations are `revocations(store)`.
    fn harness_with(
        revocations: impl FnOnce(Arc<MemoryStore>) -> Arc<dyn TokenRevocations>,
    ) -> Harness {
        let store = Arc::new(MemoryStore::default());
        let hasher = Arc::new(FastHasher::default());
        let clock = Arc::new(ManualClock::default());
        let codec = Arc::new(JwtCodec::new(
            &SecretString::from(JWT_SECRET),
            chrono::Duration::minutes(LIFETIME_MIN),
        ));
        let config = ThrottleConfig::default();
        let deps = AccountsDeps {
            users: store.clone(),
            revocations: revocations(store.clone()),
            hasher: hasher.clone(),
            tokens: codec.clone(),
            clock: clock.clone(),
        };
        let accounts = Accounts::new(deps, &SecretString::from(SECRET), config);
        Harness {
            accounts: Arc::new(accounts),
            store,
            hasher,
            clock,
            codec,
            config,
        }
    }

    fn registration(email: &str, username: &str, secret: Option<&str>) -> Registration {
        Registration {
            email: Some(email.into()),
            username: Some(username.into()),
            password: Some(PASSWORD.into()),
            secret: secret.map(Into::into),
        }
    }

    fn by_name(username: &str, password: &str) -> Login {
        Login {
            username: Some(username.into()),
            password: Some(password.into()),
            ..Login::default()
        }
    }

    fn by_email(email: &str, password: &str) -> Login {
        Login {
            email: Some(email.into()),
            password: Some(password.into()),
            ..Login::default()
        }
    }

    fn secret(issued: &IssuedToken) -> String {
        issued.token.expose_secret().to_owned()
    }

    impl Harness {
        async fn register(&self, email: &str, username: &str) -> User {
            let form = registration(email, username, Some(SECRET));
            self.accounts.register(form, CLIENT).await.unwrap()
        }

        async fn login(&self, form: Login) -> Result<IssuedToken, AppError> {
            self.accounts.login(form, CLIENT).await
        }

        /// A fresh login's token for `username`.
        async fn token(&self, username: &str) -> String {
            secret(&self.login(by_name(username, PASSWORD)).await.unwrap())
        }

        async fn refresh(&self, token: &str) -> Result<String, AppError> {
            self.accounts.refresh(token).await.map(|t| secret(&t))
        }
    }

    #[tokio::test]
    async fn a_registered_account_can_log_in() {
        let h = harness();
        let user = h.register(" Ada@Example.org ", "Ada").await;
        assert_eq!(user.email.as_str(), "Ada@Example.org");
        assert_eq!(user.username.as_str(), "Ada");
        assert_eq!(user.created_at, h.clock.now());
        assert_eq!(
            h.store.find_by_id(user.id).await.unwrap(),
            Some(user.clone())
        );
        let login = LoginIdentifier::Username(user.username.clone());
        let (_, hash) = h.store.find_for_login(&login).await.unwrap().unwrap();
        assert!(!hash.0.contains(PASSWORD), "only a hash is stored");

        let issued = h.login(by_name("Ada", PASSWORD)).await.unwrap();
        assert_eq!(issued.claims.user_id, user.id);
        assert_eq!(issued.claims.issued_at, h.clock.now());
        assert_eq!(issued.expires_in_secs(), LIFETIME_MIN * 60);
    }

    #[tokio::test]
    async fn the_registration_secret_is_checked_before_anything_else() {
        let h = harness();
        h.register("ada@example.org", "ada").await;
        let refused = [
            registration("grace@example.org", "grace", Some("wrong")),
            registration("grace@example.org", "grace", Some("")),
            registration("grace@example.org", "grace", None),
            // Without the secret, nothing tells what is wrong or taken.
            Registration {
                password: Some("short".into()),
                ..registration("not-an-email", "a", Some("wrong"))
            },
            registration("ada@example.org", "ada", Some("wrong")),
        ];
        for form in refused {
            let shown = format!("{form:?}");
            let result = h.accounts.register(form, CLIENT).await;
            assert!(
                matches!(result, Err(AppError::RegistrationSecretInvalid)),
                "{shown}: {result:?}"
            );
        }
        assert_eq!(h.store.user_count(), 1, "nothing was created");
        assert_eq!(h.hasher.hashes(), 1, "nor hashed");
        h.register("grace@example.org", "grace").await;
    }

    #[tokio::test]
    async fn wrong_registration_secrets_are_limited_per_address() {
        let h = harness();
        let policy = h.config.registration_per_address;
        // Right secrets cost nothing.
        for i in 0..policy.max_failures + 2 {
            let form = registration(
                &format!("u{i}@example.org"),
                &format!("user{i}"),
                Some(SECRET),
            );
            h.accounts.register(form, CLIENT).await.unwrap();
        }
        let guess = |i: usize, secret: &'static str, client| {
            let form = registration(
                &format!("g{i}@example.org"),
                &format!("guest{i}"),
                Some(secret),
            );
            h.accounts.register(form, client)
        };
        for i in 0..policy.max_failures {
            assert_err!(
                guess(i, "guess", CLIENT).await,
                AppError::RegistrationSecretInvalid
            );
        }
        assert_err!(
            guess(100, "guess", CLIENT).await,
            AppError::TooManyAttempts { retry_after } if retry_after == policy.window
        );
        // The guesser's address is refused even with the right secret; others are not.
        assert_err!(
            guess(101, SECRET, CLIENT).await,
            AppError::TooManyAttempts { .. }
        );
        guess(102, SECRET, OTHER_CLIENT).await.unwrap();

        h.clock.advance(chrono::Duration::minutes(5));
        let left = policy.window - Duration::from_secs(5 * 60);
        assert_err!(
            guess(103, SECRET, CLIENT).await,
            AppError::TooManyAttempts { retry_after } if retry_after == left
        );
        h.clock.advance(chrono::Duration::from_std(left).unwrap());
        guess(104, SECRET, CLIENT).await.unwrap();
    }

    #[tokio::test]
    async fn invalid_fields_are_refused_naming_the_field() {
        let h = harness();
        let form = |email: Option<&str>, username: &str, password: Option<&str>| Registration {
            email: email.map(Into::into),
            password: password.map(Into::into),
            ..registration("unused@example.org", username, Some(SECRET))
        };
        let long_name = "a".repeat(33);
        let long_password = "x".repeat(129);
        let cases = [
            (form(Some("not-an-email"), "ada", Some(PASSWORD)), "email"),
            (form(None, "ada", Some(PASSWORD)), "email"),
            (
                form(Some("ada\u{200B}@example.org"), "ada", Some(PASSWORD)),
                "email",
            ),
            (
                form(Some("ada@example.org"), "ad", Some(PASSWORD)),
                "username",
            ),
            (
                form(Some("ada@example.org"), "ada lovelace", Some(PASSWORD)),
                "username",
            ),
            (
                form(Some("ada@example.org"), &long_name, Some(PASSWORD)),
                "username",
            ),
            (
                form(Some("ada@example.org"), "ada", Some("1234567")),
                "password",
            ),
            (
                form(Some("ada@example.org"), "ada", Some(&long_password)),
                "password",
            ),
            (form(Some("ada@example.org"), "ada", None), "password"),
        ];
        for (form, expected) in cases {
            let shown = format!("{form:?}");
            let result = h.accounts.register(form, CLIENT).await;
            assert!(
                matches!(
                    result,
                    Err(AppError::Domain(DomainError::Invalid { field, .. })) if field == expected
                ),
                "{shown}: {result:?}"
            );
        }
        assert_eq!(h.store.user_count(), 0);
    }

    #[tokio::test]
    async fn a_taken_email_or_username_is_refused_whatever_its_case_or_unicode_form() {
        let h = harness();
        h.register("jose\u{301}@example.org", "Jose").await;
        for (email, username) in [
            ("jos\u{E9}@example.org", "other"),
            ("JOS\u{C9}@Example.ORG", "other"),
        ] {
            let form = registration(email, username, Some(SECRET));
            let result = h.accounts.register(form, CLIENT).await;
            assert_err!(result, AppError::Domain(DomainError::EmailTaken));
        }
        let form = registration("other@example.org", "jOSE", Some(SECRET));
        let result = h.accounts.register(form, CLIENT).await;
        assert_err!(result, AppError::Domain(DomainError::UsernameTaken));
        assert_eq!(
            h.hasher.hashes(),
            1,
            "taken names are refused before hashing"
        );
        assert_eq!(h.store.user_count(), 1);
        h.register("other@example.org", "other").await;
    }

    #[tokio::test]
    async fn a_login_names_the_account_by_email_or_username_in_any_case() {
        let h = harness();
        let ada = h.register("Ada@Example.org", "Ada").await;
        let jose = h.register("jose\u{301}@example.org", "jose").await;
        let logins = [
            (by_email("ada@example.org", PASSWORD), &ada),
            (by_email("ADA@EXAMPLE.ORG", PASSWORD), &ada),
            (by_name("ada", PASSWORD), &ada),
            (by_name("ADA", PASSWORD), &ada),
            (by_email("jos\u{E9}@example.org", PASSWORD), &jose),
            (by_email("JOSE\u{301}@example.org", PASSWORD), &jose),
        ];
        for (form, expected) in logins {
            let shown = format!("{form:?}");
            let issued = h.login(form).await.unwrap();
            let (claims, user) = h
                .accounts
                .authenticate_user(&secret(&issued))
                .await
                .unwrap();
            assert_eq!(&user, expected, "{shown}");
            assert_eq!(claims, issued.claims);
            assert_eq!(&h.accounts.me(&claims).await.unwrap(), expected);
        }
    }

    #[tokio::test]
    async fn a_login_needs_exactly_one_name_and_a_password() {
        let h = harness();
        h.register("ada@example.org", "ada").await;
        let both = Login {
            email: Some("ada@example.org".into()),
            ..by_name("ada", PASSWORD)
        };
        let no_password = Login {
            password: None,
            ..by_name("ada", PASSWORD)
        };
        let cases = [
            (Login::default(), "email"),
            (both, "email"),
            (no_password, "password"),
            (by_name("ada", ""), "password"),
        ];
        for (form, expected) in cases {
            let shown = format!("{form:?}");
            let result = h.login(form).await;
            assert!(
                matches!(
                    result,
                    Err(AppError::Domain(DomainError::Invalid { field, .. })) if field == expected
                ),
                "{shown}: {result:?}"
            );
        }
        // Malformed attempts check no password and cost the account nothing.
        assert_eq!(h.hasher.verifies(), 0);
        for _ in 0..h.config.per_account.max_failures {
            assert_err!(h.login(by_name("ada", "")).await, AppError::Domain(_));
        }
        h.login(by_name("ada", PASSWORD)).await.unwrap();
    }

    #[tokio::test]
    async fn a_wrong_password_and_an_unknown_account_get_the_same_answer_after_the_same_work() {
        let h = harness();
        h.register("ada@example.org", "ada").await;
        assert_err!(
            h.login(by_name("ada", "not the password")).await,
            AppError::InvalidCredentials
        );
        assert_eq!(h.hasher.verifies(), 1);
        assert_err!(
            h.login(by_name("nobody", PASSWORD)).await,
            AppError::InvalidCredentials
        );
        assert_eq!(
            h.hasher.verifies(),
            2,
            "an unknown account costs one check too"
        );
        assert_err!(
            h.login(by_email("nobody@example.org", PASSWORD)).await,
            AppError::InvalidCredentials
        );
        assert_eq!(h.hasher.verifies(), 3);
    }

    #[tokio::test]
    async fn failed_logins_lock_the_account_until_the_window_passes() {
        let h = harness();
        let policy = h.config.per_account;
        h.register("ada@example.org", "ada").await;
        h.register("grace@example.org", "grace").await;
        // The username and the e-mail of one account share one budget.
        for i in 0..policy.max_failures {
            let form = if i % 2 == 0 {
                by_name("ADA", "guess-guess")
            } else {
                by_email("Ada@Example.org", "guess-guess")
            };
            assert_err!(h.login(form).await, AppError::InvalidCredentials);
        }
        // Even the right password is refused while the account is locked, unchecked.
        for form in [
            by_name("ada", PASSWORD),
            by_email("ada@example.org", PASSWORD),
        ] {
            assert_err!(
                h.login(form).await,
                AppError::TooManyAttempts { retry_after } if retry_after == policy.window
            );
        }
        assert_eq!(h.hasher.verifies(), policy.max_failures);
        // Another account is unaffected.
        h.login(by_name("grace", PASSWORD)).await.unwrap();

        let window = chrono::Duration::from_std(policy.window).unwrap();
        h.clock.advance(window - chrono::Duration::seconds(1));
        assert_err!(
            h.login(by_name("ada", PASSWORD)).await,
            AppError::TooManyAttempts { retry_after } if retry_after == Duration::from_secs(1)
        );
        h.clock.advance(chrono::Duration::seconds(1));
        h.login(by_name("ada", PASSWORD)).await.unwrap();
    }

    #[tokio::test]
    async fn a_right_password_forgives_the_earlier_failures() {
        let h = harness();
        h.register("ada@example.org", "ada").await;
        for _ in 0..2 {
            for _ in 1..h.config.per_account.max_failures {
                assert_err!(
                    h.login(by_name("ada", "guess-guess")).await,
                    AppError::InvalidCredentials
                );
            }
            h.login(by_name("ada", PASSWORD)).await.unwrap();
        }
    }

    #[tokio::test]
    async fn one_address_cannot_spray_guesses_over_many_accounts() {
        let h = harness();
        h.register("ada@example.org", "ada").await;
        for i in 0..h.config.per_address.max_failures {
            let form = by_name(&format!("victim{i}"), "guess-guess");
            assert_err!(h.login(form).await, AppError::InvalidCredentials);
        }
        assert_err!(
            h.login(by_name("ada", PASSWORD)).await,
            AppError::TooManyAttempts { .. }
        );
        let elsewhere = h
            .accounts
            .login(by_name("ada", PASSWORD), OTHER_CLIENT)
            .await;
        elsewhere.unwrap();
    }

    #[tokio::test]
    async fn concurrent_guesses_get_no_more_checks_than_the_account_limit() {
        let h = harness();
        h.register("ada@example.org", "ada").await;
        // 199 wrong passwords and the right one, all at once: the hasher gives
        // the runtime back, so every attempt has started before any is checked.
        let mut attempts = tokio::task::JoinSet::new();
        for i in 0..200 {
            let accounts = h.accounts.clone();
            let password = if i == 199 {
                PASSWORD.to_owned()
            } else {
                format!("guess-{i:04}")
            };
            attempts.spawn(async move { accounts.login(by_name("ada", &password), CLIENT).await });
        }
        let (mut checked, mut throttled) = (0, 0);
        while let Some(result) = attempts.join_next().await {
            match result.unwrap() {
                Ok(_) | Err(AppError::InvalidCredentials) => checked += 1,
                Err(AppError::TooManyAttempts { .. }) => throttled += 1,
                Err(other) => panic!("{other:?}"),
            }
        }
        let limit = h.config.per_account.max_failures;
        assert!(checked <= limit, "{checked} passwords checked");
        assert_eq!(throttled, 200 - checked);
        assert_eq!(h.hasher.verifies(), checked);
    }

    #[tokio::test]
    async fn a_busy_hasher_costs_no_attempt() {
        let h = harness();
        h.register("ada@example.org", "ada").await;
        h.hasher.set_busy(true);
        for _ in 0..h.config.per_account.max_failures + 1 {
            assert_err!(
                h.login(by_name("ada", PASSWORD)).await,
                AppError::Domain(DomainError::Overloaded { .. })
            );
        }
        let form = registration("grace@example.org", "grace", Some(SECRET));
        assert_err!(
            h.accounts.register(form, CLIENT).await,
            AppError::Domain(DomainError::Overloaded { .. })
        );
        assert_eq!(h.store.user_count(), 1);
        h.hasher.set_busy(false);
        h.login(by_name("ada", PASSWORD)).await.unwrap();
    }

    #[tokio::test]
    async fn a_refresh_rotates_the_token() {
        let h = harness();
        h.register("ada@example.org", "ada").await;
        let first = h.login(by_name("ada", PASSWORD)).await.unwrap();
        h.clock.advance(chrono::Duration::minutes(10));

        let second = h.accounts.refresh(&secret(&first)).await.unwrap();
        assert_eq!(second.claims.family, first.claims.family);
        assert_ne!(second.claims.jti, first.claims.jti);
        assert_eq!(
            second.claims.issued_at,
            h.clock.now(),
            "a full lifetime from now"
        );
        assert_eq!(second.expires_in_secs(), LIFETIME_MIN * 60);
        // The refreshed-away token is revoked; the fresh one works and refreshes.
        assert_err!(
            h.accounts.authenticate(&secret(&first)).await,
            AppError::TokenRevoked
        );
        let claims = h.accounts.authenticate(&secret(&second)).await.unwrap();
        assert_eq!(claims, second.claims);
        h.refresh(&secret(&second)).await.unwrap();
    }

    #[tokio::test]
    async fn a_login_in_the_second_of_a_password_reset_gives_a_token_that_works() {
        use webcall_domain::admin::{AdminRepository, NewAuditEntry};
        use webcall_domain::model::LoginIdentifier;
        let h = harness();
        let bob = h.register("bob@example.org", "bob").await;
        let before = h.token("bob").await;
        // The reset happens at .300 (the password stays the same here).
        h.clock.advance(chrono::Duration::milliseconds(300));
        let audit = NewAuditEntry {
            at: h.clock.now(),
            actor: bob.id,
            actor_name: "bob".into(),
            action: "user.reset_link",
            target: "bob".into(),
            detail: None,
        };
        let expires = h.clock.now() + chrono::Duration::hours(1);
        assert!(h
            .store
            .create_reset(bob.id, "h", expires, audit)
            .await
            .unwrap());
        let (_, hash) = h
            .store
            .find_for_login(&LoginIdentifier::Username(bob.username.clone()))
            .await
            .unwrap()
            .unwrap();
        let now = h.clock.now();
        assert_eq!(
            h.store.consume_reset("h", now, hash).await.unwrap(),
            Some(bob.id)
        );

        // Bob signs in at .700 of the same second: his new token works, and so
        // does the one a refresh gives; the one from before the reset does not.
        h.clock.advance(chrono::Duration::milliseconds(400));
        let after = h.token("bob").await;
        h.accounts.authenticate_user(&after).await.unwrap();
        let refreshed = h.refresh(&after).await.unwrap();
        h.accounts.authenticate_user(&refreshed).await.unwrap();
        assert!(matches!(
            h.accounts.authenticate_user(&before).await,
            Err(AppError::TokenRevoked)
        ));
    }

    #[tokio::test]
    async fn replaying_a_refreshed_away_token_revokes_its_whole_family() {
        let h = harness();
        h.register("ada@example.org", "ada").await;
        let first = h.token("ada").await;
        let login = h.accounts.authenticate(&first).await.unwrap().family;
        let other_login = h.token("ada").await;
        let second = h.refresh(&first).await.unwrap();
        let third = h.refresh(&second).await.unwrap();

        assert_err!(
            h.refresh(&first).await,
            AppError::TokenReplayed { login: replayed } if replayed == login
        );
        for token in [&first, &second, &third] {
            assert_err!(h.accounts.authenticate(token).await, AppError::TokenRevoked);
            // The family is revoked already: no second replay alarm.
            assert_err!(h.refresh(token).await, AppError::TokenRevoked);
        }
        // Another login of the same account is another family.
        h.accounts.authenticate(&other_login).await.unwrap();
        h.refresh(&other_login).await.unwrap();
    }

    /// Revocations that give the runtime back before each answer, so that two
    /// requests interleave between checking a token and revoking it.
    struct Interleaving(Arc<MemoryStore>);

    #[async_trait]
    impl TokenRevocations for Interleaving {
        async fn revoke(
            &self,
            jti: Uuid,
            user: UserId,
            expires_at: DateTime<Utc>,
        ) -> Result<bool, DomainError> {
            tokio::task::yield_now().await;
            self.0.revoke(jti, user, expires_at).await
        }

        async fn is_revoked(&self, jti: Uuid) -> Result<bool, DomainError> {
            self.0.is_revoked(jti).await
        }

        async fn holder(
            &self,
            jti: Uuid,
            family: Uuid,
            user: UserId,
        ) -> Result<TokenHolder, DomainError> {
            tokio::task::yield_now().await;
            self.0.holder(jti, family, user).await
        }

        async fn revoked_after(
            &self,
            after: DateTime<Utc>,
        ) -> Result<Vec<(Uuid, DateTime<Utc>)>, DomainError> {
            self.0.revoked_after(after).await
        }
    }

    #[tokio::test]
    async fn two_refreshes_racing_with_one_token_mint_one_successor() {
        let h = harness_with(|store| Arc::new(Interleaving(store)));
        h.register("ada@example.org", "ada").await;
        let token = h.token("ada").await;
        let (a, b) = tokio::join!(h.refresh(&token), h.refresh(&token));
        let minted = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(minted, 1, "{a:?} {b:?}");
        assert!(
            [&a, &b]
                .iter()
                .any(|r| matches!(r, Err(AppError::TokenReplayed { .. }))),
            "{a:?} {b:?}"
        );
    }

    #[tokio::test]
    async fn logout_ends_that_login_and_only_that_login() {
        let h = harness();
        h.register("ada@example.org", "ada").await;
        let token = h.token("ada").await;
        let other_session = h.token("ada").await;
        let refreshed = h.refresh(&token).await.unwrap();
        let claims = h.accounts.authenticate(&refreshed).await.unwrap();

        h.accounts.logout(&claims).await.unwrap();
        for token in [&token, &refreshed] {
            assert_err!(h.accounts.authenticate(token).await, AppError::TokenRevoked);
            // Refused as revoked, not taken for a replay (which would cut off
            // whoever else holds the family's token).
            assert_err!(h.refresh(token).await, AppError::TokenRevoked);
        }
        h.accounts.authenticate(&other_session).await.unwrap();
        h.refresh(&other_session).await.unwrap();
    }

    #[tokio::test]
    async fn expired_forged_and_orphaned_tokens_are_refused() {
        let h = harness();
        h.register("ada@example.org", "ada").await;
        let token = h.token("ada").await;
        let lifetime = chrono::Duration::minutes(LIFETIME_MIN);
        h.clock.advance(lifetime - chrono::Duration::seconds(1));
        h.accounts.authenticate(&token).await.unwrap();
        h.clock.advance(chrono::Duration::seconds(1));
        assert_err!(
            h.accounts.authenticate(&token).await,
            AppError::TokenExpired
        );
        assert_err!(h.refresh(&token).await, AppError::TokenExpired);

        let now = h.clock.now();
        let ada = h.store.add_user("ada2").id;
        let other_key = JwtCodec::new(
            &SecretString::from("another-key-another-key-another-key!"),
            lifetime,
        );
        let forged = secret(&other_key.issue(ada, now));
        let orphaned = secret(&h.codec.issue(UserId::new_random(), now));
        for token in ["garbage", forged.as_str(), orphaned.as_str()] {
            assert_err!(h.accounts.authenticate(token).await, AppError::TokenInvalid);
            assert_err!(h.refresh(token).await, AppError::TokenInvalid);
        }
    }

    #[tokio::test]
    async fn a_deleted_account_is_gone_with_its_rooms_and_its_tokens() {
        let h = harness();
        let ada = h.register("ada@example.org", "ada").await;
        h.register("grace@example.org", "grace").await;
        let token = h.token("ada").await;
        let grace = h.token("grace").await;
        let room = RoomName::parse("adas-room").unwrap();
        h.store
            .create_room(&room, ada.id, h.clock.now(), 3)
            .await
            .unwrap();
        let claims = h.accounts.authenticate(&token).await.unwrap();

        let confirm = |password: Option<&str>| {
            h.accounts
                .confirm_password(&claims, password.map(Into::into), CLIENT)
        };
        assert_err!(
            confirm(Some("not my password")).await,
            AppError::InvalidCredentials
        );
        assert_err!(
            confirm(None).await,
            AppError::Domain(DomainError::Invalid {
                field: "password",
                ..
            })
        );
        confirm(Some(PASSWORD)).await.unwrap();
        h.accounts.delete_account(&claims).await.unwrap();

        assert_err!(
            h.accounts.authenticate(&token).await,
            AppError::TokenInvalid
        );
        assert_err!(h.refresh(&token).await, AppError::TokenInvalid);
        assert_err!(h.accounts.me(&claims).await, AppError::TokenInvalid);
        assert_err!(
            h.login(by_name("ada", PASSWORD)).await,
            AppError::InvalidCredentials
        );
        assert_eq!(h.store.find_room(&room).await.unwrap(), None);
        h.accounts.authenticate(&grace).await.unwrap();
        // The name and the address are free again.
        assert_ne!(h.register("ada@example.org", "ada").await.id, ada.id);
    }

    #[tokio::test]
    async fn confirming_a_deletion_shares_the_login_budget() {
        let h = harness();
        h.register("ada@example.org", "ada").await;
        let claims = h
            .accounts
            .authenticate(&h.token("ada").await)
            .await
            .unwrap();
        let confirm = |password: &str| {
            h.accounts
                .confirm_password(&claims, Some(password.into()), CLIENT)
        };
        let limit = h.config.per_account.max_failures;
        for i in 0..limit {
            if i % 2 == 0 {
                assert_err!(confirm("guess-guess").await, AppError::InvalidCredentials);
            } else {
                assert_err!(
                    h.login(by_name("ada", "guess-guess")).await,
                    AppError::InvalidCredentials
                );
            }
        }
        assert_err!(confirm(PASSWORD).await, AppError::TooManyAttempts { .. });
        assert_err!(
            h.login(by_name("ada", PASSWORD)).await,
            AppError::TooManyAttempts { .. }
        );
    }
}
