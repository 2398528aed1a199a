//! Rotating the signing keys (see `webcall_domain::operations` for the
//! scheme): the next generation is stored, then adopted on every instance; the
//! previous one keeps verifying for one lifetime of what it signed.

use chrono::{DateTime, Utc};
use webcall_domain::operations::{KeyGeneration, KeyKind};
use webcall_domain::signaling::Command;

use super::Operations;
use crate::admin::Actor;
use crate::AppError;

/// A key as the operator sees it (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    pub kind: KeyKind,
    pub generation: KeyGeneration,
    /// Until when the generation before verifies (`None`: there is none, or
    /// the key does not rotate here).
    pub previous_valid_until: Option<DateTime<Utc>>,
    /// Whether it rotates here: the TURN key does only for the embedded relay.
    pub rotates: bool,
}

impl Operations {
    /// Both keys' generations in use here.
    pub fn keys(&self, _actor: &Actor) -> Vec<KeyStatus> {
        KeyKind::ALL
            .into_iter()
            .map(|kind| self.status(kind))
            .collect()
    }

    fn status(&self, kind: KeyKind) -> KeyStatus {
        match self.rotating(kind) {
            Some(key) => {
                let generation = key.generation();
                KeyStatus {
                    kind,
                    generation,
                    previous_valid_until: generation.previous_valid_until(key.lifetime()),
                    rotates: true,
                }
            }
            None => KeyStatus {
                kind,
                generation: KeyGeneration::INITIAL,
                previous_valid_until: None,
                rotates: false,
            },
        }
    }

    /// Makes the next generation of `kind` the signing one, on every instance.
    /// The TURN key rotates only where the embedded relay runs
    /// (`RelayNotRunning` elsewhere: an external TURN server checks
    /// `TURN_SECRET` itself, and changing that needs a restart of both).
    #[tracing::instrument(skip_all, fields(actor = %actor.id(), key = %kind))]
    pub async fn rotate(&self, actor: &Actor, kind: KeyKind) -> Result<KeyStatus, AppError> {
        if self.rotating(kind).is_none() {
            return Err(AppError::RelayNotRunning);
        }
        let now = self.deps.clock.now();
        let audit = self
            .deps
            .admin
            .entry(actor, "key.rotate", kind.as_str(), None);
        let generation = self.deps.settings.rotate_key(kind, now, audit).await?;
        self.deps
            .hub
            .command(Command::KeyRotated {
                key: kind,
                generation,
            })
            .await;
        tracing::info!(key = %kind, generation = generation.generation, "signing key rotated by the operator");
        Ok(self.status(kind))
    }
}
