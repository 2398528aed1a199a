//! Which peers the relay may send to. An open TURN relay is a proxy into the
//! host's own network (loopback, the LAN, cloud metadata at 169.254.169.254), so
//! private and special-purpose ranges are refused by default. The relay's own
//! public address stays allowed, but only on the relay port range: two browsers
//! behind NAT meet relay-to-relay, and a home server on 192.168.x.x must still
//! work, while the host's other services on that address (a database, an admin
//! port, the TURN listener itself) stay out of reach.
//!
//! The server's own media end (routed calls) is a *service*: its exact
//! address and port are reachable through the relay even on a loopback or
//! private address ([`PeerPolicy::with_services`]), so that a client that only
//! gets out through the relay still reaches it; nothing else on that address is.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;

use ipnet::IpNet;

/// Ranges refused by default. IPv6 addresses that carry an IPv4 address
/// (`::ffff:0:0/96` mapped, `64:ff9b::/96` NAT64, `2002::/16` 6to4) are judged
/// by the IPv4 inside them: otherwise `::ffff:127.0.0.1` or `64:ff9b::a00:1`
/// would reach a range refused in its IPv4 form (a known TURN CVE class).
pub(crate) const DEFAULT_DENIED: &[&str] = &[
    "0.0.0.0/8",
    "127.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    // IPv4-compatible (deprecated): not folded, refused whole.
    "::/96",
    // Discard-only.
    "100::/64",
    // IETF protocol assignments (Teredo, benchmarking, ORCHID …).
    "2001::/23",
    // Documentation.
    "2001:db8::/32",
    "3fff::/20",
    // NAT64 for local use (RFC 8215): its IPv4 side is a private network.
    "64:ff9b:1::/48",
    // Unique local, deprecated site-local, link-local, multicast.
    "fc00::/7",
    "fec0::/10",
    "fe80::/10",
    "ff00::/8",
];

const LOOPBACK: &[&str] = &["127.0.0.0/8", "::1/128"];

/// The peer filter. Order of decision: the relay's own addresses are allowed
/// (on the relay port range only); then `allowed` ranges; then `denied` ranges
/// are refused; anything else is allowed.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    own: Vec<IpAddr>,
    /// The relay port range: the only ports of `own` addresses a client may reach.
    own_ports: RangeInclusive<u16>,
    allowed: Vec<IpNet>,
    denied: Vec<IpNet>,
    /// Exact addresses of the server's own services (its media end) a client
    /// may reach, whatever their range.
    services: Vec<SocketAddr>,
}

impl PeerPolicy {
    /// The default policy with the operator's adjustments
    /// (`TURN_ALLOW_LOOPBACK_PEERS`, `TURN_ALLOWED_PEER_CIDRS`, `TURN_DENIED_PEER_CIDRS`).
    pub fn new(
        own: Vec<IpAddr>,
        allow_loopback: bool,
        allowed: Vec<IpNet>,
        denied: Vec<IpNet>,
    ) -> Self {
        let parse = |list: &[&str]| -> Vec<IpNet> {
            list.iter()
                .map(|n| n.parse().expect("static CIDR"))
                .collect()
        };
        let mut all_allowed = allowed;
        if allow_loopback {
            all_allowed.extend(parse(LOOPBACK));
        }
        let mut all_denied = parse(DEFAULT_DENIED);
        all_denied.extend(denied);
        Self {
            own: own.into_iter().map(canonical).collect(),
            own_ports: 1..=u16::MAX,
            allowed: all_allowed,
            denied: all_denied,
            services: Vec::new(),
        }
    }

    /// Lets clients reach exactly these addresses (the server's media end for
    /// routed calls), even in a refused range; other ports of a refused
    /// address stay refused.
    pub fn with_services(mut self, services: Vec<SocketAddr>) -> Self {
        self.services = services
            .into_iter()
            .map(|addr| SocketAddr::new(canonical(addr.ip()), addr.port()))
            .collect();
        self
    }

    /// Limits the relay's own addresses to its relay ports; the relay applies
    /// its configured range when it starts.
    pub(crate) fn with_relay_ports(mut self, ports: RangeInclusive<u16>) -> Self {
        self.own_ports = ports;
        self
    }

    /// Whether a permission for `ip` may be installed (CreatePermission carries
    /// no meaningful port: the port is judged per datagram, [`Self::permits_peer`]).
    pub(crate) fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.own.contains(&ip)
            || self.allowed.iter().any(|n| n.contains(&ip))
            || self.services.iter().any(|s| s.ip() == ip)
        {
            return true;
        }
        !self.denied.iter().any(|n| n.contains(&ip))
    }

    /// Whether the relay may send to `peer`: [`Self::permits`], and on one of the
    /// relay's own addresses only a port of the relay range, unless an operator's
    /// allowed range covers the address.
    pub(crate) fn permits_peer(&self, peer: SocketAddr) -> bool {
        self.permits(peer.ip()) && !self.own_port_refused(peer)
    }

    /// `peer` is one of the relay's own addresses on a port outside the relay
    /// range (and no allowed range covers it). Cheap enough for every datagram.
    /// Also: `peer` is on the address of a service ([`Self::with_services`])
    /// that the ranges refuse, but is not that service.
    pub(crate) fn own_port_refused(&self, peer: SocketAddr) -> bool {
        if self.services.is_empty() && self.own_ports.contains(&peer.port()) {
            return false;
        }
        let ip = canonical(peer.ip());
        if self.services.contains(&SocketAddr::new(ip, peer.port())) {
            return false;
        }
        if self.allowed.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        if self.own.contains(&ip) {
            return !self.own_ports.contains(&peer.port());
        }
        self.services.iter().any(|s| s.ip() == ip) && self.denied.iter().any(|n| n.contains(&ip))
    }
}

