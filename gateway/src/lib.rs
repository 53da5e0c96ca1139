//! junction-gateway: configuration, listeners and wiring of the `junction` binary.

mod auth_http;
mod client_listeners;
pub mod config;
pub mod ctl;
pub mod descriptors;
pub mod disk_monitor;
pub mod listener;
mod listener_specs;
pub mod local_credential;
pub mod logging;
mod management;
pub mod memory_monitor;
mod metrics;
mod node;
pub mod tls;
pub mod websocket;

use client_listeners::ClientListeners;
use config::{Backend, Config};
use junction_core::auth::new_user;
use junction_core::auth_backend::{AuthBackend, Cached};
use junction_core::store::DataDir;
use junction_core::{Broker, BrokerOptions};
use listener::ConnectionCount;
use listener_specs::{listed_listeners, listener_specs};
use node::Node;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long shutdown waits for connections to finish their protocol's close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the gateway could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("cannot listen on {addr} for {protocol}: {source}")]
    /// A listener could not be bound.
    Listen {
        /// The listener's protocol.
        protocol: &'static str,
        /// The address it was to bind.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    #[error("{0}")]
    /// The data directory could not be opened.
    DataDir(#[from] junction_core::store::DataDirError),
    #[error("cannot start the broker: {0}")]
    /// The broker could not be built from what was stored.
    Broker(#[from] junction_core::CoreError),
    #[error("cannot start the TLS listeners: {0}")]
    /// The `[tls]` files could not be loaded.
    Tls(#[from] tls::TlsError),
    #[error("cannot start the HTTP auth backend: {0}")]
    /// The HTTP backend's request thread could not be started.
    AuthHttp(String),
}

/// The addresses the listeners are bound to (None = disabled).
#[derive(Debug, Clone, Default)]
pub struct BoundAddrs {
    /// The AMQP listener.
    pub amqp: Option<SocketAddr>,
    /// The STOMP listener.
    pub stomp: Option<SocketAddr>,
    /// The MQTT listener.
    pub mqtt: Option<SocketAddr>,
    /// The STOMP over WebSocket listener.
    pub stomp_ws: Option<SocketAddr>,
    /// The MQTT over WebSocket listener.
    pub mqtt_ws: Option<SocketAddr>,
    /// The management HTTP API.
    pub management: Option<SocketAddr>,
    /// The Prometheus exporter.
    pub prometheus: Option<SocketAddr>,
    /// AMQP over TLS.
    pub amqps: Option<SocketAddr>,
    /// STOMP over TLS.
    pub stomps: Option<SocketAddr>,
    /// MQTT over TLS.
    pub mqtts: Option<SocketAddr>,
    /// STOMP over secure WebSocket.
    pub stomp_wss: Option<SocketAddr>,
    /// MQTT over secure WebSocket.
    pub mqtt_wss: Option<SocketAddr>,
    /// The management API over HTTPS.
    pub management_tls: Option<SocketAddr>,
}

/// A running broker with its listeners.
pub struct Gateway {
    broker: Arc<Broker>,
    data: DataDir,
    addrs: BoundAddrs,
    clients: Arc<ClientListeners>,
    /// The management API's and the exporter's tasks.
    servers: Vec<JoinHandle<()>>,
    housekeeping: JoinHandle<()>,
    disk_monitor: JoinHandle<()>,
    disk_limits: Arc<disk_monitor::DiskLimits>,
    memory_monitor: JoinHandle<()>,
    memory_limit: Arc<memory_monitor::MemoryLimit>,
    connections: Arc<ConnectionCount>,
    node: Arc<Node>,
}

/// Locks and opens the data directory, logging what recovery found.
fn open_data_dir(cfg: &Config) -> Result<DataDir, StartError> {
    let started = std::time::Instant::now();
    let data = DataDir::open(&cfg.data_dir, cfg.storage.log_options())?;
    let r = &data.recovery;
    for t in &r.truncations {
        tracing::warn!(
            segment = t.segment,
            offset = t.offset,
            bytes = t.bytes,
            records_dropped = t.records,
            "message log: damaged tail cut off"
        );
    }
    for h in &r.skipped {
        tracing::error!(
            segment = h.segment,
            offset = h.offset,
            bytes = h.bytes,
            copy = %h.copy.display(),
            "message log: damaged record skipped; the records after it are kept"
        );
    }
    if !r.skipped.is_empty() {
        let bytes: u64 = r.skipped.iter().map(|h| h.bytes).sum();
        tracing::error!(
            stretches = r.skipped.len(),
            bytes,
            "message log: damage inside the log; messages in the damaged records are lost"
        );
    }
    tracing::info!(
        dir = %cfg.data_dir.display(),
        segments = r.segments,
        records = r.records,
        messages = r.live_messages,
        ms = started.elapsed().as_millis() as u64,
        "storage recovered"
    );
    Ok(data)
}

/// Binds a listener; a failure names the protocol and address.
async fn bind(
    protocol: &'static str,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen {
            protocol,
            addr,
            source,
        })?;
    let bound = listener.local_addr().unwrap_or(addr);
    Ok((listener, bound))
}

/// Binds `addr`, and when it is IPv4's any-address (the default) also IPv6's on the same port,
/// as RabbitMQ listens on both: a client that resolves `localhost` to `::1` is served. A
/// machine without IPv6 keeps the IPv4 listener (logged).
async fn bind_all(
    protocol: &'static str,
    addr: SocketAddr,
) -> Result<(Vec<TcpListener>, SocketAddr), StartError> {
    let (listener, bound) = bind(protocol, addr).await?;
    let mut all = vec![listener];
    if addr.ip() == std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED) {
        let v6 = SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), bound.port());
        match ipv6_only_listener(v6) {
            Ok(l) => {
                tracing::info!(bound = %v6, protocol, "listening");
                all.push(l);
            }
            Err(e) => tracing::warn!(addr = %v6, protocol, error = %e, "no IPv6 listener"),
        }
    }
    Ok((all, bound))
}

