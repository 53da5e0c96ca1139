//! The interface between the gateway's listeners and the protocol adapters.

use crate::auth::Authenticator;
use crate::broker::Broker;
use async_trait::async_trait;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// A byte stream an adapter serves: plain TCP, TLS, or a WebSocket wrapped as bytes.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

/// Limits on what a client may send: those every adapter enforces, and each protocol's own.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest frame/packet accepted, in bytes.
    pub max_frame_size: u32,
    /// Largest message body accepted, in bytes.
    pub max_message_size: u64,
    /// Heart-beat / keep-alive the server proposes, in seconds (0 = off).
    pub heartbeat: u16,
    /// Deliveries buffered per connection before back-pressure.
    pub delivery_buffer: usize,
    /// From accept to a logged-in session (WebSocket upgrade, protocol header, login, open),
    /// counted against the whole handshake.
    pub handshake_timeout: Duration,
    /// AMQP's own limits.
    pub amqp: AmqpLimits,
    /// STOMP's own limits.
    pub stomp: StompLimits,
    /// MQTT's own limits.
    pub mqtt: MqttLimits,
}

/// Limits only AMQP has.
#[derive(Debug, Clone)]
pub struct AmqpLimits {
    /// Channels per connection.
    pub channel_max: u16,
    /// Nesting depth of field tables and arrays.
    pub max_table_depth: usize,
}

/// Limits only STOMP has.
#[derive(Debug, Clone)]
pub struct StompLimits {
    /// Headers per frame.
    pub max_headers: usize,
    /// Bytes per header line.
    pub max_header_length: usize,
}

/// Limits only MQTT has.
#[derive(Debug, Clone)]
pub struct MqttLimits {
    /// Messages a clean session's queue holds for a client that does not keep up
    /// (Mosquitto's `max_queued_messages`); beyond it the oldest are dropped, and counted.
    /// 0 = no limit.
    pub max_queued_messages: usize,
    /// Subscriptions one session may hold (EMQX's `max_subscriptions`); a SUBSCRIBE of one
    /// more is refused (SUBACK 0x97 in MQTT 5, 0x80 in 3.1.1). 0 = no limit.
    pub max_subscriptions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: 131_072,
            max_message_size: 128 * 1024 * 1024,
            heartbeat: 60,
            delivery_buffer: 1024,
            handshake_timeout: Duration::from_secs(10),
            amqp: AmqpLimits {
                channel_max: 2047,
                max_table_depth: 16,
            },
            stomp: StompLimits {
                max_headers: 1000,
                max_header_length: 64 * 1024,
            },
            mqtt: MqttLimits {
                max_queued_messages: 1000,
                max_subscriptions: 10_000,
            },
        }
    }
}

/// Everything an adapter gets with an accepted connection.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    /// The broker the connection uses.
    pub broker: Arc<Broker>,
    /// The user database (to log in with).
    pub auth: Arc<Authenticator>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The listener's address, when known (for connection names).
    pub local: Option<SocketAddr>,
    /// Shared by every connection of a listener (one pointer each, not a copy).
    pub limits: Arc<Limits>,
    /// Unique per connection; owner id of exclusive queues.
    pub connection_id: u64,
    /// When the connection was accepted: the handshake deadline counts from here.
    pub accepted: Instant,
    /// What the TLS layer established, when the connection came in over TLS.
    pub tls: Option<Arc<TlsSession>>,
}

/// What the TLS layer established for a connection: the protocol, the cipher suite and the
/// client certificate it verified. Protocol-neutral: the listener fills it in, the adapters
/// read the certificate's user name for certificate login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSession {
    /// The TLS version, as RabbitMQ reports it: `TLSv1.3` or `TLSv1.2`.
    pub protocol: &'static str,
    /// The negotiated cipher suite, by its IANA name.
    pub cipher: String,
    /// The verified client certificate's subject, when one was presented.
    pub peer_subject: Option<String>,
    /// The user name the verified client certificate gives (its CN, or the configured SAN):
    /// what AMQP's EXTERNAL mechanism logs in as.
    pub certificate_user: Option<String>,
    /// Whether MQTT and STOMP clients that send no credentials log in as
    /// `certificate_user` (RabbitMQ's `ssl_cert_login`).
    pub cert_login: bool,
}

impl TlsSession {
    /// The user a client without credentials logs in as over MQTT or STOMP, when certificate
    /// login is on and a verified certificate named one.
    pub fn login_user(&self) -> Option<&str> {
        self.certificate_user.as_deref().filter(|_| self.cert_login)
    }
}

impl ConnectionContext {
    /// The context of a connection from `peer`, with a fresh connection id.
    pub fn new(broker: Arc<Broker>, peer: SocketAddr, limits: Arc<Limits>) -> Self {
        ConnectionContext {
            auth: broker.auth().clone(),
            connection_id: broker.next_connection_id(),
            broker,
            peer,
            local: None,
            limits,
            accepted: Instant::now(),
            tls: None,
        }
    }

    /// What this connection says of itself once logged in, for listings.
    ///
    /// Returns the connection's message counters, labelled `metrics_protocol` (`amqp091`,
    /// `mqtt311`, ...), which the session keeps for as long as it runs.
    pub fn describe(
        &self,
        protocol: impl Into<String>,
        metrics_protocol: &str,
        user: &str,
        vhost: &str,
        client_properties: crate::value::FieldTable,
    ) -> crate::message_counts::CountsEntry {
        let counts = crate::message_counts::CountsEntry::open(
            &self.broker,
            self.connection_id,
            metrics_protocol,
        );
        self.broker.describe_connection(
            self.connection_id,
            crate::connections::ConnectionInfo {
                protocol: protocol.into(),
                peer: self.peer,
                local: self.local,
                user: user.to_string(),
                vhost: vhost.to_string(),
                connected_at: self.broker.clock().unix_ms(),
                client_properties,
                tls: self.tls.clone(),
            },
        );
        counts
    }

    /// When the handshake must be complete.
    pub fn handshake_deadline(&self) -> Instant {
        self.accepted + self.limits.handshake_timeout
    }
}

/// Why a connection ended abnormally.
#[derive(Debug, Error)]
pub enum ServeError {
    #[error("i/o error: {0}")]
    /// The socket failed.
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    /// The client broke the protocol.
    Protocol(String),
}

/// A wire protocol: one crate per protocol implements this.
#[async_trait]
pub trait ProtocolAdapter: Send + Sync + 'static {
    /// "amqp", "stomp", "mqtt".
    fn name(&self) -> &'static str;
    /// Serves one connection until it ends.
    async fn serve(&self, io: Box<dyn Transport>, ctx: ConnectionContext)
        -> Result<(), ServeError>;
}
