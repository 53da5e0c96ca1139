//! Listeners: accept connections and hand each to its protocol adapter.

use crate::tls::{Alpn, TlsContext};
use junction_core::login_throttle::Admission;
use junction_core::peer_rate::PeerRate;
use junction_core::refusals::Refusal;
use junction_core::runtime::{ConnectionContext, Limits, ProtocolAdapter, Transport};
use junction_core::Broker;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Counts live connections so shutdown can wait for them, and holds them under the broker's
/// connection limit.
#[derive(Debug)]
pub struct ConnectionCount {
    live: AtomicUsize,
    zero: Notify,
    max: usize,
    /// Failed accepts (descriptor exhaustion, aborted handshakes), by listener protocol.
    accept_errors: Mutex<BTreeMap<&'static str, u64>>,
    /// The connection rate per peer address, over every listener.
    peer_rate: Mutex<PeerRate>,
}

impl Default for ConnectionCount {
    fn default() -> Self {
        ConnectionCount::with_limit(usize::MAX)
    }
}

impl ConnectionCount {
    /// A count that admits at most `max` connections at once.
    pub fn with_limit(max: usize) -> Self {
        ConnectionCount {
            live: AtomicUsize::new(0),
            zero: Notify::new(),
            max,
            accept_errors: Mutex::default(),
            peer_rate: Mutex::default(),
        }
    }

    /// Limits each peer address to `per_second` new connections a second, `burst` at once
    /// (0 per second: no limit).
    pub fn set_peer_rate(&self, per_second: u64, burst: u64) {
        *self.peer_rate.lock().unwrap_or_else(|e| e.into_inner()) =
            PeerRate::new(per_second, burst);
    }

    /// Whether a connection from `ip` arriving at `now_ms` is within its address's rate.
    pub fn within_peer_rate(&self, ip: std::net::IpAddr, now_ms: u64) -> bool {
        self.peer_rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .arrive(ip, now_ms)
    }

    /// Counts one failed accept on a listener of `protocol`.
    pub fn accept_failed(&self, protocol: &'static str) {
        *self
            .accept_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(protocol)
            .or_default() += 1;
    }

    /// Failed accepts so far, by listener protocol.
    pub fn accept_errors(&self) -> Vec<(&'static str, u64)> {
        let errors = self.accept_errors.lock().unwrap_or_else(|e| e.into_inner());
        errors.iter().map(|(p, n)| (*p, *n)).collect()
    }

    /// Counts one more live connection until the guard drops; `None` at the limit.
    pub fn try_enter(self: &Arc<Self>) -> Option<ConnectionGuard> {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        Some(ConnectionGuard(self.clone()))
    }

    /// The most connections admitted at once.
    pub fn limit(&self) -> usize {
        self.max
    }

    /// Connections open now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Waits until no connection is left.
    pub async fn drained(&self) {
        loop {
            let notified = self.zero.notified();
            if self.live() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Held by a connection task while it runs.
pub struct ConnectionGuard(Arc<ConnectionCount>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.zero.notify_waiters();
        }
    }
}

/// What the accept loops of one listener share: the broker, the limits, the connection count,
/// and the TLS settings when it is a TLS listener.
#[derive(Clone)]
pub(crate) struct Accepting {
    pub(crate) broker: Arc<Broker>,
    pub(crate) limits: Arc<Limits>,
    pub(crate) count: Arc<ConnectionCount>,
    /// Set on TLS listeners: each connection's handshake runs first, under the handshake
    /// deadline.
    pub(crate) tls: Option<Arc<TlsContext>>,
}

/// Accepts on `listener` until its task is aborted (shutdown), serving each connection with
/// `adapter`.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    adapter: Arc<dyn ProtocolAdapter>,
    accepting: Accepting,
) {
    let protocol = adapter.name();
    let serve = move |io: Box<dyn Transport>, ctx| {
        let adapter = adapter.clone();
        async move { adapter.serve(io, ctx).await.map_err(|e| e.to_string()) }
    };
    accept_each(listener, protocol, accepting, serve).await
}

/// Accepts on `listener` until its task is aborted and, on a task of its own for each
/// connection counted in `accepting.count`, runs the TLS handshake (on a TLS listener) and
/// then `serve`.
pub(crate) async fn accept_each<F, Fut>(
    listener: TcpListener,
    protocol: &'static str,
    accepting: Accepting,
    serve: F,
) where
    F: Fn(Box<dyn Transport>, ConnectionContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let Accepting {
        broker,
        limits,
        count,
        tls,
    } = accepting;
    let serve = Arc::new(serve);
    loop {
        let (stream, peer): (_, SocketAddr) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                count.accept_failed(protocol);
                tracing::warn!(error = %e, protocol, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if !count.within_peer_rate(peer.ip(), broker.clock().now_ms()) {
            drop(stream);
            if broker.refusals().count(Refusal::ConnectionRate) {
                tracing::warn!(%peer, protocol, "connection rate of this address exceeded: connection refused");
            }
            continue;
        }
        let Some(guard) = count.try_enter() else {
            // At the limit: the socket is closed at once, before anything is allocated for it.
            drop(stream);
            if broker.refusals().count(Refusal::ConnectionLimit) {
                tracing::warn!(%peer, protocol, limit = count.limit(), "connection limit reached: connection refused");
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut ctx = ConnectionContext::new(broker.clone(), peer, limits.clone());
        ctx.local = stream.local_addr().ok();
        let (serve, tls) = (serve.clone(), tls.clone());
        tokio::spawn(async move {
            let _guard = guard;
            tracing::debug!(%peer, protocol, "connection accepted");
            if !wait_for_login_turn(&ctx, protocol).await {
                return;
            }
            let io: Box<dyn Transport> = match tls {
                None => Box::new(stream),
                Some(tls) => {
                    let deadline = ctx.handshake_deadline();
                    let Some((stream, session)) = tls
                        .handshake(stream, Alpn::None, deadline, &ctx.broker, peer)
                        .await
                    else {
                        return;
                    };
                    ctx.tls = Some(Arc::new(session));
                    Box::new(stream)
                }
            };
            if let Err(e) = serve(io, ctx).await {
                tracing::debug!(%peer, protocol, error = %e, "connection ended with error");
            }
        });
    }
}

/// Holds a connection from a peer address with too many recent failed logins until its turn
/// (one per failed-login delay), before a byte of it is read; false when its turn would come
/// after half the handshake deadline (the connection is then closed, logged and counted).
async fn wait_for_login_turn(ctx: &ConnectionContext, protocol: &'static str) -> bool {
    let most = ctx.limits.handshake_timeout / 2;
    match ctx.auth.admit_login(ctx.peer.ip(), most) {
        Admission::After(0) => true,
        Admission::After(ms) => {
            tracing::debug!(peer = %ctx.peer, protocol, ms, "recent failed logins: connection held");
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            true
        }
        Admission::Refused => {
            if ctx.broker.refusals().count(Refusal::LoginThrottled) {
                tracing::warn!(peer = %ctx.peer, protocol, "too many failed logins from this address: connection closed");
            }
            false
        }
    }
}
