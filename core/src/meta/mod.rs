//! Metadata as a state machine driven by commands: [`MetaCommand`] says what changes,
//! [`MetaState::apply`] decides (deterministically, without I/O), [`Catalog`] runs the live
//! objects and the store after it. Clients, recovery and — later — a replicated log all take
//! this one road.

mod catalog;
mod command;
mod state;

pub use catalog::{Catalog, Materialize};
pub use command::{
    MetaCommand, MetaSnapshot, Permission, TopicPermission, UserRecord, VHostMetadata,
};
pub use state::{MetaState, Outcome, QueueEntry, VHostMeta};

#[cfg(test)]
mod tests;
