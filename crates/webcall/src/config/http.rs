//! The public HTTP port (`HOST`, `PORT`, `PUBLIC_HOST`, `TRUSTED_PROXIES`,
//! `CORS_ORIGINS`, the `HTTP_*` bounds on its connections) and the metrics
//! listener (`METRICS_*`). Their defaults are the binary's own, here.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;

use super::tls::{TlsSettings, TlsSource};
use super::vars::{is_dns_name, problem, ConfigError, Vars};

/// The public HTTP port and the bounds on its connections.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `HOST` (default `::`: IPv4 and IPv6; `0.0.0.0` where IPv6 is off).
    pub host: IpAddr,
    /// `PORT`.
    pub port: u16,
    /// `PUBLIC_HOST`: the DNS name clients reach this server by, the name its
    /// certificate is for (browsers check it on `turns:`). Default: the first
    /// ACME domain or the certificate's first DNS name.
    pub public_host: Option<String>,
    /// `TRUSTED_PROXIES`: whose `X-Forwarded-For` is believed; exempt from the
    /// per-address bounds.
    pub trusted_proxies: Vec<IpNet>,
    /// `CORS_ORIGINS`.
    pub cors_origins: Vec<String>,
    /// `HTTP_HEADER_TIMEOUT_SECS`: time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// `HTTP_IDLE_TIMEOUT_SECS`: an HTTP connection (not a WebSocket) that moves
    /// no byte for this long is closed.
    pub idle_timeout: Duration,
    /// `HTTP_MAX_CONNECTIONS_PER_IP`: open connections from one address
    /// (`TRUSTED_PROXIES` exempt); 0 is no cap.
    pub max_connections_per_ip: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: IpAddr::from(Ipv6Addr::UNSPECIFIED),
            port: 8000,
            public_host: None,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections_per_ip: 256,
        }
    }
}

impl HttpSettings {
    /// `ws_ping` bounds the idle timeout from below (a signaling socket is kept
    /// from it by the pings); `tls` names the public host by default.
    pub(super) fn parse(
        vars: &Vars,
        ws_ping: Duration,
        tls: Option<&TlsSettings>,
    ) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let idle_timeout = vars.secs("HTTP_IDLE_TIMEOUT_SECS", defaults.idle_timeout)?;
        if idle_timeout <= ws_ping {
            return Err(problem(
                "HTTP_IDLE_TIMEOUT_SECS",
                "must be longer than WS_PING_SECS",
            ));
        }
        let public_host = match vars.get("PUBLIC_HOST") {
            Some(host) if !is_dns_name(&host) => {
                return Err(problem(
                    "PUBLIC_HOST",
                    format!("must be a DNS name, e.g. call.example.org, not {host:?}"),
                ))
            }
            Some(host) => Some(host.to_ascii_lowercase()),
            None => match tls.map(|t| &t.source) {
                Some(TlsSource::Acme { domains, .. }) => domains.first().cloned(),
                _ => None,
            },
        };
        Ok(Self {
            host: vars.parse_or("HOST", defaults.host)?,
            port: vars.parse_or("PORT", defaults.port)?,
            public_host,
            trusted_proxies: vars.nets("TRUSTED_PROXIES", ", e.g. 127.0.0.1,10.0.0.0/8")?,
            cors_origins: vars.list("CORS_ORIGINS"),
            header_timeout: vars.secs("HTTP_HEADER_TIMEOUT_SECS", defaults.header_timeout)?,
            idle_timeout,
            max_connections_per_ip: vars.parse_or(
                "HTTP_MAX_CONNECTIONS_PER_IP",
                defaults.max_connections_per_ip,
            )?,
        })
    }
}

/// The listener that serves `/metrics`.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// `METRICS_LISTEN` (default `127.0.0.1:9090`, `off`: none): the only
    /// listener that serves `/metrics`; never the public port.
    pub listen: Option<SocketAddr>,
    /// `METRICS_TOKEN`: when set, a scrape must send `Authorization: Bearer` with it.
    pub token: Option<SecretString>,
}

/// `METRICS_LISTEN`'s port by default (on loopback: Prometheus on the same host).
const DEFAULT_METRICS_PORT: u16 = 9090;

impl MetricsSettings {
    pub(super) fn parse(vars: &Vars) -> Result<Self, ConfigError> {
        let listen = match vars.get("METRICS_LISTEN") {
            None => Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_METRICS_PORT))),
            Some(off) if off.eq_ignore_ascii_case("off") => None,
            Some(addr) => Some(addr.parse().map_err(|_| {
                problem(
                    "METRICS_LISTEN",
                    format!("must be address:port (e.g. 127.0.0.1:9090) or off, not {addr:?}"),
                )
            })?),
        };
        Ok(Self {
            listen,
            token: vars.get("METRICS_TOKEN").map(SecretString::from),
        })
    }
}
