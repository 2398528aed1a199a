//! The allocations that exist, as the gate knows them: who holds each (by
//! 5-tuple), and how many each user holds, for the quotas. The gate registers
//! one when the crate's Allocate success goes by, and releases it when the
//! crate reports the allocation closed.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::tuple::FiveTuple;

/// Who holds an allocation.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    /// The REST username it was made with (`<expiry>:<user>`).
    pub(crate) username: String,
    /// The user part of it, whom the quota counts.
    pub(crate) user: String,
}

#[derive(Default)]
struct Table {
    by_tuple: HashMap<FiveTuple, Owner>,
    per_user: HashMap<String, usize>,
}

/// Shared by every listener.
#[derive(Default)]
pub(crate) struct Allocations {
    table: Mutex<Table>,
}

impl Allocations {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Allocations alive now.
    pub(crate) fn count(&self) -> usize {
        self.lock().by_tuple.len()
    }

    pub(crate) fn owner(&self, tuple: &FiveTuple) -> Option<Owner> {
        self.lock().by_tuple.get(tuple).cloned()
    }

    pub(crate) fn register(&self, tuple: FiveTuple, owner: Owner) {
        metrics::counter!("webcall_turn_allocations_total").increment(1);
        let mut table = self.lock();
        *table.per_user.entry(owner.user.clone()).or_default() += 1;
        if let Some(old) = table.by_tuple.insert(tuple, owner) {
            release_user(&mut table.per_user, &old.user);
        }
    }

    pub(crate) fn release(&self, tuple: &FiveTuple) {
        let mut table = self.lock();
        if let Some(owner) = table.by_tuple.remove(tuple) {
            release_user(&mut table.per_user, &owner.user);
        }
    }

    /// Whether one more allocation of `user` would exceed the user's quota or
    /// the server's.
    pub(crate) fn over_quota(&self, user: &str, user_quota: usize, total_quota: usize) -> bool {
        let table = self.lock();
        table.by_tuple.len() >= total_quota
            || table.per_user.get(user).copied().unwrap_or(0) >= user_quota
    }
}

fn release_user(per_user: &mut HashMap<String, usize>, user: &str) {
    if let Some(count) = per_user.get_mut(user) {
        *count -= 1;
        if *count == 0 {
            per_user.remove(user);
        }
    }
}
