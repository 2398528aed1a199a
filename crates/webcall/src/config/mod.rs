//! Configuration: read once at start-up from the environment (and an optional
//! `.env` file) into [`Config`]. This is the only module that reads environment
//! variables. Secrets are `SecretString`s: they never reach a log or `Debug` output.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
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
    /// `REDIS_KEY_PREFIX`: keys and channels under it (several deployments, or
    /// tests, can share one Redis).
    pub redis_prefix: String,
    pub cors_origins: Vec<String>,
    /// `METRICS_LISTEN` (default `127.0.0.1:9090`, `off`: none): the only
    /// listener that serves `/metrics`; never the public port.
    pub metrics_listen: Option<SocketAddr>,
    /// `METRICS_TOKEN`: when set, a scrape must send `Authorization: Bearer` with it.
    pub metrics_token: Option<SecretString>,
    pub stun_servers: Vec<String>,
    pub turn_urls: Vec<String>,
    pub turn_username: Option<String>,
    pub turn_password: Option<SecretString>,
    /// The embedded TURN/STUN relay, when it runs.
    pub turn: Option<TurnSettings>,
    /// `TURN_SECRET`: signs REST credentials for the embedded relay, or for an
    /// external coturn (`use-auth-secret`) when no static `TURN_PASSWORD` is set.
    pub turn_secret: Option<SecretString>,
    /// `TURN_CREDENTIAL_TTL_SECS`.
    pub turn_credential_ttl: Duration,
    /// `ROOM_MAX_PEERS`.
    pub room_max_peers: usize,
    /// `ROOMS_PER_USER`.
    pub rooms_per_user: usize,
    /// `ROOM_CREATIONS_PER_HOUR`.
    pub room_creations_per_hour: usize,
    /// `WS_PING_SECS`.
    pub ws_ping: Duration,
    /// `WS_IDLE_TIMEOUT_SECS`.
    pub ws_idle_timeout: Duration,
    /// `WS_RESUME_GRACE_SECS`.
    pub ws_resume_grace: Duration,
    /// `WS_MAX_PER_USER`: signaling sockets one account may hold on this instance.
    pub ws_max_per_user: usize,
    /// `HTTP_HEADER_TIMEOUT_SECS`: time a client has to send a request's headers.
    pub http_header_timeout: Duration,
    /// `HTTP_IDLE_TIMEOUT_SECS`: an HTTP connection (not a WebSocket) that moves
    /// no byte for this long is closed.
    pub http_idle_timeout: Duration,
    /// `HTTP_MAX_CONNECTIONS_PER_IP`: open connections from one address
    /// (`TRUSTED_PROXIES` exempt); 0 is no cap.
    pub http_max_connections_per_ip: usize,
    /// A certificate (`TLS_CERT_FILE` / `TLS_KEY_FILE`, or ACME): HTTPS straight
    /// from the binary (unless `HTTPS=false`) and TURN over TLS.
    pub tls: Option<TlsSettings>,
    /// `PUBLIC_HOST`: the DNS name clients reach this server by, the name its
    /// certificate is for (browsers check it on `turns:`). Default: the first
    /// ACME domain or the certificate's first DNS name.
    pub public_host: Option<String>,
    /// `RUST_LOG`, when set.
    pub log_filter: Option<String>,
    /// Secrets that were missing and generated for this run (dev only).
    pub generated: Vec<&'static str>,
}

