//! Accounts: register, log in, refresh, log out, and authenticate a bearer token.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use webcall_domain::model::{
    Email, IssuedToken, LoginIdentifier, NewUser, Password, TokenClaims, TokenError, TokenHolder,
    User, UserId, Username,
};
use webcall_domain::ports::{Clock, PasswordHasher, TokenCodec, TokenRevocations, UserRepository};

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
        }
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
        let user = User {
            id: UserId::new_random(),
            email,
            username,
            created_at: self.deps.clock.now(),
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
                tracing::info!(user_id = %user.id, "login succeeded");
                Ok(self.deps.tokens.issue(user.id, self.deps.clock.now()))
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
            TokenHolder::Active(user) => Ok((claims, user)),
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
            TokenHolder::Active(user) => user,
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
        Ok(self
            .deps
            .tokens
            .issue_in_family(user.id, claims.family, now))
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
                    user: claims.user_id,
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

    /// Revokes the token until it expires.
    #[tracing::instrument(skip_all, fields(user_id = %claims.user_id))]
    pub async fn logout(&self, claims: &TokenClaims) -> Result<(), AppError> {
        self.deps
            .revocations
            .revoke(claims.jti, claims.user_id, claims.expires_at)
            .await?;
        tracing::info!("logged out");
        Ok(())
    }
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
