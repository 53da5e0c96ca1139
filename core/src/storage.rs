//! Storage traits: metadata as a stream of commands, persistent messages per durable queue.
//!
//! The routing core calls these; the in-memory implementations here keep everything for the
//! life of the process (so a broker rebuilt on the same stores recovers like a restart would).
//! The durable implementations live behind the same traits.

use crate::error::CoreResult;
use crate::exchange::{Binding, ExchangeDef};
use crate::message::Message;
use crate::queue::QueueDef;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

/// A stored user.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub name: String,
    /// RabbitMQ's `rabbit_password_hashing_sha256` form: 4 salt bytes then SHA-256(salt ‖ password).
    pub password_hash: Vec<u8>,
    pub tags: Vec<String>,
    /// Vhosts the user may open.
    pub vhosts: Vec<String>,
}

/// A change to durable metadata. Every durable change goes through one of these.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaCommand {
    PutVHost(String),
    DeleteVHost(String),
    PutExchange { vhost: String, def: ExchangeDef },
    DeleteExchange { vhost: String, name: String },
    PutQueue { vhost: String, def: QueueDef },
    DeleteQueue { vhost: String, name: String },
    PutBinding { vhost: String, binding: Binding },
    DeleteBinding { vhost: String, binding: Binding },
    PutUser(UserRecord),
    DeleteUser(String),
}

/// Durable metadata as recovered at start.
#[derive(Debug, Clone, Default)]
pub struct MetaSnapshot {
    pub vhosts: Vec<String>,
    pub exchanges: Vec<(String, ExchangeDef)>,
    pub queues: Vec<(String, QueueDef)>,
    pub bindings: Vec<(String, Binding)>,
    pub users: Vec<UserRecord>,
}

/// Where durable metadata goes.
pub trait MetadataStore: Send + Sync + Debug {
    fn apply(&self, commands: &[MetaCommand]) -> CoreResult<()>;
    fn load(&self) -> CoreResult<MetaSnapshot>;
}

/// Where persistent messages on durable queues go.
#[async_trait]
pub trait MessageStore: Send + Sync + Debug {
    fn append(&self, vhost: &str, queue: &str, seq: u64, message: &Arc<Message>);
    /// The message left the queue (acked, dropped, dead-lettered).
    fn settle(&self, vhost: &str, queue: &str, seq: u64);
    fn drop_queue(&self, vhost: &str, queue: &str);
    /// Messages still stored for a queue, in sequence order.
    fn load(&self, vhost: &str, queue: &str) -> Vec<(u64, Arc<Message>)>;
    /// Resolves once everything appended so far is durable (group commit).
    async fn sync(&self) -> CoreResult<()>;
}

type QueueKey = (String, String);

/// In-memory metadata store.
#[derive(Debug, Default)]
pub struct MemoryMetadataStore {
    state: Mutex<MemoryMeta>,
}

#[derive(Debug, Default)]
struct MemoryMeta {
    vhosts: Vec<String>,
    exchanges: HashMap<QueueKey, ExchangeDef>,
    queues: HashMap<QueueKey, QueueDef>,
    bindings: Vec<(String, Binding)>,
    users: BTreeMap<String, UserRecord>,
}

impl MetadataStore for MemoryMetadataStore {
    fn apply(&self, commands: &[MetaCommand]) -> CoreResult<()> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for c in commands {
            match c.clone() {
                MetaCommand::PutVHost(v) => {
                    if !s.vhosts.contains(&v) {
                        s.vhosts.push(v)
                    }
                }
                MetaCommand::DeleteVHost(v) => {
                    s.vhosts.retain(|x| *x != v);
                    s.exchanges.retain(|(h, _), _| *h != v);
                    s.queues.retain(|(h, _), _| *h != v);
                    s.bindings.retain(|(h, _)| *h != v);
                }
                MetaCommand::PutExchange { vhost, def } => {
                    s.exchanges.insert((vhost, def.name.clone()), def);
                }
                MetaCommand::DeleteExchange { vhost, name } => {
                    s.exchanges.remove(&(vhost.clone(), name.clone()));
                    s.bindings.retain(|(h, b)| {
                        !(*h == vhost
                            && (b.source == name
                                || b.destination
                                    == crate::exchange::Destination::Exchange(name.clone())))
                    });
                }
                MetaCommand::PutQueue { vhost, def } => {
                    s.queues.insert((vhost, def.name.clone()), def);
                }
                MetaCommand::DeleteQueue { vhost, name } => {
                    s.queues.remove(&(vhost.clone(), name.clone()));
                    s.bindings.retain(|(h, b)| {
                        !(*h == vhost
                            && b.destination == crate::exchange::Destination::Queue(name.clone()))
                    });
                }
                MetaCommand::PutBinding { vhost, binding } => {
                    if !s.bindings.iter().any(|(h, b)| *h == vhost && *b == binding) {
                        s.bindings.push((vhost, binding));
                    }
                }
                MetaCommand::DeleteBinding { vhost, binding } => {
                    s.bindings.retain(|(h, b)| !(*h == vhost && *b == binding));
                }
                MetaCommand::PutUser(u) => {
                    s.users.insert(u.name.clone(), u);
                }
                MetaCommand::DeleteUser(n) => {
                    s.users.remove(&n);
                }
            }
        }
        Ok(())
    }

    fn load(&self) -> CoreResult<MetaSnapshot> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(MetaSnapshot {
            vhosts: s.vhosts.clone(),
            exchanges: s
                .exchanges
                .iter()
                .map(|((v, _), d)| (v.clone(), d.clone()))
                .collect(),
            queues: s
                .queues
                .iter()
                .map(|((v, _), d)| (v.clone(), d.clone()))
                .collect(),
            bindings: s.bindings.clone(),
            users: s.users.values().cloned().collect(),
        })
    }
}

/// In-memory message store.
#[derive(Debug, Default)]
pub struct MemoryMessageStore {
    queues: Mutex<HashMap<QueueKey, BTreeMap<u64, Arc<Message>>>>,
}

#[async_trait]
impl MessageStore for MemoryMessageStore {
    fn append(&self, vhost: &str, queue: &str, seq: u64, message: &Arc<Message>) {
        let mut q = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        q.entry((vhost.to_string(), queue.to_string()))
            .or_default()
            .insert(seq, message.clone());
    }

    fn settle(&self, vhost: &str, queue: &str, seq: u64) {
        let mut q = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = q.get_mut(&(vhost.to_string(), queue.to_string())) {
            m.remove(&seq);
        }
    }

    fn drop_queue(&self, vhost: &str, queue: &str) {
        let mut q = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        q.remove(&(vhost.to_string(), queue.to_string()));
    }

    fn load(&self, vhost: &str, queue: &str) -> Vec<(u64, Arc<Message>)> {
        let q = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        q.get(&(vhost.to_string(), queue.to_string()))
            .map(|m| m.iter().map(|(s, msg)| (*s, msg.clone())).collect())
            .unwrap_or_default()
    }

    async fn sync(&self) -> CoreResult<()> {
        Ok(())
    }
}