/// HTTPS settings: where certificates come from, and the plain-HTTP port that
/// only redirects to HTTPS.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub source: TlsSource,
    /// `HTTPS` (default true): the HTTP port speaks TLS (and TURN over TLS on the
    /// same port). False when a reverse proxy in front terminates HTTPS; the
    /// certificate then serves only `TURN_TLS_LISTEN`.
    pub https: bool,
    /// `HTTP_REDIRECT_PORT` (default 80; `off` disables it). Only with `https`.
    pub redirect_port: Option<u16>,
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// `TLS_CERT_FILE` / `TLS_KEY_FILE`, re-read on SIGHUP.
    Files {
        cert_file: std::path::PathBuf,
        key_file: std::path::PathBuf,
    },
    /// `ACME_DOMAIN`: obtained and renewed automatically (TLS-ALPN-01 on this port).
    Acme {
        domains: Vec<String>,
        /// `ACME_EMAIL`.
        email: Option<String>,
        /// `ACME_CACHE_DIR` (default `acme-cache`): account key and certificates.
        cache_dir: std::path::PathBuf,
        /// `ACME_DIRECTORY`, else Let's Encrypt (its staging with `ACME_STAGING=true`).
        directory: String,
    },
}

/// Let's Encrypt's ACME directories.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// Settings of the embedded relay (`TURN_*`).
#[derive(Debug, Clone)]
pub struct TurnSettings {
    /// `TURN_LISTEN`: a comma list (default `0.0.0.0:3478,[::]:3478`).
    pub listen: Vec<SocketAddr>,
    /// Addresses of `listen` that are dropped (with a warning) when the host
    /// cannot bind them: the default IPv6 one on a host without IPv6.
    pub listen_optional: Vec<SocketAddr>,
    /// `None`: detect the host's primary address at start-up.
    pub public_ip: Option<IpAddr>,
    /// `TURN_PUBLIC_IP6`; `None`: detect a global IPv6 address at start-up.
    pub public_ip6: Option<std::net::Ipv6Addr>,
    pub relay_port_min: u16,
    pub relay_port_max: u16,
    pub realm: String,
    pub allow_loopback_peers: bool,
    pub allowed_peer_cidrs: Vec<IpNet>,
    pub denied_peer_cidrs: Vec<IpNet>,
    pub user_quota: usize,
    pub total_quota: usize,
    pub max_tcp_connections: usize,
    /// `TURN_UDP_LISTENERS` (default: one per core).
    pub udp_listeners: usize,
    /// `TURN_UDP_COALESCE_US` (default 500; 0: off): how long a busy UDP relay
    /// thread sleeps before parking, so that one wake-up relays a batch.
    pub udp_coalesce: Duration,
    /// `TURN_TLS_LISTEN`: a listener of its own for TURN over TLS (e.g.
    /// `0.0.0.0:5349`), for hosts where a reverse proxy owns 443.
    pub tls_listen: Option<SocketAddr>,
    /// `TURN_TLS_PUBLIC_PORT`: the port `turns:` URLs name (default: the HTTPS
    /// port, else the `TURN_TLS_LISTEN` port).
    pub tls_public_port: Option<u16>,
}

/// Default `TURN_CREDENTIAL_TTL_SECS`: a day. Expiry is checked when a relay
/// allocation is made, not while it lives, so this only has to cover the time from
/// fetching `/api/v1/webrtc/ice-servers` to the last allocation a call makes (ICE
/// restarts included; the web client re-fetches before it runs out). A day covers
/// an all-day workshop and still bounds how long a leaked credential is useful.
pub const DEFAULT_TURN_CREDENTIAL_TTL_SECS: u64 = 24 * 3600;

/// Minimum length of `JWT_SECRET` in prod (HS256 wants at least 256 bits).
const MIN_JWT_SECRET_BYTES: usize = 32;

