//! A queue: ready messages in order, the unacked set, and consumers served round-robin by credit.
//!
//! All of a queue's state sits behind one short lock of its own; nothing here takes a vhost- or
//! broker-wide lock. Work that reaches outside the queue (dead-lettering, auto-delete) is
//! collected under the lock and done after it is released.
//!
//! A durable queue keeps only a window of its ready persistent messages in memory (see
//! [`MemoryWindow`]); the others stay in the message store as entries without a body and are
//! read back, a run at a time, when they near the head.

use crate::clock::{unix_ms, Clock};
use crate::consumer::{release_credits, ConsumerSpec, Credit, Delivery, Offer, SinkEvent};
use crate::error::{CoreError, CoreResult};
use crate::message::Message;
use crate::queue_args::{Overflow, QueueArgs};
use crate::storage::{MemoryWindow, MessageStore, StoredMessage};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

mod def;
mod deliver;
mod lifecycle;
mod paging;
mod publish;

pub use def::{DeathReason, Enqueued, Fetched, QueueDef, QueueHost};

#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    /// None while paged out to the message store (only `durable` entries are).
    msg: Option<Arc<Message>>,
    expires_at: Option<u64>,
    /// Body bytes (what `x-max-length-bytes` counts).
    size: u32,
    redelivered: bool,
    /// A persistent message in a durable queue: the message store has it.
    durable: bool,
    /// A transient message paged out to the message store (under the queue's transient id,
    /// which no queue claims at recovery, so a restart forgets it as it must).
    paged_transient: bool,
    level: u8,
}

impl Entry {
    /// A message that is not persistent (durable entries are persistent by definition).
    fn is_transient(&self) -> bool {
        !self.durable
            && (self.paged_transient
                || self
                    .msg
                    .as_ref()
                    .is_some_and(|m| !m.properties.is_persistent()))
    }
}

/// Paged-out messages read back from the store at once.
const PAGE_IN_RUN: usize = 256;

#[derive(Debug)]
struct Unacked {
    entry: Entry,
    consumer: Option<u64>,
    credit: Option<Arc<Credit>>,
    shared: Option<Arc<Credit>>,
}

#[derive(Debug, Default)]
struct State {
    /// Ready messages per priority level, each level ordered by `seq`.
    levels: Vec<VecDeque<Entry>>,
    ready: usize,
    ready_bytes: usize,
    /// Ready entries held in memory, and their body bytes (what the memory window measures).
    loaded: usize,
    loaded_bytes: usize,
    /// Ready entries with an expiry.
    expiring: usize,
    /// Ready transient messages (what `x-max-transient-length` counts).
    transient: usize,
    unacked: HashMap<u64, Unacked, crate::id_hash::IdHashBuilder>,
    consumers: Vec<ConsumerSpec>,
    next_consumer: usize,
    next_seq: u64,
    next_delivery: u64,
    last_used: u64,
    had_consumer: bool,
    deleted: bool,
    /// Messages dropped or refused because the queue was at its length limit.
    overflowed: u64,
    /// A transient message was ever paged out to the store.
    paged_any: bool,
}

/// Work to do once the queue's lock is released.
#[derive(Default)]
struct After {
    dead: Vec<(Arc<Message>, DeathReason)>,
    settled_persistent: Vec<u64>,
    /// Paged transient messages to forget in the store.
    settled_transient: Vec<u64>,
    auto_delete: bool,
}

/// A queue of one vhost.
#[derive(Debug)]
pub struct Queue {
    pub def: QueueDef,
    pub args: QueueArgs,
    /// The connection of an exclusive queue.
    pub owner: Option<u64>,
    /// The vhost, for what the queue cannot do alone (dead-lettering, deleting itself).
    host: Weak<dyn QueueHost>,
    vhost_name: String,
    clock: Arc<Clock>,
    store: Option<Arc<dyn MessageStore>>,
    /// The queue's id in the message store.
    store_id: u64,
    /// The id its paged transient messages are stored under
    /// ([`crate::storage::transient_id`]).
    transient_store_id: u64,
    /// Durable and not exclusive: persistent messages are stored to survive a restart. (Every
    /// queue has the store, to page out the transient messages of a deep queue.)
    durable_store: bool,
    /// Ready persistent messages kept in memory; None: all of them.
    window: Option<MemoryWindow>,
    state: Mutex<State>,
}

