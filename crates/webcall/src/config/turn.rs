//! STUN and TURN: the servers browsers are told about (`STUN_SERVERS`,
//! `TURN_URLS` and their credentials, `TURN_SECRET`) and the embedded relay
//! (`TURN_*`), whose defaults are the relay's own ([`TurnConfig`]'s constants).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;
use webcall_turn::{RestCredentials, TurnConfig};

use super::auth::Secrets;
use super::vars::{problem, ConfigError, Vars};

/// ICE servers besides the embedded relay, and the TURN credentials.
#[derive(Debug, Clone)]
pub struct IceSettings {
    /// `STUN_SERVERS`: when empty, the embedded relay's STUN (if it runs).
    pub stun_servers: Vec<String>,
    /// `TURN_URLS` (or the older `TURN_URL`): an external TURN server.
    pub turn_urls: Vec<String>,
    /// `TURN_USERNAME` / `TURN_PASSWORD`: the external server's static credentials.
    pub turn_username: Option<String>,
    pub turn_password: Option<SecretString>,
    /// `TURN_SECRET`: signs REST credentials for the embedded relay, or for an
    /// external coturn (`use-auth-secret`) when no static `TURN_PASSWORD` is set.
    pub turn_secret: Option<SecretString>,
    /// `TURN_CREDENTIAL_TTL_SECS`.
    pub turn_credential_ttl: Duration,
}

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

/// The ICE settings, and the embedded relay's when it runs (by default unless
/// an external TURN server is named).
pub(super) fn parse(
    vars: &Vars,
    secrets: &mut Secrets,
) -> Result<(IceSettings, Option<TurnSettings>), ConfigError> {
    let turn_urls = match vars.list("TURN_URLS") {
        urls if urls.is_empty() => vars.list("TURN_URL"),
        urls => urls,
    };
    let turn_password = vars.get("TURN_PASSWORD").map(SecretString::from);
    let embedded = vars.flag("TURN_EMBEDDED", turn_urls.is_empty())?;
    // The secret is needed by the embedded relay, and by an external TURN
    // server that has no static password (REST credentials).
    let needs_turn_secret = embedded || (!turn_urls.is_empty() && turn_password.is_none());
    let turn_secret = match vars.get("TURN_SECRET") {
        Some(value) => Some(SecretString::from(value)),
        None if !needs_turn_secret => None,
        None => Some(secrets.require(vars, "TURN_SECRET")),
    };
    let turn = embedded.then(|| relay_settings(vars)).transpose()?;
    let ttl_secs: u64 = vars.parse_or(
        "TURN_CREDENTIAL_TTL_SECS",
        RestCredentials::DEFAULT_TTL.as_secs(),
    )?;
    if ttl_secs < 60 {
        return Err(problem(
            "TURN_CREDENTIAL_TTL_SECS",
            "must be at least 60 seconds",
        ));
    }
    let ice = IceSettings {
        stun_servers: vars.list("STUN_SERVERS"),
        turn_urls,
        turn_username: vars.get("TURN_USERNAME"),
        turn_password,
        turn_secret,
        turn_credential_ttl: Duration::from_secs(ttl_secs),
    };
    Ok((ice, turn))
}

fn relay_settings(vars: &Vars) -> Result<TurnSettings, ConfigError> {
    let (default_min, default_max) = TurnConfig::DEFAULT_RELAY_PORTS;
    let min: u16 = vars.parse_or("TURN_RELAY_PORT_MIN", default_min)?;
    let max: u16 = vars.parse_or("TURN_RELAY_PORT_MAX", default_max)?;
    if min == 0 || min > max {
        return Err(problem(
            "TURN_RELAY_PORT_MIN",
            "must be between 1 and TURN_RELAY_PORT_MAX",
        ));
    }
    let realm = vars
        .get("TURN_REALM")
        .unwrap_or_else(|| TurnConfig::DEFAULT_REALM.to_owned());
    let (listen, listen_optional) = match vars.get("TURN_LISTEN") {
        Some(value) => {
            let listen = vars
                .list("TURN_LISTEN")
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
            let port = TurnConfig::DEFAULT_PORT;
            let v6 = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
            (vec![SocketAddr::from(([0, 0, 0, 0], port)), v6], vec![v6])
        }
    };
    Ok(TurnSettings {
        listen,
        listen_optional,
        public_ip: vars
            .get("TURN_PUBLIC_IP")
            .map(|v| {
                v.parse()
                    .map_err(|_| problem("TURN_PUBLIC_IP", format!("not an IP address: {v:?}")))
            })
            .transpose()?,
        public_ip6: vars
            .get("TURN_PUBLIC_IP6")
            .map(|v| {
                v.parse()
                    .map_err(|_| problem("TURN_PUBLIC_IP6", format!("not an IPv6 address: {v:?}")))
            })
            .transpose()?,
        relay_port_min: min,
        relay_port_max: max,
        realm,
        allow_loopback_peers: vars.flag("TURN_ALLOW_LOOPBACK_PEERS", false)?,
        allowed_peer_cidrs: vars.nets("TURN_ALLOWED_PEER_CIDRS", "")?,
        denied_peer_cidrs: vars.nets("TURN_DENIED_PEER_CIDRS", "")?,
        user_quota: vars.parse_or("TURN_USER_QUOTA", TurnConfig::DEFAULT_USER_QUOTA)?,
        total_quota: vars.parse_or("TURN_TOTAL_QUOTA", TurnConfig::DEFAULT_TOTAL_QUOTA)?,
        max_tcp_connections: vars.parse_or(
            "TURN_MAX_TCP_CONNECTIONS",
            TurnConfig::DEFAULT_MAX_TCP_CONNECTIONS,
        )?,
        udp_listeners: match vars.parse_or("TURN_UDP_LISTENERS", 0usize)? {
            0 => TurnConfig::default_udp_listeners(),
            n => n.min(64),
        },
        udp_coalesce: Duration::from_micros(
            vars.parse_or(
                "TURN_UDP_COALESCE_US",
                TurnConfig::DEFAULT_UDP_COALESCE.as_micros() as u64,
            )?
            .min(10_000),
        ),
        tls_listen: vars
            .get("TURN_TLS_LISTEN")
            .map(|v| {
                v.parse()
                    .map_err(|_| problem("TURN_TLS_LISTEN", format!("not an address:port: {v:?}")))
            })
            .transpose()?,
        tls_public_port: vars
            .get("TURN_TLS_PUBLIC_PORT")
            .map(|v| match v.parse::<u16>() {
                Ok(port) if port > 0 => Ok(port),
                _ => Err(problem("TURN_TLS_PUBLIC_PORT", "must be a port number")),
            })
            .transpose()?,
    })
}
