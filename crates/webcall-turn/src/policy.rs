//! Which peers the relay may send to. An open TURN relay is a proxy into the
//! host's own network (loopback, the LAN, cloud metadata at 169.254.169.254), so
//! private and special-purpose ranges are refused by default. The relay's own
//! public address always stays allowed: two browsers behind NAT meet
//! relay-to-relay, and a home server on 192.168.x.x must still work.

use std::net::IpAddr;

use ipnet::IpNet;

/// Ranges refused by default (IPv4-mapped IPv6 forms are folded onto IPv4 first).
pub const DEFAULT_DENIED: &[&str] = &[
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
    "::/96",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
    "64:ff9b::/96",
    "2002::/16",
];

const LOOPBACK: &[&str] = &["127.0.0.0/8", "::1/128"];

/// The peer filter. Order of decision: the relay's own addresses are allowed;
/// then `allowed` ranges; then `denied` ranges are refused; anything else is allowed.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    own: Vec<IpAddr>,
    allowed: Vec<IpNet>,
    denied: Vec<IpNet>,
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
            allowed: all_allowed,
            denied: all_denied,
        }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.own.contains(&ip) || self.allowed.iter().any(|n| n.contains(&ip)) {
            return true;
        }
        !self.denied.iter().any(|n| n.contains(&ip))
    }
}

/// `::ffff:a.b.c.d` is judged as `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
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
            "2002:a00:1::1",
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
            "::ffff:8.8.8.8",
        ] {
            assert!(policy.permits(ip(peer)), "{peer} should be allowed");
        }
    }

    #[test]
    fn the_relays_own_address_is_always_allowed() {
        let home = PeerPolicy::new(vec![ip("192.168.1.20")], false, vec![], vec![]);
        assert!(home.permits(ip("192.168.1.20")));
        assert!(home.permits(ip("::ffff:192.168.1.20")));
        assert!(!home.permits(ip("192.168.1.21")));
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
