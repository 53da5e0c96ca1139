//! The disk alarms: while the file system holding the data directory has less free space than
//! the limit (RabbitMQ's disk alarm), or the message log has grown past its own size limit,
//! publishers on every protocol are blocked; they go on once space returns.

use junction_core::connections::Alarm;
use junction_core::Broker;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How often free space is checked.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The alarms' reasons, as AMQP clients see them in connection.blocked.
pub const REASON: &str = "low on disk";
/// The alarm's reason when the message log reached its size limit.
pub const LOG_FULL_REASON: &str = "message log full";

/// The limits, changeable while running (like `rabbitmqctl set_disk_free_limit`).
#[derive(Debug, Default)]
pub struct DiskLimits {
    /// Free bytes the file system must keep.
    free: AtomicU64,
    /// Bytes the message log may take; 0 = no limit.
    log: AtomicU64,
    changed: Notify,
}

impl DiskLimits {
    /// Limits of `free` bytes free on the disk and `log` bytes of message log (0: none).
    pub fn new(free: u64, log: u64) -> Arc<DiskLimits> {
        Arc::new(DiskLimits {
            free: AtomicU64::new(free),
            log: AtomicU64::new(log),
            changed: Notify::new(),
        })
    }

    /// The free-space limit in bytes.
    pub fn free(&self) -> u64 {
        self.free.load(Ordering::Acquire)
    }

    /// Sets the free-space limit and checks at once.
    pub fn set_free(&self, bytes: u64) {
        self.free.store(bytes, Ordering::Release);
        self.changed.notify_one();
    }

    /// Sets the message log's size limit (0 = none) and checks at once.
    pub fn set_log(&self, bytes: u64) {
        self.log.store(bytes, Ordering::Release);
        self.changed.notify_one();
    }
}

/// Which alarm holds, if any, with a log line for its start.
fn check(
    free: std::io::Result<u64>,
    log_bytes: u64,
    limits: &DiskLimits,
    dir: &Path,
) -> Option<&'static str> {
    let (free_limit, log_limit) = (
        limits.free.load(Ordering::Acquire),
        limits.log.load(Ordering::Acquire),
    );
    match free {
        Ok(free) if free < free_limit => {
            tracing::debug!(
                free_mib = free >> 20,
                limit_mib = free_limit >> 20,
                "free disk space below the limit"
            );
            return Some(REASON);
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, dir = %dir.display(), "cannot read free disk space"),
    }
    if log_limit > 0 && log_bytes > log_limit {
        tracing::debug!(
            log_mib = log_bytes >> 20,
            limit_mib = log_limit >> 20,
            "message log over its limit"
        );
        return Some(LOG_FULL_REASON);
    }
    None
}

/// Free bytes for unprivileged users on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Checks free space and the message log's size (`log_bytes`) every second, and whenever a
/// limit changes; raises or clears the broker's resource alarm with a log line each time.
pub fn spawn(
    broker: Arc<Broker>,
    dir: PathBuf,
    limits: Arc<DiskLimits>,
    log_bytes: impl Fn() -> u64 + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let reason = check(free_bytes(&dir), log_bytes(), &limits, &dir);
            if broker.set_resource_alarm(Alarm::Disk, reason) {
                match reason {
                    Some(REASON) => tracing::warn!(
                        limit_mib = limits.free.load(Ordering::Acquire) >> 20,
                        dir = %dir.display(),
                        "free disk space below the limit: publishers blocked"
                    ),
                    Some(_) => tracing::warn!(
                        limit_mib = limits.log.load(Ordering::Acquire) >> 20,
                        "message log over its size limit: publishers blocked"
                    ),
                    None => tracing::info!("disk space available again: publishers unblocked"),
                }
            }
            let _ = tokio::time::timeout(CHECK_EVERY, limits.changed.notified()).await;
        }
    })
}