/// `METRICS_LISTEN`'s port by default (on loopback: Prometheus on the same host).
const DEFAULT_METRICS_PORT: u16 = 9090;

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

        let turn_urls = match list(&get("TURN_URLS")) {
            urls if urls.is_empty() => list(&get("TURN_URL")),
            urls => urls,
        };
        let turn_password = get("TURN_PASSWORD").map(SecretString::from);
        let embedded = match get("TURN_EMBEDDED").as_deref() {
            None => turn_urls.is_empty(),
            Some(value) => parse_bool(value)
                .ok_or_else(|| problem("TURN_EMBEDDED", "must be true or false"))?,
        };
        // The secret is needed by the embedded relay, and by an external TURN
        // server that has no static password (REST credentials).
        let needs_turn_secret = embedded || (!turn_urls.is_empty() && turn_password.is_none());
        let turn_secret = match get("TURN_SECRET") {
            Some(value) => Some(SecretString::from(value)),
            None if !needs_turn_secret => None,
            None => Some(secret("TURN_SECRET")?),
        };
        let turn = embedded.then(|| turn_settings(&get)).transpose()?;
        let ttl_secs: u64 = parse_or(
            &get("TURN_CREDENTIAL_TTL_SECS"),
            "TURN_CREDENTIAL_TTL_SECS",
            DEFAULT_TURN_CREDENTIAL_TTL_SECS,
        )?;
        if ttl_secs < 60 {
            return Err(problem(
                "TURN_CREDENTIAL_TTL_SECS",
                "must be at least 60 seconds",
            ));
        }

        let secs = |var: &'static str, default: u64| -> Result<Duration, ConfigError> {
            let value: u64 = parse_or(&get(var), var, default)?;
            if value == 0 {
                return Err(problem(var, "must be at least 1 second"));
            }
            Ok(Duration::from_secs(value))
        };
        let ws_ping = secs("WS_PING_SECS", 15)?;
        let ws_idle_timeout = secs("WS_IDLE_TIMEOUT_SECS", 45)?;
        if ws_idle_timeout <= ws_ping {
            return Err(problem(
                "WS_IDLE_TIMEOUT_SECS",
                "must be longer than WS_PING_SECS",
            ));
        }
        // A signaling socket is kept from the HTTP idle timeout by the pings.
        let http_idle_timeout = secs("HTTP_IDLE_TIMEOUT_SECS", 60)?;
        if http_idle_timeout <= ws_ping {
            return Err(problem(
                "HTTP_IDLE_TIMEOUT_SECS",
                "must be longer than WS_PING_SECS",
            ));
        }
        let room_max_peers: usize = parse_or(&get("ROOM_MAX_PEERS"), "ROOM_MAX_PEERS", 16)?;
        let rooms_per_user: usize = parse_or(&get("ROOMS_PER_USER"), "ROOMS_PER_USER", 50)?;
        if rooms_per_user < 1 {
            return Err(problem("ROOMS_PER_USER", "must be at least 1"));
        }
        let room_creations_per_hour: usize = parse_or(
            &get("ROOM_CREATIONS_PER_HOUR"),
            "ROOM_CREATIONS_PER_HOUR",
            60,
        )?;
        if room_creations_per_hour < 1 {
            return Err(problem("ROOM_CREATIONS_PER_HOUR", "must be at least 1"));
        }
        if room_max_peers < 2 {
            return Err(problem("ROOM_MAX_PEERS", "must be at least 2"));
        }

        let metrics_listen = match get("METRICS_LISTEN") {
            None => Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_METRICS_PORT))),
            Some(off) if off.eq_ignore_ascii_case("off") => None,
            Some(addr) => Some(addr.parse().map_err(|_| {
                problem(
                    "METRICS_LISTEN",
                    format!("must be address:port (e.g. 127.0.0.1:9090) or off, not {addr:?}"),
                )
            })?),
        };

        let tls = tls_settings(&get)?;
        if let Some(settings) = &turn {
            if settings.tls_listen.is_some() && tls.is_none() {
                return Err(problem(
                    "TURN_TLS_LISTEN",
                    "needs a certificate: set TLS_CERT_FILE/TLS_KEY_FILE or ACME_DOMAIN",
                ));
            }
        }
        let public_host = match get("PUBLIC_HOST") {
            Some(host) if !is_dns_name(&host) => {
                return Err(problem(
                    "PUBLIC_HOST",
                    format!("must be a DNS name, e.g. call.example.org, not {host:?}"),
                ))
            }
            Some(host) => Some(host.to_ascii_lowercase()),
            None => match tls.as_ref().map(|t| &t.source) {
                Some(TlsSource::Acme { domains, .. }) => domains.first().cloned(),
                _ => None,
            },
        };

        Ok(Self {
            env,
            host: parse_or(
                &get("HOST"),
                "HOST",
                IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
            )?,
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
            redis_prefix: get("REDIS_KEY_PREFIX").unwrap_or_else(|| "webcall".to_owned()),
            cors_origins: list(&get("CORS_ORIGINS")),
            metrics_listen,
            metrics_token: get("METRICS_TOKEN").map(SecretString::from),
            stun_servers: list(&get("STUN_SERVERS")),
            turn_urls,
            turn_username: get("TURN_USERNAME"),
            turn_password,
            turn,
            turn_secret,
            turn_credential_ttl: Duration::from_secs(ttl_secs),
            room_max_peers,
            rooms_per_user,
            room_creations_per_hour,
            tls,
            public_host,
            ws_ping,
            ws_idle_timeout,
            ws_resume_grace: secs("WS_RESUME_GRACE_SECS", 20)?,
            ws_max_per_user: match parse_or(&get("WS_MAX_PER_USER"), "WS_MAX_PER_USER", 10)? {
                0 => return Err(problem("WS_MAX_PER_USER", "must be at least 1")),
                max => max,
            },
            http_header_timeout: secs("HTTP_HEADER_TIMEOUT_SECS", 10)?,
            http_idle_timeout,
            http_max_connections_per_ip: parse_or(
                &get("HTTP_MAX_CONNECTIONS_PER_IP"),
                "HTTP_MAX_CONNECTIONS_PER_IP",
                256,
            )?,
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

fn turn_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<TurnSettings, ConfigError> {
    let min: u16 = parse_or(&get("TURN_RELAY_PORT_MIN"), "TURN_RELAY_PORT_MIN", 49152)?;
    let max: u16 = parse_or(&get("TURN_RELAY_PORT_MAX"), "TURN_RELAY_PORT_MAX", 65535)?;
    if min == 0 || min > max {
        return Err(problem(
            "TURN_RELAY_PORT_MIN",
            "must be between 1 and TURN_RELAY_PORT_MAX",
        ));
    }
    let cidrs = |var: &'static str| -> Result<Vec<IpNet>, ConfigError> {
        list(&get(var))
            .iter()
            .map(|s| parse_net(s))
            .collect::<Option<_>>()
            .ok_or_else(|| problem(var, "must be a comma list of IPs or CIDRs"))
    };
    let flag = |var: &'static str| -> Result<bool, ConfigError> {
        get(var).map_or(Ok(false), |v| {
            parse_bool(&v).ok_or_else(|| problem(var, "must be true or false"))
        })
    };
    let realm = get("TURN_REALM").unwrap_or_else(|| "webcall".to_owned());
    let (listen, listen_optional) = match get("TURN_LISTEN") {
        Some(value) => {
            let listen = list(&Some(value.clone()))
                .iter()
                .map(|a| a.parse::<SocketAddr>())
                .collect::<Result<Vec<_>, _>>()
                .ok()
                .filter(|l| !l.is_empty())
                .ok_or_else(|| {
                    problem(
                        "TURN_LISTEN",
                        format!("must be a comma list of address:port, e.g. 0.0.0.0:3478,[::]:3478, not {value:?}"),
                    )
                })?;
            (listen, Vec::new())
        }
        None => {
            let v6 = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 3478));
            (vec![SocketAddr::from(([0, 0, 0, 0], 3478)), v6], vec![v6])
        }
    };
    Ok(TurnSettings {
        listen,
        listen_optional,
        public_ip: get("TURN_PUBLIC_IP")
            .map(|v| {
                v.parse()
                    .map_err(|_| problem("TURN_PUBLIC_IP", format!("not an IP address: {v:?}")))
            })
            .transpose()?,
        public_ip6: get("TURN_PUBLIC_IP6")
            .map(|v| {
                v.parse()
                    .map_err(|_| problem("TURN_PUBLIC_IP6", format!("not an IPv6 address: {v:?}")))
            })
            .transpose()?,
        relay_port_min: min,
        relay_port_max: max,
        realm,
        allow_loopback_peers: flag("TURN_ALLOW_LOOPBACK_PEERS")?,
        allowed_peer_cidrs: cidrs("TURN_ALLOWED_PEER_CIDRS")?,
        denied_peer_cidrs: cidrs("TURN_DENIED_PEER_CIDRS")?,
        user_quota: parse_or(&get("TURN_USER_QUOTA"), "TURN_USER_QUOTA", 10)?,
        total_quota: parse_or(&get("TURN_TOTAL_QUOTA"), "TURN_TOTAL_QUOTA", 1000)?,
        max_tcp_connections: parse_or(
            &get("TURN_MAX_TCP_CONNECTIONS"),
            "TURN_MAX_TCP_CONNECTIONS",
            1024,
        )?,
        udp_listeners: match parse_or(&get("TURN_UDP_LISTENERS"), "TURN_UDP_LISTENERS", 0usize)? {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(16),
            n => n.min(64),
        },
        udp_coalesce: Duration::from_micros(
            parse_or(&get("TURN_UDP_COALESCE_US"), "TURN_UDP_COALESCE_US", 500u64)?.min(10_000),
        ),
        tls_listen: get("TURN_TLS_LISTEN")
            .map(|v| {
                v.parse()
                    .map_err(|_| problem("TURN_TLS_LISTEN", format!("not an address:port: {v:?}")))
            })
            .transpose()?,
        tls_public_port: get("TURN_TLS_PUBLIC_PORT")
            .map(|v| match v.parse::<u16>() {
                Ok(port) if port > 0 => Ok(port),
                _ => Err(problem("TURN_TLS_PUBLIC_PORT", "must be a port number")),
            })
            .transpose()?,
    })
}

