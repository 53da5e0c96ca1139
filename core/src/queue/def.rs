//! What a queue is declared with, and what its operations report.

use crate::message::Message;
use crate::value::FieldTable;
use std::sync::Arc;

/// What a queue was declared with.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QueueDef {
    /// The queue's name.
    pub name: String,
    /// Survives a restart (with its persistent messages).
    pub durable: bool,
    /// Used by its declaring connection only, and deleted with it.
    pub exclusive: bool,
    /// Deleted when its last consumer goes.
    pub auto_delete: bool,
    /// Declare arguments (`x-message-ttl`, `x-max-length`, ...).
    pub arguments: FieldTable,
}

impl QueueDef {
    /// A non-durable, non-exclusive queue named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        QueueDef {
            name: name.into(),
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: FieldTable::new(),
        }
    }

    /// RabbitMQ's equivalence rule for redeclaration.
    pub fn equivalent(&self, other: &QueueDef) -> bool {
        self.durable == other.durable
            && self.exclusive == other.exclusive
            && self.auto_delete == other.auto_delete
            && self.arguments.same_entries(&other.arguments)
    }
}

/// Why a message left a queue without being acked (the `x-death` reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeathReason {
    /// Rejected or nacked without requeue.
    Rejected,
    /// Its TTL ran out.
    Expired,
    /// Dropped at the length limit.
    MaxLen,
}

impl DeathReason {
    /// The reason as `x-death` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::Expired => "expired",
            DeathReason::MaxLen => "maxlen",
        }
    }
}

/// What a queue has done since it was declared (RabbitMQ's `message_stats` counts), kept in
/// its state under the lock it takes anyway: counting costs the publish path nothing more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Messages taken in.
    pub publish: u64,
    /// Delivered to consumers that ack.
    pub deliver: u64,
    /// Delivered to consumers that do not ack.
    pub deliver_no_ack: u64,
    /// Fetched by basic.get (and the API's get) with an ack to come.
    pub get: u64,
    /// Fetched without an ack.
    pub get_no_ack: u64,
    /// Deliveries and gets of messages delivered before.
    pub redeliver: u64,
    /// Acked.
    pub ack: u64,
}

/// A queue's numbers at one moment, read under one lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// Ready messages.
    pub ready: usize,
    /// Delivered, not yet acked.
    pub unacked: usize,
    /// Ready messages whose body is only in the message store.
    pub paged_out: usize,
    /// Body bytes of the ready messages.
    pub ready_bytes: usize,
    /// Consumers.
    pub consumers: usize,
    /// What it has done so far.
    pub counters: QueueCounters,
}

/// The result of offering a message to a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Taken (not stored: acknowledge at once).
    Accepted,
    /// Accepted and written to the message store: acknowledge it once the store has synced.
    Stored,
    /// Refused by `x-overflow: reject-publish`.
    Rejected,
}

/// A message fetched with [`Queue::get`].
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The id to ack with; 0 when fetched with no-ack.
    pub id: u64,
    /// The message.
    pub message: Arc<Message>,
    /// It was delivered before.
    pub redelivered: bool,
    /// Ready messages left after this one.
    pub remaining: usize,
}

/// What a queue reaches outside itself for, after its lock is released: the vhost that
/// routes its dead letters and deletes it (auto-delete, `x-expires`). The queue knows its vhost
/// only through this, so the queue module does not depend on the vhost's.
pub trait QueueHost: Send + Sync + std::fmt::Debug {
    /// Routes `msg`, which died in `queue` for `reason`, to the queue's dead-letter exchange.
    fn dead_letter(&self, queue: &super::Queue, msg: &Message, reason: DeathReason);
    /// Deletes `queue` (it has auto-deleted or expired).
    fn auto_delete(&self, queue: &super::Queue);
}

/// A consumer of a queue as operators see it (the management API's `/api/consumers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// Its tag.
    pub tag: String,
    /// Its connection.
    pub connection: u64,
    /// Its channel on that connection.
    pub channel: u16,
    /// Deliveries wait for an acknowledgement.
    pub ack_required: bool,
    /// It consumes exclusively.
    pub exclusive: bool,
    /// `x-priority`.
    pub priority: i32,
    /// Unacknowledged deliveries it may hold (0: no limit).
    pub prefetch: u32,
    /// It receives messages (false for a waiting single-active-consumer).
    pub active: bool,
}
