//! Configuration: read once at start-up from the environment (and an optional
//! `.env` file) into [`Config`]. This is the only module that reads environment
//! variables. Secrets are `SecretString`s: they never reach a log or `Debug` output.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ipnet::IpNet;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

/// `APP_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Missing secrets are generated, logs are human-readable.
    Dev,
    /// Missing or weak secrets stop the start, logs are JSON.
    Prod,
}

/// A start-up configuration problem, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

fn problem(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

/// Everything WebCall reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub env: AppEnv,
    pub host: IpAddr,
    pub port: u16,
    pub jwt_secret: SecretString,
    pub jwt_expires: Duration,
    pub registration_secret: SecretString,
    /// `sqlite://…` or `postgres://…`; may hold a password, hence secret.
    pub database_url: SecretString,
    pub trusted_proxies: Vec<IpNet>,
    /// Used by signaling to share rooms between instances.
    pub redis_url: Option<SecretString>,
    pub cors_origins: Vec<String>,
    pub stun_servers: Vec<String>,
    pub turn_urls: Vec<String>,
    pub turn_username: Option<String>,
    pub turn_password: Option<SecretString>,
    /// `RUST_LOG`, when set.
    pub log_filter: Option<String>,
    /// Secrets that were missing and generated for this run (dev only).
    pub generated: Vec<&'static str>,
}

/// Minimum length of `JWT_SECRET` in prod (HS256 wants at least 256 bits).
const MIN_JWT_SECRET_BYTES: usize = 32;

impl Config {
    /// Reads `.env` (if present; real environment variables win) and the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        if let Err(err) = dotenvy::dotenv() {
            if !err.not_found() {
                return Err(problem(".env", err.to_string()));
            }
        }
        Self::from_vars(&std::env::vars().collect())
    }

    /// Builds a configuration from a map of variables (tests use this directly).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            vars.get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let env = match get("APP_ENV")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("dev" | "development") => AppEnv::Dev,
            Some("prod" | "production") => AppEnv::Prod,
            Some(other) => {
                return Err(problem(
                    "APP_ENV",
                    format!("must be dev or prod, not {other:?}"),
                ))
            }
        };
        let mut generated = Vec::new();
        let mut secret = |var: &'static str| -> Result<SecretString, ConfigError> {
            match (get(var), env) {
                (Some(value), _) => Ok(SecretString::from(value)),
                (None, AppEnv::Prod) => Err(problem(var, "must be set when APP_ENV=prod")),
                (None, AppEnv::Dev) => {
                    generated.push(var);
                    Ok(random_secret())
                }
            }
        };
        let jwt_secret = secret("JWT_SECRET")?;
        let registration_secret = secret("REGISTRATION_SECRET")?;
        if env == AppEnv::Prod && jwt_secret.expose_secret().len() < MIN_JWT_SECRET_BYTES {
            return Err(problem(
                "JWT_SECRET",
                format!("must be at least {MIN_JWT_SECRET_BYTES} bytes when APP_ENV=prod (try: openssl rand -base64 48)"),
            ));
        }

        let jwt_expires_min: u64 = parse_or(&get("JWT_EXPIRES_MIN"), "JWT_EXPIRES_MIN", 60)?;
        if !(1..=60 * 24 * 30).contains(&jwt_expires_min) {
            return Err(problem(
                "JWT_EXPIRES_MIN",
                "must be between 1 and 43200 minutes",
            ));
        }

        Ok(Self {
            env,
            host: parse_or(&get("HOST"), "HOST", IpAddr::from([0, 0, 0, 0]))?,
            port: parse_or(&get("PORT"), "PORT", 8000)?,
            jwt_secret,
            jwt_expires: Duration::from_secs(jwt_expires_min * 60),
            registration_secret,
            database_url: SecretString::from(database_url(get("DATABASE_URL"))?),
            trusted_proxies: list(&get("TRUSTED_PROXIES"))
                .iter()
                .map(|s| parse_net(s))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    problem(
                        "TRUSTED_PROXIES",
                        "must be a comma list of IPs or CIDRs, e.g. 127.0.0.1,10.0.0.0/8",
                    )
                })?,
            redis_url: get("REDIS_URL").map(SecretString::from),
            cors_origins: list(&get("CORS_ORIGINS")),
            stun_servers: list(&get("STUN_SERVERS")),
            turn_urls: match list(&get("TURN_URLS")) {
                urls if urls.is_empty() => list(&get("TURN_URL")),
                urls => urls,
            },
            turn_username: get("TURN_USERNAME"),
            turn_password: get("TURN_PASSWORD").map(SecretString::from),
            log_filter: get("RUST_LOG"),
            generated,
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

fn parse_or<T: std::str::FromStr>(
    value: &Option<String>,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|_| problem(var, format!("cannot parse {raw:?}"))),
    }
}

