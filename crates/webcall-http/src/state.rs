use std::sync::Arc;

use webcall_app::accounts::Accounts;
use webcall_app::hub::Hub;
use webcall_app::ice::IceServersService;
use webcall_app::rooms::RoomService;
use webcall_domain::ports::HealthCheck;

use crate::ws::{WsOptions, WsUsers};
use crate::TrustedProxies;

/// Everything a handler may reach, cloned per request (all `Arc`s).
#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<Accounts>,
    pub ice: Arc<IceServersService>,
    pub rooms: Arc<RoomService>,
    pub hub: Arc<Hub>,
    pub ws: WsOptions,
    /// Signaling sockets open per account here.
    pub ws_users: Arc<WsUsers>,
    /// What `/readyz` checks.
    pub health: Arc<[Arc<dyn HealthCheck>]>,
    pub trusted_proxies: Arc<TrustedProxies>,
}
