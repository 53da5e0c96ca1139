//! HTTPS for the management API: a listener axum serves from, whose connections arrive with
//! their TLS handshake done. Each handshake runs on a task of its own under the handshake
//! deadline, so a client that never finishes one holds up nobody.

use super::{Alpn, TlsContext};
use junction_core::Broker;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;

/// Connections waiting for axum to take them.
const BACKLOG: usize = 64;

/// TLS connections of one TCP listener, handshake done.
pub(crate) struct TlsIncoming {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: JoinHandle<()>,
}

impl TlsIncoming {
    /// Accepts on `listener`, handshaking each connection with `tls` within `timeout`.
    pub(crate) fn new(
        listener: TcpListener,
        tls: Arc<TlsContext>,
        broker: Arc<Broker>,
        timeout: Duration,
    ) -> std::io::Result<TlsIncoming> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(BACKLOG);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "HTTPS accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (tls, broker, tx) = (tls.clone(), broker.clone(), tx.clone());
                tokio::spawn(async move {
                    let deadline = tokio::time::Instant::now() + timeout;
                    if let Some((stream, _)) = tls
                        .handshake(stream, Alpn::Http1, deadline, &broker, peer)
                        .await
                    {
                        let _ = tx.send((stream, peer)).await;
                    }
                });
            }
        });
        Ok(TlsIncoming {
            ready,
            local,
            accepting,
        })
    }
}

impl Drop for TlsIncoming {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsIncoming {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task is gone only when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
