//! Evenly spaced sends at a fixed rate. tokio's timer ticks once a millisecond, so an interval
//! of 200 µs releases bursts of five each millisecond; a thread sleeping to each due time spaces
//! the sends as the rate says.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Releases `n` sends, one every `1/rate` seconds, from a thread of its own. A sender that falls
/// behind catches up at once (the permits wait for it). Dropping the pacer stops the thread.
pub struct Pacer {
    permits: Arc<Semaphore>,
}

impl Pacer {
    /// A pacer that releases `n` permits, evenly spaced at `rate` per second.
    pub fn new(rate: u64, n: u64) -> Pacer {
        let permits = Arc::new(Semaphore::new(0));
        let sem = permits.clone();
        let rate = u128::from(rate.max(1));
        std::thread::spawn(move || {
            let start = Instant::now();
            for k in 0..n {
                let due =
                    start + Duration::from_nanos((u128::from(k) * 1_000_000_000 / rate) as u64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if sem.is_closed() {
                    return;
                }
                sem.add_permits(1);
            }
        });
        Pacer { permits }
    }

    /// Waits until the next send is due.
    pub async fn tick(&self) {
        if let Ok(p) = self.permits.acquire().await {
            p.forget();
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.permits.close();
    }
}
