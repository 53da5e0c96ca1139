//! A queue's state as data: the ready messages per priority level with their counters, the
//! unacked set and the consumers. [`QueueState::apply`](super::machine) is the only thing that
//! changes it; this file holds the ready list's bookkeeping.

use crate::consumer::{ConsumerSpec, Credit};
use crate::message::Message;
use crate::queue_args::QueueArgs;
use crate::spare::GiveBack;
use crate::storage::MemoryWindow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// A message in the queue.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    /// None while paged out to the message store (only `durable` entries are).
    pub(crate) msg: Option<Arc<Message>>,
    pub(crate) expires_at: Option<u64>,
    /// Body bytes (what `x-max-length-bytes` counts).
    pub(crate) size: u32,
    /// The match bits of the bindings that routed it (0 after recovery: not stored). Fits in
    /// what was padding, so an entry is no larger for it.
    pub(crate) matched: u32,
    pub(crate) redelivered: bool,
    /// A persistent message in a durable queue: the message store has it.
    pub(crate) durable: bool,
    /// A transient message paged out to the message store (under the queue's transient id,
    /// which no queue claims at recovery, so a restart forgets it as it must).
    pub(crate) paged_transient: bool,
    pub(crate) level: u8,
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

    /// Where the store keeps this entry, if it does.
    pub(crate) fn stored_as(&self) -> Option<StoredAs> {
        if self.durable {
            Some(StoredAs::Durable)
        } else if self.paged_transient {
            Some(StoredAs::Transient)
        } else {
            None
        }
    }
}

/// Which of the queue's two store ids an entry's stored copy is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum StoredAs {
    /// The queue's id: a persistent message of a durable queue.
    Durable,
    /// The queue's transient id ([`crate::storage::transient_id`]): paged out for memory.
    Transient,
}

/// A delivery waiting for its ack.
#[derive(Debug)]
pub(crate) struct Unacked {
    pub(crate) entry: Entry,
    /// The consumer's key; None for a basic.get.
    pub(crate) consumer: Option<u64>,
    pub(crate) credit: Option<Arc<Credit>>,
    pub(crate) shared: Option<Arc<Credit>>,
}

/// What the state machine follows that is not state: the queue's arguments and what its
/// store can do. Fixed for the queue's life.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub(crate) args: QueueArgs,
    pub(crate) auto_delete: bool,
    /// Persistent messages are stored (the queue is durable, not exclusive, and has a store).
    pub(crate) durable_store: bool,
    /// The queue has a store to page messages out to.
    pub(crate) has_store: bool,
    /// Ready messages kept in memory; None: all of them.
    pub(crate) window: Option<MemoryWindow>,
}

/// Paged-out messages read back from the store at once.
const PAGE_IN_RUN: usize = 256;

impl Rules {
    /// How many entries of a level one page-in reads back.
    pub(crate) fn page_run(&self) -> usize {
        self.window
            .map_or(PAGE_IN_RUN, |w| w.messages.clamp(1, PAGE_IN_RUN))
    }

    /// The TTL that applies to a message with its own TTL `message_ttl`.
    pub(crate) fn ttl_for(&self, message_ttl: Option<u64>) -> Option<u64> {
        match (self.args.message_ttl, message_ttl) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A consumer as the queue holds it.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) spec: ConsumerSpec,
    /// Its sink was full (or closed) when last offered to: skipped until the sink drains
    /// ([`super::QueueCommand::Wake`]).
    pub(crate) blocked: bool,
}

/// Everything a queue knows, changed only by [`QueueState::apply`].
#[derive(Debug)]
pub(super) struct QueueState {
    pub(crate) rules: Rules,
    /// Ready messages per priority level, each level ordered by `seq`.
    pub(crate) levels: Vec<VecDeque<Entry>>,
    pub(crate) ready: usize,
    pub(crate) ready_bytes: usize,
    /// Ready entries held in memory, and their body bytes (what the memory window measures).
    pub(crate) loaded: usize,
    pub(crate) loaded_bytes: usize,
    /// Ready entries with an expiry.
    pub(crate) expiring: usize,
    /// Ready transient messages (what `x-max-transient-length` counts).
    pub(crate) transient: usize,
    pub(crate) unacked: HashMap<u64, Unacked, crate::id_hash::IdHashBuilder>,
    pub(crate) consumers: Vec<Slot>,
    pub(crate) next_consumer: usize,
    pub(crate) next_seq: u64,
    pub(crate) next_delivery: u64,
    pub(crate) last_used: u64,
    pub(crate) had_consumer: bool,
    pub(crate) deleted: bool,
    /// Messages dropped or refused because the queue was at its length limit.
    pub(crate) overflowed: u64,
    /// A transient message was ever paged out to the store.
    pub(crate) paged_any: bool,
    /// What it has done so far, for statistics.
    pub(crate) counters: super::QueueCounters,
}

