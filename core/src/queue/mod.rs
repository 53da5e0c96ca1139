//! A queue: ready messages in order, the unacked set, and consumers served round-robin by credit.
//!
//! What the queue decides is a deterministic state machine ([`QueueState::apply`] in
//! `machine.rs`, its data in `state.rs`): a command and the time in, the new state and a list
//! of effects out. [`Queue`] is its executor: it holds the state behind one short lock of its
//! own, reads the clock, and performs the effects — store writes, deliveries into consumer
//! sinks, reads of paged-out messages, whose answers it feeds back as commands. Nothing here
//! takes a vhost- or broker-wide lock; work that reaches outside the queue (settling the store,
//! dead-lettering, cancelling consumers, auto-delete) is done after its lock is released.
//!
//! A durable queue keeps only a window of its ready persistent messages in memory (see
//! [`MemoryWindow`](crate::storage::MemoryWindow)); the others stay in the message store as
//! entries without a body and are read back, a run at a time, when they near the head.

use crate::clock::{unix_ms, Clock};
use crate::consumer::{Delivery, DeliveryQueue, Offer, SinkEvent};
use crate::error::{CoreError, CoreResult};
use crate::message::Message;
use crate::queue_args::QueueArgs;
use crate::storage::{MessageStore, StoredMessage};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

mod command;
mod def;
mod machine;
#[cfg(test)]
mod model_tests;
mod state;

use command::{Bounce, Effect, Handout, QueueCommand, Reply};
pub use def::{
    ConsumerInfo, DeathReason, Enqueued, Fetched, QueueCounters, QueueDef, QueueHost, QueueSnapshot,
};
use state::{QueueState, Rules, StoredAs};

/// A queue of one vhost.
#[derive(Debug)]
pub struct Queue {
    /// What it was declared with.
    pub def: QueueDef,
    /// The policy that applies to it, if one does.
    policy: std::sync::RwLock<Option<Arc<crate::policy::Policy>>>,
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
    /// The queue itself, for the deliveries it hands out (each names its queue).
    me: Weak<Queue>,
    inner: Mutex<Inner>,
}

/// What the lock guards: the state and the effects buffer it fills (kept to reuse its memory).
#[derive(Debug)]
struct Inner {
    state: QueueState,
    effects: Vec<Effect>,
}

/// Effects performed once the queue's lock is released, in order (one list: most commands
/// leave nothing here, and an empty list costs nothing to drop).
type Later = Vec<Deferred>;

