//! Storage traits: metadata as a stream of commands, persistent messages per durable queue.
//!
//! The routing core calls these; the in-memory implementations here keep everything for the
//! life of the process (so a broker rebuilt on the same stores recovers like a restart would).
//! The durable implementations live behind the same traits.

use crate::error::CoreResult;
use crate::message::Message;
use crate::meta::MetaState;
pub use crate::meta::{MetaCommand, MetaSnapshot, Permission, TopicPermission, UserRecord};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

/// Where durable metadata goes.
#[async_trait]
pub trait MetadataStore: Send + Sync + Debug {
    /// Applies commands and returns once they are durable.
    fn apply(&self, commands: &[MetaCommand]) -> CoreResult<()>;
    /// Queues commands without waiting; [`MetadataStore::sync`] waits for them.
    fn submit(&self, commands: Vec<MetaCommand>) {
        if let Err(e) = self.apply(&commands) {
            tracing::error!(error = %e, "metadata store write failed");
        }
    }
    /// Resolves once everything submitted so far is durable.
    async fn sync(&self) -> CoreResult<()> {
        Ok(())
    }
    /// Everything stored, to replay at start.
    fn load(&self) -> CoreResult<MetaSnapshot>;
}

/// A message recovered from the store.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// Its position in its queue.
    pub seq: u64,
    /// The message, when the store holds it in memory; None: read it back with
    /// [`MessageStore::read`] when a consumer is about to need it.
    pub message: Option<Arc<Message>>,
    /// It had been handed to a consumer before (AMQP's `redelivered`).
    pub redelivered: bool,
    /// Its priority (the queue's level for it).
    pub priority: Option<u8>,
    /// When it entered the queue (Unix ms), if known: its TTL counts from there.
    pub enqueued_at: Option<u64>,
    /// The message's own TTL (`expiration`), in ms.
    pub ttl_ms: Option<u64>,
    /// Body bytes (what `x-max-length-bytes` counts).
    pub body_size: usize,
}

impl StoredMessage {
    /// A recovered message held in memory.
    pub fn loaded(seq: u64, message: Arc<Message>, redelivered: bool, enqueued_at: u64) -> Self {
        StoredMessage {
            seq,
            redelivered,
            priority: message.properties.priority,
            enqueued_at: Some(enqueued_at),
            ttl_ms: message.properties.ttl_ms(),
            body_size: message.body_size(),
            message: Some(message),
        }
    }
}

/// How much of a durable queue's ready persistent messages stays in memory; the rest is read
/// back from the store as consumers get near it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryWindow {
    /// Messages at most.
    pub messages: usize,
    /// Body bytes at most.
    pub bytes: usize,
}

