//! The clock the core runs on: monotonic milliseconds, or a manual clock for tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Where a manual clock's wall time starts: 2023-11-14T22:13:20Z, a fixed instant so tests
/// that read wall time (AMQP timestamps, MQTT message expiry) are deterministic.
pub const MANUAL_WALL_START_MS: u64 = 1_700_000_000_000;

/// Milliseconds since the broker started, and wall time; manual clocks only move when told
/// to. Sessions and queues read time through this (or are handed `now`), never from the
/// system directly, so a test can drive them on a clock of its own.
#[derive(Debug)]
pub struct Clock {
    base: Instant,
    manual: Option<AtomicU64>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The system's clocks.
    pub fn system() -> Self {
        Clock {
            base: Instant::now(),
            manual: None,
        }
    }

    /// A clock that stands still until [`Clock::advance`] is called. Its wall time starts at
    /// [`MANUAL_WALL_START_MS`].
    pub fn manual() -> Self {
        Clock {
            base: Instant::now(),
            manual: Some(AtomicU64::new(0)),
        }
    }

    /// Monotonic milliseconds since the clock was made.
    pub fn now_ms(&self) -> u64 {
        match &self.manual {
            Some(t) => t.load(Ordering::Acquire),
            None => self.base.elapsed().as_millis() as u64,
        }
    }

    /// Wall-clock milliseconds since the Unix epoch.
    pub fn unix_ms(&self) -> u64 {
        match &self.manual {
            Some(t) => MANUAL_WALL_START_MS + t.load(Ordering::Acquire),
            None => unix_ms(),
        }
    }

    /// Wall-clock seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> u64 {
        self.unix_ms() / 1000
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance(&self, ms: u64) {
        if let Some(t) = &self.manual {
            t.fetch_add(ms, Ordering::AcqRel);
        }
    }
}

/// Wall-clock seconds since the Unix epoch (for AMQP timestamps such as `x-death.time`).
pub fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Wall-clock milliseconds since the Unix epoch (stored enqueue times, so TTLs survive restarts).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
