//! What uploads in flight hold: one slot each per user (at most
//! [`super::IN_FLIGHT_PER_USER`]) and the bytes they reserved against the
//! quotas until their file is stored. A [`Slot`] gives both back when it is
//! dropped, on every path: done, refused, failed, or a client gone mid-upload
//! (its request's future dropped).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use webcall_domain::attachments::AttachmentUsage;
use webcall_domain::model::UserId;

use crate::error::Quota;

/// The uploads in flight on this instance.
#[derive(Default)]
pub(super) struct Ledger {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    uploads: HashMap<UserId, usize>,
    reserved: HashMap<UserId, u64>,
    reserved_total: u64,
}

/// One upload in flight, and the bytes it reserved.
pub(super) struct Slot {
    ledger: Arc<Ledger>,
    user: UserId,
    bytes: u64,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for one more upload of `user`, unless they have `max` in flight.
    pub(super) fn start(self: &Arc<Self>, user: UserId, max: usize) -> Option<Slot> {
        let mut state = self.lock();
        let uploads = state.uploads.entry(user).or_default();
        if *uploads >= max {
            return None;
        }
        *uploads += 1;
        Some(Slot {
            ledger: self.clone(),
            user,
            bytes: 0,
        })
    }

    #[cfg(test)]
    pub(super) fn in_flight(&self, user: UserId) -> (usize, u64) {
        let state = self.lock();
        (
            state.uploads.get(&user).copied().unwrap_or(0),
            state.reserved.get(&user).copied().unwrap_or(0),
        )
    }
}

impl Slot {
    /// Reserves `bytes` more for this upload if what is stored (`stored`),
    /// what uploads in flight reserved and `bytes` stay within the quotas
    /// (0: none); checked and reserved under one lock.
    pub(super) fn reserve(
        &mut self,
        bytes: u64,
        stored: AttachmentUsage,
        quota_user: u64,
        quota_total: u64,
    ) -> Result<(), Quota> {
        let mut state = self.ledger.lock();
        let user_reserved = state.reserved.get(&self.user).copied().unwrap_or(0);
        let over = |quota: u64, used: u64| quota > 0 && used.saturating_add(bytes) > quota;
        if over(quota_user, stored.user.saturating_add(user_reserved)) {
            return Err(Quota::User);
        }
        if over(
            quota_total,
            stored.total.saturating_add(state.reserved_total),
        ) {
            return Err(Quota::Server);
        }
        *state.reserved.entry(self.user).or_default() += bytes;
        state.reserved_total += bytes;
        self.bytes += bytes;
        Ok(())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.ledger.lock();
        if let Some(uploads) = state.uploads.get_mut(&self.user) {
            *uploads = uploads.saturating_sub(1);
            if *uploads == 0 {
                state.uploads.remove(&self.user);
            }
        }
        if let Some(reserved) = state.reserved.get_mut(&self.user) {
            *reserved = reserved.saturating_sub(self.bytes);
            if *reserved == 0 {
                state.reserved.remove(&self.user);
            }
        }
        state.reserved_total = state.reserved_total.saturating_sub(self.bytes);
    }
}