/// The store id of queue `queue_id`'s paged transient messages: the queue's id hashed on
/// (FNV-1a) with a marker, so it collides with no queue's id any more than two queues' do.
/// No queue claims it at recovery, so what is stored under it is dropped, and a restart
/// forgets transient messages as it must.
pub fn transient_id(queue_id: u64) -> u64 {
    let mut h = queue_id;
    for b in b"\0transient" {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A queue's identity in the message store: a stable 64-bit hash (FNV-1a) of vhost and name.
pub fn queue_id(vhost: &str, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in vhost.bytes().chain([0u8]).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Where persistent messages on durable queues go. Queues are named by [`queue_id`]; `seq` is
/// the message's position in its queue.
#[async_trait]
pub trait MessageStore: Send + Sync + Debug {
    /// Stores `message` as number `seq` of `queue`.
    fn append(&self, queue: u64, seq: u64, message: &Arc<Message>);
    /// The message was handed to a consumer that must ack it: after a restart it comes back
    /// marked redelivered.
    fn mark_delivered(&self, queue: u64, seq: u64);
    /// The message left the queue (acked, dropped, dead-lettered).
    fn settle(&self, queue: u64, seq: u64);
    /// Forgets everything stored for `queue`.
    fn drop_queue(&self, queue: u64);
    /// Messages recovered for a queue at start, in sequence order (each is handed out once).
    fn load(&self, queue: u64) -> Vec<StoredMessage>;
    /// Reads stored messages of a queue back, one result per seq (None: not stored).
    fn read(&self, queue: u64, seqs: &[u64]) -> Vec<Option<Arc<Message>>>;
    /// Whether queues may drop persistent messages from memory beyond a window, to
    /// [`MessageStore::read`] them later. None: keep everything (an in-memory store).
    fn memory_window(&self) -> Option<MemoryWindow> {
        None
    }
    /// Whether queues should page transient messages beyond their memory window out too
    /// (memory is short: RabbitMQ's paging ratio of the high watermark has been passed).
    fn transient_paging(&self) -> bool {
        false
    }
    /// Turns transient paging on or off (the memory monitor's call).
    fn set_transient_paging(&self, _on: bool) {}
    /// Every durable queue has loaded its messages: what no queue claimed is dropped.
    fn recovery_done(&self) {}
    /// Resolves once everything appended so far is durable (group commit).
    async fn sync(&self) -> CoreResult<()>;
}

/// In-memory metadata store: the durable commands applied to a [`MetaState`] of their own
/// (the same state machine as the live path), and the adapter records.
#[derive(Debug, Default)]
pub struct MemoryMetadataStore {
    state: Mutex<MemoryMeta>,
}

#[derive(Debug, Default)]
struct MemoryMeta {
    state: MetaState,
    records: BTreeMap<(String, String), Vec<u8>>,
}

#[async_trait]
impl MetadataStore for MemoryMetadataStore {
    fn apply(&self, commands: &[MetaCommand]) -> CoreResult<()> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for c in commands {
            match c {
                MetaCommand::PutRecord { space, key, value } => {
                    s.records
                        .insert((space.clone(), key.clone()), value.clone());
                }
                MetaCommand::DeleteRecord { space, key } => {
                    s.records.remove(&(space.clone(), key.clone()));
                }
                other => {
                    s.state.apply(other)?;
                }
            }
        }
        Ok(())
    }

    fn load(&self) -> CoreResult<MetaSnapshot> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut snap = s.state.durable_snapshot();
        snap.records = s
            .records
            .iter()
            .map(|((sp, k), v)| (sp.clone(), k.clone(), v.clone()))
            .collect();
        Ok(snap)
    }
}

/// Messages per queue id, by sequence: (message, delivered before, enqueued at).
type MemoryQueues = HashMap<u64, BTreeMap<u64, (Arc<Message>, bool, u64)>>;

/// In-memory message store.
#[derive(Debug, Default)]
pub struct MemoryMessageStore {
    queues: Mutex<MemoryQueues>,
}

impl MemoryMessageStore {
    fn with<R>(&self, f: impl FnOnce(&mut MemoryQueues) -> R) -> R {
        f(&mut self.queues.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl MessageStore for MemoryMessageStore {
    fn append(&self, queue: u64, seq: u64, message: &Arc<Message>) {
        self.with(|q| {
            q.entry(queue)
                .or_default()
                .insert(seq, (message.clone(), false, crate::clock::unix_ms()))
        });
    }

    fn mark_delivered(&self, queue: u64, seq: u64) {
        self.with(|q| {
            if let Some(m) = q.get_mut(&queue).and_then(|m| m.get_mut(&seq)) {
                m.1 = true;
            }
        });
    }

    fn settle(&self, queue: u64, seq: u64) {
        self.with(|q| q.get_mut(&queue).map(|m| m.remove(&seq)));
    }

    fn drop_queue(&self, queue: u64) {
        self.with(|q| q.remove(&queue));
    }

    fn load(&self, queue: u64) -> Vec<StoredMessage> {
        self.with(|q| {
            q.get(&queue)
                .map(|m| {
                    m.iter()
                        .map(|(s, (msg, r, at))| StoredMessage::loaded(*s, msg.clone(), *r, *at))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    fn read(&self, queue: u64, seqs: &[u64]) -> Vec<Option<Arc<Message>>> {
        self.with(|q| {
            let m = q.get(&queue);
            seqs.iter()
                .map(|s| m.and_then(|m| m.get(s)).map(|e| e.0.clone()))
                .collect()
        })
    }

    async fn sync(&self) -> CoreResult<()> {
        Ok(())
    }
}
