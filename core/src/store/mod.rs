//! Durable storage: the message log (segment files with group commit) and the metadata store
//! (redb), opened together on one locked data directory.

pub mod data_dir;
pub mod durable_messages;
pub mod record;
pub mod redb_meta;
pub mod segment_log;
mod watermark;

pub use data_dir::{DataDir, DataDirError};
pub use durable_messages::{DurableMessageStore, FsyncPolicy, LogOptions, LogStats};
pub use redb_meta::RedbMetadataStore;
pub use segment_log::{RecoveryReport, SegmentLog, Skipped, Truncation, DAMAGED_DIR};

#[cfg(test)]
mod tests;
