//! Counts of what the broker refused, by kind: every refusal is logged once where it happens and
//! counted here, so status, the management API and metrics can show it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A kind of refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// A connection did not finish its handshake (protocol header, login, open) in time.
    HandshakeTimeout,
    /// A connection arrived while the broker was at its connection limit.
    ConnectionLimit,
    /// A frame or packet that did not decode (the connection was closed with the protocol's
    /// error).
    MalformedFrame,
    /// A management API request without valid credentials, or from a user without a
    /// management tag (HTTP 401).
    ManagementLogin,
    /// A management API request the caller's tags do not allow (HTTP 403).
    ManagementForbidden,
    /// A malformed management API request: bad JSON, a field of the wrong type (HTTP 400).
    ManagementBadRequest,
    /// An operation the user's permissions (configure, write, read, topic) do not allow.
    AccessRefused,
    /// A TLS handshake that failed: an unsupported version, a client certificate that did not
    /// verify, bytes that are not TLS.
    TlsHandshake,
    /// A connection from a peer with too many recent failed logins, closed before its login
    /// was looked at (the wait would have outlasted the handshake deadline).
    LoginThrottled,
    /// A connection from a peer address opening connections faster than
    /// `[limits] connection_rate_per_peer`, closed at accept.
    ConnectionRate,
    /// An MQTT SUBSCRIBE past the session's `max_subscriptions`.
    SubscriptionLimit,
    /// A retained message for a new topic past the vhost's `max_retained_messages`.
    RetainedLimit,
}

impl Refusal {
    /// Every kind, in the order [`Refusals::snapshot`] lists them.
    pub const ALL: [Refusal; 12] = [
        Refusal::HandshakeTimeout,
        Refusal::ConnectionLimit,
        Refusal::MalformedFrame,
        Refusal::ManagementLogin,
        Refusal::ManagementForbidden,
        Refusal::ManagementBadRequest,
        Refusal::AccessRefused,
        Refusal::TlsHandshake,
        Refusal::LoginThrottled,
        Refusal::ConnectionRate,
        Refusal::SubscriptionLimit,
        Refusal::RetainedLimit,
    ];

    /// A stable snake_case name (metric label, status key).
    pub fn name(self) -> &'static str {
        match self {
            Refusal::HandshakeTimeout => "handshake_timeout",
            Refusal::ConnectionLimit => "connection_limit",
            Refusal::MalformedFrame => "malformed_frame",
            Refusal::ManagementLogin => "management_login",
            Refusal::ManagementForbidden => "management_forbidden",
            Refusal::ManagementBadRequest => "management_bad_request",
            Refusal::AccessRefused => "access_refused",
            Refusal::TlsHandshake => "tls_handshake",
            Refusal::LoginThrottled => "login_throttled",
            Refusal::ConnectionRate => "connection_rate",
            Refusal::SubscriptionLimit => "subscription_limit",
            Refusal::RetainedLimit => "retained_limit",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The counters, one per [`Refusal`], lock-free to bump.
#[derive(Debug, Default)]
pub struct Refusals {
    counts: [AtomicU64; Refusal::ALL.len()],
    /// When each kind was last logged at warn level (a flood logs at most once a second).
    last_warned: Mutex<[Option<Instant>; Refusal::ALL.len()]>,
}

impl Refusals {
    /// Counts one refusal of `kind`; true when the caller should log it at warn level (the
    /// first in a second), false when a flood is already being reported.
    pub fn count(&self, kind: Refusal) -> bool {
        self.counts[kind.index()].fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut last = self.last_warned.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut last[kind.index()];
        match slot {
            Some(t) if now.duration_since(*t) < Duration::from_secs(1) => false,
            _ => {
                *slot = Some(now);
                true
            }
        }
    }

    /// How many refusals of `kind` so far.
    pub fn get(&self, kind: Refusal) -> u64 {
        self.counts[kind.index()].load(Ordering::Relaxed)
    }

    /// Every kind with its count.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Refusal::ALL
            .iter()
            .map(|k| (k.name(), self.get(*k)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_refusal_and_warns_once_per_burst() {
        let r = Refusals::default();
        assert!(r.count(Refusal::HandshakeTimeout));
        assert!(!r.count(Refusal::HandshakeTimeout));
        assert!(r.count(Refusal::ConnectionLimit));
        assert_eq!(r.get(Refusal::HandshakeTimeout), 2);
        assert_eq!(r.get(Refusal::ConnectionLimit), 1);
        assert_eq!(r.get(Refusal::MalformedFrame), 0);
        assert_eq!(r.snapshot()[0], ("handshake_timeout", 2));
    }
}
