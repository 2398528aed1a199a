//! Who holds the HTTP port when the doctor cannot bind it: a running WebCall
//! (its `/healthz` answers with WebCall's own security headers) or something else.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// What answered on the port.
pub(super) enum Holder {
    /// A WebCall server.
    WebCall,
    /// Something that answered, but not as WebCall does (what it said first).
    Other(String),
    /// Nothing answered in time, or TLS that could not be checked.
    Unknown(String),
}

/// The address to reach a listener bound at `addr` (a wildcard is reached on loopback).
pub(super) fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

/// Asks `GET /healthz` at `addr`, over TLS for `tls_name` when the port speaks
/// HTTPS. The certificate is not checked here (a dev's is self-signed): this
/// only asks who answers; `turn tls` checks trust as a browser would.
pub(super) async fn holder(addr: SocketAddr, tls_name: Option<&str>) -> Holder {
    let tcp = match tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Holder::Unknown(format!("cannot connect: {e}")),
        Err(_) => return Holder::Unknown("no answer in 3 s".into()),
    };
    let host = tls_name.map_or_else(|| addr.to_string(), str::to_owned);
    let answer = match tls_name {
        None => get_healthz(tcp, &host).await,
        Some(name) => {
            let Ok(server_name) = rustls::pki_types::ServerName::try_from(name.to_owned()) else {
                return Holder::Unknown(format!("{name} is not a DNS name"));
            };
            let connector = tokio_rustls::TlsConnector::from(any_certificate());
            match tokio::time::timeout(Duration::from_secs(3), connector.connect(server_name, tcp))
                .await
            {
                Ok(Ok(tls)) => get_healthz(tls, &host).await,
                Ok(Err(e)) => return Holder::Unknown(format!("no TLS handshake: {e}")),
                Err(_) => return Holder::Unknown("no TLS handshake in 3 s".into()),
            }
        }
    };
    match answer {
        Some(response) if is_webcall(&response) => Holder::WebCall,
        Some(response) => Holder::Other(
            response
                .lines()
                .next()
                .unwrap_or("an empty answer")
                .chars()
                .take(80)
                .collect(),
        ),
        None => Holder::Unknown("no HTTP answer in 3 s".into()),
    }
}

/// A client that completes a handshake with any certificate (signatures are
/// still checked): enough to ask who holds the port, never to trust it.
fn any_certificate() -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, Error, SignatureScheme};

    #[derive(Debug)]
    struct AnyCertificate(CryptoProvider);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    let provider = rustls::crypto::ring::default_provider();
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider.clone()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
    )
}

async fn get_healthz(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    host: &str,
) -> Option<String> {
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    let exchange = async {
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        let _ = (&mut stream)
            .take(64 * 1024)
            .read_to_end(&mut response)
            .await;
        Some(String::from_utf8_lossy(&response).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .ok()
        .flatten()
}

/// A 200 with WebCall's health body and its own Content-Security-Policy.
fn is_webcall(response: &str) -> bool {
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return false;
    };
    let mut lines = head.lines();
    let status_ok = lines
        .next()
        .is_some_and(|status| status.split_whitespace().nth(1) == Some("200"));
    let csp = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("content-security-policy")
                && value.trim() == webcall_http::web::CONTENT_SECURITY_POLICY
        })
    });
    status_ok && csp && body.contains("\"status\":\"ok\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webcall_is_known_by_its_health_answer_and_its_headers() {
        let csp = webcall_http::web::CONTENT_SECURITY_POLICY;
        let webcall = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-security-policy: {csp}\r\n\r\n{{\"status\":\"ok\"}}");
        assert!(is_webcall(&webcall));
        assert!(!is_webcall("HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\"}"));
        assert!(!is_webcall(&webcall.replace("200 OK", "404 Not Found")));
    }
}
