//! Where the TLS certificate comes from (files or ACME), the server configs
//! with our ALPN list, the handshake, and what the client's ALPN choice says
//! about the connection.

use std::io;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// ALPN protocols offered, in the server's order of preference: TURN/STUN over
/// TLS (RFC 7443) first, since TURN clients such as coturn's offer `http/1.1`
/// too (before `stun.turn`), and no HTTP client offers `stun.turn`; then HTTP.
const ALPN: [&[u8]; 4] = [b"stun.turn", b"stun.nat-discovery", b"h2", b"http/1.1"];

/// A decrypted TLS stream, whichever acceptor made it.
pub trait TlsIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> TlsIo for T {}

/// Where certificates come from.
#[derive(Clone)]
pub enum Certificates {
    /// Certificate and key files (reloaded on SIGHUP through the `RustlsConfig`).
    Files(RustlsConfig),
    /// ACME (rustls-acme): TLS-ALPN-01 challenges get `challenge`, clients
    /// `config`; both resolve certificates through the ACME state.
    Acme {
        challenge: Arc<ServerConfig>,
        config: Arc<ServerConfig>,
    },
}

impl Certificates {
    /// Reads a PEM certificate chain and key into a server config with our ALPN list.
    pub fn config_from_files(cert_file: &Path, key_file: &Path) -> anyhow::Result<ServerConfig> {
        let certs = CertificateDer::pem_file_iter(cert_file)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("cannot load {}", cert_file.display()))?;
        let key = PrivateKeyDer::from_pem_file(key_file)
            .with_context(|| format!("cannot load {}", key_file.display()))?;
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .with_context(|| {
                format!(
                    "cannot load {} and {}: not a usable certificate and key",
                    cert_file.display(),
                    key_file.display()
                )
            })?;
        config.alpn_protocols = alpn();
        Ok(config)
    }

    /// A server config for ACME-obtained certificates, with our ALPN list.
    pub fn config_for_acme(resolver: Arc<rustls_acme::ResolvesServerCertAcme>) -> ServerConfig {
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = alpn();
        config
    }

    /// The TLS handshake; `None` when the connection was an ACME challenge
    /// (answered) rather than a client.
    pub(super) async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> io::Result<Option<(Box<dyn TlsIo>, Alpn)>> {
        match self {
            Self::Files(config) => {
                let tls = tokio_rustls::TlsAcceptor::from(config.get_inner())
                    .accept(tcp)
                    .await?;
                let alpn = Alpn::of(tls.get_ref().1.alpn_protocol());
                Ok(Some((Box::new(tls), alpn)))
            }
            Self::Acme { challenge, config } => {
                let start =
                    tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
                        .await?;
                if rustls_acme::is_tls_alpn_challenge(&start.client_hello()) {
                    let mut answered = start.into_stream(challenge.clone()).await?;
                    let _ = answered.shutdown().await;
                    return Ok(None);
                }
                let tls = start.into_stream(config.clone()).await?;
                let alpn = Alpn::of(tls.get_ref().1.alpn_protocol());
                Ok(Some((Box::new(tls), alpn)))
            }
        }
    }
}

fn alpn() -> Vec<Vec<u8>> {
    ALPN.iter().map(|p| p.to_vec()).collect()
}

/// What the client's ALPN choice says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Alpn {
    None,
    Http,
    Turn,
}

impl Alpn {
    pub(super) fn of(protocol: Option<&[u8]>) -> Self {
        match protocol {
            None => Self::None,
            Some(b"stun.turn" | b"stun.nat-discovery") => Self::Turn,
            Some(_) => Self::Http,
        }
    }
}

/// The first DNS name a PEM certificate file is for (its first subject
/// alternative name of type DNS, else its common name).
pub fn first_dns_name(cert_file: &Path) -> Option<String> {
    let cert = CertificateDer::pem_file_iter(cert_file)
        .ok()?
        .next()?
        .ok()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).ok()?;
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                return Some((*dns).to_owned());
            }
        }
    }
    let common_name = parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|cn| cn.contains('.') && !cn.contains(' '))
        .map(str::to_owned);
    common_name
}
