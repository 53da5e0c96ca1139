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
use crate::value::FieldTable;
use crate::vhost::VHost;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// What a queue was declared with.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QueueDef {
    pub name: String,
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}

impl QueueDef {
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
    Rejected,
    Expired,
    MaxLen,
}

impl DeathReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::Expired => "expired",
            DeathReason::MaxLen => "maxlen",
        }
    }
}

/// The result of offering a message to a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
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
    pub message: Arc<Message>,
    pub redelivered: bool,
    /// Ready messages left after this one.
    pub remaining: usize,
}

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
    vhost: Weak<VHost>,
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
        vhost: Weak<VHost>,
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
            vhost,
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

    /// The TTL that applies to a message with its own TTL `message_ttl`.
    fn ttl_for(&self, message_ttl: Option<u64>) -> Option<u64> {
        match (self.args.message_ttl, message_ttl) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn level_for(&self, priority: Option<u8>, st: &State) -> u8 {
        priority.map_or(0, |p| p.min((st.levels.len() - 1) as u8))
    }

    fn is_durable_message(&self, msg: &Message) -> bool {
        self.durable_store && msg.properties.is_persistent() && self.store.is_some()
    }

    /// Offers a published message; delivers it at once if a consumer can take it.
    pub fn enqueue(self: &Arc<Self>, msg: Arc<Message>) -> Enqueued {
        let now = self.clock.now_ms();
        let mut after = After::default();
        let mut st = self.lock();
        if st.deleted {
            return Enqueued::Accepted;
        }
        let level = self.level_for(msg.properties.priority, &st);
        let full = self.args.max_length.is_some_and(|m| st.ready as u64 >= m)
            || self
                .args
                .max_length_bytes
                .is_some_and(|m| (st.ready_bytes + msg.body_size()) as u64 > m);
        let transient_full = !msg.properties.is_persistent()
            && self
                .args
                .max_transient_length
                .is_some_and(|m| st.transient as u64 >= m);
        if transient_full {
            // Dropped on arrival: the oldest transient message may be on its way already.
            st.overflowed += 1;
            return Enqueued::Accepted;
        }
        if full && self.args.overflow != Overflow::DropHead {
            st.overflowed += 1;
            if self.args.overflow == Overflow::RejectPublishDlx {
                after.dead.push((msg, DeathReason::MaxLen));
            }
            drop(st);
            self.finish(after);
            return Enqueued::Rejected;
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let expires_at = self
            .ttl_for(msg.properties.ttl_ms())
            .map(|t| now.saturating_add(t));
        let durable = self.is_durable_message(&msg);
        if durable {
            if let Some(store) = &self.store {
                store.append(self.store_id, seq, &msg);
            }
        }
        let size = msg.body_size();
        // Beyond the window the store's copy is the only one (it holds the message in its
        // pending batch until written, and reads it back from there or from disk). While memory
        // is short, transient messages of a deep queue are paged the same way, under the
        // transient id.
        let window_full = st.window_full(self.window, size);
        let paged = durable && window_full;
        let paged_transient =
            !durable && window_full && self.store.as_ref().is_some_and(|s| s.transient_paging());
        if paged_transient {
            if let Some(store) = &self.store {
                store.append(self.transient_store_id, seq, &msg);
                st.paged_any = true;
            }
        }
        let entry = Entry {
            seq,
            msg: (!paged && !paged_transient).then_some(msg),
            expires_at,
            size: size as u32,
            redelivered: false,
            durable,
            paged_transient,
            level,
        };
        st.push_ready(entry);
        self.dispatch_locked(&mut st, now, &mut after);
        let accepted = if durable {
            Enqueued::Stored
        } else {
            Enqueued::Accepted
        };
        // A zero TTL means "deliver now or never".
        if expires_at == Some(now) {
            if let Some(e) = st.remove_seq(level, seq) {
                self.drop_entry(e, DeathReason::Expired, &mut after);
            }
        }
        if self.args.overflow == Overflow::DropHead {
            while self.args.max_length.is_some_and(|m| st.ready as u64 > m)
                || self
                    .args
                    .max_length_bytes
                    .is_some_and(|m| st.ready_bytes as u64 > m)
            {
                match st.pop_oldest() {
                    Some(e) => {
                        st.overflowed += 1;
                        self.drop_entry(e, DeathReason::MaxLen, &mut after)
                    }
                    None => break,
                }
            }
        }
        drop(st);
        self.finish(after);
        accepted
    }

    /// Restores stored messages at recovery (no dispatch; consumers are not there yet). A TTL
    /// counts from when the message first entered the queue; one that ran out while the broker
    /// was down expires at once.
    pub(crate) fn restore(&self, stored: Vec<StoredMessage>) {
        let now = self.clock.now_ms();
        let wall = unix_ms();
        let mut st = self.lock();
        for m in stored {
            let level = self.level_for(m.priority, &st);
            st.next_seq = st.next_seq.max(m.seq + 1);
            let expires_at = self.ttl_for(m.ttl_ms).map(|t| match m.enqueued_at {
                Some(at) => now.saturating_add(at.saturating_add(t).saturating_sub(wall)),
                None => now.saturating_add(t),
            });
            st.push_ready(Entry {
                seq: m.seq,
                msg: m.message,
                expires_at,
                size: m.body_size as u32,
                redelivered: m.redelivered,
                durable: true,
                paged_transient: false,
                level,
            });
        }
    }

    /// A durable message handed out for the first time: the store remembers it was delivered.
    fn note_delivered(&self, e: &Entry) {
        if !e.redelivered && e.durable {
            if let Some(store) = &self.store {
                store.mark_delivered(self.store_id, e.seq);
            }
        }
    }

    /// A message leaves the queue without being acked: settled in the store, and kept for
    /// dead-lettering if the queue has a dead-letter exchange.
    fn drop_entry(&self, e: Entry, reason: DeathReason, after: &mut After) {
        self.settle_entry(&e, after);
        if self.args.dead_letter_exchange.is_none() {
            return;
        }
        let id = self.id_of(&e);
        let msg = match (e.msg, &self.store) {
            (Some(m), _) => Some(m),
            (None, Some(store)) => store.read(id, &[e.seq]).pop().flatten(),
            (None, None) => None,
        };
        if let Some(m) = msg {
            after.dead.push((m, reason));
        }
    }

    /// The store id an entry's stored copy is under.
    fn id_of(&self, e: &Entry) -> u64 {
        if e.paged_transient {
            self.transient_store_id
        } else {
            self.store_id
        }
    }

    /// Notes that an entry leaving the queue must be forgotten by the store, if it has it.
    fn settle_entry(&self, e: &Entry, after: &mut After) {
        if e.durable {
            after.settled_persistent.push(e.seq);
        } else if e.paged_transient {
            after.settled_transient.push(e.seq);
        }
    }

    /// Reads the paged-out messages among the first ones of `level` back from the store.
    /// Ones the store cannot give back are dropped (and logged): the head always moves on.
    fn page_in(&self, st: &mut State, level: usize, after: &mut After) {
        let run = self
            .window
            .map_or(PAGE_IN_RUN, |w| w.messages.clamp(1, PAGE_IN_RUN));
        let paged = |transient: bool| -> Vec<u64> {
            st.levels[level]
                .iter()
                .take(run)
                .filter(|e| e.msg.is_none() && e.paged_transient == transient)
                .map(|e| e.seq)
                .collect()
        };
        let (seqs, transient_seqs) = (paged(false), paged(true));
        let read = |id: u64, seqs: &[u64]| match &self.store {
            Some(store) if !seqs.is_empty() => store.read(id, seqs),
            _ => vec![None; seqs.len()],
        };
        let mut found = read(self.store_id, &seqs).into_iter();
        let mut found_transient = read(self.transient_store_id, &transient_seqs).into_iter();
        let (mut loaded, mut loaded_bytes, mut lost) = (0, 0, 0);
        for e in st.levels[level].iter_mut().take(run) {
            if e.msg.is_none() {
                let got = if e.paged_transient {
                    found_transient.next().flatten()
                } else {
                    found.next().flatten()
                };
                match got {
                    Some(m) => {
                        e.msg = Some(m);
                        loaded += 1;
                        loaded_bytes += e.size as usize;
                        if e.paged_transient {
                            // Back in memory: the store's copy has served its purpose.
                            e.paged_transient = false;
                            after.settled_transient.push(e.seq);
                        }
                    }
                    None => lost += 1,
                }
            }
        }
        st.loaded += loaded;
        st.loaded_bytes += loaded_bytes;
        if lost == 0 {
            return;
        }
        tracing::error!(
            queue = %self.def.name,
            lost,
            "stored messages could not be read back and were dropped"
        );
        let mut i = 0;
        for _ in 0..run {
            match st.levels[level].get(i) {
                Some(e) if e.msg.is_none() => {
                    if let Some(e) = st.levels[level].remove(i) {
                        st.count_out(&e);
                        self.settle_entry(&e, after);
                    }
                }
                Some(_) => i += 1,
                None => break,
            }
        }
    }

    /// Takes the head message, reading it back from the store if it was paged out.
    fn take_head(&self, st: &mut State, after: &mut After) -> Option<(Entry, Arc<Message>)> {
        loop {
            let level = st.head_level()?;
            if st.levels[level].front().is_some_and(|e| e.msg.is_none()) {
                self.page_in(st, level, after);
                continue;
            }
            let e = st.pop_front(level)?;
            let m = e.msg.clone()?;
            return Some((e, m));
        }
    }

    /// Hands ready messages to consumers with credit until one or the other runs out.
    pub fn dispatch(self: &Arc<Self>) {
        let now = self.clock.now_ms();
        let mut after = After::default();
        let mut st = self.lock();
        self.dispatch_locked(&mut st, now, &mut after);
        drop(st);
        self.finish(after);
    }

    fn dispatch_locked(self: &Arc<Self>, st: &mut State, now: u64, after: &mut After) {
        if st.consumers.is_empty() || st.deleted {
            return;
        }
        // Consumers that cannot take more now; on the stack for the usual few.
        let mut few = [false; 16];
        let mut many = Vec::new();
        let skip: &mut [bool] = if st.consumers.len() <= few.len() {
            &mut few[..st.consumers.len()]
        } else {
            many.resize(st.consumers.len(), false);
            &mut many
        };
        let prioritised = st
            .consumers
            .iter()
            .any(|c| c.priority != st.consumers[0].priority);
        loop {
            // Expired messages at the head are never delivered. (A message expiring this very
            // millisecond may still go: that is how a zero TTL means "now or never".)
            while st
                .peek_head()
                .is_some_and(|e| e.expires_at.is_some_and(|t| t < now))
            {
                if let Some(e) = st.pop_head() {
                    self.drop_entry(e, DeathReason::Expired, after);
                }
            }
            if st.ready == 0 {
                return;
            }
            let single = self.args.single_active_consumer;
            let Some(ci) = Self::pick_consumer(st, skip, prioritised, single) else {
                return;
            };
            let Some((entry, message)) = self.take_head(st, after) else {
                return;
            };
            let c = &st.consumers[ci];
            let id = if c.no_ack {
                0
            } else {
                let id = st.next_delivery;
                st.next_delivery += 1;
                id
            };
            let c = &st.consumers[ci];
            let delivery = Delivery {
                consumer: c.key,
                queue: self.clone(),
                id,
                message,
                redelivered: entry.redelivered,
            };
            let sent = match c.sink.offer(SinkEvent::Deliver(delivery)) {
                Offer::Sent => true,
                Offer::Closed => false,
                Offer::Full(ev) => {
                    c.sink.park(self);
                    matches!(c.sink.offer(ev), Offer::Sent)
                }
            };
            if !sent {
                st.consumers[ci].release();
                skip[ci] = true;
                st.unpop_head(entry);
                continue;
            }
            st.next_consumer = ci + 1;
            let c = &st.consumers[ci];
            if c.no_ack {
                if entry.durable {
                    after.settled_persistent.push(entry.seq);
                }
            } else {
                self.note_delivered(&entry);
                let u = Unacked {
                    consumer: Some(c.key),
                    credit: c.credit.clone(),
                    shared: c.shared_credit.clone(),
                    entry,
                };
                st.unacked.insert(id, u);
            }
        }
    }

    /// The next consumer (round-robin, highest priority first) that takes a credit; with a
    /// single active consumer, only the oldest one.
    fn pick_consumer(
        st: &mut State,
        skip: &mut [bool],
        prioritised: bool,
        single: bool,
    ) -> Option<usize> {
        if single {
            if !skip[0] && st.consumers[0].try_acquire() {
                return Some(0);
            }
            skip[0] = true;
            return None;
        }
        let n = st.consumers.len();
        let start = st.next_consumer % n;
        let order = (0..n).map(|i| (start + i) % n);
        if !prioritised {
            for i in order {
                if !skip[i] {
                    if st.consumers[i].try_acquire() {
                        return Some(i);
                    }
                    skip[i] = true;
                }
            }
            return None;
        }
        let mut candidates: Vec<usize> = order.filter(|&i| !skip[i]).collect();
        candidates.sort_by_key(|&i| std::cmp::Reverse(st.consumers[i].priority));
        for i in candidates {
            if st.consumers[i].try_acquire() {
                return Some(i);
            }
            skip[i] = true;
        }
        None
    }

    /// Registers a consumer and starts delivering to it.
    pub fn add_consumer(self: &Arc<Self>, spec: ConsumerSpec) -> CoreResult<()> {
        {
            let mut st = self.lock();
            if st.deleted {
                return Err(CoreError::NotFound(format!(
                    "no queue '{}' in vhost '{}'",
                    self.def.name, self.vhost_name
                )));
            }
            if st.consumers.iter().any(|c| c.exclusive)
                || (spec.exclusive && !st.consumers.is_empty())
            {
                return Err(CoreError::AccessRefused(format!(
                    "queue '{}' in vhost '{}' in exclusive use",
                    self.def.name, self.vhost_name
                )));
            }
            st.had_consumer = true;
            st.last_used = self.clock.now_ms();
            st.consumers.push(spec);
        }
        self.dispatch();
        Ok(())
    }

    /// Removes a consumer; its unacked messages stay unacked. Returns false if unknown.
    pub fn cancel_consumer(self: &Arc<Self>, key: u64, connection: u64) -> bool {
        let mut after = After::default();
        let mut st = self.lock();
        let Some(pos) = st
            .consumers
            .iter()
            .position(|c| c.key == key && c.connection == connection)
        else {
            return false;
        };
        st.consumers.remove(pos);
        st.last_used = self.clock.now_ms();
        if st.consumers.is_empty() && self.def.auto_delete && st.had_consumer {
            after.auto_delete = true;
        }
        drop(st);
        self.finish(after);
        true
    }

    fn settle(&self, st: &mut State, id: u64) -> Option<Unacked> {
        let u = st.unacked.remove(&id)?;
        release_credits(&u.credit, &u.shared);
        Some(u)
    }

    /// Acknowledges deliveries; unknown ids are returned (a protocol error for most adapters).
    pub fn ack(self: &Arc<Self>, ids: &[u64]) -> Vec<u64> {
        let mut unknown = Vec::new();
        let mut after = After::default();
        let mut st = self.lock();
        for &id in ids {
            match self.settle(&mut st, id) {
                Some(u) => {
                    if u.entry.durable {
                        after.settled_persistent.push(u.entry.seq);
                    }
                }
                None => unknown.push(id),
            }
        }
        let now = self.clock.now_ms();
        self.dispatch_locked(&mut st, now, &mut after);
        drop(st);
        self.finish(after);
        unknown
    }

    /// Rejects deliveries: requeued to their original place (marked redelivered), or
    /// dead-lettered / dropped. Unknown ids are returned.
    pub fn reject(self: &Arc<Self>, ids: &[u64], requeue: bool) -> Vec<u64> {
        let mut unknown = Vec::new();
        let mut after = After::default();
        let mut st = self.lock();
        for &id in ids {
            match self.settle(&mut st, id) {
                Some(u) if requeue && !st.deleted => {
                    let mut e = u.entry;
                    e.redelivered = true;
                    st.push_ready(e);
                }
                Some(u) => self.drop_entry(u.entry, DeathReason::Rejected, &mut after),
                None => unknown.push(id),
            }
        }
        let now = self.clock.now_ms();
        self.dispatch_locked(&mut st, now, &mut after);
        drop(st);
        self.finish(after);
        unknown
    }

    /// Requeues every unacked delivery of a consumer (its connection or channel went away).
    pub fn requeue_consumer(self: &Arc<Self>, key: u64) {
        let ids: Vec<u64> = {
            let st = self.lock();
            st.unacked
                .iter()
                .filter(|(_, u)| u.consumer == Some(key))
                .map(|(id, _)| *id)
                .collect()
        };
        self.reject(&ids, true);
    }

    /// Takes one message (AMQP basic.get).
    pub fn get(self: &Arc<Self>, no_ack: bool) -> Option<Fetched> {
        let now = self.clock.now_ms();
        let mut after = After::default();
        let mut st = self.lock();
        st.last_used = now;
        let result = loop {
            if let Some(e) = st
                .peek_head()
                .filter(|e| e.expires_at.is_some_and(|t| t <= now))
            {
                let level = e.level as usize;
                if let Some(e) = st.pop_front(level) {
                    self.drop_entry(e, DeathReason::Expired, &mut after);
                }
                continue;
            }
            let Some((e, message)) = self.take_head(&mut st, &mut after) else {
                break None;
            };
            let (id, redelivered) = (if no_ack { 0 } else { st.next_delivery }, e.redelivered);
            if no_ack {
                if e.durable {
                    after.settled_persistent.push(e.seq);
                }
            } else {
                self.note_delivered(&e);
                st.next_delivery += 1;
                st.unacked.insert(
                    id,
                    Unacked {
                        entry: e,
                        consumer: None,
                        credit: None,
                        shared: None,
                    },
                );
            }
            break Some(Fetched {
                id,
                message,
                redelivered,
                remaining: st.ready,
            });
        };
        drop(st);
        self.finish(after);
        result
    }

    /// Drops every ready message; returns how many.
    pub fn purge(&self) -> usize {
        let mut st = self.lock();
        let n = st.ready;
        let mut after = After::default();
        for e in st.take_all() {
            self.settle_entry(&e, &mut after);
        }
        drop(st);
        self.finish(after);
        n
    }

    /// Ready messages.
    pub fn message_count(&self) -> usize {
        self.lock().ready
    }

    /// Messages dropped (drop-head) or refused (reject-publish) at the length limit so far.
    pub fn overflowed_count(&self) -> u64 {
        self.lock().overflowed
    }

    /// Ready messages whose body is only in the message store (RabbitMQ's
    /// `messages_paged_out`).
    pub fn paged_out_count(&self) -> usize {
        let st = self.lock();
        st.ready - st.loaded
    }

    /// Delivered, not yet acked.
    pub fn unacked_count(&self) -> usize {
        self.lock().unacked.len()
    }

    pub fn consumer_count(&self) -> usize {
        self.lock().consumers.len()
    }

    /// Marks the queue used (declare, get) for `x-expires`.
    pub fn touch(&self) {
        self.lock().last_used = self.clock.now_ms();
    }

    /// Drops expired messages and reports whether the queue itself has expired (`x-expires`).
    pub fn expire(self: &Arc<Self>) -> bool {
        let now = self.clock.now_ms();
        let mut after = After::default();
        let mut st = self.lock();
        for level in 0..st.levels.len() {
            while let Some(front) = st.levels[level]
                .front()
                .filter(|e| e.expires_at.is_some_and(|t| t <= now))
            {
                // Dead-lettered bodies are read back a run at a time, not one by one.
                if front.msg.is_none() && self.args.dead_letter_exchange.is_some() {
                    self.page_in(&mut st, level, &mut after);
                    continue;
                }
                if let Some(e) = st.pop_front(level) {
                    self.drop_entry(e, DeathReason::Expired, &mut after);
                }
            }
        }
        let expired = self
            .args
            .expires
            .is_some_and(|x| st.consumers.is_empty() && now.saturating_sub(st.last_used) >= x);
        drop(st);
        self.finish(after);
        expired
    }

    /// True if the queue has something [`Queue::expire`] may act on.
    pub fn needs_expiry(&self) -> bool {
        self.args.message_ttl.is_some() || self.args.expires.is_some() || self.lock().expiring > 0
    }

    /// Marks the queue deleted and tells its consumers. Returns the ready count it had.
    pub(crate) fn mark_deleted(&self) -> usize {
        let mut st = self.lock();
        st.deleted = true;
        let n = st.ready;
        st.take_all();
        st.unacked.clear();
        let consumers = std::mem::take(&mut st.consumers);
        let paged_any = st.paged_any;
        drop(st);
        for c in consumers {
            c.sink
                .send_reliably(SinkEvent::Cancelled { consumer: c.key });
        }
        if let Some(store) = &self.store {
            // Only what was ever stored needs a drop record: a queue that never paged or
            // stored anything (most private queues) costs the log nothing when it goes.
            if self.durable_store {
                store.drop_queue(self.store_id);
            }
            if paged_any {
                store.drop_queue(self.transient_store_id);
            }
        }
        n
    }

    pub fn is_deleted(&self) -> bool {
        self.lock().deleted
    }

    fn finish(&self, after: After) {
        if let Some(store) = &self.store {
            for seq in &after.settled_persistent {
                store.settle(self.store_id, *seq);
            }
            for seq in &after.settled_transient {
                store.settle(self.transient_store_id, *seq);
            }
        }
        if after.dead.is_empty() && !after.auto_delete {
            return;
        }
        let Some(vhost) = self.vhost.upgrade() else {
            return;
        };
        if self.args.dead_letter_exchange.is_some() {
            for (msg, reason) in after.dead {
                vhost.dead_letter(self, &msg, reason);
            }
        }
        if after.auto_delete {
            let _ = vhost.delete_queue(&self.def.name, None, false, false);
        }
    }
}