fn list(value: &Option<String>) -> Vec<String> {
    value
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A bare address is a one-address network.
fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// `DATABASE_URL`: unset means `webcall.db` in the working directory; the seed's
/// `postgresql+asyncpg://` form means PostgreSQL.
fn database_url(value: Option<String>) -> Result<String, ConfigError> {
    let Some(url) = value else {
        return Ok("sqlite://webcall.db".to_owned());
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

/// 32 random bytes, URL-safe base64 (43 characters).
pub fn random_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dev_defaults_generate_missing_secrets() {
        let config = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(config.env, AppEnv::Dev);
        assert_eq!(config.port, 8000);
        assert_eq!(config.host.to_string(), "0.0.0.0");
        assert_eq!(config.jwt_expires, Duration::from_secs(3600));
        assert_eq!(config.database_url.expose_secret(), "sqlite://webcall.db");
        assert_eq!(config.generated, ["JWT_SECRET", "REGISTRATION_SECRET"]);
        assert!(config.jwt_secret.expose_secret().len() >= 32);
        let again = Config::from_vars(&vars(&[])).unwrap();
        assert_ne!(
            again.jwt_secret.expose_secret(),
            config.jwt_secret.expose_secret()
        );
    }

    #[test]
    fn prod_refuses_missing_or_short_secrets_naming_the_variable() {
        let long = "x".repeat(32);
        let err = Config::from_vars(&vars(&[("APP_ENV", "prod"), ("REGISTRATION_SECRET", "s")]))
            .unwrap_err();
        assert_eq!(err.var, "JWT_SECRET");
        let err =
            Config::from_vars(&vars(&[("APP_ENV", "prod"), ("JWT_SECRET", &long)])).unwrap_err();
        assert_eq!(err.var, "REGISTRATION_SECRET");
        let short = "x".repeat(31);
        let err = Config::from_vars(&vars(&[
            ("APP_ENV", "prod"),
            ("JWT_SECRET", &short),
            ("REGISTRATION_SECRET", "s"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "JWT_SECRET");
        assert!(err
            .to_string()
            .starts_with("JWT_SECRET: must be at least 32 bytes"));
        let ok = Config::from_vars(&vars(&[
            ("APP_ENV", "prod"),
            ("JWT_SECRET", &long),
            ("REGISTRATION_SECRET", "s"),
        ]))
        .unwrap();
        assert!(ok.generated.is_empty());
    }

    #[test]
    fn empty_values_count_as_unset() {
        let config = Config::from_vars(&vars(&[("PORT", ""), ("JWT_SECRET", "  ")])).unwrap();
        assert_eq!(config.port, 8000);
        assert!(config.generated.contains(&"JWT_SECRET"));
    }

    #[test]
    fn database_urls() {
        let url = |v: &str| {
            Config::from_vars(&vars(&[("DATABASE_URL", v)]))
                .map(|c| c.database_url.expose_secret().to_owned())
        };
        assert_eq!(
            url("sqlite:///var/lib/webcall/webcall.db").unwrap(),
            "sqlite:///var/lib/webcall/webcall.db"
        );
        assert_eq!(
            url("postgres://u:p@db/webcall").unwrap(),
            "postgres://u:p@db/webcall"
        );
        assert_eq!(
            url("postgresql://u:p@db/webcall").unwrap(),
            "postgresql://u:p@db/webcall"
        );
        assert_eq!(
            url("postgresql+asyncpg://u:p@db:5432/webcall").unwrap(),
            "postgres://u:p@db:5432/webcall"
        );
        assert_eq!(url("mysql://db").unwrap_err().var, "DATABASE_URL");
    }

    #[test]
    fn database_display_hides_the_password() {
        let config = Config::from_vars(&vars(&[(
            "DATABASE_URL",
            "postgres://user:hunter2@db:5432/webcall?sslmode=require",
        )]))
        .unwrap();
        assert_eq!(config.database_display(), "postgres://db:5432/webcall");
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn lists_and_networks() {
        let config = Config::from_vars(&vars(&[
            ("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,::1"),
            ("CORS_ORIGINS", "https://a.example, https://b.example"),
            ("TURN_URL", "turn:old.example:3478"),
            ("STUN_SERVERS", "stun:stun.example:3478"),
        ]))
        .unwrap();
        assert_eq!(config.trusted_proxies.len(), 3);
        assert_eq!(
            config.cors_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(config.turn_urls, ["turn:old.example:3478"]);
        assert_eq!(config.stun_servers, ["stun:stun.example:3478"]);
        let both = Config::from_vars(&vars(&[
            ("TURN_URLS", "turn:a:1,turn:b:2"),
            ("TURN_URL", "turn:old:3"),
        ]))
        .unwrap();
        assert_eq!(both.turn_urls, ["turn:a:1", "turn:b:2"]);
        assert_eq!(
            Config::from_vars(&vars(&[("TRUSTED_PROXIES", "nginx")]))
                .unwrap_err()
                .var,
            "TRUSTED_PROXIES"
        );
    }

    #[test]
    fn bad_numbers_and_env_name_the_variable() {
        for (var, value) in [
            ("PORT", "http"),
            ("JWT_EXPIRES_MIN", "0"),
            ("APP_ENV", "staging"),
            ("HOST", "localhost"),
        ] {
            let err = Config::from_vars(&vars(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var);
        }
    }
}
