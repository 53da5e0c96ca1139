//! Listeners: accept connections and hand each to its protocol adapter.

use junction_core::{Broker, ConnectionContext, Limits, ProtocolAdapter};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

/// Counts live connections so shutdown can wait for them.
#[derive(Debug, Default)]
pub struct ConnectionCount {
    live: AtomicUsize,
    zero: Notify,
}

impl ConnectionCount {
    /// Counts one more live connection until the guard drops.
    pub fn enter(self: &Arc<Self>) -> ConnectionGuard {
        self.live.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard(self.clone())
    }

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

/// Accepts on `listener` until shutdown, serving each connection with `adapter`.
pub async fn accept_loop(
    listener: TcpListener,
    adapter: Arc<dyn ProtocolAdapter>,
    broker: Arc<Broker>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    count: Arc<ConnectionCount>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, peer): (_, SocketAddr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, protocol = adapter.name(), "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let ctx = ConnectionContext::new(broker.clone(), peer, limits.clone(), shutdown.clone());
        let adapter = adapter.clone();
        let guard = count.enter();
        tokio::spawn(async move {
            let _guard = guard;
            let name = adapter.name();
            tracing::debug!(%peer, protocol = name, "connection accepted");
            if let Err(e) = adapter.serve(Box::new(stream), ctx).await {
                tracing::debug!(%peer, protocol = name, error = %e, "connection ended with error");
            }
        });
    }
}
