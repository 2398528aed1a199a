//! Running the relay and the signing keys while the server runs: the use cases
//! behind `/api/v1/admin/turn/*` and `/api/v1/admin/keys`, and what every
//! instance does when one of them changes something ([`InstanceCommands`]).
//! Each takes an [`Actor`](crate::admin::Actor): only the admin guard
//! ([`Admin::admit`]) makes one.
//! Each change is audited (with the stored change, in one transaction).
//!
//! A change is stored first (it survives a restart), then carried out here and
//! on every other instance through a cluster [`Command`]: quotas with a version
//! (the highest wins everywhere, whichever instance hears what first), keys with
//! their generation (never older than the one in use). A banned or deleted
//! account's relay allocations end on every instance the same way
//! (`Command::BanUser`, `Command::RevokeUser`).
//!
//! Layout: this file holds the service, its start-up and the commands; `relay`
//! the allocations and quotas, `keys` the rotations.

mod keys;
mod relay;
#[cfg(test)]
mod tests;

pub use keys::KeyStatus;
pub use relay::{RelayListing, RelayTotals};

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use webcall_domain::operations::{KeyKind, RelayQuotas};
use webcall_domain::ports::{Clock, OperatorSettings, RelayControl, RotatingKey, UserRepository};
use webcall_domain::signaling::Command;

use crate::admin::Admin;
use crate::hub::{Hub, InstanceCommands};
use crate::AppError;

/// The ports [`Operations`] works through.
pub struct OperationsDeps {
    pub settings: Arc<dyn OperatorSettings>,
    /// The embedded relay, when it runs here.
    pub relay: Option<Arc<dyn RelayControl>>,
    /// The embedded relay's REST credentials (when it runs here).
    pub turn_key: Option<Arc<dyn RotatingKey>>,
    pub jwt_key: Arc<dyn RotatingKey>,
    /// Carries commands to every instance (and carries them out here).
    pub hub: Arc<Hub>,
    /// Writes the audit entries.
    pub admin: Arc<Admin>,
    /// Names the users holding allocations.
    pub users: Arc<dyn UserRepository>,
    pub clock: Arc<dyn Clock>,
    /// Names this instance in the allocation list (its relay is the one listed).
    pub instance: String,
}

/// See the module docs.
pub struct Operations {
    deps: OperationsDeps,
    /// The version of the quotas in force here (0: the environment's).
    quotas_version: Mutex<u64>,
}

impl Operations {
    /// The service, handed every command the hub carries out.
    pub fn new(deps: OperationsDeps) -> Arc<Self> {
        let operations = Arc::new(Self {
            deps,
            quotas_version: Mutex::new(0),
        });
        let handler: Arc<dyn InstanceCommands> = operations.clone();
        operations.deps.hub.also_execute(&handler);
        operations
    }

    /// Applies what was changed while this instance was not running (or not
    /// listening): the stored quotas and key generations. At start-up, before
    /// anything is signed, and now and then after (a command missed while
    /// Redis was away).
    pub async fn restore(&self) -> Result<(), AppError> {
        if let Some((quotas, version)) = self.deps.settings.relay_quotas().await? {
            self.apply_quotas(quotas, version);
        }
        for kind in KeyKind::ALL {
            if let Some(key) = self.rotating(kind) {
                let stored = self.deps.settings.key_generation(kind).await?;
                if key.adopt(stored) {
                    tracing::info!(key = %kind, generation = stored.generation, "signing key generation restored");
                }
            }
        }
        Ok(())
    }

    /// The relay, or `RelayNotRunning`.
    fn relay(&self) -> Result<&Arc<dyn RelayControl>, AppError> {
        self.deps.relay.as_ref().ok_or(AppError::RelayNotRunning)
    }

    /// The key of `kind` that rotates here, if it does.
    fn rotating(&self, kind: KeyKind) -> Option<&Arc<dyn RotatingKey>> {
        match kind {
            KeyKind::Turn => self.deps.turn_key.as_ref(),
            KeyKind::Jwt => Some(&self.deps.jwt_key),
        }
    }

    /// Sets the relay's quotas unless a later version is in force already.
    fn apply_quotas(&self, quotas: RelayQuotas, version: u64) {
        let Some(relay) = &self.deps.relay else {
            return;
        };
        let mut current = self
            .quotas_version
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if version > *current {
            *current = version;
            relay.set_quotas(quotas);
        }
    }
}

#[async_trait]
impl InstanceCommands for Operations {
    async fn execute(&self, command: &Command) {
        match command {
            Command::RelayQuotas { quotas, version } => self.apply_quotas(*quotas, *version),
            Command::KeyRotated { key, generation } => {
                if let Some(rotating) = self.rotating(*key) {
                    if rotating.adopt(*generation) {
                        tracing::info!(key = %key, generation = generation.generation, "signing key rotated");
                    }
                }
            }
            Command::EndRelayAllocation { id } => {
                if let Some(relay) = &self.deps.relay {
                    relay.end_allocation(id);
                }
            }
            Command::RevokeUser { user } | Command::BanUser { user } => {
                if let Some(relay) = &self.deps.relay {
                    relay.end_user(*user);
                }
            }
            _ => {}
        }
    }
}
