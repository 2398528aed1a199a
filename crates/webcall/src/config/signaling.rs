//! Calls: the signaling socket ([`WsOptions`]: `WS_PING_SECS`,
//! `WS_IDLE_TIMEOUT_SECS`, `WS_MAX_PER_USER`), the hub ([`SignalingConfig`]:
//! `ROOM_MAX_PEERS`, `WS_RESUME_GRACE_SECS`) and rooms ([`RoomLimits`]:
//! `ROOMS_PER_USER`, `ROOM_CREATIONS_PER_HOUR`). Each section is the struct
//! its crate uses, and its defaults are that struct's `Default`.

use webcall_app::hub::SignalingConfig;
use webcall_app::rooms::RoomLimits;
use webcall_http::ws::WsOptions;

use super::vars::{problem, ConfigError, Vars};

pub(super) fn ws(vars: &Vars) -> Result<WsOptions, ConfigError> {
    let defaults = WsOptions::default();
    let ping_interval = vars.secs("WS_PING_SECS", defaults.ping_interval)?;
    let idle_timeout = vars.secs("WS_IDLE_TIMEOUT_SECS", defaults.idle_timeout)?;
    if idle_timeout <= ping_interval {
        return Err(problem(
            "WS_IDLE_TIMEOUT_SECS",
            "must be longer than WS_PING_SECS",
        ));
    }
    let max_per_user = match vars.parse_or("WS_MAX_PER_USER", defaults.max_per_user)? {
        0 => return Err(problem("WS_MAX_PER_USER", "must be at least 1")),
        max => max,
    };
    Ok(WsOptions {
        ping_interval,
        idle_timeout,
        max_per_user,
        ..defaults
    })
}

pub(super) fn signaling(vars: &Vars) -> Result<SignalingConfig, ConfigError> {
    let defaults = SignalingConfig::default();
    let max_peers: usize = vars.parse_or("ROOM_MAX_PEERS", defaults.max_peers)?;
    if max_peers < 2 {
        return Err(problem("ROOM_MAX_PEERS", "must be at least 2"));
    }
    Ok(SignalingConfig {
        max_peers,
        resume_grace: vars.secs("WS_RESUME_GRACE_SECS", defaults.resume_grace)?,
        ..defaults
    })
}

pub(super) fn rooms(vars: &Vars) -> Result<RoomLimits, ConfigError> {
    let defaults = RoomLimits::default();
    let per_user: usize = vars.parse_or("ROOMS_PER_USER", defaults.per_user)?;
    if per_user < 1 {
        return Err(problem("ROOMS_PER_USER", "must be at least 1"));
    }
    let creations_per_hour: usize =
        vars.parse_or("ROOM_CREATIONS_PER_HOUR", defaults.creations_per_hour)?;
    if creations_per_hour < 1 {
        return Err(problem("ROOM_CREATIONS_PER_HOUR", "must be at least 1"));
    }
    Ok(RoomLimits {
        per_user,
        creations_per_hour,
    })
}