fn tls_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<TlsSettings>, ConfigError> {
    let https = get("HTTPS").map_or(Ok(true), |v| {
        parse_bool(&v).ok_or_else(|| problem("HTTPS", "must be true or false"))
    })?;
    let files = match (get("TLS_CERT_FILE"), get("TLS_KEY_FILE")) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(TlsSource::Files {
            cert_file: cert.into(),
            key_file: key.into(),
        }),
        (Some(_), None) => {
            return Err(problem(
                "TLS_KEY_FILE",
                "must be set together with TLS_CERT_FILE",
            ))
        }
        (None, Some(_)) => {
            return Err(problem(
                "TLS_CERT_FILE",
                "must be set together with TLS_KEY_FILE",
            ))
        }
    };
    let acme = match get("ACME_DOMAIN") {
        None => None,
        Some(domains) => {
            let domains = list(&Some(domains));
            if domains.is_empty()
                || domains
                    .iter()
                    .any(|d| d.contains('/') || d.contains(':') || !d.contains('.'))
            {
                return Err(problem(
                    "ACME_DOMAIN",
                    "must be a comma list of domain names, e.g. call.example.org",
                ));
            }
            let staging = get("ACME_STAGING").map_or(Ok(false), |v| {
                parse_bool(&v).ok_or_else(|| problem("ACME_STAGING", "must be true or false"))
            })?;
            let directory = get("ACME_DIRECTORY").unwrap_or_else(|| {
                if staging {
                    LETS_ENCRYPT_STAGING
                } else {
                    LETS_ENCRYPT
                }
                .to_owned()
            });
            if !directory.starts_with("https://") {
                return Err(problem("ACME_DIRECTORY", "must be an https:// URL"));
            }
            Some(TlsSource::Acme {
                domains,
                email: get("ACME_EMAIL"),
                cache_dir: get("ACME_CACHE_DIR")
                    .unwrap_or_else(|| "acme-cache".to_owned())
                    .into(),
                directory,
            })
        }
    };
    let source = match (files, acme) {
        (None, None) => return Ok(None),
        (Some(files), None) => files,
        (None, Some(acme)) => acme,
        (Some(_), Some(_)) => {
            return Err(problem(
                "ACME_DOMAIN",
                "set either ACME_DOMAIN or TLS_CERT_FILE/TLS_KEY_FILE, not both",
            ))
        }
    };
    let redirect_port = match get("HTTP_REDIRECT_PORT").as_deref() {
        _ if !https => None,
        None => Some(80),
        Some("off") => None,
        Some(port) => Some(
            port.parse()
                .map_err(|_| problem("HTTP_REDIRECT_PORT", "must be a port number or off"))?,
        ),
    };
    Ok(Some(TlsSettings {
        source,
        https,
        redirect_port,
    }))
}

