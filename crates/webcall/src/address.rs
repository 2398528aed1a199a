//! The address people open, printed at start: `https://` with the certificate's
//! name when the binary serves HTTPS, `https://PUBLIC_HOST/` behind a reverse
//! proxy that terminates it, else `http://` with the bound address (`localhost`
//! for a wildcard one, an IPv6 address bracketed). The port is left out when it
//! is the scheme's default.

use std::net::{IpAddr, SocketAddr};

use crate::config::Config;

/// The URL of the web app for a server bound at `bound`.
pub fn open_url(config: &Config, bound: SocketAddr) -> String {
    let https = config.tls.as_ref().filter(|tls| tls.https);
    let name = match https {
        Some(tls) => crate::tls::certificate_host(config, tls),
        None => config.http.public_host.clone(),
    };
    match (https, name) {
        (Some(_), Some(host)) => url("https", &host, bound.port()),
        (Some(_), None) => url("https", &host_of(bound.ip()), bound.port()),
        // PUBLIC_HOST without HTTPS here: a reverse proxy serves it on 443.
        (None, Some(host)) => format!("https://{host}/"),
        (None, None) => url("http", &host_of(bound.ip()), bound.port()),
    }
}

fn host_of(ip: IpAddr) -> String {
    match ip {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("[{v6}]"),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

fn url(scheme: &str, host: &str, port: u16) -> String {
    match (scheme, port) {
        ("http", 80) | ("https", 443) => format!("{scheme}://{host}/"),
        _ => format!("{scheme}://{host}:{port}/"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_vars(&vars).unwrap()
    }

    #[test]
    fn a_wildcard_address_is_localhost_and_ipv6_is_bracketed() {
        let plain = config(&[]);
        for (bound, url) in [
            ("[::]:8000", "http://localhost:8000/"),
            ("0.0.0.0:80", "http://localhost/"),
            ("127.0.0.1:8080", "http://127.0.0.1:8080/"),
            ("[::1]:8080", "http://[::1]:8080/"),
            ("[2001:db8::5]:8000", "http://[2001:db8::5]:8000/"),
        ] {
            assert_eq!(open_url(&plain, bound.parse().unwrap()), url, "{bound}");
        }
    }

    #[test]
    fn a_public_host_is_https() {
        let proxied = config(&[("PUBLIC_HOST", "call.example.org")]);
        assert_eq!(
            open_url(&proxied, "[::]:8000".parse().unwrap()),
            "https://call.example.org/"
        );
        let acme = config(&[
            ("ACME_DOMAIN", "call.example.org"),
            ("ACME_EMAIL", "admin@example.org"),
        ]);
        assert_eq!(
            open_url(&acme, "[::]:443".parse().unwrap()),
            "https://call.example.org/"
        );
        assert_eq!(
            open_url(&acme, "[::]:8443".parse().unwrap()),
            "https://call.example.org:8443/"
        );
    }
}
