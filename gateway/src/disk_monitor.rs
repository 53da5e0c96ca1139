//! The free-disk watermark: while the file system holding the data directory has less free
//! space than the limit, publishers on every protocol are blocked (RabbitMQ's disk alarm);
//! they go on once space returns.

use junction_core::Broker;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How often free space is checked.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The alarm's reason, as AMQP clients see it in connection.blocked.
pub const REASON: &str = "low on disk";

/// The limit, changeable while running (like `rabbitmqctl set_disk_free_limit`).
#[derive(Debug, Default)]
pub struct DiskLimit {
    bytes: AtomicU64,
    changed: Notify,
}

impl DiskLimit {
    pub fn new(bytes: u64) -> Arc<DiskLimit> {
        Arc::new(DiskLimit {
            bytes: AtomicU64::new(bytes),
            changed: Notify::new(),
        })
    }

    /// Sets the limit and checks at once.
    pub fn set(&self, bytes: u64) {
        self.bytes.store(bytes, Ordering::Release);
        self.changed.notify_one();
    }

    pub fn get(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }
}

/// Free bytes for unprivileged users on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Checks free space every second (and whenever the limit changes) and raises or clears the
/// broker's resource alarm, with a log line each time it changes.
pub fn spawn(broker: Arc<Broker>, dir: PathBuf, limit: Arc<DiskLimit>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let wanted = limit.get();
            match free_bytes(&dir) {
                Ok(free) if free < wanted => {
                    if broker.set_resource_alarm(Some(REASON)) {
                        tracing::warn!(
                            free_mib = free >> 20,
                            limit_mib = wanted >> 20,
                            dir = %dir.display(),
                            "free disk space below the limit: publishers blocked"
                        );
                    }
                }
                Ok(free) => {
                    if broker.set_resource_alarm(None) {
                        tracing::info!(
                            free_mib = free >> 20,
                            limit_mib = wanted >> 20,
                            "free disk space above the limit again: publishers unblocked"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, dir = %dir.display(), "cannot read free disk space")
                }
            }
            let _ = tokio::time::timeout(CHECK_EVERY, limit.changed.notified()).await;
        }
    })
}