impl QueueState {
    /// An empty queue following `rules`, last used at `now` (ms).
    pub(crate) fn new(rules: Rules, now: u64) -> Self {
        let levels = rules.args.max_priority.map_or(1, |p| p as usize + 1);
        QueueState {
            rules,
            levels: (0..levels).map(|_| VecDeque::new()).collect(),
            ready: 0,
            ready_bytes: 0,
            loaded: 0,
            loaded_bytes: 0,
            expiring: 0,
            transient: 0,
            unacked: HashMap::default(),
            consumers: Vec::new(),
            next_consumer: 0,
            next_seq: 0,
            next_delivery: 1,
            last_used: now,
            had_consumer: false,
            deleted: false,
            overflowed: 0,
            paged_any: false,
            counters: super::QueueCounters::default(),
        }
    }

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

    pub(crate) fn count_out(&mut self, e: &Entry) {
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

    /// Adds a ready entry at its place by `seq` (a requeued message goes back where it was).
    pub(crate) fn push_ready(&mut self, e: Entry) {
        self.count_in(&e);
        let level = &mut self.levels[e.level as usize];
        if level.back().is_none_or(|last| last.seq < e.seq) {
            level.push_back(e);
        } else if level.front().is_some_and(|first| e.seq < first.seq) {
            level.push_front(e);
        } else {
            let at = level.partition_point(|x| x.seq < e.seq);
            level.insert(at, e);
        }
    }

    /// Highest priority level with messages.
    pub(crate) fn head_level(&self) -> Option<usize> {
        (0..self.levels.len())
            .rev()
            .find(|&l| !self.levels[l].is_empty())
    }

    pub(crate) fn pop_front(&mut self, level: usize) -> Option<Entry> {
        let l = &mut self.levels[level];
        let e = l.pop_front()?;
        l.give_back();
        self.count_out(&e);
        Some(e)
    }

    pub(crate) fn pop_head(&mut self) -> Option<Entry> {
        let l = self.head_level()?;
        self.pop_front(l)
    }

    pub(crate) fn peek_head(&self) -> Option<&Entry> {
        self.head_level().and_then(|l| self.levels[l].front())
    }

    /// The oldest message (for drop-head): lowest priority level first, as RabbitMQ does.
    pub(crate) fn pop_oldest(&mut self) -> Option<Entry> {
        let l = (0..self.levels.len()).find(|&l| !self.levels[l].is_empty())?;
        self.pop_front(l)
    }

    pub(crate) fn remove_seq(&mut self, level: u8, seq: u64) -> Option<Entry> {
        let level = &mut self.levels[level as usize];
        let pos = level.iter().rposition(|e| e.seq == seq)?;
        let e = level.remove(pos)?;
        level.give_back();
        self.count_out(&e);
        Some(e)
    }

    /// Empties the ready list.
    pub(crate) fn take_all(&mut self) -> Vec<Entry> {
        let all: Vec<Entry> = self.levels.iter_mut().flat_map(|l| l.drain(..)).collect();
        self.levels.iter_mut().for_each(GiveBack::give_back);
        self.ready = 0;
        self.transient = 0;
        self.ready_bytes = 0;
        self.loaded = 0;
        self.loaded_bytes = 0;
        self.expiring = 0;
        all
    }

    /// Whether a new message of `size` bytes should stay out of memory.
    pub(crate) fn window_full(&self, size: usize) -> bool {
        self.rules
            .window
            .is_some_and(|w| self.loaded >= w.messages || self.loaded_bytes + size > w.bytes)
    }

    /// The priority level of a message with `priority`.
    pub(crate) fn level_for(&self, priority: Option<u8>) -> u8 {
        priority.map_or(0, |p| p.min((self.levels.len() - 1) as u8))
    }

    /// Ready messages.
    pub(super) fn ready(&self) -> usize {
        self.ready
    }

    /// Delivered, not yet acked.
    pub(super) fn unacked(&self) -> usize {
        self.unacked.len()
    }
}
