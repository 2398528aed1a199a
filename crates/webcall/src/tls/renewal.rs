//! What keeps the certificate current: certificate files are re-read on
//! SIGHUP; ACME certificates are renewed by rustls-acme while its state is polled.

use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;

use super::Certificates;

/// What keeps the certificate current.
pub(super) enum Renewal {
    /// Certificate files, re-read on SIGHUP.
    Files {
        config: RustlsConfig,
        cert_file: std::path::PathBuf,
        key_file: std::path::PathBuf,
    },
    /// ACME: certificates obtained and renewed by rustls-acme as its state is polled.
    Acme(rustls_acme::AcmeState<std::io::Error>),
}

/// SIGHUP re-reads certificate files (after a renewal; a bad pair is logged and
/// the old one kept); ACME renews by itself while its state is polled.
pub(super) async fn keep_certificate_current(renewal: Renewal, stop: CancellationToken) {
    match renewal {
        Renewal::Files {
            config,
            cert_file,
            key_file,
        } => reload_on_sighup(config, cert_file, key_file, stop).await,
        Renewal::Acme(mut state) => {
            use futures_util::StreamExt;
            loop {
                let event = tokio::select! {
                    () = stop.cancelled() => return,
                    event = state.next() => event,
                };
                match event {
                    Some(Ok(ok)) => tracing::info!(event = ?ok, "ACME"),
                    Some(Err(err)) => tracing::warn!(error = %err, "ACME: will retry"),
                    None => return,
                }
            }
        }
    }
}

/// SIGHUP re-reads the certificate and key (after a renewal); a bad pair is
/// logged and the old one kept.
async fn reload_on_sighup(
    config: RustlsConfig,
    cert_file: std::path::PathBuf,
    key_file: std::path::PathBuf,
    stop: CancellationToken,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            return;
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                received = hangups.recv() => if received.is_none() { return },
            }
            match Certificates::config_from_files(&cert_file, &key_file) {
                Ok(server) => {
                    config.reload_from_config(Arc::new(server));
                    tracing::info!("SIGHUP: TLS certificate reloaded");
                }
                Err(err) => {
                    tracing::error!(
                        error = format!("{err:#}"),
                        "SIGHUP: TLS certificate not reloaded, keeping the old one"
                    )
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (config, cert_file, key_file, stop);
}
