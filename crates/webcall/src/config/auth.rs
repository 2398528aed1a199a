//! `APP_ENV`, the secrets (generated in dev when missing, required in prod) and
//! the account tokens' settings (`JWT_*`, `REGISTRATION_SECRET`) and who is an
//! admin from the start (`ADMIN_EMAILS`).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use webcall_domain::model::Email;

use super::vars::{problem, ConfigError, Vars};

/// `APP_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Missing secrets are generated, logs are human-readable.
    Dev,
    /// Missing or weak secrets stop the start, logs are JSON.
    Prod,
}

impl AppEnv {
    pub(super) fn parse(vars: &Vars) -> Result<Self, ConfigError> {
        match vars
            .get("APP_ENV")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("dev" | "development") => Ok(Self::Dev),
            Some("prod" | "production") => Ok(Self::Prod),
            Some(other) => Err(problem(
                "APP_ENV",
                format!("must be dev or prod, not {other:?}"),
            )),
        }
    }
}

/// Reads secrets: a missing one stops a prod start, and is generated (and
/// remembered in `generated`) in dev. A prod start names every missing or weak
/// secret at once: they are gathered in `problems`, and [`Secrets::check`]
/// reports them together.
pub(super) struct Secrets {
    pub(super) env: AppEnv,
    pub(super) generated: Vec<&'static str>,
    pub(super) problems: Vec<ConfigError>,
}

impl Secrets {
    pub(super) fn new(env: AppEnv) -> Self {
        Self {
            env,
            generated: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// The secret; when it is missing in prod, an empty one and a problem noted
    /// (the start stops at [`Secrets::check`]).
    pub(super) fn require(&mut self, vars: &Vars, var: &'static str) -> SecretString {
        match (vars.get(var), self.env) {
            (Some(value), _) => SecretString::from(value),
            (None, AppEnv::Prod) => {
                self.problems
                    .push(problem(var, "must be set when APP_ENV=prod"));
                SecretString::from(String::new())
            }
            (None, AppEnv::Dev) => {
                self.generated.push(var);
                random_secret()
            }
        }
    }

    /// Every missing or weak secret noted, as one error.
    pub(super) fn check(&mut self) -> Result<(), ConfigError> {
        ConfigError::all(std::mem::take(&mut self.problems)).map_or(Ok(()), Err)
    }
}

/// Accounts: how tokens are signed and how long they last, and who may register.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `JWT_SECRET`.
    pub jwt_secret: SecretString,
    /// `JWT_EXPIRES_MIN`.
    pub jwt_expires: Duration,
    /// `REGISTRATION_SECRET`.
    pub registration_secret: SecretString,
    /// `ADMIN_EMAILS`: accounts with these addresses are admins (at
    /// registration and at every start).
    pub admin_emails: Vec<Email>,
}

/// Minimum length of `JWT_SECRET` in prod (HS256 wants at least 256 bits).
const MIN_JWT_SECRET_BYTES: usize = 32;

/// Default `JWT_EXPIRES_MIN`: an hour.
const DEFAULT_JWT_EXPIRES_MIN: u64 = 60;

impl AuthSettings {
    pub(super) fn parse(vars: &Vars, secrets: &mut Secrets) -> Result<Self, ConfigError> {
        let jwt_secret = secrets.require(vars, "JWT_SECRET");
        let registration_secret = secrets.require(vars, "REGISTRATION_SECRET");
        let jwt_len = jwt_secret.expose_secret().len();
        if secrets.env == AppEnv::Prod && jwt_len > 0 && jwt_len < MIN_JWT_SECRET_BYTES {
            secrets.problems.insert(
                0,
                problem(
                    "JWT_SECRET",
                    format!("must be at least {MIN_JWT_SECRET_BYTES} bytes when APP_ENV=prod (try: openssl rand -base64 48)"),
                ),
            );
        }
        let jwt_expires_min: u64 = vars.parse_or("JWT_EXPIRES_MIN", DEFAULT_JWT_EXPIRES_MIN)?;
        if !(1..=60 * 24 * 30).contains(&jwt_expires_min) {
            return Err(problem(
                "JWT_EXPIRES_MIN",
                "must be between 1 and 43200 minutes",
            ));
        }
        let admin_emails = vars
            .list("ADMIN_EMAILS")
            .iter()
            .map(|raw| {
                Email::parse(raw).map_err(|_| {
                    problem(
                        "ADMIN_EMAILS",
                        format!("{raw:?} is not an e-mail address (comma-separated addresses)"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            jwt_secret,
            jwt_expires: Duration::from_secs(jwt_expires_min * 60),
            registration_secret,
            admin_emails,
        })
    }
}

/// 32 random bytes, URL-safe base64 (43 characters).
pub fn random_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}
