//! What an operator manages while the server runs: the embedded relay's
//! allocations and quotas, and the generations of the two signing keys (TURN
//! REST credentials, JWT access tokens).
//!
//! Key rotation in one paragraph: the secrets come only from the environment;
//! generation 0 *is* the environment's secret, and generation `n` is a key
//! derived from it (by the adapter that signs with it). Rotating moves the
//! signing key to the next generation; the one before keeps verifying for the
//! longest lifetime of what it signed, then is refused. Only the generation
//! number and when it was rotated are stored and shared, never a key. A leaked
//! derived key is retired by rotating (twice, to retire it at once); a leaked
//! environment secret needs a new value and a restart.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::UserId;
use crate::DomainError;

/// Which signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// The TURN REST secret (`TURN_SECRET`) of the embedded relay.
    Turn,
    /// The JWT signing key (`JWT_SECRET`).
    Jwt,
}

impl KeyKind {
    pub const ALL: [KeyKind; 2] = [KeyKind::Turn, KeyKind::Jwt];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Turn => "turn",
            KeyKind::Jwt => "jwt",
        }
    }

    /// `turn` or `jwt`, as a path segment names it.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which generation of a key signs now, and when it became the signing one
/// (`None` for generation 0, the environment's secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGeneration {
    pub generation: u32,
    pub rotated_at: Option<DateTime<Utc>>,
}

impl KeyGeneration {
    /// The environment's secret, never rotated.
    pub const INITIAL: KeyGeneration = KeyGeneration {
        generation: 0,
        rotated_at: None,
    };

    /// The generation after this one, signing from `now`.
    pub fn next(self, now: DateTime<Utc>) -> Self {
        Self {
            generation: self.generation + 1,
            rotated_at: Some(now),
        }
    }

    /// Until when the generation before this one verifies: what it signed lives
    /// at most `lifetime` after the rotation. `None` when there is none.
    pub fn previous_valid_until(self, lifetime: Duration) -> Option<DateTime<Utc>> {
        let rotated_at = self.rotated_at?;
        (self.generation > 0).then(|| rotated_at + lifetime)
    }

    /// Whether something signed with `generation` verifies at `now`: the signing
    /// generation does; the one before it until [`Self::previous_valid_until`];
    /// a later one too (another instance rotated, and this one has not heard yet:
    /// only the holder of the environment's secret can derive its key). Older
    /// ones never do.
    pub fn verifies(self, generation: u32, lifetime: Duration, now: DateTime<Utc>) -> bool {
        if generation >= self.generation {
            return true;
        }
        generation + 1 == self.generation
            && self
                .previous_valid_until(lifetime)
                .is_some_and(|until| now < until)
    }
}

/// How many relay allocations one user, and everyone together, may hold at once
/// (TURN 486 beyond).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayQuotas {
    pub per_user: u32,
    pub total: u32,
}

impl RelayQuotas {
    /// The largest quota accepted: more allocations than relay ports exist
    /// (16,384 by default) mean nothing.
    pub const MAX: u32 = 65_535;

    /// Checks the bounds: each 1..=[`Self::MAX`], and a user's quota no larger
    /// than the total.
    pub fn new(per_user: u32, total: u32) -> Result<Self, DomainError> {
        let range = 1..=Self::MAX;
        if !range.contains(&per_user) {
            return Err(DomainError::Invalid {
                field: "per_user",
                message: "must be between 1 and 65535",
            });
        }
        if !range.contains(&total) {
            return Err(DomainError::Invalid {
                field: "total",
                message: "must be between 1 and 65535",
            });
        }
        if per_user > total {
            return Err(DomainError::Invalid {
                field: "per_user",
                message: "must not be larger than total",
            });
        }
        Ok(Self { per_user, total })
    }
}

/// The transport between a client and the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayTransport {
    Udp,
    Tcp,
    Tls,
}

/// One live allocation of the embedded relay, as the operator sees it. "In" is
/// what the client sent through the relay (to its peers), "out" what the relay
/// passed to the client; bytes are payload bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayAllocation {
    /// Names it for [`crate::ports::RelayControl::end_allocation`] (unique
    /// across instances).
    pub id: String,
    /// The user part of its REST username; `user_id` when that is an account id.
    pub user: String,
    pub user_id: Option<UserId>,
    pub transport: RelayTransport,
    pub client: SocketAddr,
    pub relayed: SocketAddr,
    pub age: Duration,
    pub traffic: Traffic,
    /// Bits per second each way over the last few seconds.
    pub rate_in_bps: u64,
    pub rate_out_bps: u64,
}

/// Packets and bytes relayed each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn the_environments_secret_verifies_until_a_rotation() {
        let initial = KeyGeneration::INITIAL;
        assert!(initial.verifies(0, DAY, at(0)));
        assert_eq!(initial.previous_valid_until(DAY), None);
    }

    #[test]
    fn the_previous_generation_verifies_for_one_lifetime_after_the_rotation() {
        let rotated = KeyGeneration::INITIAL.next(at(0));
        assert_eq!(rotated.generation, 1);
        assert_eq!(rotated.previous_valid_until(DAY), Some(at(86_400)));
        assert!(rotated.verifies(1, DAY, at(10)));
        assert!(rotated.verifies(0, DAY, at(86_399)));
        assert!(!rotated.verifies(0, DAY, at(86_400)));
        // The signing generation never lapses.
        assert!(rotated.verifies(1, DAY, at(10 * 86_400)));
    }

    #[test]
    fn a_second_rotation_retires_the_generation_before_the_previous_at_once() {
        let twice = KeyGeneration::INITIAL.next(at(0)).next(at(60));
        assert!(!twice.verifies(0, DAY, at(61)));
        assert!(twice.verifies(1, DAY, at(61)));
        assert!(twice.verifies(2, DAY, at(61)));
    }

    #[test]
    fn a_later_generation_verifies_before_this_instance_hears_of_it() {
        assert!(KeyGeneration::INITIAL.verifies(1, DAY, at(0)));
    }

    #[test]
    fn quotas_are_bounded_and_consistent() {
        assert_eq!(
            RelayQuotas::new(10, 1000).unwrap(),
            RelayQuotas {
                per_user: 10,
                total: 1000
            }
        );
        for (per_user, total, field) in [
            (0, 10, "per_user"),
            (1, 0, "total"),
            (1, 65_536, "total"),
            (11, 10, "per_user"),
        ] {
            match RelayQuotas::new(per_user, total) {
                Err(DomainError::Invalid { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{per_user}/{total}: {other:?}"),
            }
        }
    }

    #[test]
    fn key_kinds_parse_from_their_names() {
        for kind in KeyKind::ALL {
            assert_eq!(KeyKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(KeyKind::parse("ssh"), None);
    }
}
