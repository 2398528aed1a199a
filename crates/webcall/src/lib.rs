//! The `webcall` server: configuration, logging, and the one place where concrete
//! adapters (SQL storage, JWT, argon2) are wired into the use cases and the HTTP layer.
//!
//! Start at [`Application::build`]; `main.rs` only parses the command line.

pub mod config;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use webcall_app::accounts::{Accounts, AccountsDeps};
use webcall_app::throttle::ThrottleConfig;
use webcall_auth::{Argon2Hasher, JwtCodec};
use webcall_db::SqlStore;
use webcall_domain::ports::{HealthCheck, SystemClock};
use webcall_http::{AppState, HttpOptions, TrustedProxies};

pub use config::Config;

/// A server that is bound and migrated, ready to run.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    store: SqlStore,
}

impl Application {
    /// Opens (and migrates) the database, wires the adapters, binds the HTTP port.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let store = SqlStore::connect_and_migrate(config.database_url.expose_secret())
            .await
            .with_context(|| format!("database {}", config.database_display()))?;
        let jwt_lifetime =
            chrono::Duration::from_std(config.jwt_expires).context("JWT_EXPIRES_MIN")?;
        let accounts = Accounts::new(
            AccountsDeps {
                users: Arc::new(store.clone()),
                revocations: Arc::new(store.clone()),
                hasher: Arc::new(Argon2Hasher::new()),
                tokens: Arc::new(JwtCodec::new(&config.jwt_secret, jwt_lifetime)),
                clock: Arc::new(SystemClock),
            },
            &config.registration_secret,
            ThrottleConfig::default(),
        );
        let health: Vec<Arc<dyn HealthCheck>> = vec![Arc::new(store.clone())];
        let state = AppState {
            accounts: Arc::new(accounts),
            health: health.into(),
            trusted_proxies: Arc::new(TrustedProxies::new(config.trusted_proxies.clone())),
        };
        let options = HttpOptions {
            cors_origins: config.cors_origins.clone(),
        };
        let router = webcall_http::router(state, &options);

        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (HOST/PORT)"))?;
        Ok(Self {
            listener,
            router,
            store,
        })
    }

    /// The bound address (useful with `PORT=0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then drains requests in flight and closes
    /// the database pool.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr(), "listening");
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await
            .context("HTTP server")?;
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Applies migrations and returns (`webcall migrate`).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    SqlStore::connect_and_migrate(config.database_url.expose_secret())
        .await
        .with_context(|| format!("database {}", config.database_display()))?
        .close()
        .await;
    Ok(())
}
