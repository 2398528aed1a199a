//! The embedded relay, as an operator runs it: the live allocations of this
//! instance's relay with their totals, ending one (on whichever instance holds
//! it), and the quotas (stored, then applied on every instance).

use std::collections::{HashMap, HashSet};

use webcall_domain::model::UserId;
use webcall_domain::operations::{RelayAllocation, RelayQuotas, Traffic};
use webcall_domain::signaling::Command;

use super::Operations;
use crate::admin::Actor;
use crate::AppError;

/// This instance's relay: its allocations, oldest first, each with its
/// holder's username (when the user part is an account), and what they add up to.
#[derive(Debug, Clone)]
pub struct RelayListing {
    pub instance: String,
    pub allocations: Vec<(RelayAllocation, Option<String>)>,
    pub totals: RelayTotals,
}

/// The sum over the allocations listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayTotals {
    pub allocations: usize,
    /// Different users holding them.
    pub users: usize,
    pub traffic: Traffic,
    pub rate_in_bps: u64,
    pub rate_out_bps: u64,
    pub quotas: Option<RelayQuotas>,
}

/// Allocation ids are 16 lowercase hex digits (see webcall-turn's table).
fn is_allocation_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Operations {
    /// This instance's relay allocations (none when the relay does not run here).
    pub async fn allocations(&self, _actor: &Actor) -> Result<RelayListing, AppError> {
        let allocations = self
            .deps
            .relay
            .as_ref()
            .map(|relay| relay.allocations())
            .unwrap_or_default();
        let mut totals = RelayTotals {
            allocations: allocations.len(),
            users: allocations
                .iter()
                .map(|a| a.user.as_str())
                .collect::<HashSet<_>>()
                .len(),
            quotas: self.deps.relay.as_ref().map(|relay| relay.quotas()),
            ..RelayTotals::default()
        };
        for allocation in &allocations {
            let (sum, one) = (&mut totals.traffic, &allocation.traffic);
            sum.packets_in += one.packets_in;
            sum.bytes_in += one.bytes_in;
            sum.packets_out += one.packets_out;
            sum.bytes_out += one.bytes_out;
            totals.rate_in_bps += allocation.rate_in_bps;
            totals.rate_out_bps += allocation.rate_out_bps;
        }
        let mut names: HashMap<UserId, Option<String>> = HashMap::new();
        for user in allocations.iter().filter_map(|a| a.user_id) {
            if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(user) {
                let found = self.deps.users.find_by_id(user).await?;
                slot.insert(found.map(|u| u.username.as_str().to_owned()));
            }
        }
        let allocations = allocations
            .into_iter()
            .map(|a| {
                let name = a.user_id.and_then(|id| names.get(&id).cloned().flatten());
                (a, name)
            })
            .collect();
        Ok(RelayListing {
            instance: self.deps.instance.clone(),
            allocations,
            totals,
        })
    }

    /// Ends the allocation `id`: here if this instance's relay holds it, else
    /// on the other instances (the one holding it ends it). Alone, an unknown
    /// id is `AllocationNotFound`.
    #[tracing::instrument(skip_all, fields(actor = %actor.id(), allocation = %id))]
    pub async fn end_allocation(&self, actor: &Actor, id: &str) -> Result<(), AppError> {
        if !is_allocation_id(id) {
            return Err(AppError::AllocationNotFound);
        }
        let here = self
            .deps
            .relay
            .as_ref()
            .is_some_and(|relay| relay.end_allocation(id));
        if !here {
            if !self.deps.hub.clustered() {
                return Err(AppError::AllocationNotFound);
            }
            self.deps
                .hub
                .command(Command::EndRelayAllocation { id: id.to_owned() })
                .await;
        }
        let detail = (!here).then(|| "on the instance holding it".to_owned());
        self.deps
            .admin
            .record(actor, "turn.allocation.end", id, detail)
            .await
    }

    /// The quotas in force on this instance's relay.
    pub fn quotas(&self, _actor: &Actor) -> Result<RelayQuotas, AppError> {
        Ok(self.relay()?.quotas())
    }

    /// Stores `quotas` and applies them on every instance (the next Allocate
    /// counts against them; allocations over a lowered quota stay).
    #[tracing::instrument(skip_all, fields(actor = %actor.id(), per_user = quotas.per_user, total = quotas.total))]
    pub async fn set_quotas(&self, actor: &Actor, quotas: RelayQuotas) -> Result<(), AppError> {
        self.relay()?;
        let detail = format!("per_user={} total={}", quotas.per_user, quotas.total);
        let audit = self
            .deps
            .admin
            .entry(actor, "turn.quotas.set", "turn", Some(detail));
        let version = self.deps.settings.save_relay_quotas(quotas, audit).await?;
        self.deps
            .hub
            .command(Command::RelayQuotas { quotas, version })
            .await;
        Ok(())
    }
}
