use std::sync::Arc;

use webcall_app::accounts::Accounts;
use webcall_app::ice::IceServersService;
use webcall_app::signaling::Hub;
use webcall_domain::ports::HealthCheck;

use crate::ws::WsOptions;
use crate::TrustedProxies;

/// Everything a handler may reach, cloned per request (all `Arc`s).
#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<Accounts>,
    pub ice: Arc<IceServersService>,
    pub hub: Arc<Hub>,
    pub ws: WsOptions,
    /// What `/readyz` checks.
    pub health: Arc<[Arc<dyn HealthCheck>]>,
    pub trusted_proxies: Arc<TrustedProxies>,
}
