//! Where data lives: the database (`DATABASE_URL`) and, with several
//! instances, Redis (`REDIS_URL`, `REDIS_KEY_PREFIX`).

use secrecy::{ExposeSecret, SecretString};

use super::vars::{problem, ConfigError, Vars};

/// The database and Redis.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    /// `sqlite://…` or `postgres://…`; may hold a password, hence secret.
    pub database_url: SecretString,
    /// Used by signaling to share rooms between instances.
    pub redis_url: Option<SecretString>,
    /// `REDIS_KEY_PREFIX`: keys and channels under it (several deployments, or
    /// tests, can share one Redis).
    pub redis_prefix: String,
}

/// `DATABASE_URL` unset: `webcall.db` in the working directory.
const DEFAULT_DATABASE_URL: &str = "sqlite://webcall.db";

/// Default `REDIS_KEY_PREFIX`.
const DEFAULT_REDIS_PREFIX: &str = "webcall";

impl StorageSettings {
    pub(super) fn parse(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: SecretString::from(database_url(vars.get("DATABASE_URL"))?),
            redis_url: vars.get("REDIS_URL").map(SecretString::from),
            redis_prefix: vars
                .get("REDIS_KEY_PREFIX")
                .unwrap_or_else(|| DEFAULT_REDIS_PREFIX.to_owned()),
        })
    }

    /// Where the database lives, without any password, for a log line.
    pub fn database_display(&self) -> String {
        let url = self.database_url.expose_secret();
        match url.split_once("://") {
            Some((scheme, rest)) if !scheme.starts_with("sqlite") => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                format!("{scheme}://{}", host.split('?').next().unwrap_or(host))
            }
            _ => url.to_owned(),
        }
    }
}

/// `DATABASE_URL`: unset means `webcall.db` in the working directory; the seed's
/// `postgresql+asyncpg://` form means PostgreSQL.
fn database_url(value: Option<String>) -> Result<String, ConfigError> {
    let Some(url) = value else {
        return Ok(DEFAULT_DATABASE_URL.to_owned());
    };
    let url = match url.split_once("://") {
        Some((scheme, rest))
            if scheme.starts_with("postgresql+") || scheme.starts_with("postgres+") =>
        {
            format!("postgres://{rest}")
        }
        _ => url,
    };
    if url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://")
    {
        Ok(url)
    } else {
        Err(problem(
            "DATABASE_URL",
            "must start with sqlite://, postgres:// or postgresql://",
        ))
    }
}
