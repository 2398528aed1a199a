//! Configuration: read once at start-up from the environment (and an optional
//! `.env` file) into [`Config`]. This is the only module that reads environment
//! variables. Secrets are `SecretString`s: they never reach a log or `Debug` output.
//!
//! [`Config`] has a section per part of the server. Where a crate has a
//! settings struct, the section is that struct ([`WsOptions`],
//! [`SignalingConfig`], [`RoomLimits`]) and its defaults are the struct's
//! `Default`; the embedded relay's defaults are [`TurnConfig`]'s constants.
//! Sections only the binary uses keep their defaults beside them.
//!
//! Layout: `vars` (reading one variable: empty is unset, defaults, errors that
//! name it), `auth` (`APP_ENV`, secrets, tokens), `http` (the public port and
//! the metrics listener), `storage`, `signaling` (the socket, the hub, rooms),
//! `turn` (ICE servers and the embedded relay), `tls`, `attachments` (files
//! in rooms' chat), `media` (routed calls and recordings); tests in `tests`.
//!
//! [`TurnConfig`]: webcall_turn::TurnConfig

mod attachments;
mod auth;
mod http;
mod media;
mod signaling;
mod storage;
#[cfg(test)]
mod tests;
mod tls;
mod turn;
mod vars;

use std::collections::HashMap;

use webcall_app::hub::SignalingConfig;
use webcall_app::rooms::RoomLimits;
use webcall_http::ws::WsOptions;

pub use attachments::AttachmentSettings;
pub use auth::{random_secret, AppEnv, AuthSettings};
pub use http::{HttpSettings, MetricsSettings};
pub use media::{MediaSettings, DEFAULT_SFU_UDP_PORT};
pub use storage::StorageSettings;
pub use tls::{TlsSettings, TlsSource, LETS_ENCRYPT, LETS_ENCRYPT_STAGING};
pub use turn::{IceSettings, TurnSettings};
pub use vars::ConfigError;

use auth::Secrets;
use vars::{problem, Vars};

/// Everything WebCall reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub env: AppEnv,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub storage: StorageSettings,
    /// The signaling socket.
    pub ws: WsOptions,
    /// The hub: peers per room, resuming.
    pub signaling: SignalingConfig,
    /// Rooms one account may own and create.
    pub rooms: RoomLimits,
    /// STUN/TURN servers handed to browsers, and TURN credentials.
    pub ice: IceSettings,
    /// The embedded TURN/STUN relay, when it runs.
    pub turn: Option<TurnSettings>,
    /// A certificate (`TLS_CERT_FILE` / `TLS_KEY_FILE`, or ACME): HTTPS straight
    /// from the binary (unless `HTTPS=false`) and TURN over TLS.
    pub tls: Option<TlsSettings>,
    pub metrics: MetricsSettings,
    /// Files in rooms' chat: where, how large, how many, how long.
    pub attachments: AttachmentSettings,
    /// Routed calls (the server's media end) and their recordings.
    pub media: MediaSettings,
    /// `RUST_LOG`, when set.
    pub log_filter: Option<String>,
    /// Secrets that were missing and generated for this run (dev only).
    pub generated: Vec<&'static str>,
}

impl Config {
    /// Reads `.env` (if present; real environment variables win) and the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        if let Err(err) = dotenvy::dotenv() {
            if !err.not_found() {
                return Err(problem(".env", err.to_string()));
            }
        }
        Self::from_vars(&std::env::vars().collect())
    }

    /// Builds a configuration from a map of variables (tests use this directly).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let vars = Vars(vars);
        let env = AppEnv::parse(&vars)?;
        let mut secrets = Secrets::new(env);
        let auth = AuthSettings::parse(&vars, &mut secrets)?;
        let (ice, turn) = turn::parse(&vars, &mut secrets)?;
        // Every missing or weak secret at once, not one per attempt.
        secrets.check()?;
        let ws = signaling::ws(&vars)?;
        let mut signaling = signaling::signaling(&vars)?;
        let rooms = signaling::rooms(&vars)?;
        let metrics = MetricsSettings::parse(&vars)?;
        let tls = tls::parse(&vars)?;
        if let Some(settings) = &turn {
            if settings.tls_listen.is_some() && tls.is_none() {
                return Err(problem(
                    "TURN_TLS_LISTEN",
                    "needs a certificate: set TLS_CERT_FILE/TLS_KEY_FILE or ACME_DOMAIN",
                ));
            }
        }
        let http = HttpSettings::parse(&vars, ws.ping_interval, tls.as_ref())?;
        let storage = StorageSettings::parse(&vars)?;
        let attachments = AttachmentSettings::parse(
            &vars,
            secrecy::ExposeSecret::expose_secret(&storage.database_url),
        )?;
        let data_dir =
            attachments::default_dir(secrecy::ExposeSecret::expose_secret(&storage.database_url));
        let media = MediaSettings::parse(&vars, &mut signaling, &data_dir)?;
        Ok(Self {
            env,
            http,
            auth,
            storage,
            ws,
            signaling,
            rooms,
            ice,
            turn,
            tls,
            metrics,
            attachments,
            media,
            log_filter: vars.get("RUST_LOG"),
            generated: secrets.generated,
        })
    }
}
