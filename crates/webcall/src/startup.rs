//! The composition root: [`Application::build`] wires the concrete adapters
//! (SQL storage, JWT, argon2, Redis, the TURN relay, the media end of routed
//! calls and its recorder) into the use cases and the HTTP layer and binds
//! the ports; [`Application::run_until`] serves them until shutdown, then
//! drains. [`migrate`] is `webcall migrate`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use webcall_app::accounts::{Accounts, AccountsDeps};
use webcall_app::admin::{Admin, AdminDeps, AdminLimits};
use webcall_app::attachments::Attachments;
use webcall_app::auth_cache::{CachedRevocations, CachedUsers};
use webcall_app::guests::{Guests, GuestsDeps, GUEST_TOKEN_LIFETIME};
use webcall_app::hub::{Hub, HubDeps};
use webcall_app::operations::OperationsDeps;
use webcall_app::presence::InProcessPresence;
use webcall_app::recordings::RecordingsService;
use webcall_app::room_access::{AccessDeps, AccessService};
use webcall_app::rooms::{RoomDeps, RoomService};
use webcall_app::throttle::ThrottleConfig;
use webcall_auth::{Argon2Hasher, GuestJwt, JwtCodec};
use webcall_db::SqlStore;
use webcall_domain::admin::AdminRepository;
use webcall_domain::media::{MediaRouter, Recorder};
use webcall_domain::ports::{
    Clock, Cluster, HealthCheck, PasswordHasher, Presence, RelayControl, RotatingKey, SystemClock,
    TokenRevocations, UserRepository,
};
use webcall_http::{AppState, HttpOptions, TrustedProxies};
use webcall_record::DiskRecorder;
use webcall_redis::{RedisBus, RedisBusTimings};
use webcall_sfu::Sfu;
use webcall_turn::TurnRelay;

use crate::config::Config;
use crate::{connections, files, ice, listener, media, metrics, operations, relay, tls};

/// How many accounts a server remembers by id (a few hundred bytes each).
const ACCOUNTS_CACHED: usize = 4096;

/// A server that is bound and migrated, ready to run.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    store: SqlStore,
    relay: Option<Arc<TurnRelay>>,
    /// The media end of routed calls, when it runs.
    sfu: Option<Arc<Sfu>>,
    /// Recordings of routed calls (the hub writes them, the REST side lists them).
    recorder: Arc<DiskRecorder>,
    hub: Arc<Hub>,
    /// Files in rooms' chat (the tests run the sweep through it).
    attachments: Arc<Attachments>,
    /// `METRICS_LISTEN`, bound, and what it serves.
    metrics: Option<(TcpListener, axum::Router)>,
    /// Stops background tasks (the Redis bus) on shutdown.
    background: CancellationToken,
    tls: Option<tls::Tls>,
    connections: Arc<connections::ConnectionLimits>,
}

