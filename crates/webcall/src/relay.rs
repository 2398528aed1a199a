//! Starting the embedded TURN/STUN relay from its settings: the advertised
//! addresses (configured, else detected), the REST credentials it accepts, the
//! peer policy (which lets clients reach the media end of routed calls), and
//! the listening addresses this host can bind.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context as _;
use webcall_turn::{PeerPolicy, RestCredentials, TurnConfig, TurnRelay};

use crate::config::{Config, TurnSettings};
use crate::listener::ipv6_available;

/// Starts the embedded TURN/STUN relay; clients may reach `services` (the
/// media end's addresses) through it, whatever their range.
pub(crate) async fn start(
    config: &Config,
    settings: &TurnSettings,
    services: Vec<SocketAddr>,
) -> anyhow::Result<TurnRelay> {
    start_on(config, settings, None, services).await
}

/// Starts the relay advertising `public_ip` (else the configured or detected one).
pub(crate) async fn start_on(
    config: &Config,
    settings: &TurnSettings,
    public_ip: Option<IpAddr>,
    services: Vec<SocketAddr>,
) -> anyhow::Result<TurnRelay> {
    let public_ip = match public_ip.or(settings.public_ip) {
        Some(ip) => ip,
        None => match webcall_turn::detect_public_ip() {
            Some(ip) => {
                tracing::info!(%ip, "TURN_PUBLIC_IP not set: advertising the host's primary address (set it behind 1:1 NAT)");
                ip
            }
            None => {
                tracing::warn!("TURN_PUBLIC_IP not set and no primary address found: advertising 127.0.0.1, which only local clients can reach");
                IpAddr::from([127, 0, 0, 1])
            }
        },
    };
    let public_ip6 = match public_ip {
        IpAddr::V6(_) => None,
        IpAddr::V4(_) => settings.public_ip6.or_else(|| {
            let detected = webcall_turn::detect_public_ip6();
            if let Some(ip) = detected {
                tracing::info!(%ip, "TURN_PUBLIC_IP6 not set: IPv6 relayed addresses on the host's global IPv6 address");
            }
            detected
        }),
    };
    let secret = config.ice.turn_secret.clone().context("TURN_SECRET")?;
    let mut own = vec![public_ip];
    own.extend(public_ip6.map(IpAddr::V6));
    TurnRelay::start(TurnConfig {
        listen: relay_listen(settings),
        public_ip,
        public_ip6,
        relay_ports: (settings.relay_port_min, settings.relay_port_max),
        realm: settings.realm.clone(),
        credentials: RestCredentials::new(secret, config.ice.turn_credential_ttl),
        policy: PeerPolicy::new(
            own,
            settings.allow_loopback_peers,
            settings.allowed_peer_cidrs.clone(),
            settings.denied_peer_cidrs.clone(),
        )
        .with_services(services),
        user_quota: settings.user_quota,
        total_quota: settings.total_quota,
        max_tcp_connections: settings.max_tcp_connections,
        udp_listeners: settings.udp_listeners,
        udp_coalesce: settings.udp_coalesce,
    })
    .await
}

/// `TURN_LISTEN` less the optional addresses this host cannot bind (the default
/// IPv6 one where IPv6 is off).
fn relay_listen(settings: &TurnSettings) -> Vec<SocketAddr> {
    let ipv6_works = ipv6_available();
    settings
        .listen
        .iter()
        .copied()
        .filter(|addr| {
            let keep = !(addr.is_ipv6() && !ipv6_works && settings.listen_optional.contains(addr));
            if !keep {
                tracing::warn!(%addr, "IPv6 is off on this host: TURN listens on IPv4 only");
            }
            keep
        })
        .collect()
}
