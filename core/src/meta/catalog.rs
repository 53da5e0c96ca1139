//! The one road every metadata change takes: the state machine decides, the live objects
//! follow, the store is handed the durable part — and nothing on that road waits for a disk.
//!
//! Callers validate against the live objects first (cheap, no lock held), then
//! [`Catalog::commit`] applies the command to [`MetaState`] under the catalog's own lock,
//! which no publish ever takes. The durable change is queued to the metadata store without
//! waiting: whoever answers the client awaits [`crate::Broker::sync`] first (the sessions hold
//! the reply), so the fsync stalls that one reply and nothing else.

use super::command::MetaCommand;
use super::state::{MetaState, Outcome};
use crate::error::CoreResult;
use crate::storage::MetadataStore;
use std::sync::{Arc, Mutex, MutexGuard};

/// The live objects a command changes once the state machine has accepted it: a vhost's maps
/// of exchanges and queues, the broker's vhosts and users. Called under the catalog's lock, in
/// the order of the commands; it must not commit further commands (the lock is not re-entrant).
pub trait Materialize {
    /// Makes the live objects match the command, which [`MetaState::apply`] just applied.
    fn materialize(&self, cmd: &MetaCommand);
}

/// The metadata state machine and where its durable changes go.
#[derive(Debug)]
pub struct Catalog {
    state: Mutex<MetaState>,
    store: Arc<dyn MetadataStore>,
}

impl Catalog {
    /// An empty catalog writing to `store`.
    pub fn new(store: Arc<dyn MetadataStore>) -> Self {
        Catalog {
            state: Mutex::new(MetaState::new()),
            store,
        }
    }

    fn lock(&self) -> MutexGuard<'_, MetaState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `cmd`; when it changed something, `live` follows and a durable change is
    /// queued to the store (await [`MetadataStore::sync`] before acknowledging it).
    pub fn commit(&self, cmd: MetaCommand, live: &dyn Materialize) -> CoreResult<Outcome> {
        let mut state = self.lock();
        let outcome = state.apply(&cmd)?;
        if let Outcome::Applied { durable } = outcome {
            live.materialize(&cmd);
            if durable {
                self.store.submit(vec![cmd]);
            }
        }
        Ok(outcome)
    }

    /// Commits an adapter record (MQTT sessions, retained messages): ordered with every other
    /// command and queued to the store; no live object of the core follows it (the adapter
    /// holds that state).
    pub fn commit_record(&self, cmd: MetaCommand) -> CoreResult<Outcome> {
        struct AdapterHeld;
        impl Materialize for AdapterHeld {
            fn materialize(&self, _: &MetaCommand) {}
        }
        self.commit(cmd, &AdapterHeld)
    }

    /// Applies a command recovered from the store: the same road as [`Catalog::commit`]
    /// without writing it back.
    pub fn replay(&self, cmd: &MetaCommand, live: &dyn Materialize) -> CoreResult<Outcome> {
        let mut state = self.lock();
        let outcome = state.apply(cmd)?;
        if matches!(outcome, Outcome::Applied { .. }) {
            live.materialize(cmd);
        }
        Ok(outcome)
    }

    /// Reads the state (a consistent view: no command applies meanwhile).
    pub fn read<R>(&self, f: impl FnOnce(&MetaState) -> R) -> R {
        f(&self.lock())
    }

    /// Where durable changes go.
    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }
}
