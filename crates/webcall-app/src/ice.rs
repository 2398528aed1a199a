//! The ICE servers a browser should use: our embedded STUN/TURN relay and/or the
//! external servers named in the configuration, with fresh TURN credentials for
//! the calling user.

use std::sync::Arc;

use webcall_domain::model::{IceServer, IceServers, UserId};
use webcall_domain::ports::{Clock, TurnCredentialMinter};

/// Default `ttl` reported when credentials do not expire (static external
/// credentials): how often a client should re-fetch anyway.
const STATIC_TTL_SECS: u64 = 24 * 3600;

/// A TURN server entry: its URLs and who mints credentials for it.
pub struct TurnServer {
    pub urls: Vec<String>,
    pub minter: Arc<dyn TurnCredentialMinter>,
}

/// Builds `IceServers` for a user.
pub struct IceServersService {
    stun_urls: Vec<String>,
    turn: Vec<TurnServer>,
    clock: Arc<dyn Clock>,
}

impl IceServersService {
    pub fn new(stun_urls: Vec<String>, turn: Vec<TurnServer>, clock: Arc<dyn Clock>) -> Self {
        Self {
            stun_urls,
            turn,
            clock,
        }
    }

    /// STUN first, then each TURN server with credentials minted for `user`.
    /// `ttl_secs` is the shortest lifetime of any credential inside.
    pub fn for_user(&self, user: UserId) -> IceServers {
        let now = self.clock.now();
        let mut servers = Vec::new();
        if !self.stun_urls.is_empty() {
            servers.push(IceServer {
                urls: self.stun_urls.clone(),
                credentials: None,
            });
        }
        for turn in &self.turn {
            servers.push(IceServer {
                urls: turn.urls.clone(),
                credentials: Some(turn.minter.mint(user, now)),
            });
        }
        let ttl_secs = self
            .turn
            .iter()
            .filter_map(|t| t.minter.ttl_secs())
            .min()
            .unwrap_or(STATIC_TTL_SECS);
        IceServers { servers, ttl_secs }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use webcall_domain::model::TurnCredentials;
    use webcall_domain::ports::SystemClock;

    use super::*;

    struct Fixed(&'static str, Option<u64>);

    impl TurnCredentialMinter for Fixed {
        fn mint(&self, user: UserId, _now: DateTime<Utc>) -> TurnCredentials {
            TurnCredentials {
                username: format!("{}:{user}", self.0),
                credential: "c".into(),
            }
        }
        fn ttl_secs(&self) -> Option<u64> {
            self.1
        }
    }

    #[test]
    fn stun_comes_first_and_each_turn_server_gets_credentials_for_the_user() {
        let service = IceServersService::new(
            vec!["stun:a:3478".into()],
            vec![
                TurnServer {
                    urls: vec!["turn:a:3478?transport=udp".into()],
                    minter: Arc::new(Fixed("x", Some(600))),
                },
                TurnServer {
                    urls: vec!["turn:b:3478".into()],
                    minter: Arc::new(Fixed("y", None)),
                },
            ],
            Arc::new(SystemClock),
        );
        let user = UserId::new_random();
        let ice = service.for_user(user);
        assert_eq!(ice.servers.len(), 3);
        assert!(ice.servers[0].credentials.is_none());
        assert_eq!(
            ice.servers[1].credentials.as_ref().unwrap().username,
            format!("x:{user}")
        );
        assert_eq!(ice.ttl_secs, 600);
    }

    #[test]
    fn without_any_server_the_list_is_empty() {
        let ice = IceServersService::new(vec![], vec![], Arc::new(SystemClock))
            .for_user(UserId::new_random());
        assert!(ice.servers.is_empty());
        assert_eq!(ice.ttl_secs, STATIC_TTL_SECS);
    }
}