/// A listener on an IPv6 address that takes IPv6 connections only (IPv4 has its own).
fn ipv6_only_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV6,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_only_v6(true)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

impl Gateway {
    /// Opens the data directory, builds the broker and binds every enabled listener.
    pub async fn start(cfg: Config) -> Result<Gateway, StartError> {
        let opening = std::time::Instant::now();
        let data = open_data_dir(&cfg)?;
        let recovery_seconds = opening.elapsed().as_secs_f64();
        let broker = Broker::new(BrokerOptions {
            meta: data.meta.clone(),
            messages: data.messages.clone(),
            default_vhost: cfg.default_vhost.clone(),
            default_user: Some((cfg.default_user.clone(), cfg.default_pass.clone())),
            ..BrokerOptions::default()
        })?;
        broker.auth().set_loopback_only(cfg.loopback_users.clone());
        broker
            .auth()
            .set_login_throttle(cfg.limits.failed_login_delay, cfg.limits.failed_login_burst);
        let external = match &cfg.auth_http {
            Some(h) => {
                let http = auth_http::HttpBackend::start(h).map_err(StartError::AuthHttp)?;
                let cached = Cached::new(http, h.cache_ttl, broker.clock().clone());
                Some(Arc::new(cached) as Arc<dyn AuthBackend>)
            }
            None => None,
        };
        broker
            .auth()
            .set_backends(cfg.auth.backends.contains(&Backend::Internal), external);
        for u in &cfg.users {
            broker.put_user(new_user(
                &u.name,
                &u.password,
                u.tags.clone(),
                u.vhosts.clone(),
            ))?;
        }
        let max_connections = descriptors::connection_limit(cfg.limits.max_connections);
        let connections = Arc::new(ConnectionCount::with_limit(max_connections));
        connections.set_peer_rate(
            cfg.limits.connection_rate_per_peer,
            cfg.limits.connection_rate_burst,
        );
        let tls = match &cfg.tls {
            Some(settings) => Some(Arc::new(tls::TlsContext::load(settings.clone())?)),
            None => None,
        };
        let mqtt = Arc::new(junction_mqtt::MqttAdapter::durable(&broker));
        let mqtt_registry = mqtt.registry.clone();
        mqtt_registry.set_max_retained(cfg.mqtt.max_retained_messages);
        let clients = Arc::new(
            ClientListeners::start(
                listener_specs(&cfg, mqtt),
                broker.clone(),
                cfg.core_limits(),
                connections.clone(),
                tls.clone(),
            )
            .await?,
        );
        let mut addrs = BoundAddrs::default();
        for (spec, bound) in clients.bound() {
            *(spec.bound_to)(&mut addrs) = Some(bound);
        }
        let management = if cfg.listeners.management.enabled {
            let (sockets, bound) =
                bind_all("management", cfg.listeners.management.socket_addr()).await?;
            tracing::info!(%bound, protocol = "HTTP (management)", "listening");
            addrs.management = Some(bound);
            sockets
        } else {
            Vec::new()
        };
        let management_tls = match &tls {
            Some(tls) if cfg.listeners.management_tls.enabled => {
                let (sockets, bound) =
                    bind_all("management", cfg.listeners.management_tls.socket_addr()).await?;
                tracing::info!(%bound, protocol = "HTTPS (management)", "listening");
                addrs.management_tls = Some(bound);
                let timeout = cfg.core_limits().handshake_timeout;
                sockets
                    .into_iter()
                    .map(|s| tls::TlsIncoming::new(s, tls.clone(), broker.clone(), timeout))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|source| StartError::Listen {
                        protocol: "management",
                        addr: bound,
                        source,
                    })?
            }
            _ => Vec::new(),
        };
        let prometheus = if cfg.listeners.prometheus.enabled {
            let (sockets, bound) =
                bind_all("prometheus", cfg.listeners.prometheus.socket_addr()).await?;
            tracing::info!(%bound, protocol = "HTTP (Prometheus)", "listening");
            addrs.prometheus = Some(bound);
            sockets
        } else {
            Vec::new()
        };
        let housekeeping = broker.spawn_housekeeping(Duration::from_millis(50));
        let disk_limits = disk_monitor::DiskLimits::new(
            cfg.storage.disk_free_limit_mib << 20,
            cfg.storage.message_log_limit_mib << 20,
        );
        let messages = data.messages.clone();
        let disk_monitor = disk_monitor::spawn(
            broker.clone(),
            cfg.data_dir.clone(),
            disk_limits.clone(),
            move || messages.disk_usage().1,
        );
        let memory_limit = memory_monitor::MemoryLimit::new(memory_monitor::watermark(
            cfg.memory.high_watermark,
            cfg.memory.high_watermark_mib,
        ));
        let memory_monitor = memory_monitor::spawn(broker.clone(), memory_limit.clone());
        let local_credential = match local_credential::ensure(&cfg.data_dir) {
            Ok(secret) => Some(secret),
            Err(e) => {
                tracing::error!(error = %e, "junction ctl needs --username/--password on this machine");
                None
            }
        };
        let listeners = listed_listeners(&addrs);
        let node = Arc::new(Node {
            broker: broker.clone(),
            memory: memory_limit.clone(),
            disk: disk_limits.clone(),
            data_dir: cfg.data_dir.clone(),
            log: data.messages.clone(),
            started: opening,
            recovery_seconds,
            recovery_damage: (data.recovery.skipped.len(), data.recovery.truncations.len()),
            clients: clients.clone(),
            connections: connections.clone(),
            mqtt: mqtt_registry,
            listeners: listeners.clone(),
            tls,
            local_credential,
            config: cfg,
        });
        let mut servers = Vec::new();
        if !management.is_empty() || !management_tls.is_empty() {
            let api = management::Api::new(node.clone());
            servers.push(api.sample_every(Duration::from_millis(
                node.config.management.collect_statistics_interval,
            )));
            for socket in management {
                servers.push(tokio::spawn(management::serve(socket, api.clone())));
            }
            for incoming in management_tls {
                servers.push(tokio::spawn(management::serve(incoming, api.clone())));
            }
        }
        for socket in prometheus {
            servers.push(tokio::spawn(metrics::serve(socket, node.clone())));
        }
        let listed: Vec<String> = listeners
            .iter()
            .map(|(protocol, addr)| format!("{protocol}={addr}"))
            .collect();
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            data_dir = %node.data_dir.display(),
            listeners = %listed.join(" "),
            memory_watermark_mib = memory_limit.get() >> 20,
            "Junction started"
        );
        Ok(Gateway {
            broker,
            data,
            addrs,
            clients,
            servers,
            housekeeping,
            disk_monitor,
            disk_limits,
            memory_monitor,
            memory_limit,
            connections,
            node,
        })
    }

    /// Reads the `[tls]` certificate, key and CA files again (SIGHUP, `junction ctl
    /// reload_certificates`): connections accepted from now on use them, open ones keep
    /// theirs. Returns false when TLS is not configured.
    pub fn reload_certificates(&self) -> Result<bool, tls::TlsError> {
        self.node.reload_certificates()
    }

    /// Where the listeners are bound.
    pub fn addrs(&self) -> &BoundAddrs {
        &self.addrs
    }

    /// The broker.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Changes the free-disk limit below which publishers are blocked, and checks at once.
    pub fn set_disk_free_limit(&self, bytes: u64) {
        self.disk_limits.set_free(bytes);
    }

    /// Sets the memory high watermark in bytes (checked at once).
    pub fn set_memory_high_watermark(&self, bytes: u64) {
        self.memory_limit.set(bytes);
    }

    /// Changes the message log's size limit at run time (0: none).
    pub fn set_message_log_limit(&self, bytes: u64) {
        self.disk_limits.set_log(bytes);
    }

    /// Connections currently open.
    pub fn connection_count(&self) -> usize {
        self.connections.live()
    }

    /// Stops accepting, asks every connection to close with its protocol's close, waits for
    /// them (a few seconds at most), and flushes storage.
    pub async fn shutdown(self) {
        self.clients.abort().await;
        for t in &self.servers {
            t.abort();
        }
        self.broker.shut_down_connections();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.connections.drained())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.connections.live(),
                "connections still open after the grace period"
            );
        }
        self.housekeeping.abort();
        self.disk_monitor.abort();
        self.memory_monitor.abort();
        if let Err(e) = self.broker.sync().await {
            tracing::error!(error = %e, "final storage flush failed");
        }
        let data = self.data;
        let stats = data.messages.stats();
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            published = load(&stats.published),
            elided = load(&stats.elided),
            batches = load(&stats.batches),
            fsyncs = load(&stats.fsyncs),
            "message log totals"
        );
        let _ = tokio::task::spawn_blocking(move || data.close()).await;
        tracing::info!("shut down");
    }
}
