//! Bench payloads (sequence number + send time + padding) and what consumers saw of them.

use std::sync::OnceLock;
use std::time::Instant;

/// The process-wide clock that send times are measured against.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// A body of `size` bytes (at least 16) carrying `seq` and the current time.
pub fn payload(seq: u64, size: usize) -> Vec<u8> {
    let mut b = vec![0u8; size.max(16)];
    b[..8].copy_from_slice(&seq.to_le_bytes());
    b[8..16].copy_from_slice(&now_ns().to_le_bytes());
    b
}

/// What one consumer saw: per-sequence counts and latencies.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    counts: Vec<u32>,
    /// Publish-to-delivery latencies.
    pub latencies_ns: Vec<u64>,
    /// Messages received.
    pub received: u64,
}

impl Seen {
    /// Notes a received body.
    pub fn note(&mut self, body: &[u8]) {
        if body.len() < 16 {
            return;
        }
        let seq = u64::from_le_bytes(body[..8].try_into().unwrap_or_default()) as usize;
        let sent = u64::from_le_bytes(body[8..16].try_into().unwrap_or_default());
        if seq >= self.counts.len() {
            self.counts.resize(seq + 1, 0);
        }
        self.counts[seq] += 1;
        self.received += 1;
        self.latencies_ns.push(now_ns().saturating_sub(sent));
    }

    /// (lost, duplicated) against `published` messages numbered 0..published.
    pub fn check(&self, published: u64) -> (u64, u64) {
        let mut lost = 0;
        let mut dups = 0;
        for seq in 0..published as usize {
            match self.counts.get(seq).copied().unwrap_or(0) {
                0 => lost += 1,
                1 => {}
                n => dups += u64::from(n - 1),
            }
        }
        (lost, dups)
    }
}

/// The result of one scenario run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Messages delivered.
    pub deliveries: u64,
    /// Seconds the run took.
    pub seconds: f64,
    /// Messages published and never delivered.
    pub lost: u64,
    /// Messages delivered more than once.
    pub duplicated: u64,
    /// Median latency.
    pub p50_us: f64,
    /// 99th percentile latency.
    pub p99_us: f64,
    /// Worst latency.
    pub max_us: f64,
}

impl Outcome {
    /// Merges consumers' records: `published` messages each expected once per consumer.
    pub fn from(seen: &[Seen], published: u64, seconds: f64) -> Outcome {
        let mut lat: Vec<u64> = seen
            .iter()
            .flat_map(|s| s.latencies_ns.iter().copied())
            .collect();
        lat.sort_unstable();
        let pct = |p: f64| {
            if lat.is_empty() {
                0.0
            } else {
                lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0
            }
        };
        let (mut lost, mut duplicated) = (0, 0);
        for s in seen {
            let (l, d) = s.check(published);
            lost += l;
            duplicated += d;
        }
        Outcome {
            deliveries: seen.iter().map(|s| s.received).sum(),
            seconds,
            lost,
            duplicated,
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            max_us: pct(1.0),
        }
    }

    /// Deliveries per second.
    pub fn rate(&self) -> f64 {
        self.deliveries as f64 / self.seconds.max(1e-9)
    }
}
