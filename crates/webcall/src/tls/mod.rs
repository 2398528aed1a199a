//! TLS served by the binary itself: HTTPS on the HTTP port and TURN over TLS.
//! `Tls::load` reads the certificate (or sets up ACME) and binds the
//! redirecting HTTP port and `TURN_TLS_LISTEN`; `Tls::start` starts what runs
//! beside the HTTPS server.
//!
//! - `certificates`: where the certificate comes from (files or ACME), the
//!   server configs with our ALPN list, and the handshake;
//! - `front`: per connection, the handshake under bounds and the routing of
//!   HTTPS to axum and TURN over TLS to the relay;
//! - `renewal`: what keeps the certificate current (SIGHUP, ACME);
//! - `redirect`: the plain-HTTP port that redirects to HTTPS.

mod certificates;
mod front;
mod redirect;
mod renewal;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use webcall_turn::TurnRelay;

pub use certificates::{first_dns_name, Certificates, TlsIo};
pub use front::{
    Rewind, TlsFront, FIRST_BYTES_TIMEOUT, HANDSHAKE_TIMEOUT, MAX_HANDSHAKES, MAX_HANDSHAKES_PER_IP,
};
pub(crate) use redirect::serve_redirect;

use crate::config::{Config, TlsSettings, TlsSource};
use crate::listener::listen;
use renewal::{keep_certificate_current, Renewal};

/// HTTPS and TURN over TLS, served by the binary itself.
pub(crate) struct Tls {
    pub(crate) front: TlsFront,
    /// The HTTP port speaks TLS (else the certificate serves only `TURN_TLS_LISTEN`).
    pub(crate) https: bool,
    /// Plain HTTP that only redirects to HTTPS.
    redirect: Option<TcpListener>,
    /// `TURN_TLS_LISTEN`, bound.
    pub(crate) turn_listener: Option<TcpListener>,
    /// The DNS name the certificate is for (`PUBLIC_HOST`, else taken from it).
    pub(crate) host: Option<String>,
    renewal: Renewal,
}

impl Tls {
    /// Loads the certificate (or sets up ACME), and binds the redirecting HTTP
    /// port and `TURN_TLS_LISTEN`.
    pub(crate) async fn load(
        config: &Config,
        settings: &TlsSettings,
        relay: Option<&TurnRelay>,
    ) -> anyhow::Result<Self> {
        // One crypto provider for the process (a second install is a harmless no-op).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (certificates, renewal) = match &settings.source {
            TlsSource::Files {
                cert_file,
                key_file,
            } => {
                let server = Certificates::config_from_files(cert_file, key_file)
                    .context("TLS_CERT_FILE/TLS_KEY_FILE")?;
                let rustls = RustlsConfig::from_config(Arc::new(server));
                (
                    Certificates::Files(rustls.clone()),
                    Renewal::Files {
                        config: rustls,
                        cert_file: cert_file.clone(),
                        key_file: key_file.clone(),
                    },
                )
            }
            TlsSource::Acme {
                domains,
                email,
                cache_dir,
                directory,
            } => {
                std::fs::create_dir_all(cache_dir).with_context(|| {
                    format!("ACME_CACHE_DIR: cannot create {}", cache_dir.display())
                })?;
                tracing::info!(?domains, %directory, "ACME: certificates will be obtained and renewed automatically");
                let state = rustls_acme::AcmeConfig::new(domains.clone())
                    .contact(email.iter().map(|e| format!("mailto:{e}")))
                    .cache(rustls_acme::caches::DirCache::new(cache_dir.clone()))
                    .directory(directory)
                    .state();
                let certificates = Certificates::Acme {
                    challenge: state.challenge_rustls_config(),
                    config: Arc::new(Certificates::config_for_acme(state.resolver())),
                };
                (certificates, Renewal::Acme(state))
            }
        };
        let redirect = match settings.redirect_port {
            Some(port) => match listen(SocketAddr::new(config.http.host, port)) {
                Ok(listener) => Some(listener),
                Err(err) => {
                    tracing::warn!(port, error = %err, "cannot bind the HTTP→HTTPS redirect port (HTTP_REDIRECT_PORT); serving HTTPS only");
                    None
                }
            },
            None => None,
        };
        let turn_listener = match config.turn.as_ref().and_then(|t| t.tls_listen) {
            Some(addr) => Some(
                listen(addr)
                    .with_context(|| format!("cannot listen on {addr} (TURN_TLS_LISTEN)"))?,
            ),
            None => None,
        };
        Ok(Self {
            front: TlsFront::new(
                certificates,
                relay.map(TurnRelay::tls_intake),
                config.http.trusted_proxies.clone(),
            ),
            https: settings.https,
            redirect,
            turn_listener,
            host: certificate_host(config, settings),
            renewal,
        })
    }

    /// Starts `TURN_TLS_LISTEN` and certificate renewal, until `stop`; returns the
    /// front and the redirect listener when the HTTP port speaks HTTPS.
    pub(crate) fn start(
        mut self,
        stop: CancellationToken,
    ) -> Option<(TlsFront, Option<TcpListener>)> {
        if let Some(listener) = self.turn_listener.take() {
            tokio::spawn(self.front.clone().serve_turn_only(listener, stop.clone()));
        }
        tokio::spawn(keep_certificate_current(self.renewal, stop));
        self.https.then_some((self.front, self.redirect))
    }
}

/// For `webcall doctor` with no server running: TURN over TLS in front of its
/// temporary `relay`, on the HTTPS port (or `TURN_TLS_LISTEN`), until `stop`.
pub(crate) async fn serve_turn_tls_for_doctor(
    config: &Config,
    settings: &TlsSettings,
    relay: &TurnRelay,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let settings = TlsSettings {
        redirect_port: None,
        ..settings.clone()
    };
    let mut tls = Tls::load(config, &settings, Some(relay)).await?;
    if tls.https {
        let addr = SocketAddr::new(config.http.host, config.http.port);
        let listener = listen(addr).with_context(|| format!("cannot listen on {addr}"))?;
        tokio::spawn(tls.front.clone().serve_turn_only(listener, stop.clone()));
    }
    if let Some(listener) = tls.turn_listener.take() {
        tokio::spawn(tls.front.serve_turn_only(listener, stop));
    }
    Ok(())
}

/// The DNS name `turns:` URLs carry: `PUBLIC_HOST` (which defaults to the ACME
/// domain), else the certificate file's first DNS name.
pub(crate) fn certificate_host(config: &Config, settings: &TlsSettings) -> Option<String> {
    config
        .http
        .public_host
        .clone()
        .or_else(|| match &settings.source {
            TlsSource::Files { cert_file, .. } => first_dns_name(cert_file),
            TlsSource::Acme { .. } => None,
        })
}
