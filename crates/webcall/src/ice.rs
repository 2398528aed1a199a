//! What `/api/v1/webrtc/ice-servers` hands out, put together from the
//! configuration: external STUN and TURN servers (`STUN_SERVERS`, `TURN_URLS`
//! with static or REST credentials) and the embedded relay's, with its `turns:`
//! URL (the relay builds its own `stun:`/`turn:` URLs:
//! [`TurnRelay::ice_servers`]).

use std::sync::Arc;

use webcall_app::ice::{IceServersService, TurnServer};
use webcall_domain::ports::{SystemClock, TurnCredentialMinter};
use webcall_turn::{RestCredentials, StaticCredentials, TurnRelay};

use crate::config::{Config, TurnSettings};
use crate::tls::Tls;

/// What `/api/v1/webrtc/ice-servers` hands out: external STUN servers if named,
/// else the embedded relay's STUN; the embedded relay's TURN (UDP, TCP, and TLS
/// when `turns` is given) with credentials the relay mints, when it runs;
/// external TURN servers with static or REST credentials.
pub(crate) fn ice_servers(
    config: &Config,
    relay: Option<&TurnRelay>,
    turns: Option<String>,
) -> IceServersService {
    let mut stun = config.ice.stun_servers.clone();
    let mut turn = Vec::new();
    if let Some(relay) = relay {
        let own = relay.ice_servers(turns);
        if stun.is_empty() {
            stun.push(own.stun_url);
        }
        turn.push(TurnServer {
            urls: own.turn_urls,
            minter: own.credentials,
        });
    }
    if !config.ice.turn_urls.is_empty() {
        let minter: Option<Arc<dyn TurnCredentialMinter>> =
            match (&config.ice.turn_username, &config.ice.turn_password) {
                (Some(username), Some(password)) => Some(Arc::new(StaticCredentials {
                    username: username.clone(),
                    password: password.clone(),
                })),
                _ => config.ice.turn_secret.clone().map(|secret| {
                    Arc::new(RestCredentials::new(secret, config.ice.turn_credential_ttl)) as _
                }),
            };
        match minter {
            Some(minter) => turn.push(TurnServer {
                urls: config.ice.turn_urls.clone(),
                minter,
            }),
            None => tracing::warn!(
                "TURN_URLS set without TURN_USERNAME/TURN_PASSWORD or TURN_SECRET: not offered"
            ),
        }
    }
    IceServersService::new(stun, turn, Arc::new(SystemClock))
}

/// The port `turns:` URLs carry: `TURN_TLS_PUBLIC_PORT`, else the HTTPS port,
/// else the `TURN_TLS_LISTEN` port.
pub(crate) fn turns_port(
    settings: &TurnSettings,
    https: bool,
    http_port: u16,
    tls_listen_port: Option<u16>,
) -> Option<u16> {
    settings
        .tls_public_port
        .or(https.then_some(http_port))
        .or(tls_listen_port)
        .filter(|port| *port != 0)
}

/// The embedded relay's `turns:` URL: TURN over TLS on the HTTPS port (or
/// `TURN_TLS_LISTEN`), by the DNS name the certificate is for. `None` (with a
/// warning) when there is no such name: browsers check the certificate.
pub(crate) fn turns_url(
    config: &Config,
    relay: Option<&TurnRelay>,
    tls: Option<&Tls>,
    http_port: u16,
) -> Option<String> {
    let (settings, tls) = (config.turn.as_ref()?, tls?);
    relay?;
    let listen_port = match &tls.turn_listener {
        Some(listener) => Some(listener.local_addr().ok()?.port()),
        None => None,
    };
    let port = turns_port(settings, tls.https, http_port, listen_port)?;
    match &tls.host {
        Some(host) => Some(format!("turns:{host}:{port}?transport=tcp")),
        None => {
            tracing::warn!("no DNS name for the certificate (set PUBLIC_HOST): TURN over TLS runs, but turns: is not offered to browsers");
            None
        }
    }
}
