//! The certificate (`TLS_CERT_FILE` / `TLS_KEY_FILE`, or ACME) and how the
//! binary serves HTTPS with it (`HTTPS`, `HTTP_REDIRECT_PORT`).

use super::vars::{problem, ConfigError, Vars};

/// HTTPS settings: where certificates come from, and the plain-HTTP port that
/// only redirects to HTTPS.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub source: TlsSource,
    /// `HTTPS` (default true): the HTTP port speaks TLS (and TURN over TLS on the
    /// same port). False when a reverse proxy in front terminates HTTPS; the
    /// certificate then serves only `TURN_TLS_LISTEN`.
    pub https: bool,
    /// `HTTP_REDIRECT_PORT` (default 80; `off` disables it). Only with `https`.
    pub redirect_port: Option<u16>,
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// `TLS_CERT_FILE` / `TLS_KEY_FILE`, re-read on SIGHUP.
    Files {
        cert_file: std::path::PathBuf,
        key_file: std::path::PathBuf,
    },
    /// `ACME_DOMAIN`: obtained and renewed automatically (TLS-ALPN-01 on this port).
    Acme {
        domains: Vec<String>,
        /// `ACME_EMAIL`.
        email: Option<String>,
        /// `ACME_CACHE_DIR` (default `acme-cache`): account key and certificates.
        cache_dir: std::path::PathBuf,
        /// `ACME_DIRECTORY`, else Let's Encrypt (its staging with `ACME_STAGING=true`).
        directory: String,
    },
}

/// Let's Encrypt's ACME directories.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// Default `HTTP_REDIRECT_PORT`.
const DEFAULT_REDIRECT_PORT: u16 = 80;

/// Default `ACME_CACHE_DIR` (relative to the working directory).
const DEFAULT_ACME_CACHE_DIR: &str = "acme-cache";

/// The TLS settings, or `None` without a certificate.
pub(super) fn parse(vars: &Vars) -> Result<Option<TlsSettings>, ConfigError> {
    let https = vars.flag("HTTPS", true)?;
    let files = match (vars.get("TLS_CERT_FILE"), vars.get("TLS_KEY_FILE")) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(TlsSource::Files {
            cert_file: cert.into(),
            key_file: key.into(),
        }),
        (Some(_), None) => {
            return Err(problem(
                "TLS_KEY_FILE",
                "must be set together with TLS_CERT_FILE",
            ))
        }
        (None, Some(_)) => {
            return Err(problem(
                "TLS_CERT_FILE",
                "must be set together with TLS_KEY_FILE",
            ))
        }
    };
    let acme = match vars.get("ACME_DOMAIN") {
        None => None,
        Some(_) => {
            let domains = vars.list("ACME_DOMAIN");
            if domains.is_empty()
                || domains
                    .iter()
                    .any(|d| d.contains('/') || d.contains(':') || !d.contains('.'))
            {
                return Err(problem(
                    "ACME_DOMAIN",
                    "must be a comma list of domain names, e.g. call.example.org",
                ));
            }
            let staging = vars.flag("ACME_STAGING", false)?;
            let directory = vars.get("ACME_DIRECTORY").unwrap_or_else(|| {
                if staging {
                    LETS_ENCRYPT_STAGING
                } else {
                    LETS_ENCRYPT
                }
                .to_owned()
            });
            if !directory.starts_with("https://") {
                return Err(problem("ACME_DIRECTORY", "must be an https:// URL"));
            }
            Some(TlsSource::Acme {
                domains,
                email: vars.get("ACME_EMAIL"),
                cache_dir: vars
                    .get("ACME_CACHE_DIR")
                    .unwrap_or_else(|| DEFAULT_ACME_CACHE_DIR.to_owned())
                    .into(),
                directory,
            })
        }
    };
    let source = match (files, acme) {
        (None, None) => return Ok(None),
        (Some(files), None) => files,
        (None, Some(acme)) => acme,
        (Some(_), Some(_)) => {
            return Err(problem(
                "ACME_DOMAIN",
                "set either ACME_DOMAIN or TLS_CERT_FILE/TLS_KEY_FILE, not both",
            ))
        }
    };
    let redirect_port = match vars.get("HTTP_REDIRECT_PORT").as_deref() {
        _ if !https => None,
        None => Some(DEFAULT_REDIRECT_PORT),
        Some("off") => None,
        Some(port) => Some(
            port.parse()
                .map_err(|_| problem("HTTP_REDIRECT_PORT", "must be a port number or off"))?,
        ),
    };
    Ok(Some(TlsSettings {
        source,
        https,
        redirect_port,
    }))
}
