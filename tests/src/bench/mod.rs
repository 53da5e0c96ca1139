//! The load generator behind `junction-bench`: AMQP, MQTT and STOMP scenarios against any
//! broker address, with sequence numbers (loss, duplicates) and send times (latency) in bodies.

pub mod amqp;
pub mod amqp_wire;
pub mod ceiling;
pub mod mqtt;
pub mod pacer;
pub mod record;
pub mod stomp;
pub mod tls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A consumer that sees nothing for this long gives up (and reports what it lost).
pub const IDLE: Duration = Duration::from_secs(10);

/// A name no earlier run used.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Resident memory of a process, in bytes (Linux `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
