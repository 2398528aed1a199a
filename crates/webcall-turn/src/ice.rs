//! What browsers are told about this relay (`/api/v1/webrtc/ice-servers`): its
//! STUN URL, its TURN URLs (UDP and TCP, on IPv6 too when it relays there, and
//! TLS when the caller has a `turns:` URL), and the credentials that unlock
//! them, minted with the relay's own REST secret.

use std::net::IpAddr;
use std::sync::Arc;

use crate::credentials::RestCredentials;
use crate::relay::TurnRelay;

/// The relay's entries in the ICE server list.
pub struct RelayIceServers {
    /// `stun:host:port`, for when no external STUN server is named.
    pub stun_url: String,
    /// The `turn:` URLs, then the `turns:` one if any.
    pub turn_urls: Vec<String>,
    /// Mints the credentials the relay accepts.
    pub credentials: Arc<RestCredentials>,
}

impl TurnRelay {
    /// The relay's ICE servers, with `turns` (TURN over TLS, by the DNS name the
    /// certificate is for: only the caller knows it) at the end of the list.
    pub fn ice_servers(&self, turns: Option<String>) -> RelayIceServers {
        let host = url_host(self.public_ip());
        let port = self.udp_addr().port();
        let mut turn_urls = vec![
            format!("turn:{host}:{port}?transport=udp"),
            format!("turn:{host}:{port}?transport=tcp"),
        ];
        // IPv6-only clients reach the relay on its IPv6 listener.
        let v6_listener = self.listen_addrs().iter().find(|a| a.is_ipv6());
        if let (Some(ip6), Some(listener), IpAddr::V4(_)) =
            (self.public_ip6(), v6_listener, self.public_ip())
        {
            let host6 = url_host(IpAddr::V6(ip6));
            let port6 = listener.port();
            turn_urls.push(format!("turn:{host6}:{port6}?transport=udp"));
            turn_urls.push(format!("turn:{host6}:{port6}?transport=tcp"));
        }
        turn_urls.extend(turns);
        RelayIceServers {
            stun_url: format!("stun:{host}:{port}"),
            turn_urls,
            credentials: self.credentials(),
        }
    }
}

/// An IP as the host part of a `stun:`/`turn:` URL.
fn url_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(url_host("203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(url_host("2001:db8::1".parse().unwrap()), "[2001:db8::1]");
    }
}