impl State {
    fn count_in(&mut self, e: &Entry) {
        self.transient += usize::from(e.is_transient());
        self.ready += 1;
        self.ready_bytes += e.size as usize;
        if e.msg.is_some() {
            self.loaded += 1;
            self.loaded_bytes += e.size as usize;
        }
        if e.expires_at.is_some() {
            self.expiring += 1;
        }
    }

    fn count_out(&mut self, e: &Entry) {
        self.transient -= usize::from(e.is_transient());
        self.ready -= 1;
        self.ready_bytes -= e.size as usize;
        if e.msg.is_some() {
            self.loaded -= 1;
            self.loaded_bytes -= e.size as usize;
        }
        if e.expires_at.is_some() {
            self.expiring -= 1;
        }
    }

    fn push_ready(&mut self, e: Entry) {
        self.count_in(&e);
        let level = &mut self.levels[e.level as usize];
        if level.back().is_none_or(|last| last.seq < e.seq) {
            level.push_back(e);
        } else {
            // A requeued message goes back to its original place.
            let at = level.partition_point(|x| x.seq < e.seq);
            level.insert(at, e);
        }
    }

    /// Highest priority level with messages.
    fn head_level(&self) -> Option<usize> {
        (0..self.levels.len())
            .rev()
            .find(|&l| !self.levels[l].is_empty())
    }

    fn pop_front(&mut self, level: usize) -> Option<Entry> {
        let e = self.levels[level].pop_front()?;
        self.count_out(&e);
        Some(e)
    }

    fn pop_head(&mut self) -> Option<Entry> {
        let l = self.head_level()?;
        self.pop_front(l)
    }

    fn unpop_head(&mut self, e: Entry) {
        self.count_in(&e);
        self.levels[e.level as usize].push_front(e);
    }

    fn peek_head(&self) -> Option<&Entry> {
        self.head_level().and_then(|l| self.levels[l].front())
    }

    /// The oldest message (for drop-head): lowest priority level first, as RabbitMQ does.
    fn pop_oldest(&mut self) -> Option<Entry> {
        let l = (0..self.levels.len()).find(|&l| !self.levels[l].is_empty())?;
        self.pop_front(l)
    }

    fn remove_seq(&mut self, level: u8, seq: u64) -> Option<Entry> {
        let level = &mut self.levels[level as usize];
        let pos = level.iter().rposition(|e| e.seq == seq)?;
        let e = level.remove(pos)?;
        self.count_out(&e);
        Some(e)
    }

    /// Empties the ready list.
    fn take_all(&mut self) -> Vec<Entry> {
        let all: Vec<Entry> = self.levels.iter_mut().flat_map(|l| l.drain(..)).collect();
        self.ready = 0;
        self.transient = 0;
        self.ready_bytes = 0;
        self.loaded = 0;
        self.loaded_bytes = 0;
        self.expiring = 0;
        all
    }

    /// Whether a new message should stay out of memory.
    fn window_full(&self, window: Option<MemoryWindow>, size: usize) -> bool {
        window.is_some_and(|w| self.loaded >= w.messages || self.loaded_bytes + size > w.bytes)
    }
}

impl Queue {
    pub(crate) fn new(
        def: QueueDef,
        args: QueueArgs,
        owner: Option<u64>,
        host: Weak<dyn QueueHost>,
        vhost_name: String,
        clock: Arc<Clock>,
        store: Option<Arc<dyn MessageStore>>,
    ) -> Self {
        let levels = args.max_priority.map_or(1, |p| p as usize + 1);
        let now = clock.now_ms();
        let store_id = crate::storage::queue_id(&vhost_name, &def.name);
        let window = store.as_ref().and_then(|s| s.memory_window());
        let durable_store = def.durable && !def.exclusive;
        Queue {
            def,
            args,
            owner,
            host,
            vhost_name,
            clock,
            store,
            store_id,
            transient_store_id: crate::storage::transient_id(store_id),
            durable_store,
            window,
            state: Mutex::new(State {
                levels: (0..levels).map(|_| VecDeque::new()).collect(),
                last_used: now,
                next_delivery: 1,
                ..State::default()
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    pub fn vhost_name(&self) -> &str {
        &self.vhost_name
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
