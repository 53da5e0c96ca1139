//! Listeners: accept connections and hand each to its protocol adapter.

use junction_core::refusals::Refusal;
use junction_core::runtime::{ConnectionContext, Limits, ProtocolAdapter};
use junction_core::Broker;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
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
        }
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

/// Accepts on `listener` until its task is aborted (shutdown), serving each connection with
/// `adapter`.
pub async fn accept_loop(
    listener: TcpListener,
    adapter: Arc<dyn ProtocolAdapter>,
    broker: Arc<Broker>,
    limits: Limits,
    count: Arc<ConnectionCount>,
) {
    let protocol = adapter.name();
    let serve = move |stream: TcpStream, ctx| {
        let adapter = adapter.clone();
        async move {
            adapter
                .serve(Box::new(stream), ctx)
                .await
                .map_err(|e| e.to_string())
        }
    };
    accept_each(listener, protocol, broker, limits, count, serve).await
}

/// Accepts on `listener` until its task is aborted and runs `serve` on a task of its own for
/// each connection, counted in `count`.
pub async fn accept_each<F, Fut>(
    listener: TcpListener,
    protocol: &'static str,
    broker: Arc<Broker>,
    limits: Limits,
    count: Arc<ConnectionCount>,
    serve: F,
) where
    F: Fn(TcpStream, ConnectionContext) -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let limits = Arc::new(limits);
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
        let connection = serve(stream, ctx);
        tokio::spawn(async move {
            let _guard = guard;
            tracing::debug!(%peer, protocol, "connection accepted");
            if let Err(e) = connection.await {
                tracing::debug!(%peer, protocol, error = %e, "connection ended with error");
            }
        });
    }
}
