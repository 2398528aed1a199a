//! One-time password-reset links: an admin makes one for an account, its
//! owner opens it and picks a new password. The token is 244 random bits,
//! only its SHA-256 is stored, it lasts [`RESET_LINK_LIFETIME`], works once,
//! and a newer link voids the older one. Using it ends every login of the
//! account (tokens and calls).

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use webcall_domain::model::{Password, UserId};

use super::{Actor, Admin};
use crate::AppError;

/// How long a reset link works.
pub const RESET_LINK_LIFETIME: Duration = Duration::hours(24);

/// A fresh link's token (shown once, to the admin) and when it stops working.
#[derive(Debug)]
pub struct ResetLink {
    pub token: SecretString,
    pub expires_at: DateTime<Utc>,
}

/// What is stored of a token.
fn token_hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

impl Admin {
    /// Makes the account's one-time reset link (voiding any older one).
    #[tracing::instrument(skip_all, fields(actor = %actor.id(), target = %target))]
    pub async fn reset_link(&self, actor: &Actor, target: UserId) -> Result<ResetLink, AppError> {
        let user = self.user(target).await?;
        // Two version-4 UUIDs from the OS's generator: 244 random bits.
        let token = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let expires_at = self.deps.clock.now() + RESET_LINK_LIFETIME;
        let entry = self.entry(actor, "user.password_reset", user.username.as_str(), None);
        if !self
            .deps
            .store
            .create_reset(target, &token_hash(&token), expires_at, entry)
            .await?
        {
            return Err(AppError::UserNotFound);
        }
        tracing::info!("password-reset link made");
        Ok(ResetLink {
            token: SecretString::from(token),
            expires_at,
        })
    }

    /// Sets a new password through a reset link: `ResetLinkInvalid` when it is
    /// unknown, used or expired. Every login of the account ends (its tokens
    /// are refused, its calls close with 4401). Attempts are limited per
    /// `client` address (`TooManyAttempts`).
    #[tracing::instrument(skip_all, fields(client = %client))]
    pub async fn reset_password(
        &self,
        token: Option<String>,
        password: Option<String>,
        client: IpAddr,
    ) -> Result<(), AppError> {
        let now = self.deps.clock.now();
        self.resets
            .admit(client, now)
            .map_err(|retry_after| AppError::TooManyAttempts { retry_after })?;
        let token = token.unwrap_or_default();
        let password = Password::parse(password.unwrap_or_default())?;
        if token.is_empty() || token.len() > 128 {
            return Err(AppError::ResetLinkInvalid);
        }
        let hash = self.deps.hasher.hash(&password).await?;
        let token = SecretString::from(token);
        let Some(user) = self
            .deps
            .store
            .consume_reset(&token_hash(token.expose_secret()), now, hash)
            .await?
        else {
            tracing::info!("password reset refused: link invalid");
            return Err(AppError::ResetLinkInvalid);
        };
        self.deps.hub.revoke_user(user).await;
        self.deps.hub.account_changed(user).await;
        tracing::info!(user_id = %user, "password reset");
        Ok(())
    }
}