/// An IPv6 address that carries an IPv4 one is judged as that IPv4 address:
/// `::ffff:a.b.c.d` (mapped), `64:ff9b::a.b.c.d` (NAT64, RFC 6052) and
/// `2002:aabb:ccdd::/48` (6to4, RFC 3056).
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let embedded =
        |hi: u16, lo: u16| IpAddr::V4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => embedded(hi, lo),
        [0x2002, hi, lo, ..] => embedded(hi, lo),
        _ => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn default_policy() -> PeerPolicy {
        PeerPolicy::new(vec![ip("198.51.100.10")], false, vec![], vec![])
    }

    #[test]
    fn every_default_range_is_refused_including_mapped_forms() {
        let policy = default_policy();
        for peer in [
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.1",
            "10.0.0.1",
            "100.64.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.1",
            "198.51.100.1",
            "203.0.113.5",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "64:ff9b::a00:1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::169.254.169.254",
            "64:ff9b:1::8.8.8.8",
            "2002:a00:1::1",
            "2002:7f00:1::1",
            "2002:c0a8:101:1::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::a00:1",
        ] {
            assert!(!policy.permits(ip(peer)), "{peer} should be refused");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        let policy = default_policy();
        for peer in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2001:4860::8888",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            // NAT64 and 6to4 forms of a public IPv4 address are judged by it.
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
        ] {
            assert!(policy.permits(ip(peer)), "{peer} should be allowed");
        }
    }

    #[test]
    fn an_ipv6_peer_is_refused_like_its_ipv4_twin() {
        let policy = PeerPolicy::new(
            vec![],
            false,
            vec![],
            vec!["203.0.114.0/24".parse().unwrap()],
        );
        for (v4, forms) in [
            (
                "10.1.2.3",
                ["::ffff:10.1.2.3", "64:ff9b::10.1.2.3", "2002:a01:203::9"],
            ),
            (
                "203.0.114.7",
                [
                    "::ffff:203.0.114.7",
                    "64:ff9b::203.0.114.7",
                    "2002:cb00:7207::1",
                ],
            ),
        ] {
            assert!(!policy.permits(ip(v4)), "{v4}");
            for form in forms {
                assert!(!policy.permits(ip(form)), "{form} is {v4}");
            }
        }
    }

    #[test]
    fn the_relays_own_address_is_allowed_on_relay_ports_only() {
        let home = PeerPolicy::new(vec![ip("192.168.1.20")], false, vec![], vec![])
            .with_relay_ports(49152..=65535);
        assert!(home.permits(ip("192.168.1.20")));
        assert!(home.permits(ip("::ffff:192.168.1.20")));
        assert!(!home.permits(ip("192.168.1.21")));
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        for relay in [
            "192.168.1.20:49152",
            "192.168.1.20:65535",
            "[::ffff:192.168.1.20]:50000",
        ] {
            assert!(home.permits_peer(at(relay)), "{relay}");
        }
        for service in [
            "192.168.1.20:3478",
            "192.168.1.20:22",
            "192.168.1.20:49151",
            "[::ffff:192.168.1.20]:5432",
        ] {
            assert!(!home.permits_peer(at(service)), "{service}");
        }
        // Other peers' ports are theirs to choose.
        assert!(home.permits_peer(at("8.8.8.8:53")));
        // An operator's allowed range covering the address lifts the port limit.
        let lab = PeerPolicy::new(vec![ip("127.0.0.1")], true, vec![], vec![])
            .with_relay_ports(49152..=65535);
        assert!(lab.permits_peer(at("127.0.0.1:3478")));
    }

    #[test]
    fn a_service_of_the_server_is_reachable_on_its_port_only() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        let policy = PeerPolicy::new(vec![ip("127.0.0.1")], false, vec![], vec![])
            .with_relay_ports(49152..=65535)
            .with_services(vec![at("127.0.0.1:3479"), at("10.0.0.5:3479")]);
        for reachable in [
            "127.0.0.1:3479",
            "10.0.0.5:3479",
            "[::ffff:10.0.0.5]:3479",
            "127.0.0.1:50000",
        ] {
            assert!(policy.permits_peer(at(reachable)), "{reachable}");
        }
        for refused in [
            "127.0.0.1:3478",
            "10.0.0.5:22",
            "10.0.0.6:3479",
            "127.0.0.1:5432",
        ] {
            assert!(!policy.permits_peer(at(refused)), "{refused}");
            assert!(policy.own_port_refused(at(refused)) || !policy.permits(at(refused).ip()));
        }
        // A public service address leaves the address's other ports as they were.
        let public = default_policy().with_services(vec![at("8.8.8.8:3479")]);
        assert!(public.permits_peer(at("8.8.8.8:53")));
    }

    #[test]
    fn operator_adjustments() {
        let policy = PeerPolicy::new(
            vec![],
            true,
            vec!["10.1.0.0/16".parse().unwrap()],
            vec!["8.8.8.0/24".parse().unwrap()],
        );
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::1")));
        assert!(policy.permits(ip("10.1.2.3")));
        assert!(!policy.permits(ip("10.2.0.1")));
        assert!(!policy.permits(ip("8.8.8.8")));
    }
}