/// A DNS name as a certificate names it: dot-separated labels of letters,
/// digits and hyphens (not an IP address, no port, no scheme).
fn is_dns_name(host: &str) -> bool {
    host.len() <= 253
        && host.parse::<IpAddr>().is_err()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
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
        // IPv4 and IPv6 (the listener falls back to 0.0.0.0 without IPv6).
        assert_eq!(config.host.to_string(), "::");
        assert_eq!(config.jwt_expires, Duration::from_secs(3600));
        assert_eq!(config.database_url.expose_secret(), "sqlite://webcall.db");
        assert_eq!(
            config.generated,
            ["JWT_SECRET", "REGISTRATION_SECRET", "TURN_SECRET"]
        );
        let turn = config
            .turn
            .as_ref()
            .expect("the embedded relay runs by default");
        // Dual stack by default; the IPv6 listener only where the host has IPv6.
        assert_eq!(
            turn.listen,
            [
                "0.0.0.0:3478".parse().unwrap(),
                "[::]:3478".parse().unwrap()
            ]
        );
        assert_eq!(turn.listen_optional, ["[::]:3478".parse().unwrap()]);
        assert_eq!(turn.public_ip6, None);
        assert_eq!((turn.relay_port_min, turn.relay_port_max), (49152, 65535));
        assert_eq!(turn.realm, "webcall");
        assert_eq!((turn.user_quota, turn.total_quota), (10, 1000));
        assert!(!turn.allow_loopback_peers);
        assert_eq!(config.turn_credential_ttl, Duration::from_secs(86400));
        assert!(config.jwt_secret.expose_secret().len() >= 32);
        let again = Config::from_vars(&vars(&[])).unwrap();
        assert_ne!(
            again.jwt_secret.expose_secret(),
            config.jwt_secret.expose_secret()
        );
    }

    #[test]
    fn metrics_are_on_loopback_unless_told_otherwise() {
        let config = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(
            config.metrics_listen,
            Some("127.0.0.1:9090".parse().unwrap())
        );
        assert!(config.metrics_token.is_none());
        let off = Config::from_vars(&vars(&[("METRICS_LISTEN", "off")])).unwrap();
        assert_eq!(off.metrics_listen, None);
        let open = Config::from_vars(&vars(&[
            ("METRICS_LISTEN", "10.0.0.5:9100"),
            ("METRICS_TOKEN", "t0ken"),
        ]))
        .unwrap();
        assert_eq!(open.metrics_listen, Some("10.0.0.5:9100".parse().unwrap()));
        assert_eq!(open.metrics_token.unwrap().expose_secret(), "t0ken");
        for bad in ["9090", "localhost:9090", "on"] {
            let err = Config::from_vars(&vars(&[("METRICS_LISTEN", bad)])).unwrap_err();
            assert_eq!(err.var, "METRICS_LISTEN");
        }
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
            ("TURN_SECRET", "t"),
        ]))
        .unwrap();
        assert!(ok.generated.is_empty());
    }

    #[test]
    fn an_external_turn_server_replaces_the_embedded_relay_unless_asked_for() {
        let external = Config::from_vars(&vars(&[
            ("TURN_URLS", "turn:turn.example:3478"),
            ("TURN_SECRET", "s"),
        ]))
        .unwrap();
        assert!(external.turn.is_none());
        let both = Config::from_vars(&vars(&[
            ("TURN_URL", "turn:t.example"),
            ("TURN_EMBEDDED", "true"),
        ]))
        .unwrap();
        assert!(both.turn.is_some());
        let off = Config::from_vars(&vars(&[("TURN_EMBEDDED", "false")])).unwrap();
        assert!(off.turn.is_none());
        assert!(off.turn_secret.is_none(), "nothing needs a TURN secret");
        let static_pair = Config::from_vars(&vars(&[
            ("TURN_URL", "turn:t.example"),
            ("TURN_USERNAME", "u"),
            ("TURN_PASSWORD", "p"),
        ]))
        .unwrap();
        assert!(static_pair.turn_secret.is_none());
    }

    #[test]
    fn prod_requires_a_turn_secret_when_the_relay_runs() {
        let long = "x".repeat(32);
        let base = [
            ("APP_ENV", "prod"),
            ("JWT_SECRET", long.as_str()),
            ("REGISTRATION_SECRET", "s"),
        ];
        let err = Config::from_vars(&vars(&base)).unwrap_err();
        assert_eq!(err.var, "TURN_SECRET");
        let mut off = base.to_vec();
        off.push(("TURN_EMBEDDED", "false"));
        assert!(Config::from_vars(&vars(&off)).is_ok());
    }

    #[test]
    fn turn_settings_are_parsed_and_checked() {
        let config = Config::from_vars(&vars(&[
            ("TURN_LISTEN", "127.0.0.1:33478"),
            ("TURN_PUBLIC_IP", "203.0.113.4"),
            ("TURN_RELAY_PORT_MIN", "40000"),
            ("TURN_RELAY_PORT_MAX", "40100"),
            ("TURN_ALLOW_LOOPBACK_PEERS", "true"),
            ("TURN_ALLOWED_PEER_CIDRS", "10.1.0.0/16"),
            ("TURN_DENIED_PEER_CIDRS", "8.8.8.8"),
            ("TURN_USER_QUOTA", "3"),
        ]))
        .unwrap();
        let turn = config.turn.unwrap();
        assert_eq!(turn.listen, ["127.0.0.1:33478".parse().unwrap()]);
        assert!(turn.listen_optional.is_empty());
        assert_eq!(turn.public_ip.unwrap().to_string(), "203.0.113.4");
        assert!(turn.allow_loopback_peers);
        assert_eq!(turn.allowed_peer_cidrs.len(), 1);
        assert_eq!(turn.denied_peer_cidrs.len(), 1);
        assert_eq!(turn.user_quota, 3);
        for (var, value) in [
            ("TURN_RELAY_PORT_MIN", "70000"),
            ("TURN_PUBLIC_IP", "turn.example.org"),
            ("TURN_PUBLIC_IP6", "203.0.113.4"),
            ("TURN_LISTEN", "3478"),
            ("TURN_LISTEN", "0.0.0.0:3478,nowhere"),
            ("TURN_EMBEDDED", "maybe"),
            ("TURN_TLS_LISTEN", "0.0.0.0"),
            ("TURN_TLS_PUBLIC_PORT", "0"),
            ("PUBLIC_HOST", "https://call.example.org"),
            ("PUBLIC_HOST", "call.example.org:443"),
            ("PUBLIC_HOST", "203.0.113.4"),
            ("HTTPS", "sometimes"),
            ("TURN_CREDENTIAL_TTL_SECS", "10"),
        ] {
            assert_eq!(
                Config::from_vars(&vars(&[(var, value)])).unwrap_err().var,
                var
            );
        }
        let inverted = Config::from_vars(&vars(&[
            ("TURN_RELAY_PORT_MIN", "50000"),
            ("TURN_RELAY_PORT_MAX", "40000"),
        ]));
        assert_eq!(inverted.unwrap_err().var, "TURN_RELAY_PORT_MIN");
    }

    #[test]
    fn dual_stack_and_tls_settings() {
        let config = Config::from_vars(&vars(&[
            ("TURN_LISTEN", "192.0.2.1:3478, [2001:db8::1]:3478"),
            ("TURN_PUBLIC_IP6", "2001:db8::1"),
            ("TLS_CERT_FILE", "/c.pem"),
            ("TLS_KEY_FILE", "/k.pem"),
            ("HTTPS", "false"),
            ("TURN_TLS_LISTEN", "0.0.0.0:5349"),
            ("TURN_TLS_PUBLIC_PORT", "443"),
            ("PUBLIC_HOST", "Turn.Example.org"),
        ]))
        .unwrap();
        let turn = config.turn.as_ref().unwrap();
        assert_eq!(turn.listen.len(), 2);
        assert!(turn.listen[1].is_ipv6());
        assert_eq!(turn.public_ip6.unwrap().to_string(), "2001:db8::1");
        assert_eq!(turn.tls_listen.unwrap().port(), 5349);
        assert_eq!(turn.tls_public_port, Some(443));
        assert_eq!(config.public_host.as_deref(), Some("turn.example.org"));
        let tls = config.tls.as_ref().unwrap();
        assert!(!tls.https);
        assert_eq!(tls.redirect_port, None, "no redirect without HTTPS");

        // A TLS listener needs a certificate; ACME names the host by default.
        let no_cert = Config::from_vars(&vars(&[("TURN_TLS_LISTEN", "0.0.0.0:5349")]));
        assert_eq!(no_cert.unwrap_err().var, "TURN_TLS_LISTEN");
        let acme = Config::from_vars(&vars(&[(
            "ACME_DOMAIN",
            "call.example.org,www.example.org",
        )]))
        .unwrap();
        assert_eq!(acme.public_host.as_deref(), Some("call.example.org"));
        assert!(acme.tls.unwrap().https);
    }

    #[test]
    fn signaling_settings() {
        let config = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(config.room_max_peers, 16);
        assert_eq!(config.ws_ping, Duration::from_secs(15));
        assert_eq!(config.ws_idle_timeout, Duration::from_secs(45));
        assert_eq!(config.ws_resume_grace, Duration::from_secs(20));
        for (var, value) in [
            ("WS_PING_SECS", "0"),
            ("ROOM_MAX_PEERS", "1"),
            ("WS_RESUME_GRACE_SECS", "x"),
        ] {
            assert_eq!(
                Config::from_vars(&vars(&[(var, value)])).unwrap_err().var,
                var
            );
        }
        let inverted = Config::from_vars(&vars(&[
            ("WS_PING_SECS", "30"),
            ("WS_IDLE_TIMEOUT_SECS", "20"),
        ]));
        assert_eq!(inverted.unwrap_err().var, "WS_IDLE_TIMEOUT_SECS");
    }

    #[test]
    fn connection_bounds() {
        let config = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(config.ws_max_per_user, 10);
        assert_eq!(config.http_header_timeout, Duration::from_secs(10));
        assert_eq!(config.http_idle_timeout, Duration::from_secs(60));
        assert_eq!(config.http_max_connections_per_ip, 256);
        for (var, value) in [
            ("WS_MAX_PER_USER", "0"),
            ("HTTP_HEADER_TIMEOUT_SECS", "0"),
            ("HTTP_IDLE_TIMEOUT_SECS", "15"),
            ("HTTP_MAX_CONNECTIONS_PER_IP", "-1"),
        ] {
            assert_eq!(
                Config::from_vars(&vars(&[(var, value)])).unwrap_err().var,
                var
            );
        }
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
