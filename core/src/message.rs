//! Messages: immutable, shared by every queue they are routed to.

use crate::value::FieldTable;
use bytes::Bytes;
use std::sync::Arc;

/// The common property model (AMQP 0-9-1's basic properties) every adapter maps onto.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Properties {
    /// MIME type of the body.
    pub content_type: Option<String>,
    /// Encoding of the body (e.g. gzip).
    pub content_encoding: Option<String>,
    /// Application headers (and the protocol headers mapped into them).
    pub headers: Option<FieldTable>,
    /// 1 = transient, 2 = persistent.
    pub delivery_mode: Option<u8>,
    /// Priority, for queues with `x-max-priority`.
    pub priority: Option<u8>,
    /// Correlates a reply with its request.
    pub correlation_id: Option<String>,
    /// Where replies go.
    pub reply_to: Option<String>,
    /// Per-message TTL in milliseconds, as a decimal string (AMQP's convention).
    pub expiration: Option<String>,
    /// The application's message id.
    pub message_id: Option<String>,
    /// Seconds since the Unix epoch.
    pub timestamp: Option<u64>,
    /// The message type (AMQP `type`).
    pub kind: Option<String>,
    /// The user who published it (checked against the login when set).
    pub user_id: Option<String>,
    /// The publishing application.
    pub app_id: Option<String>,
    /// Reserved by AMQP 0-9-1.
    pub cluster_id: Option<String>,
}

/// The last properties a publisher used, shared with the next message that has the same.
#[derive(Debug, Default)]
pub struct SharedProperties(Option<Arc<Properties>>);

impl SharedProperties {
    /// `p` as a shared allocation: the previous one when equal.
    pub fn share(&mut self, p: Properties) -> Arc<Properties> {
        match &self.0 {
            Some(last) if **last == p => last.clone(),
            _ => {
                let a = Arc::new(p);
                self.0 = Some(a.clone());
                a
            }
        }
    }
}

impl Properties {
    /// True for delivery mode 2 (kept on disk by durable queues).
    pub fn is_persistent(&self) -> bool {
        self.delivery_mode == Some(2)
    }

    /// The per-message TTL in ms, if `expiration` holds a valid one.
    pub fn ttl_ms(&self) -> Option<u64> {
        self.expiration.as_deref().and_then(|e| e.parse().ok())
    }

    /// The headers table, created if absent.
    pub fn headers_mut(&mut self) -> &mut FieldTable {
        self.headers.get_or_insert_with(FieldTable::new)
    }
}

/// A published message. Cheap to share: wrap in [`Arc`], the body is [`Bytes`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// The exchange it was (last) published to.
    pub exchange: String,
    /// The routing key it was (last) published with.
    pub routing_key: String,
    /// Shared: consecutive messages of a publisher usually carry the same properties, and
    /// adapters hand them one allocation (a deep queue then costs little beyond the bodies).
    pub properties: Arc<Properties>,
    /// The body, shared and never copied.
    pub body: Bytes,
}

impl Message {
    /// A message ready to publish.
    pub fn new(
        exchange: impl Into<String>,
        routing_key: impl Into<String>,
        properties: Properties,
        body: Bytes,
    ) -> Arc<Message> {
        Arc::new(Message {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            properties: Arc::new(properties),
            body,
        })
    }

    /// Size that counts toward `x-max-length-bytes` (the body, as RabbitMQ counts).
    pub fn body_size(&self) -> usize {
        self.body.len()
    }
}
