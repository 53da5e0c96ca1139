//! The memory alarm (RabbitMQ's `vm_memory_high_watermark`): while the broker's resident memory
//! is above the high watermark, publishers on every protocol are blocked, as the disk alarm
//! does; consumers go on draining, and publishers go on once memory is back below it.

use junction_core::connections::Alarm;
use junction_core::Broker;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How often resident memory is read (a read of /proc/self/statm).
const CHECK_EVERY: Duration = Duration::from_millis(200);
/// The alarm's reason, as AMQP clients see it in connection.blocked (RabbitMQ's words).
pub const REASON: &str = "low on memory";

/// The watermark, changeable while running (like `rabbitmqctl set_vm_memory_high_watermark`).
#[derive(Debug)]
pub struct MemoryLimit {
    bytes: AtomicU64,
    changed: Notify,
}

impl MemoryLimit {
    /// A watermark of `bytes` of resident memory.
    pub fn new(bytes: u64) -> Arc<MemoryLimit> {
        Arc::new(MemoryLimit {
            bytes: AtomicU64::new(bytes),
            changed: Notify::new(),
        })
    }

    /// The watermark in bytes.
    pub fn get(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// Sets the watermark and checks at once.
    pub fn set(&self, bytes: u64) {
        self.bytes.store(bytes, Ordering::Release);
        self.changed.notify_one();
    }
}

/// The watermark in bytes: `absolute_mib` when set, else `fraction` of the memory available
/// to the process.
pub fn watermark(fraction: f64, absolute_mib: u64) -> u64 {
    if absolute_mib > 0 {
        return absolute_mib << 20;
    }
    (total_memory() as f64 * fraction) as u64
}

/// The machine's memory, or the cgroup's limit when that is lower (containers).
pub fn total_memory() -> u64 {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| parse_meminfo_total(&t))
        .unwrap_or(1 << 30);
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    cgroup.map_or(machine, |c| c.min(machine))
}

fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The process's resident memory in bytes.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

/// Hands memory the allocator holds free back to the system, so resident memory falls once a
/// backlog is gone (glibc keeps freed small blocks otherwise, and the alarm would never clear).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_free_memory() {
    // SAFETY: malloc_trim only walks and trims the allocator's own arenas; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_free_memory() {}

/// How often, at most, the allocator is asked to give memory back while resident memory is
/// above the paging ratio (each call walks its arenas: a few ms for a heap of a few GiB).
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// The fraction of the watermark above which queues page transient messages out (RabbitMQ's
/// `vm_memory_high_watermark_paging_ratio`, 0.5 by default).
pub const PAGING_RATIO: f64 = 0.5;

/// Reads resident memory every [`CHECK_EVERY`] and whenever the watermark changes; raises or
/// clears the broker's memory alarm with a log line each time, and has queues page transient
/// messages out to the message store above [`PAGING_RATIO`] of the watermark, so memory is
/// given up before publishers need to be blocked.
pub fn spawn(broker: Arc<Broker>, limit: Arc<MemoryLimit>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut paging = false;
        let mut trimmed: Option<tokio::time::Instant> = None;
        loop {
            let mut rss = resident_bytes();
            let high = limit.get();
            if rss.is_some_and(|r| r as f64 > high as f64 * PAGING_RATIO)
                && trimmed.is_none_or(|t| t.elapsed() >= TRIM_EVERY)
            {
                give_back_free_memory();
                trimmed = Some(tokio::time::Instant::now());
                rss = resident_bytes();
            }
            if let Some(rss) = rss {
                let page = rss as f64 > high as f64 * PAGING_RATIO;
                if page != paging {
                    paging = page;
                    broker.message_store().set_transient_paging(page);
                    tracing::info!(
                        resident_mib = rss >> 20,
                        watermark_mib = high >> 20,
                        "transient messages of deep queues {} paged to disk",
                        if page { "now" } else { "no longer" }
                    );
                }
                let reason = (rss > high).then_some(REASON);
                if broker.set_resource_alarm(Alarm::Memory, reason) {
                    match reason {
                        Some(_) => tracing::warn!(
                            resident_mib = rss >> 20,
                            watermark_mib = high >> 20,
                            "memory above the high watermark: publishers blocked"
                        ),
                        None => tracing::info!(
                            resident_mib = rss >> 20,
                            watermark_mib = high >> 20,
                            "memory below the high watermark: publishers unblocked"
                        ),
                    }
                }
            }
            let _ = tokio::time::timeout(CHECK_EVERY, limit.changed.notified()).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_from_a_fraction_or_an_absolute_figure() {
        assert_eq!(
            parse_meminfo_total("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24_576_000 * 1024)
        );
        assert_eq!(watermark(0.4, 2048), 2048 << 20);
        let total = total_memory();
        assert_eq!(watermark(0.5, 0), total / 2);
        let rss = resident_bytes().expect("resident memory");
        assert!(rss > 0 && rss < total);
    }
}
