//! Failed-login throttling: a sliding window of failures per account and per
//! client address. An account is refused for a while after `max_failures` wrong
//! passwords; an address is refused after its own (higher) limit, so one attacker
//! cannot lock out everybody behind a shared proxy, and cannot spray accounts.
//!
//! An attempt is counted as a failure *before* its password is checked
//! ([`LoginThrottle::reserve`], one lock per window), and given back when it
//! turns out right ([`LoginThrottle::succeeded`]) or was never checked
//! ([`LoginThrottle::release`]). Counting after the hash let any number of
//! concurrent guesses through, since all of them passed the check first.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::rate::RateLimit;

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
    /// Wrong registration secrets per client address.
    pub registration_per_address: ThrottlePolicy,
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
            registration_per_address: ThrottlePolicy {
                max_failures: 10,
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
            accounts: window(config.per_account),
            addresses: window(config.per_address),
        }
    }

    /// Counts one attempt for `account` from `address` as failed, unless either is
    /// over its limit already: then `Err(retry_after)` and nothing is counted.
    pub fn reserve(
        &self,
        account: &str,
        address: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<(), Duration> {
        self.accounts.admit(account.to_owned(), now)?;
        if let Err(wait) = self.addresses.admit(address_key(address), now) {
            self.accounts.give_back(account, now);
            return Err(wait);
        }
        Ok(())
    }

    /// The reserved attempt had the right password: the account's earlier
    /// failures are forgiven, and the address gets its attempt back.
    pub fn succeeded(&self, account: &str, address: IpAddr, now: DateTime<Utc>) {
        self.accounts.clear(account);
        self.addresses.give_back(&address_key(address), now);
    }

    /// The reserved attempt was never checked (the hasher was busy): give it back.
    pub fn release(&self, account: &str, address: IpAddr, now: DateTime<Utc>) {
        self.accounts.give_back(account, now);
        self.addresses.give_back(&address_key(address), now);
    }
}

/// Wrong registration secrets, counted per client address like failed logins.
pub struct RegistrationThrottle {
    addresses: Window,
}

impl RegistrationThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            addresses: window(policy),
        }
    }

    /// Counts one attempt from `address` as failed unless it is over its limit.
    pub fn reserve(&self, address: IpAddr, now: DateTime<Utc>) -> Result<(), Duration> {
        self.addresses.admit(address_key(address), now)
    }

    /// The secret was right: the attempt is given back.
    pub fn succeeded(&self, address: IpAddr, now: DateTime<Utc>) {
        self.addresses.give_back(&address_key(address), now);
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

/// Failures per key inside the policy's window.
type Window = RateLimit<String>;

fn window(policy: ThrottlePolicy) -> Window {
    RateLimit::new(policy.max_failures, policy.window)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

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
            registration_per_address: policy(1),
        })
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7));

    #[test]
    fn account_is_locked_after_max_failures_until_the_window_passes() {
        let throttle = throttle(3, 100);
        let t0 = Utc::now();
        for i in 0..3 {
            assert!(throttle.reserve("alice", IP, t0).is_ok(), "attempt {i}");
        }
        let wait = throttle.reserve("alice", IP, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(60));
        let later = t0 + chrono::Duration::seconds(45);
        assert_eq!(
            throttle.reserve("alice", IP, later).unwrap_err(),
            Duration::from_secs(15)
        );
        assert!(
            throttle.reserve("bob", IP, t0).is_ok(),
            "other accounts unaffected"
        );
        assert!(throttle
            .reserve("alice", IP, t0 + chrono::Duration::seconds(61))
            .is_ok());
    }

    #[test]
    fn address_is_locked_across_accounts() {
        let throttle = throttle(100, 4);
        let t0 = Utc::now();
        for i in 0..4 {
            throttle.reserve(&format!("user{i}"), IP, t0).unwrap();
        }
        assert!(throttle.reserve("someone-else", IP, t0).is_err());
        let other_ip: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(throttle.reserve("someone-else", other_ip, t0).is_ok());
    }

    #[test]
    fn a_refused_address_costs_the_account_nothing() {
        let throttle = throttle(2, 1);
        let t0 = Utc::now();
        throttle.reserve("bob", IP, t0).unwrap();
        for _ in 0..5 {
            assert!(throttle.reserve("alice", IP, t0).is_err());
        }
        let other_ip: IpAddr = "198.51.100.1".parse().unwrap();
        throttle.reserve("alice", other_ip, t0).unwrap();
    }

    #[test]
    fn success_forgives_the_account_and_returns_the_address_attempt() {
        let throttle = throttle(2, 2);
        let t0 = Utc::now();
        throttle.reserve("alice", IP, t0).unwrap();
        throttle.reserve("alice", IP, t0).unwrap();
        throttle.succeeded("alice", IP, t0);
        throttle.reserve("alice", IP, t0).unwrap();
        assert!(throttle.reserve("alice", IP, t0).is_err(), "1 + 1 failures");
    }

    #[test]
    fn an_unchecked_attempt_is_given_back() {
        let throttle = throttle(1, 100);
        let t0 = Utc::now();
        throttle.reserve("alice", IP, t0).unwrap();
        throttle.release("alice", IP, t0);
        throttle.reserve("alice", IP, t0).unwrap();
    }

    #[test]
    fn concurrent_attempts_never_pass_more_than_the_limit() {
        let throttle = Arc::new(throttle(5, 1000));
        let t0 = Utc::now();
        let passed: usize = (0..8)
            .map(|_| {
                let throttle = throttle.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .filter(|_| throttle.reserve("alice", IP, t0).is_ok())
                        .count()
                })
            })
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(passed, 5);
    }

    #[test]
    fn wrong_registration_secrets_are_limited_per_address() {
        let throttle = RegistrationThrottle::new(policy(2));
        let t0 = Utc::now();
        throttle.reserve(IP, t0).unwrap();
        throttle.succeeded(IP, t0);
        throttle.reserve(IP, t0).unwrap();
        throttle.reserve(IP, t0).unwrap();
        assert_eq!(throttle.reserve(IP, t0), Err(Duration::from_secs(60)));
        let other_ip: IpAddr = "198.51.100.1".parse().unwrap();
        throttle.reserve(other_ip, t0).unwrap();
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
        let window = window(policy(5));
        let t0 = Utc::now();
        for i in 0..1023 {
            window.admit(format!("k{i}"), t0).unwrap();
        }
        let later = t0 + chrono::Duration::seconds(120);
        for i in 0..10 {
            window.admit(format!("fresh{i}"), later).unwrap();
        }
        assert_eq!(window.tracked_keys(), 10);
    }
}
