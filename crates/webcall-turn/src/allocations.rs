//! The allocations that exist, as the gate knows them: who holds each (by
//! 5-tuple), how many each user holds (for the quotas), and what the operator
//! sees of each (an id, the relayed address, its [`Traffic`]). The gate
//! registers one when the crate's Allocate success goes by, and releases it
//! when the crate reports the allocation closed or the operator ends it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::traffic::Traffic;
use crate::tuple::FiveTuple;

/// Who holds an allocation.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    /// The REST username it was made with (`<expiry>:<user>`).
    pub(crate) username: String,
    /// The user part of it, whom the quota counts.
    pub(crate) user: String,
}

/// One allocation as the table holds it.
pub(crate) struct Entry {
    pub(crate) owner: Owner,
    /// Random, so that ids of several instances do not collide.
    pub(crate) id: String,
    pub(crate) relayed: SocketAddr,
    pub(crate) traffic: Arc<Traffic>,
}

#[derive(Default)]
struct Table {
    by_tuple: HashMap<FiveTuple, Entry>,
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
        self.lock().by_tuple.get(tuple).map(|e| e.owner.clone())
    }

    /// Registers the allocation of `tuple`, relayed at `relayed`; returns its
    /// traffic counters, for the data plane.
    pub(crate) fn register(
        &self,
        tuple: FiveTuple,
        owner: Owner,
        relayed: SocketAddr,
    ) -> Arc<Traffic> {
        metrics::counter!("webcall_turn_allocations_total").increment(1);
        let traffic = Arc::new(Traffic::new());
        let entry = Entry {
            owner,
            id: format!("{:016x}", rand::random::<u64>()),
            relayed,
            traffic: traffic.clone(),
        };
        let mut table = self.lock();
        *table.per_user.entry(entry.owner.user.clone()).or_default() += 1;
        if let Some(old) = table.by_tuple.insert(tuple, entry) {
            release_user(&mut table.per_user, &old.owner.user);
        }
        traffic
    }

    pub(crate) fn release(&self, tuple: &FiveTuple) {
        let mut table = self.lock();
        if let Some(entry) = table.by_tuple.remove(tuple) {
            release_user(&mut table.per_user, &entry.owner.user);
        }
    }

    /// Removes the allocations `which` picks; returns their 5-tuples.
    pub(crate) fn take(&self, which: impl Fn(&Entry) -> bool) -> Vec<FiveTuple> {
        let mut table = self.lock();
        let tuples: Vec<FiveTuple> = table
            .by_tuple
            .iter()
            .filter(|(_, entry)| which(entry))
            .map(|(tuple, _)| *tuple)
            .collect();
        for tuple in &tuples {
            if let Some(entry) = table.by_tuple.remove(tuple) {
                release_user(&mut table.per_user, &entry.owner.user);
            }
        }
        tuples
    }

    /// Calls `each` with every allocation, under the table's lock (keep it short).
    pub(crate) fn for_each(&self, mut each: impl FnMut(&FiveTuple, &Entry)) {
        for (tuple, entry) in &self.lock().by_tuple {
            each(tuple, entry);
        }
    }

    /// Samples every allocation's byte counts (for its rate): the table's lock
    /// to copy the counters' handles, then one small lock per allocation, off
    /// the data plane's paths.
    pub(crate) fn sample(&self, now: Instant) {
        let traffic: Vec<Arc<Traffic>> = self
            .lock()
            .by_tuple
            .values()
            .map(|entry| entry.traffic.clone())
            .collect();
        for traffic in traffic {
            traffic.sample(now);
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
