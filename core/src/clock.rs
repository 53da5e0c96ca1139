//! The clock the core runs on: monotonic milliseconds, or a manual clock for tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the broker started; manual clocks only move when told to.
#[derive(Debug)]
pub struct Clock {
    base: Instant,
    manual: Option<AtomicU64>,
}

impl Clock {
    pub fn system() -> Self {
        Clock {
            base: Instant::now(),
            manual: None,
        }
    }

    /// A clock that stands still until [`Clock::advance`] is called.
    pub fn manual() -> Self {
        Clock {
            base: Instant::now(),
            manual: Some(AtomicU64::new(0)),
        }
    }

    pub fn now_ms(&self) -> u64 {
        match &self.manual {
            Some(t) => t.load(Ordering::Acquire),
            None => self.base.elapsed().as_millis() as u64,
        }
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
