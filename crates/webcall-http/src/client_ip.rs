//! Which address a request comes from. Behind a reverse proxy every socket peer
//! is the proxy, so `X-Forwarded-For` is believed only when the peer is in
//! `TRUSTED_PROXIES`, and then read from the right: the first hop that is not a
//! trusted proxy is the client (anything left of it may be forged).

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` we believe.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from socket peer `peer`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !self.trusts(client) {
                        return client;
                    }
                }
                // Garbage: whatever stands left of it cannot be trusted.
                Err(_) => return client,
            }
        }
        client
    }
}

/// `::ffff:1.2.3.4` is `1.2.3.4`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(xff: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in xff {
            headers.append("x-forwarded-for", HeaderValue::from_static(value));
        }
        headers
    }

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let p = proxies(&[]);
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &headers(&["203.0.113.9"])),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn untrusted_peer_cannot_forge_the_header() {
        let p = proxies(&["127.0.0.1/32"]);
        assert_eq!(
            p.client_ip(ip("198.51.100.7"), &headers(&["203.0.113.9"])),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn trusted_proxy_passes_the_client_through() {
        let p = proxies(&["127.0.0.1/32"]);
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &headers(&["203.0.113.9"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_wins_over_forged_ones() {
        let p = proxies(&["127.0.0.1/32", "10.0.0.0/8"]);
        let h = headers(&["1.1.1.1, 203.0.113.9", "10.0.0.5"]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn garbage_hop_stops_the_walk() {
        let p = proxies(&["127.0.0.1/32"]);
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &headers(&["203.0.113.9, nonsense"])),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn mapped_ipv6_peer_matches_an_ipv4_proxy() {
        let p = proxies(&["127.0.0.1/32"]);
        assert_eq!(
            p.client_ip(ip("::ffff:127.0.0.1"), &headers(&["203.0.113.9"])),
            ip("203.0.113.9")
        );
    }
}
