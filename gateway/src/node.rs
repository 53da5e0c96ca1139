//! What the running node is: its broker, storage, limits and listeners, in one place that the
//! management API (`/api/nodes`, `junction ctl status`) and the Prometheus exporter both read.

use crate::client_listeners::ClientListeners;
use crate::config::Config;
use crate::disk_monitor::DiskLimits;
use crate::listener::ConnectionCount;
use crate::memory_monitor::MemoryLimit;
use crate::tls::{TlsContext, TlsError};
use junction_core::store::DurableMessageStore;
use junction_core::Broker;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// The node's name, as the API and the metrics report it (one node, until the cluster work).
pub(crate) const NODE_NAME: &str = "junction@localhost";

/// The running node.
pub(crate) struct Node {
    /// The broker.
    pub(crate) broker: Arc<Broker>,
    /// The memory high watermark.
    pub(crate) memory: Arc<MemoryLimit>,
    /// The free-disk and message-log limits.
    pub(crate) disk: Arc<DiskLimits>,
    /// The data directory.
    pub(crate) data_dir: PathBuf,
    /// The message log.
    pub(crate) log: Arc<DurableMessageStore>,
    /// When the node started.
    pub(crate) started: Instant,
    /// How long opening the data directory took at start, in seconds.
    pub(crate) recovery_seconds: f64,
    /// Damaged stretches recovery skipped, and torn tails it cut.
    pub(crate) recovery_damage: (usize, usize),
    /// The client listeners (`stop_app`/`start_app`).
    pub(crate) clients: Arc<ClientListeners>,
    /// Client connections and accept errors, by listener.
    pub(crate) connections: Arc<ConnectionCount>,
    /// MQTT sessions and retained messages.
    pub(crate) mqtt: Arc<junction_mqtt::registry::Registry>,
    /// Every bound listener as RabbitMQ's API names its protocol (`amqp`, `http`, ...).
    pub(crate) listeners: Vec<(&'static str, SocketAddr)>,
    /// The configuration the node runs with.
    pub(crate) config: Config,
    /// The local credential `junction ctl` presents (None when it could not be set up).
    pub(crate) local_credential: Option<String>,
    /// The TLS settings of the TLS listeners, when `[tls]` is set.
    pub(crate) tls: Option<Arc<TlsContext>>,
}

impl Node {
    /// Reads the TLS files again for new connections; false when TLS is not configured. A
    /// failure is logged and the certificate in force stays.
    pub(crate) fn reload_certificates(&self) -> Result<bool, TlsError> {
        let Some(tls) = &self.tls else {
            return Ok(false);
        };
        match tls.reload() {
            Ok(()) => {
                tracing::info!("TLS certificates reloaded: new connections use them");
                Ok(true)
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificates not reloaded: the old ones stay in use");
                Err(e)
            }
        }
    }

    /// The configuration with its passwords replaced by `********`, for `environment`.
    pub(crate) fn redacted_config(&self) -> serde_json::Value {
        let mut c = self.config.clone();
        let hide = |p: &mut String| {
            if !p.is_empty() {
                *p = "********".into();
            }
        };
        hide(&mut c.default_pass);
        hide(&mut c.stomp.default_pass);
        for u in &mut c.users {
            hide(&mut u.password);
        }
        serde_json::to_value(c).unwrap_or_default()
    }
}