/// One effect performed after the lock.
enum Deferred {
    Settle(u64, StoredAs),
    DeadLetter(Arc<Message>, DeathReason),
    Cancel(crate::consumer::ConsumerSpec),
    DropStore { durable: bool, transient: bool },
    AutoDelete,
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
    ) -> Arc<Self> {
        let store_id = crate::storage::queue_id(&vhost_name, &def.name);
        let rules = Rules {
            args,
            auto_delete: def.auto_delete,
            durable_store: def.durable && !def.exclusive && store.is_some(),
            has_store: store.is_some(),
            window: store.as_ref().and_then(|s| s.memory_window()),
        };
        let state = QueueState::new(rules, clock.now_ms());
        Arc::new_cyclic(|me| Queue {
            def,
            policy: std::sync::RwLock::new(None),
            owner,
            host,
            vhost_name,
            clock,
            store,
            store_id,
            transient_store_id: crate::storage::transient_id(store_id),
            me: me.clone(),
            inner: Mutex::new(Inner {
                state,
                effects: Vec::new(),
            }),
        })
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// Its effective arguments, parsed: what it was declared with under its policy.
    pub fn args(&self) -> QueueArgs {
        self.lock().state.rules.args.clone()
    }

    /// The policy that applies to it, if one does.
    pub fn policy(&self) -> Option<Arc<crate::policy::Policy>> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts the queue under `policy` with the effective arguments `args` (limits apply at once).
    pub(crate) fn set_policy(&self, policy: Option<Arc<crate::policy::Policy>>, args: QueueArgs) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = policy;
        self.run(QueueCommand::Configure(args));
    }

    /// The name of its vhost.
    pub fn vhost_name(&self) -> &str {
        &self.vhost_name
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers a published message; delivers it at once if a consumer can take it. `matched`:
    /// the match bits of the bindings that routed it here (0 for none), handed to its consumer.
    pub fn enqueue(&self, message: Arc<Message>, matched: u32) -> Enqueued {
        let page_transient = self.store.as_ref().is_some_and(|s| s.transient_paging());
        match self.run(QueueCommand::Enqueue {
            message,
            matched,
            page_transient,
        }) {
            Reply::Enqueued(e) => e,
            _ => Enqueued::Accepted,
        }
    }

    /// Restores stored messages at recovery (no dispatch; consumers are not there yet).
    pub(crate) fn restore(&self, stored: Vec<StoredMessage>) {
        self.run(QueueCommand::Restore {
            stored,
            wall_ms: unix_ms(),
        });
    }

    /// Hands ready messages to consumers with credit; called when a consumer's sink has
    /// drained or its credit grew.
    pub fn dispatch(&self) {
        self.run(QueueCommand::Wake);
    }

    /// Registers a consumer and starts delivering to it.
    pub fn add_consumer(&self, spec: crate::consumer::ConsumerSpec) -> CoreResult<()> {
        match self.run(QueueCommand::AddConsumer(spec)) {
            Reply::Gone => Err(CoreError::NotFound(format!(
                "no queue '{}' in vhost '{}'",
                self.def.name, self.vhost_name
            ))),
            Reply::InExclusiveUse => Err(CoreError::AccessRefused(format!(
                "queue '{}' in vhost '{}' in exclusive use",
                self.def.name, self.vhost_name
            ))),
            _ => Ok(()),
        }
    }

    /// Removes a consumer; its unacked messages stay unacked. Returns false if unknown.
    pub fn cancel_consumer(&self, key: u64, connection: u64) -> bool {
        matches!(
            self.run(QueueCommand::CancelConsumer { key, connection }),
            Reply::Yes(true)
        )
    }

    /// Acknowledges deliveries; unknown ids are returned (a protocol error for most adapters).
    pub fn ack(&self, ids: &[u64]) -> Vec<u64> {
        unknown(self.run(QueueCommand::Ack(ids)))
    }

    /// Rejects deliveries: requeued to their original place (marked redelivered), or
    /// dead-lettered / dropped. Unknown ids are returned.
    pub fn reject(&self, ids: &[u64], requeue: bool) -> Vec<u64> {
        unknown(self.run(QueueCommand::Reject { ids, requeue }))
    }

    /// Requeues every unacked delivery of a consumer (its connection or channel went away).
    pub fn requeue_consumer(&self, key: u64) {
        self.run(QueueCommand::RequeueConsumer(key));
    }

    /// Takes one message (AMQP basic.get).
    pub fn get(&self, no_ack: bool) -> Option<Fetched> {
        match self.run(QueueCommand::Get { no_ack }) {
            Reply::Taken(t) => t,
            _ => None,
        }
    }

    /// Drops every ready message; returns how many.
    pub fn purge(&self) -> usize {
        count(self.run(QueueCommand::Purge))
    }

    /// Marks the queue used (declare, get) for `x-expires`.
    pub fn touch(&self) {
        self.run(QueueCommand::Touch);
    }

    /// Drops expired messages and reports whether the queue itself has expired (`x-expires`).
    pub fn expire(&self) -> bool {
        matches!(self.run(QueueCommand::Expire), Reply::Yes(true))
    }

    /// Marks the queue deleted and tells its consumers. Returns the ready count it had.
    pub(crate) fn mark_deleted(&self) -> usize {
        count(self.run(QueueCommand::Delete))
    }

    /// Ready messages.
    pub fn message_count(&self) -> usize {
        self.lock().state.ready()
    }

    /// Messages dropped (drop-head) or refused (reject-publish) at the length limit so far.
    pub fn overflowed_count(&self) -> u64 {
        self.lock().state.overflowed
    }

    /// Ready messages whose body is only in the message store (RabbitMQ's
    /// `messages_paged_out`).
    pub fn paged_out_count(&self) -> usize {
        let inner = self.lock();
        inner.state.ready - inner.state.loaded
    }

    /// Its counts and counters, read at once.
    pub fn snapshot(&self) -> QueueSnapshot {
        let inner = self.lock();
        let st = &inner.state;
        QueueSnapshot {
            ready: st.ready,
            unacked: st.unacked(),
            paged_out: st.ready - st.loaded,
            ready_bytes: st.ready_bytes,
            consumers: st.consumers.len(),
            counters: st.counters,
        }
    }

    /// Delivered, not yet acked.
    pub fn unacked_count(&self) -> usize {
        self.lock().state.unacked()
    }

    /// Its consumers, in the order they came.
    pub fn consumers(&self) -> Vec<ConsumerInfo> {
        let inner = self.lock();
        let single = inner.state.rules.args.single_active_consumer;
        inner
            .state
            .consumers
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let s = &slot.spec;
                ConsumerInfo {
                    tag: s.tag.clone(),
                    connection: s.connection,
                    channel: s.channel,
                    ack_required: !s.no_ack,
                    exclusive: s.exclusive,
                    priority: s.priority,
                    prefetch: s.credit.as_ref().map_or(0, |c| c.limit()),
                    active: !single || i == 0,
                }
            })
            .collect()
    }

    /// How many consumers it has.
    pub fn consumer_count(&self) -> usize {
        self.lock().state.consumers.len()
    }

    /// True if the queue has something [`Queue::expire`] may act on.
    pub fn needs_expiry(&self) -> bool {
        let inner = self.lock();
        let args = &inner.state.rules.args;
        args.message_ttl.is_some() || args.expires.is_some() || inner.state.expiring > 0
    }

    /// True once the queue has been deleted.
    pub fn is_deleted(&self) -> bool {
        self.lock().state.deleted
    }

    /// Applies `cmd` and every command its effects lead to, performing the effects; returns
    /// the reply that answers `cmd`.
    fn run(&self, cmd: QueueCommand<'_>) -> Reply {
        let mut later = Later::new();
        let reply = {
            let mut guard = self.lock();
            let Inner { state, effects } = &mut *guard;
            let now = self.clock.now_ms();
            state.drive(cmd, now, effects, |state, effects| {
                self.perform(state, effects, &mut later)
            })
        };
        self.finish(later);
        reply
    }

    /// Performs the effects in order, under the lock; returns the command that follows from
    /// them (what a page-in read, or the deliveries sinks refused), if any.
    fn perform(
        &self,
        state: &QueueState,
        effects: &mut Vec<Effect>,
        later: &mut Later,
    ) -> Option<QueueCommand<'static>> {
        // Allocated only when a sink refuses.
        let mut bounces: Option<Vec<Bounce>> = None;
        let mut follow = None;
        // This queue as its deliveries name it; taken once per batch.
        let mut me: Option<Arc<dyn DeliveryQueue>> = None;
        for effect in effects.drain(..) {
            match effect {
                Effect::Store { seq, message, at } => {
                    if let Some(store) = &self.store {
                        store.append(self.id_for(at), seq, &message);
                    }
                }
                Effect::Settle { seq, at } => later.push(Deferred::Settle(seq, at)),
                Effect::MarkDelivered { seq } => {
                    if let Some(store) = &self.store {
                        store.mark_delivered(self.store_id, seq);
                    }
                }
                Effect::Deliver(h) => match &mut bounces {
                    // Decided after a refused one: given back too, so that every consumer still
                    // gets its messages in queue order.
                    Some(bounces) => bounces.push(h.bounce()),
                    None => {
                        if let Some(b) = self.hand_out(state, h, &mut me, later) {
                            bounces = Some(vec![b]);
                        }
                    }
                },
                Effect::DeadLetter {
                    message,
                    seq,
                    at,
                    reason,
                } => {
                    let message = message.or_else(|| {
                        let (store, at) = (self.store.as_ref()?, at?);
                        store.read(self.id_for(at), &[seq]).pop().flatten()
                    });
                    if let Some(m) = message {
                        later.push(Deferred::DeadLetter(m, reason));
                    }
                }
                Effect::PageIn { level, seqs } => {
                    follow = Some(QueueCommand::Loaded {
                        level,
                        found: self.read_back(&seqs),
                    });
                }
                Effect::Lost(lost) => tracing::error!(
                    queue = %self.def.name,
                    lost,
                    "stored messages could not be read back and were dropped"
                ),
                Effect::Cancel(spec) => later.push(Deferred::Cancel(spec)),
                Effect::DropStore { durable, transient } => {
                    later.push(Deferred::DropStore { durable, transient })
                }
                Effect::AutoDelete => later.push(Deferred::AutoDelete),
                Effect::Continue => follow = Some(QueueCommand::Dispatch),
            }
        }
        // A page-in comes last in a batch (the machine stops there), so bounces and a page-in
        // never come together; if they did, the bounces would be answered first and the
        // dispatch after them would ask for the page again.
        if let Some(bounces) = bounces {
            return Some(QueueCommand::Bounced(bounces));
        }
        follow
    }

    /// Offers a decided delivery to its consumer's sink; a full sink parks the queue and is
    /// offered once more. Returns the delivery as a bounce if the sink refused it.
    fn hand_out(
        &self,
        state: &QueueState,
        h: Handout,
        me: &mut Option<Arc<dyn DeliveryQueue>>,
        later: &mut Later,
    ) -> Option<Bounce> {
        let Handout {
            consumer,
            key,
            id,
            message,
            redelivered,
            matched,
            mark_delivered,
            entry,
        } = h;
        if me.is_none() {
            *me = self.me.upgrade().map(|q| q as Arc<dyn DeliveryQueue>);
        }
        let Some(queue) = me.clone() else {
            // Unreachable while `&self` lives in its Arc; given back rather than lost.
            return Some(Bounce {
                consumer,
                id,
                entry,
            });
        };
        let delivery = Delivery {
            consumer: key,
            queue,
            id,
            message,
            redelivered,
            matched,
        };
        let sink = &state.consumers[consumer].spec.sink;
        let sent = match sink.offer(SinkEvent::Deliver(delivery)) {
            Offer::Sent => true,
            Offer::Closed => false,
            Offer::Full(ev) => {
                sink.park(&(self.me.clone() as Weak<dyn DeliveryQueue>));
                matches!(sink.offer(ev), Offer::Sent)
            }
        };
        if !sent {
            return Some(Bounce {
                consumer,
                id,
                entry,
            });
        }
        if let Some(seq) = mark_delivered {
            if let Some(store) = &self.store {
                store.mark_delivered(self.store_id, seq);
            }
        }
        // A no-ack delivery is settled once sent.
        if let Some(e) = entry {
            if let Some(at) = e.stored_as() {
                later.push(Deferred::Settle(e.seq, at));
            }
        }
        None
    }

    /// Reads paged-out messages back, one answer per sequence number, in their order.
    fn read_back(&self, seqs: &[(u64, StoredAs)]) -> Vec<(u64, Option<Arc<Message>>)> {
        let Some(store) = &self.store else {
            return seqs.iter().map(|&(s, _)| (s, None)).collect();
        };
        let of = |want: StoredAs| -> Vec<u64> {
            seqs.iter()
                .filter(|(_, at)| *at == want)
                .map(|&(s, _)| s)
                .collect()
        };
        let (durable, transient) = (of(StoredAs::Durable), of(StoredAs::Transient));
        let read = |at: StoredAs, seqs: &[u64]| {
            if seqs.is_empty() {
                Vec::new()
            } else {
                store.read(self.id_for(at), seqs)
            }
        };
        let mut durable = read(StoredAs::Durable, &durable).into_iter();
        let mut transient = read(StoredAs::Transient, &transient).into_iter();
        seqs.iter()
            .map(|&(s, at)| {
                let got = match at {
                    StoredAs::Durable => durable.next(),
                    StoredAs::Transient => transient.next(),
                };
                (s, got.flatten())
            })
            .collect()
    }

    /// The store id for a stored copy.
    fn id_for(&self, at: StoredAs) -> u64 {
        match at {
            StoredAs::Durable => self.store_id,
            StoredAs::Transient => self.transient_store_id,
        }
    }

    /// Performs what waited for the lock to be released; deleting the queue comes last.
    fn finish(&self, later: Later) {
        if later.is_empty() {
            return;
        }
        let mut auto_delete = false;
        let mut host = None;
        for d in later {
            match d {
                Deferred::Settle(seq, at) => {
                    if let Some(store) = &self.store {
                        store.settle(self.id_for(at), seq);
                    }
                }
                Deferred::DropStore { durable, transient } => {
                    if let Some(store) = &self.store {
                        if durable {
                            store.drop_queue(self.store_id);
                        }
                        if transient {
                            store.drop_queue(self.transient_store_id);
                        }
                    }
                }
                Deferred::Cancel(c) => c
                    .sink
                    .send_reliably(SinkEvent::Cancelled { consumer: c.key }),
                Deferred::DeadLetter(msg, reason) => {
                    if let Some(h) = host.get_or_insert_with(|| self.host.upgrade()) {
                        h.dead_letter(self, &msg, reason);
                    }
                }
                Deferred::AutoDelete => auto_delete = true,
            }
        }
        if auto_delete {
            if let Some(h) = host.unwrap_or_else(|| self.host.upgrade()) {
                h.auto_delete(self);
            }
        }
    }
}

impl DeliveryQueue for Queue {
    fn ack(&self, ids: &[u64]) -> Vec<u64> {
        Queue::ack(self, ids)
    }

    fn reject(&self, ids: &[u64], requeue: bool) -> Vec<u64> {
        Queue::reject(self, ids, requeue)
    }

    fn resume(&self) {
        self.dispatch();
    }

    fn name(&self) -> &str {
        &self.def.name
    }
}

fn unknown(reply: Reply) -> Vec<u64> {
    match reply {
        Reply::Unknown(ids) => ids,
        _ => Vec::new(),
    }
}

fn count(reply: Reply) -> usize {
    match reply {
        Reply::Count(n) => n,
        _ => 0,
    }
}
