//! The connection rate per peer address, as a state machine on a supplied clock: a generic
//! cell rate algorithm over connection arrivals. Each address may open `per_second`
//! connections a second on average and `burst` at once; a connection beyond that is refused
//! at accept (not held: a client that floods connects gains nothing by waiting). Addresses
//! within their rate are forgotten, so memory is bounded by the addresses flooding now.

use std::collections::HashMap;
use std::net::IpAddr;

/// Addresses tracked at most; when full, those no longer ahead of their rate go first, and a
/// new address that still finds no room is let in untracked.
const MAX_PEERS: usize = 65_536;

/// The state: one theoretical arrival time (in microseconds) per address ahead of its rate.
#[derive(Debug, Default)]
pub struct PeerRate {
    /// Microseconds one connection costs (0: the limit is off).
    interval_us: u64,
    /// How far ahead of its rate an address may run (`burst` intervals).
    tolerance_us: u64,
    tat: HashMap<IpAddr, u64>,
}

impl PeerRate {
    /// `per_second` connections a second per address, `burst` at once (0 per second: off).
    pub fn new(per_second: u64, burst: u64) -> PeerRate {
        let interval_us = 1_000_000u64
            .checked_div(per_second)
            .map_or(0, |us| us.max(1));
        PeerRate {
            interval_us,
            tolerance_us: interval_us.saturating_mul(burst.saturating_sub(1)),
            tat: HashMap::new(),
        }
    }

    /// A connection from `ip` arrives at `now_ms`: whether it is within the rate.
    pub fn arrive(&mut self, ip: IpAddr, now_ms: u64) -> bool {
        if self.interval_us == 0 {
            return true;
        }
        let now = now_ms.saturating_mul(1000);
        if !self.tat.contains_key(&ip) && self.tat.len() >= MAX_PEERS {
            self.tat.retain(|_, tat| *tat > now);
            if self.tat.len() >= MAX_PEERS {
                return true;
            }
        }
        let tat = self.tat.get(&ip).copied().unwrap_or(now).max(now);
        if tat - now > self.tolerance_us {
            return false;
        }
        self.tat.insert(ip, tat + self.interval_us);
        true
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.tat.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let mut r = PeerRate::new(10, 3);
        assert!((0..3).all(|_| r.arrive(a, 0)), "the burst at once");
        assert!(!r.arrive(a, 0), "then refused");
        assert!(r.arrive(b, 0), "another address is not affected");
        assert!(!r.arrive(a, 99));
        assert!(r.arrive(a, 100), "one interval later, one more");
        assert!(!r.arrive(a, 100));
        assert!(
            (0..3).all(|_| r.arrive(a, 10_000)),
            "after a pause, the burst again"
        );
    }

    #[test]
    fn refusals_do_not_push_the_address_further_back() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mut r = PeerRate::new(1, 1);
        assert!(r.arrive(a, 0));
        for t in 0..1000 {
            assert!(!r.arrive(a, t));
        }
        assert!(r.arrive(a, 1000));
    }

    #[test]
    fn off_and_bounded() {
        let mut off = PeerRate::new(0, 0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..1000).all(|_| off.arrive(a, 0)));
        let mut r = PeerRate::new(1, 1);
        for i in 0..(MAX_PEERS as u32 + 100) {
            r.arrive(IpAddr::from(i.to_be_bytes()), 0);
        }
        assert!(r.tracked() <= MAX_PEERS);
    }
}
