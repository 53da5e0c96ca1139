//! The failed-login delay per peer address, as a state machine on a supplied clock: a
//! generic cell rate algorithm over failed logins, so a password cannot be guessed at wire
//! speed while a client that types one wrong password is not slowed at all.
//!
//! Each peer address has a theoretical arrival time (`tat`). A failed login moves it one
//! `delay` later (from now at the earliest). While the debt (`tat - now`) is within the
//! burst tolerance (`burst` delays) connections go ahead at once; beyond it, a new connection
//! reserves one more `delay` and waits until its reservation is within the tolerance, so
//! connections opened in parallel are released one per `delay`. A successful login does not
//! pay the debt back (an attacker with an account of its own could otherwise buy guesses);
//! the debt runs out with time and is capped. A peer without failures has no entry and never
//! waits. So `burst` failed logins go through at wire speed, after which one peer address gets
//! at most one attempt per `delay`.

use std::collections::HashMap;
use std::net::IpAddr;

/// Peers tracked at most; when full, those no longer in debt are dropped first, and a new
/// peer is not tracked (memory stays bounded whatever addresses an attacker uses).
const MAX_PEERS: usize = 65_536;

/// What a connection from a peer must do before its login is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead after waiting this many milliseconds (0: at once).
    After(u64),
    /// The wait would be longer than the connection may wait: close it.
    Refused,
}

/// The state: one theoretical arrival time per peer in debt.
#[derive(Debug)]
pub struct LoginThrottle {
    /// Milliseconds one failed login costs (0: the throttle is off).
    delay_ms: u64,
    /// Failed logins let through at once before waits begin.
    burst: u64,
    tat: HashMap<IpAddr, u64>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new(1000, 5)
    }
}

impl LoginThrottle {
    /// A throttle where each failed login costs `delay_ms` and `burst` failures pass at once.
    pub fn new(delay_ms: u64, burst: u64) -> Self {
        LoginThrottle {
            delay_ms,
            burst,
            tat: HashMap::new(),
        }
    }

    /// The debt of one peer never exceeds this: a peer that stops guessing is served again
    /// at most this long after its last failure.
    fn cap_ms(&self) -> u64 {
        self.delay_ms.saturating_mul(self.burst + 60)
    }

    /// A connection from `ip` arrives at `now`; it may wait at most `max_wait_ms`. A peer in
    /// debt reserves one delay for this connection's attempt.
    pub fn admit(&mut self, ip: IpAddr, now: u64, max_wait_ms: u64) -> Admission {
        let Some(&tat) = self.tat.get(&ip) else {
            return Admission::After(0);
        };
        if tat <= now {
            self.tat.remove(&ip);
            return Admission::After(0);
        }
        let tolerance = self.delay_ms.saturating_mul(self.burst);
        let reserved = tat + self.delay_ms;
        let wait = reserved.saturating_sub(now).saturating_sub(tolerance);
        if wait == 0 {
            return Admission::After(0);
        }
        if wait > max_wait_ms {
            return Admission::Refused;
        }
        self.tat.insert(ip, reserved.min(now + self.cap_ms()));
        Admission::After(wait)
    }

    /// A login from `ip` failed at `now`.
    pub fn failed(&mut self, ip: IpAddr, now: u64) {
        if self.delay_ms == 0 {
            return;
        }
        if !self.tat.contains_key(&ip) && self.tat.len() >= MAX_PEERS {
            self.tat.retain(|_, tat| *tat > now);
            if self.tat.len() >= MAX_PEERS {
                return;
            }
        }
        let cap = now + self.cap_ms();
        let tat = self.tat.entry(ip).or_insert(now);
        *tat = ((*tat).max(now) + self.delay_ms).min(cap);
    }

    /// Peers currently in debt (for status; entries past their time are counted until touched).
    pub fn tracked(&self) -> usize {
        self.tat.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_passes_then_one_attempt_per_delay() {
        let mut t = LoginThrottle::new(1000, 3);
        let a = ip("192.0.2.1");
        // Three failed logins at wire speed: nobody waits.
        for _ in 0..3 {
            assert_eq!(t.admit(a, 0, 10_000), Admission::After(0));
            t.failed(a, 0);
        }
        // Debt is now 3 s, at the tolerance; the 4th attempt reserves a 4th second and waits
        // 1 s, the 5th (opened in parallel) 2 s: one attempt per delay.
        assert_eq!(t.admit(a, 0, 10_000), Admission::After(1000));
        assert_eq!(t.admit(a, 0, 10_000), Admission::After(2000));
        // Past what the connection may wait: refused, and nothing reserved.
        assert_eq!(t.admit(a, 0, 2000), Admission::Refused);
        assert_eq!(t.admit(a, 0, 10_000), Admission::After(3000));
    }

    #[test]
    fn one_typo_costs_nothing_and_debt_runs_out() {
        let mut t = LoginThrottle::new(1000, 5);
        let a = ip("192.0.2.1");
        t.failed(a, 0);
        assert_eq!(t.admit(a, 10, 10_000), Admission::After(0));
        // Debt of one failure is paid after one delay; the entry goes.
        assert_eq!(t.admit(a, 1_000, 10_000), Admission::After(0));
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn peers_are_independent_and_the_debt_is_capped() {
        let mut t = LoginThrottle::new(100, 1);
        let (a, b) = (ip("192.0.2.1"), ip("2001:db8::1"));
        for _ in 0..10_000 {
            t.failed(a, 0);
        }
        assert_eq!(
            t.admit(b, 0, 0),
            Admission::After(0),
            "another peer is not slowed"
        );
        // 10 000 failures, but the debt stops at (burst + 60) delays.
        match t.admit(a, 0, u64::MAX) {
            Admission::After(w) => assert!(w <= 100 * 61, "{w}"),
            Admission::Refused => panic!("an unbounded wait is still a wait"),
        }
        assert_eq!(t.admit(a, 100 * 62, 0), Admission::After(0));
    }

    #[test]
    fn waiting_connections_are_released_one_per_delay_and_zero_delay_is_off() {
        let mut t = LoginThrottle::new(1000, 1);
        let a = ip("192.0.2.1");
        t.failed(a, 0);
        t.failed(a, 0);
        assert_eq!(t.admit(a, 0, 10_000), Admission::After(2000));
        assert_eq!(t.admit(a, 0, 10_000), Admission::After(3000));
        assert_eq!(t.admit(a, 2500, 10_000), Admission::After(1500));
        let mut off = LoginThrottle::new(0, 0);
        for _ in 0..100 {
            off.failed(a, 0);
        }
        assert_eq!(off.admit(a, 0, 0), Admission::After(0));
    }

    #[test]
    fn memory_is_bounded_by_the_peer_limit() {
        let mut t = LoginThrottle::new(1000, 1);
        for i in 0..(MAX_PEERS as u32 + 10) {
            t.failed(IpAddr::from(i.to_be_bytes()), 0);
        }
        assert_eq!(t.tracked(), MAX_PEERS);
        // Once their debt is paid, old peers make room for new ones.
        t.failed(ip("198.51.100.1"), 1_000_000);
        assert_eq!(t.tracked(), 1);
    }
}
