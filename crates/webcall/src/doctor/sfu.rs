//! The doctor's check of routed calls' media port (`SFU_UDP_PORT`) and the
//! address clients are told to send routed media to.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::report::{fail, info, ok, warn, Outcome};
use super::unreachable_from_outside;
use crate::config::Config;

pub(super) fn check(config: &Config) -> Outcome {
    let settings = &config.media;
    if !settings.enabled {
        return info("routed calls off (SFU_ENABLED=false): every call is a mesh");
    }
    if config.storage.redis_url.is_some() {
        return info(
            "routed calls unavailable with several instances (REDIS_URL): every call is a mesh",
        );
    }
    let port = settings.udp_port;
    if port == 0 {
        return info("SFU_UDP_PORT=0: routed media on any free UDP port (fine for tests, not behind a firewall)");
    }
    let addr = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port);
    if let Err(err) = std::net::UdpSocket::bind(addr) {
        return fail(
            format!("UDP {addr} cannot be bound ({err})"),
            "if a running WebCall holds it, nothing to do; otherwise stop what holds it, or set SFU_UDP_PORT to a free port",
        );
    }
    let ip: Option<IpAddr> = settings
        .public_ips
        .first()
        .copied()
        .or_else(|| config.turn.as_ref().and_then(|turn| turn.public_ip))
        .or_else(webcall_turn::detect_public_ip);
    let Some(ip) = ip else {
        return warn(
            format!("UDP {port} is free, but no address for routed media was found"),
            "set SFU_PUBLIC_IP (or TURN_PUBLIC_IP) to the address browsers reach this host by",
        );
    };
    match unreachable_from_outside(ip) {
        Some(kind) => warn(
            format!("routed media at {ip}:{port}, {kind}: browsers outside this network reach it only through the relay"),
            "set SFU_PUBLIC_IP to this host's public address, and open UDP {port} in the firewall",
        ),
        None => ok(format!(
            "routed media at {ip}:{port} (UDP; open it in the firewall)"
        )),
    }
}
