//! What a queue's state machine speaks: the commands it is given ([`QueueCommand`]), the
//! effects it asks for ([`Effect`]) and its replies ([`Reply`]).

use super::def::{DeathReason, Enqueued, Fetched};
use super::state::{Entry, StoredAs};
use crate::consumer::ConsumerSpec;
use crate::message::Message;
use crate::storage::StoredMessage;
use std::sync::Arc;

/// What a queue is asked to do.
#[derive(Debug)]
pub(super) enum QueueCommand<'a> {
    /// A published message. `page_transient`: memory is short, so a transient message beyond
    /// the memory window goes to the store too.
    Enqueue {
        message: Arc<Message>,
        /// The match bits of the bindings that routed it.
        matched: u32,
        page_transient: bool,
    },
    /// Messages recovered from the store at start (`wall_ms`: the Unix time now, for TTLs that
    /// ran while the broker was down).
    Restore {
        stored: Vec<StoredMessage>,
        wall_ms: u64,
    },
    /// Hand ready messages to consumers with credit.
    Dispatch,
    /// Sinks drained: offer to the consumers whose sink was full again, then dispatch.
    Wake,
    AddConsumer(ConsumerSpec),
    /// Removes the consumer `key` of `connection`; its unacked messages stay unacked.
    CancelConsumer {
        key: u64,
        connection: u64,
    },
    Ack(&'a [u64]),
    /// Requeue (to their original place, marked redelivered) or dead-letter / drop.
    Reject {
        ids: &'a [u64],
        requeue: bool,
    },
    /// Requeues every unacked delivery of a consumer.
    RequeueConsumer(u64),
    /// Takes one message (AMQP basic.get).
    Get {
        no_ack: bool,
    },
    /// Marks the queue used (`x-expires`).
    Touch,
    /// New effective arguments (a policy changed): limits apply at once (drop-head trims).
    Configure(crate::queue_args::QueueArgs),
    /// Drops expired messages; replies whether the queue itself expired.
    Expire,
    Purge,
    Delete,
    /// The answer to an [`Effect::PageIn`]: what the store gave back for each sequence
    /// number (None: it could not).
    Loaded {
        level: usize,
        found: Vec<(u64, Option<Arc<Message>>)>,
    },
    /// Deliveries a consumer's sink refused (full or closed), in the order they were decided.
    Bounced(Vec<Bounce>),
}

impl Handout {
    /// The delivery as its sink refused it.
    pub(crate) fn bounce(self) -> Bounce {
        Bounce {
            consumer: self.consumer,
            id: self.id,
            entry: self.entry,
        }
    }
}

impl QueueCommand<'_> {
    /// What to apply after an [`Effect::PageIn`] was answered.
    pub(crate) fn resume(&self) -> Resume {
        match self {
            QueueCommand::Get { no_ack } => Resume::Get { no_ack: *no_ack },
            QueueCommand::Expire => Resume::Expire,
            _ => Resume::Dispatch,
        }
    }
}

/// How a command goes on once a page it asked for is read back: a get or an expiry runs again
/// (and its reply is the rerun's), anything else continues as a dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    Get { no_ack: bool },
    Expire,
    Dispatch,
}

impl Resume {
    /// The command to apply.
    pub(crate) fn command(self) -> QueueCommand<'static> {
        match self {
            Resume::Get { no_ack } => QueueCommand::Get { no_ack },
            Resume::Expire => QueueCommand::Expire,
            Resume::Dispatch => QueueCommand::Dispatch,
        }
    }

    /// Whether the rerun's reply answers the original command.
    pub(crate) fn answers(self) -> bool {
        self != Resume::Dispatch
    }
}

/// A delivery a sink refused.
#[derive(Debug)]
pub(super) struct Bounce {
    /// The consumer's index, as in the [`Handout`].
    pub consumer: usize,
    /// The delivery id (0 for no-ack).
    pub id: u64,
    /// A no-ack delivery's entry, which the state no longer holds.
    pub(crate) entry: Option<Entry>,
}

/// A message decided for a consumer, to be offered to its sink.
#[derive(Debug)]
pub(super) struct Handout {
    /// Index of the consumer in the state's list (valid until the next command).
    pub consumer: usize,
    /// The consumer's key.
    pub key: u64,
    /// 0 for no-ack.
    pub id: u64,
    pub message: Arc<Message>,
    pub redelivered: bool,
    /// The match bits it was routed with.
    pub matched: u32,
    /// A durable message delivered for the first time: tell the store, once sent.
    pub mark_delivered: Option<u64>,
    /// A no-ack delivery's entry: settled in the store once sent, or given back by a bounce.
    pub(crate) entry: Option<Entry>,
}

/// What the queue must do after a command.
#[derive(Debug)]
pub(super) enum Effect {
    /// Write a message to the store.
    Store {
        seq: u64,
        message: Arc<Message>,
        at: StoredAs,
    },
    /// The store may forget a message.
    Settle {
        seq: u64,
        at: StoredAs,
    },
    /// A durable message was fetched for the first time (basic.get).
    MarkDelivered {
        seq: u64,
    },
    Deliver(Handout),
    /// Route a message that died here to the dead-letter exchange (read it from the store at
    /// `at` if `message` is None). Comes before the message's [`Effect::Settle`].
    DeadLetter {
        message: Option<Arc<Message>>,
        seq: u64,
        at: Option<StoredAs>,
        reason: DeathReason,
    },
    /// Read these paged-out messages of `level` back, then apply [`QueueCommand::Loaded`] and
    /// the command's [`Resume`].
    PageIn {
        level: usize,
        seqs: Vec<(u64, StoredAs)>,
    },
    /// Stored messages the store could not give back were dropped.
    Lost(usize),
    /// Tell a consumer its queue is gone.
    Cancel(ConsumerSpec),
    /// Forget everything stored under the queue's ids.
    DropStore {
        durable: bool,
        transient: bool,
    },
    /// The queue should delete itself (auto-delete).
    AutoDelete,
    /// A dispatch decided a full batch: once its deliveries are offered (and none was
    /// refused), dispatch again.
    Continue,
}

/// What a command answers.
#[derive(Debug)]
pub(super) enum Reply {
    Done,
    Enqueued(Enqueued),
    /// Acked or rejected ids the queue did not know.
    Unknown(Vec<u64>),
    Taken(Option<Fetched>),
    /// Ready messages purged or dropped with the queue.
    Count(usize),
    /// Whether the consumer was found (cancel), or the queue expired (expire).
    Yes(bool),
    /// A consumer was refused: the queue is deleted.
    Gone,
    /// A consumer was refused: the queue has an exclusive consumer, or one that wants to be
    /// exclusive came to a queue with consumers.
    InExclusiveUse,
}
