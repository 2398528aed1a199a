//! Failed-login throttling: a sliding window of failures per account and per
//! client address. An account is refused for a while after `max_failures` wrong
//! passwords; an address is refused after its own (higher) limit, so one attacker
//! cannot lock out everybody behind a shared proxy, and cannot spray accounts.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// How many failures a key may have inside the window.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures: usize,
    pub window: Duration,
}

/// Limits for accounts and for addresses.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    pub per_account: ThrottlePolicy,
    pub per_address: ThrottlePolicy,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        let window = Duration::from_secs(15 * 60);
        Self {
            per_account: ThrottlePolicy {
                max_failures: 5,
                window,
            },
            per_address: ThrottlePolicy {
                max_failures: 30,
                window,
            },
        }
    }
}

/// Counts failed logins; see the module docs.
pub struct LoginThrottle {
    accounts: Window,
    addresses: Window,
}

impl LoginThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            accounts: Window::new(config.per_account),
            addresses: Window::new(config.per_address),
        }
    }

    /// `Err(retry_after)` when either the account or the address is over its limit.
    pub fn check(
        &self,
        account: &str,
        address: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<(), Duration> {
        let by_account = self.accounts.retry_after(account, now);
        let by_address = self.addresses.retry_after(&address_key(address), now);
        match by_account.max(by_address) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, account: &str, address: IpAddr, now: DateTime<Utc>) {
        self.accounts.record(account, now);
        self.addresses.record(&address_key(address), now);
    }

    /// A successful login forgives the account's earlier failures (not the address's).
    pub fn record_success(&self, account: &str) {
        self.accounts.clear(account);
    }
}

/// IPv6 clients usually own a whole /64, so that is what counts as one address.
fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Failure times per key, each list capped at `max_failures` and swept of
/// entries older than the window whenever the map has doubled since the last sweep.
struct Window {
    policy: ThrottlePolicy,
    inner: Mutex<WindowState>,
}

struct WindowState {
    failures: HashMap<String, VecDeque<DateTime<Utc>>>,
    sweep_at: usize,
}

const INITIAL_SWEEP_AT: usize = 1024;

impl Window {
    fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            inner: Mutex::new(WindowState {
                failures: HashMap::new(),
                sweep_at: INITIAL_SWEEP_AT,
            }),
        }
    }

    fn window(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.policy.window).unwrap_or(chrono::Duration::MAX)
    }

    fn retry_after(&self, key: &str, now: DateTime<Utc>) -> Option<Duration> {
        let state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let times = state.failures.get(key)?;
        let recent = times.iter().filter(|t| now - **t < self.window()).count();
        if recent < self.policy.max_failures {
            return None;
        }
        // Locked until the oldest failure that still counts leaves the window.
        let oldest = times.iter().find(|t| now - **t < self.window())?;
        let wait = (*oldest + self.window() - now).to_std().unwrap_or_default();
        Some(wait.max(Duration::from_secs(1)))
    }

    fn record(&self, key: &str, now: DateTime<Utc>) {
        let window = self.window();
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let times = state.failures.entry(key.to_owned()).or_default();
        times.push_back(now);
        while times.len() > self.policy.max_failures {
            times.pop_front();
        }
        if state.failures.len() >= state.sweep_at {
            state
                .failures
                .retain(|_, times| times.back().is_some_and(|t| now - *t < window));
            state.sweep_at = (state.failures.len() * 2).max(INITIAL_SWEEP_AT);
        }
    }

    fn clear(&self, key: &str) {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        state.failures.remove(key);
    }

    #[cfg(test)]
    fn tracked_keys(&self) -> usize {
        self.inner.lock().unwrap().failures.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_failures: usize) -> ThrottlePolicy {
        ThrottlePolicy {
            max_failures,
            window: Duration::from_secs(60),
        }
    }

    fn throttle(per_account: usize, per_address: usize) -> LoginThrottle {
        LoginThrottle::new(ThrottleConfig {
            per_account: policy(per_account),
            per_address: policy(per_address),
        })
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7));

    #[test]
    fn account_is_locked_after_max_failures_until_the_window_passes() {
        let throttle = throttle(3, 100);
        let t0 = Utc::now();
        for i in 0..3 {
            assert!(throttle.check("alice", IP, t0).is_ok(), "attempt {i}");
            throttle.record_failure("alice", IP, t0);
        }
        let wait = throttle.check("alice", IP, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(60));
        let later = t0 + chrono::Duration::seconds(45);
        assert_eq!(
            throttle.check("alice", IP, later).unwrap_err(),
            Duration::from_secs(15)
        );
        assert!(
            throttle.check("bob", IP, t0).is_ok(),
            "other accounts unaffected"
        );
        assert!(throttle
            .check("alice", IP, t0 + chrono::Duration::seconds(61))
            .is_ok());
    }

    #[test]
    fn address_is_locked_across_accounts() {
        let throttle = throttle(100, 4);
        let t0 = Utc::now();
        for i in 0..4 {
            throttle.record_failure(&format!("user{i}"), IP, t0);
        }
        assert!(throttle.check("someone-else", IP, t0).is_err());
        let other_ip: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(throttle.check("someone-else", other_ip, t0).is_ok());
    }

    #[test]
    fn success_forgives_the_account() {
        let throttle = throttle(2, 100);
        let t0 = Utc::now();
        throttle.record_failure("alice", IP, t0);
        throttle.record_success("alice");
        throttle.record_failure("alice", IP, t0);
        assert!(throttle.check("alice", IP, t0).is_ok());
    }

    #[test]
    fn ipv6_addresses_in_one_slash_64_count_together() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(address_key(mapped), address_key(IP));
    }

    #[test]
    fn old_keys_are_swept_so_memory_stays_bounded() {
        let window = Window::new(policy(5));
        let t0 = Utc::now();
        for i in 0..INITIAL_SWEEP_AT - 1 {
            window.record(&format!("k{i}"), t0);
        }
        let later = t0 + chrono::Duration::seconds(120);
        for i in 0..10 {
            window.record(&format!("fresh{i}"), later);
        }
        assert_eq!(window.tracked_keys(), 10);
    }
}
