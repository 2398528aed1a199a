//! What an operator sees of the relay and does to it while it runs
//! ([`RelayControl`]): the live allocations with their traffic and rate, ending
//! one (or every one of a user: a banned account), and the quotas.
//!
//! Ending an allocation takes it from the gate (the client's next Refresh,
//! CreatePermission or ChannelBind gets 437, its quota slot is free) and from
//! the data plane (nothing is relayed any more, and its relay socket's read
//! loop stops: the crate then drops the allocation, which closes the socket).

use std::time::Instant;

use uuid::Uuid;
use webcall_domain::model::UserId;
use webcall_domain::operations::{RelayAllocation, RelayQuotas, RelayTransport};
use webcall_domain::ports::RelayControl;

use crate::allocations::Entry;
use crate::relay::TurnRelay;
use crate::tuple::{FiveTuple, Transport};

impl TurnRelay {
    /// Ends the allocations `which` picks; how many.
    fn end(&self, which: impl Fn(&Entry) -> bool) -> usize {
        let tuples = self.gate().allocations().take(which);
        for tuple in &tuples {
            self.plane().release(tuple);
        }
        tuples.len()
    }
}

impl RelayControl for TurnRelay {
    fn allocations(&self) -> Vec<RelayAllocation> {
        let now = Instant::now();
        let mut list = Vec::with_capacity(self.allocation_count());
        self.gate()
            .allocations()
            .for_each(|tuple, entry| list.push(describe(tuple, entry, now)));
        list.sort_by_key(|a| std::cmp::Reverse(a.age));
        list
    }

    fn end_allocation(&self, id: &str) -> bool {
        let ended = self.end(|entry| entry.id == id);
        if ended > 0 {
            tracing::info!(allocation = id, "TURN allocation ended by the operator");
        }
        ended > 0
    }

    fn end_user(&self, user: UserId) -> usize {
        let user = user.to_string();
        let ended = self.end(|entry| entry.owner.user == user);
        if ended > 0 {
            tracing::info!(%user, ended, "TURN allocations of a user ended");
        }
        ended
    }

    fn quotas(&self) -> RelayQuotas {
        let (per_user, total) = self.gate().quotas();
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        RelayQuotas {
            per_user: clamp(per_user),
            total: clamp(total),
        }
    }

    fn set_quotas(&self, quotas: RelayQuotas) {
        self.gate()
            .set_quotas(quotas.per_user as usize, quotas.total as usize);
        tracing::info!(
            per_user = quotas.per_user,
            total = quotas.total,
            "TURN quotas changed"
        );
    }
}

fn describe(tuple: &FiveTuple, entry: &Entry, now: Instant) -> RelayAllocation {
    let (rate_in_bps, rate_out_bps) = entry.traffic.rates(now);
    RelayAllocation {
        id: entry.id.clone(),
        user: entry.owner.user.clone(),
        user_id: Uuid::parse_str(&entry.owner.user).ok().map(UserId),
        transport: match tuple.transport {
            Transport::Udp => RelayTransport::Udp,
            Transport::Tcp => RelayTransport::Tcp,
            Transport::Tls => RelayTransport::Tls,
        },
        client: tuple.client,
        relayed: entry.relayed,
        age: entry.traffic.age(),
        traffic: entry.traffic.totals(),
        rate_in_bps,
        rate_out_bps,
    }
}
