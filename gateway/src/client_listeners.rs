//! The client listeners (AMQP, STOMP, MQTT, and the WebSocket ones) as one switch:
//! `junction ctl stop_app` closes them and every client connection while the process, its
//! storage and the management API stay up; `start_app` binds them again on the same
//! addresses. RabbitMQ's `stop_app`/`start_app` do the same to the `rabbit` application.

use crate::bind_all;
use crate::listener::{accept_loop, Accepting, ConnectionCount};
use crate::listener_specs::{ListenerSpec, ListenerTransport};
use crate::tls::TlsContext;
use crate::websocket::ws_accept_loop;
use crate::StartError;
use junction_core::runtime::Limits;
use junction_core::Broker;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// The client listeners and their accept tasks.
pub(crate) struct ClientListeners {
    /// Each listener, with the address it was first bound to (a port 0 became a real one).
    specs: Vec<ListenerSpec>,
    broker: Arc<Broker>,
    /// What every accept loop shares (with the TLS settings for the TLS listeners).
    accepting: Accepting,
    /// The accept tasks; empty while stopped.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl ClientListeners {
    /// Binds every listener of `specs` and starts accepting; each spec learns its bound address.
    pub(crate) async fn start(
        mut specs: Vec<ListenerSpec>,
        broker: Arc<Broker>,
        limits: Limits,
        connections: Arc<ConnectionCount>,
        tls: Option<Arc<TlsContext>>,
    ) -> Result<ClientListeners, StartError> {
        let accepting = Accepting {
            broker: broker.clone(),
            limits: Arc::new(limits),
            count: connections,
            tls,
        };
        let mut tasks = Vec::new();
        for spec in &mut specs {
            let (sockets, bound) = bind_all(spec.name, spec.address).await?;
            match &spec.transport {
                ListenerTransport::Tcp => tracing::info!(%bound, protocol = spec.name, "listening"),
                ListenerTransport::WebSocket(ws) => {
                    tracing::info!(%bound, path = %ws.path, protocol = spec.name, "listening")
                }
            }
            spec.address = bound;
            tasks.extend(
                sockets
                    .into_iter()
                    .map(|s| spawn_accept(spec, s, &accepting)),
            );
        }
        Ok(ClientListeners {
            specs,
            broker,
            accepting,
            tasks: Mutex::new(tasks),
        })
    }

    /// Each listener's name and bound address.
    pub(crate) fn bound(&self) -> impl Iterator<Item = (&ListenerSpec, SocketAddr)> {
        self.specs.iter().map(|s| (s, s.address))
    }

    /// Whether the listeners accept connections.
    pub(crate) async fn running(&self) -> bool {
        !self.tasks.lock().await.is_empty()
    }

    /// Closes every listener and asks every client connection to close (with its protocol's
    /// close, as at shutdown). Returns false when they were already stopped.
    pub(crate) async fn stop(&self) -> bool {
        let mut tasks = self.tasks.lock().await;
        if tasks.is_empty() {
            return false;
        }
        for t in tasks.iter() {
            t.abort();
        }
        // Wait until each task is gone, so its socket is closed before anyone binds again.
        for t in tasks.drain(..) {
            let _ = t.await;
        }
        self.broker.shut_down_connections();
        tracing::info!("client listeners stopped (stop_app)");
        true
    }

    /// Binds every listener again on the address it had. Returns false when they were
    /// already running.
    pub(crate) async fn resume(&self) -> Result<bool, StartError> {
        let mut tasks = self.tasks.lock().await;
        if !tasks.is_empty() {
            return Ok(false);
        }
        self.broker.resume_connections();
        let mut fresh = Vec::new();
        for spec in &self.specs {
            let (sockets, bound) = bind_all(spec.name, spec.address).await?;
            tracing::info!(%bound, protocol = spec.name, "listening");
            fresh.extend(
                sockets
                    .into_iter()
                    .map(|s| spawn_accept(spec, s, &self.accepting)),
            );
        }
        *tasks = fresh;
        tracing::info!("client listeners started (start_app)");
        Ok(true)
    }

    /// Stops accepting for good (shutdown).
    pub(crate) async fn abort(&self) {
        for t in self.tasks.lock().await.drain(..) {
            t.abort();
        }
    }
}

fn spawn_accept(
    spec: &ListenerSpec,
    socket: tokio::net::TcpListener,
    accepting: &Accepting,
) -> JoinHandle<()> {
    let adapter = spec.adapter.clone();
    let mut accepting = accepting.clone();
    if !spec.tls {
        accepting.tls = None;
    }
    match &spec.transport {
        ListenerTransport::Tcp => tokio::spawn(accept_loop(socket, adapter, accepting)),
        ListenerTransport::WebSocket(ws) => {
            tokio::spawn(ws_accept_loop(socket, ws.clone(), adapter, accepting))
        }
    }
}