impl Application {
    /// Opens (and migrates) the database, wires the adapters, binds the HTTP port.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let store = SqlStore::connect_and_migrate(config.storage.database_url.expose_secret())
            .await
            .with_context(|| format!("database {}", config.storage.database_display()))?;
        let jwt_lifetime =
            chrono::Duration::from_std(config.auth.jwt_expires).context("JWT_EXPIRES_MIN")?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let admin_emails: Vec<String> = config
            .auth
            .admin_emails
            .iter()
            .map(|email| email.normalized())
            .collect();
        let promoted = store
            .promote_emails(&admin_emails)
            .await
            .context("ADMIN_EMAILS")?;
        if promoted > 0 {
            tracing::info!(promoted, "accounts in ADMIN_EMAILS made admins");
        }
        // Accounts are never renamed, and an admin's change makes every instance
        // forget the account (`Hub::on_account_change` below), so opening a
        // call can take the user from memory.
        let cached_users = Arc::new(CachedUsers::new(
            Arc::new(store.clone()),
            clock.clone(),
            ACCOUNTS_CACHED,
        ));
        cached_users.preload().await.context("loading accounts")?;
        let users: Arc<dyn UserRepository> = cached_users.clone();
        let revocations: Arc<dyn TokenRevocations> = if config.storage.redis_url.is_none() {
            // The only instance sees every logout itself: its revocations are held in
            // memory. With Redis, other instances share the database and every check
            // asks it.
            Arc::new(
                CachedRevocations::load(Arc::new(store.clone()), users.clone(), clock.clone())
                    .await
                    .context("loading revoked tokens")?,
            )
        } else {
            Arc::new(store.clone())
        };
        let jwt = Arc::new(JwtCodec::new(&config.auth.jwt_secret, jwt_lifetime));
        let hasher: Arc<dyn PasswordHasher> = Arc::new(Argon2Hasher::new());
        let accounts = Accounts::new(
            AccountsDeps {
                users: users.clone(),
                revocations,
                hasher: hasher.clone(),
                tokens: jwt.clone(),
                clock: clock.clone(),
            },
            &config.auth.registration_secret,
            ThrottleConfig::default(),
        )
        .with_admin_emails(&config.auth.admin_emails);
        // Bound before the relay, which lets clients through to it.
        let media = media::start(config).await?;
        let relay = match &config.turn {
            Some(settings) => Some(Arc::new(
                relay::start(config, settings, media.candidates.clone()).await?,
            )),
            None => None,
        };
        let connections = connections::ConnectionLimits::new(
            config.http.max_connections_per_ip,
            config.http.trusted_proxies.clone(),
            config.http.idle_timeout,
            config.http.header_timeout,
        );
        let tls = match &config.tls {
            Some(settings) => {
                let mut tls = tls::Tls::load(config, settings, relay.as_deref()).await?;
                tls.front = tls.front.with_connection_limits(connections.clone());
                Some(tls)
            }
            None => None,
        };
        let addr = SocketAddr::new(config.http.host, config.http.port);
        let listener = listener::listen(addr)
            .with_context(|| format!("cannot listen on {addr} (HOST/PORT)"))?;
        let turns = ice::turns_url(
            config,
            relay.as_deref(),
            tls.as_ref(),
            listener.local_addr()?.port(),
        );
        let ice = Arc::new(ice::ice_servers(config, relay.as_deref(), turns));
        let redis = match &config.storage.redis_url {
            Some(url) => Some(
                RedisBus::connect(
                    url.expose_secret(),
                    &config.storage.redis_prefix,
                    RedisBusTimings::within(config.ws.idle_timeout),
                )
                .await
                .context("REDIS_URL")?,
            ),
            None => None,
        };
        let presence: Arc<dyn Presence> = match &redis {
            Some(redis) => Arc::new(redis.clone()),
            None => Arc::new(InProcessPresence::default()),
        };
        let rooms = Arc::new(RoomService::new(
            RoomDeps {
                rooms: Arc::new(store.clone()),
                chat: Arc::new(store.clone()),
                presence: presence.clone(),
                clock: Arc::new(SystemClock),
            },
            config.rooms,
        ));
        let admin_presence = presence.clone();
        let hub = Hub::new(
            HubDeps {
                rooms: rooms.clone(),
                chat: Arc::new(store.clone()),
                moderation: Arc::new(store.clone()),
                access: Arc::new(store.clone()),
                presence,
                cluster: redis
                    .as_ref()
                    .map(|redis| Arc::new(redis.clone()) as Arc<dyn Cluster>),
                ice: ice.clone(),
                clock: Arc::new(SystemClock),
                media: media.sfu.clone().map(|sfu| sfu as Arc<dyn MediaRouter>),
                recorder: Some(media.recorder.clone() as Arc<dyn Recorder>),
            },
            config.signaling.clone(),
        );
        hub.on_account_change(move |user| cached_users.forget(user));
        let access = Arc::new(AccessService::new(
            AccessDeps {
                rooms: rooms.clone(),
                access: Arc::new(store.clone()),
                moderation: Arc::new(store.clone()),
                users: users.clone(),
                hasher: hasher.clone(),
                presence: admin_presence.clone(),
                clock: clock.clone(),
                hub: hub.clone(),
            },
            ThrottleConfig::default(),
        ));
        let admin = Arc::new(Admin::new(
            AdminDeps {
                users: users.clone(),
                store: Arc::new(store.clone()),
                rooms: rooms.clone(),
                hub: hub.clone(),
                presence: admin_presence.clone(),
                hasher,
                clock,
            },
            AdminLimits::default(),
        ));
        let background = CancellationToken::new();
        let attachments = files::start(
            &config.attachments,
            files::FilesWiring {
                store: store.clone(),
                access: access.clone(),
                rooms: rooms.clone(),
                presence: admin_presence,
                hub: hub.clone(),
            },
            background.clone(),
        )?;
        if let Some(redis) = &redis {
            redis
                .start(hub.clone(), background.clone())
                .await
                .context("REDIS_URL")?;
            tracing::info!(instance = redis.instance(), "sharing rooms through Redis");
        }
        let operations = operations::start(
            OperationsDeps {
                settings: Arc::new(store.clone()),
                relay: relay.clone().map(|relay| relay as Arc<dyn RelayControl>),
                turn_key: relay
                    .as_ref()
                    .map(|relay| relay.credentials() as Arc<dyn RotatingKey>),
                jwt_key: jwt,
                hub: hub.clone(),
                admin: admin.clone(),
                users,
                clock: Arc::new(SystemClock),
                instance: redis
                    .as_ref()
                    .map_or_else(|| "local".to_owned(), |redis| redis.instance().to_owned()),
            },
            background.clone(),
        )
        .await?;
        let mut health: Vec<Arc<dyn HealthCheck>> = vec![Arc::new(store.clone())];
        if let Some(relay) = &relay {
            health.push(relay.clone());
        }
        if let Some(redis) = &redis {
            health.push(Arc::new(redis.clone()));
        }
        let render = metrics::render(hub.clone(), relay.clone());
        let metrics = match config.metrics.listen {
            Some(addr) => {
                let listener = listener::listen(addr)
                    .with_context(|| format!("cannot listen on {addr} (METRICS_LISTEN)"))?;
                if !addr.ip().is_loopback() && config.metrics.token.is_none() {
                    tracing::warn!(%addr, "metrics are served beyond this host without METRICS_TOKEN: anyone who reaches the address can read them");
                }
                let router = webcall_http::metrics::router(render, config.metrics.token.clone());
                Some((listener, router))
            }
            None => None,
        };
        let guests = Guests::new(GuestsDeps {
            invites: Arc::new(store.clone()),
            rooms: rooms.clone(),
            tokens: Arc::new(GuestJwt::new(&config.auth.jwt_secret, GUEST_TOKEN_LIFETIME)),
            clock: Arc::new(SystemClock),
        });
        // The hub's recorder: a recording runs in the recorder that started it,
        // and only that one knows it is running.
        let recordings = Arc::new(RecordingsService::new(
            media.recorder.clone() as Arc<dyn Recorder>,
            rooms.clone(),
        ));
        let state = AppState {
            accounts: Arc::new(accounts),
            admin,
            access,
            operations,
            guests: Arc::new(guests),
            attachments: attachments.clone(),
            recordings: Some(recordings),
            ice,
            rooms,
            hub: hub.clone(),
            ws: config.ws,
            ws_users: Arc::default(),
            health: health.into(),
            trusted_proxies: Arc::new(TrustedProxies::new(config.http.trusted_proxies.clone())),
        };
        let options = HttpOptions {
            cors_origins: config.http.cors_origins.clone(),
        };
        let router = webcall_http::router(state, &options);
        Ok(Self {
            tls,
            listener,
            router,
            store,
            relay,
            sfu: media.sfu,
            recorder: media.recorder,
            hub,
            attachments,
            metrics,
            background,
            connections,
        })
    }

    /// Where `/metrics` is served (`METRICS_LISTEN`), unless it is off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        let (listener, _) = self.metrics.as_ref()?;
        listener.local_addr().ok()
    }

    /// The embedded relay, when it runs.
    pub fn relay(&self) -> Option<&TurnRelay> {
        self.relay.as_deref()
    }

    /// A handle on the embedded relay that outlives `run_until` taking `self`.
    pub fn relay_handle(&self) -> Option<Arc<TurnRelay>> {
        self.relay.clone()
    }

    /// Where the media end of routed calls listens, when it runs.
    pub fn sfu_addr(&self) -> Option<SocketAddr> {
        self.sfu.as_ref().map(|sfu| sfu.local_addr())
    }

    /// Recordings of routed calls (for the REST side, which lists and serves them).
    pub fn recorder(&self) -> Arc<DiskRecorder> {
        self.recorder.clone()
    }

    /// Files in rooms' chat: the tests call its sweep with a time of their
    /// choosing.
    pub fn attachments(&self) -> Arc<Attachments> {
        self.attachments.clone()
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
        if let Some((listener, router)) = self.metrics {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "serving metrics");
            }
            let stop = self.background.clone();
            tokio::spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(err) = served {
                    tracing::error!(error = %err, "metrics listener failed");
                }
            });
        }
        let hub = self.hub.clone();
        // On shutdown, WebSocket peers get a 1001 close (they reconnect elsewhere or
        // later); without it their upgraded connections would hold the server open.
        let shutdown = async move {
            shutdown.await;
            hub.shutdown();
        };
        let tls = self.tls.and_then(|tls| tls.start(self.background.clone()));
        match tls {
            None => {
                let background = self.background.clone();
                connections::serve(self.listener, self.router, self.connections, async move {
                    shutdown.await;
                    background.cancel();
                })
                .await
            }
            Some((front, redirect)) => {
                let port = self.listener.local_addr()?.port();
                let handle = axum_server::Handle::new();
                let stopping = handle.clone();
                let background = self.background.clone();
                tokio::spawn(async move {
                    shutdown.await;
                    background.cancel();
                    stopping.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
                });
                if let Some(redirect) = redirect {
                    tokio::spawn(tls::serve_redirect(redirect, port, self.background.clone()));
                }
                let mut server = axum_server::from_tcp(self.listener.into_std()?)?;
                self.connections.http_builder(server.http_builder());
                server
                    .acceptor(front)
                    .handle(handle)
                    .serve(
                        self.router
                            .into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .await
                    .context("HTTPS server")?;
            }
        }
        if let Some(relay) = &self.relay {
            relay.close().await;
        }
        if let Some(sfu) = &self.sfu {
            sfu.shutdown();
        }
        self.background.cancel();
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Applies migrations and returns (`webcall migrate`).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    SqlStore::connect_and_migrate(config.storage.database_url.expose_secret())
        .await
        .with_context(|| format!("database {}", config.storage.database_display()))?
        .close()
        .await;
    Ok(())
}
