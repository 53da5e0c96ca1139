//! The queue as a deterministic state machine: [`QueueState::apply`] takes a command and the
//! time, changes the state and says what must be done about it as [`Effect`]s. It decides the
//! delivery ids and the consumer each message goes to, drops what expired, enforces the length
//! limits; it reads no clock, touches no store, sink or other queue. [`super::Queue`] performs
//! the effects and feeds back what it learnt (messages read back from the store, deliveries a
//! full sink refused).

use super::command::{Bounce, Effect, Handout, QueueCommand, Reply};
use super::def::{DeathReason, Enqueued, Fetched};
use super::state::{Entry, QueueState, Slot, StoredAs, Unacked};
use crate::consumer::{release_credits, ConsumerSpec};
use crate::message::Message;
use crate::queue_args::Overflow;
use crate::spare::GiveBack;
use crate::storage::StoredMessage;
use std::sync::Arc;

/// Deliveries one dispatch decides before it lets them be offered.
const DISPATCH_BATCH: usize = 64;

impl QueueState {
    /// Applies `cmd` at `now` (ms on the broker's clock), pushing what must be done to `out`.
    pub(super) fn apply(
        &mut self,
        cmd: QueueCommand<'_>,
        now: u64,
        out: &mut Vec<Effect>,
    ) -> Reply {
        match cmd {
            QueueCommand::Enqueue {
                message,
                matched,
                page_transient,
            } => Reply::Enqueued(self.enqueue(message, matched, page_transient, now, out)),
            QueueCommand::Restore { stored, wall_ms } => {
                self.restore(stored, wall_ms, now);
                Reply::Done
            }
            QueueCommand::Dispatch => {
                self.dispatch(now, out);
                Reply::Done
            }
            QueueCommand::Wake => {
                for c in &mut self.consumers {
                    c.blocked = false;
                }
                self.dispatch(now, out);
                Reply::Done
            }
            QueueCommand::AddConsumer(spec) => {
                let reply = self.add_consumer(spec, now);
                self.dispatch(now, out);
                reply
            }
            QueueCommand::CancelConsumer { key, connection } => {
                Reply::Yes(self.cancel_consumer(key, connection, now, out))
            }
            QueueCommand::Ack(ids) => {
                let unknown = self.ack(ids, out);
                self.dispatch(now, out);
                Reply::Unknown(unknown)
            }
            QueueCommand::Reject { ids, requeue } => {
                let unknown = self.reject(ids, requeue, out);
                self.trim(out);
                self.dispatch(now, out);
                Reply::Unknown(unknown)
            }
            QueueCommand::RequeueConsumer(key) => {
                let ids: Vec<u64> = self
                    .unacked
                    .iter()
                    .filter(|(_, u)| u.consumer == Some(key))
                    .map(|(id, _)| *id)
                    .collect();
                self.reject(&ids, true, out);
                self.trim(out);
                self.dispatch(now, out);
                Reply::Done
            }
            QueueCommand::Get { no_ack } => Reply::Taken(self.get(no_ack, now, out)),
            QueueCommand::Touch => {
                self.last_used = now;
                Reply::Done
            }
            QueueCommand::Expire => Reply::Yes(self.expire(now, out)),
            QueueCommand::Configure(args) => {
                // Priority levels and single-active-consumer are fixed at declaration.
                let fixed = (
                    self.rules.args.max_priority,
                    self.rules.args.single_active_consumer,
                );
                self.rules.args = crate::queue_args::QueueArgs {
                    max_priority: fixed.0,
                    single_active_consumer: fixed.1,
                    ..args
                };
                self.trim(out);
                self.dispatch(now, out);
                Reply::Done
            }
            QueueCommand::Purge => {
                let n = self.ready;
                for e in self.take_all() {
                    settle(&e, out);
                }
                Reply::Count(n)
            }
            QueueCommand::Delete => Reply::Count(self.delete(out)),
            QueueCommand::Loaded { level, found } => {
                self.loaded(level, found, out);
                Reply::Done
            }
            QueueCommand::Bounced(bounces) => {
                self.bounced(bounces);
                self.trim(out);
                self.dispatch(now, out);
                Reply::Done
            }
        }
    }

    /// Applies `cmd` and every command its effects lead to: `perform` carries out the effects
    /// (in order) and returns what they taught it (what a page-in read, the deliveries a sink
    /// refused, another batch to hand out), which is applied in turn. After a page-in, a get or
    /// an expiry runs again and its reply answers `cmd`. Each round reads a page back (the head
    /// always moves on), hands out a batch, or bounces deliveries (marking their consumers
    /// blocked), so this ends. The one loop of every executor: the queue's and the model test's.
    pub(crate) fn drive(
        &mut self,
        cmd: QueueCommand<'_>,
        now: u64,
        effects: &mut Vec<Effect>,
        mut perform: impl FnMut(&QueueState, &mut Vec<Effect>) -> Option<QueueCommand<'static>>,
    ) -> Reply {
        let again = cmd.resume();
        let mut reply = self.apply(cmd, now, effects);
        while let Some(follow) = perform(self, effects) {
            let after_page_in = matches!(follow, QueueCommand::Loaded { .. });
            self.apply(follow, now, effects);
            if after_page_in {
                let r = self.apply(again.command(), now, effects);
                if again.answers() {
                    reply = r;
                }
            }
        }
        reply
    }

    fn enqueue(
        &mut self,
        msg: Arc<Message>,
        matched: u32,
        page_transient: bool,
        now: u64,
        out: &mut Vec<Effect>,
    ) -> Enqueued {
        if self.deleted {
            return Enqueued::Accepted;
        }
        let args = &self.rules.args;
        let level = self.level_for(msg.properties.priority);
        let full = args.max_length.is_some_and(|m| self.ready as u64 >= m)
            || args
                .max_length_bytes
                .is_some_and(|m| (self.ready_bytes + msg.body_size()) as u64 > m);
        let persistent = msg.properties.is_persistent();
        if !persistent
            && args
                .max_transient_length
                .is_some_and(|m| self.transient as u64 >= m)
        {
            // Dropped on arrival: the oldest transient message may be on its way already.
            self.overflowed += 1;
            return Enqueued::Accepted;
        }
        if full && args.overflow != Overflow::DropHead {
            self.overflowed += 1;
            if args.overflow == Overflow::RejectPublishDlx && args.dead_letter_exchange.is_some() {
                out.push(Effect::DeadLetter {
                    message: Some(msg),
                    seq: 0,
                    at: None,
                    reason: DeathReason::MaxLen,
                });
            }
            return Enqueued::Rejected;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.counters.publish += 1;
        let expires_at = self
            .rules
            .ttl_for(msg.properties.ttl_ms())
            .map(|t| now.saturating_add(t));
        let durable = self.rules.durable_store && persistent;
        if durable {
            out.push(Effect::Store {
                seq,
                message: msg.clone(),
                at: StoredAs::Durable,
            });
        }
        let size = msg.body_size();
        // Beyond the window the store's copy is the only one (it holds the message in its
        // pending batch until written, and reads it back from there or from disk). While memory
        // is short, transient messages of a deep queue are paged the same way.
        let window_full = self.window_full(size);
        let paged = durable && window_full;
        let paged_transient = !durable && window_full && page_transient && self.rules.has_store;
        if paged_transient {
            out.push(Effect::Store {
                seq,
                message: msg.clone(),
                at: StoredAs::Transient,
            });
            self.paged_any = true;
        }
        self.push_ready(Entry {
            seq,
            msg: (!paged && !paged_transient).then_some(msg),
            expires_at,
            size: size as u32,
            matched,
            redelivered: false,
            durable,
            paged_transient,
            level,
        });
        self.dispatch(now, out);
        // A zero TTL means "deliver now or never".
        if expires_at == Some(now) {
            if let Some(e) = self.remove_seq(level, seq) {
                self.drop_entry(e, DeathReason::Expired, out);
            }
        }
        self.trim(out);
        if durable {
            Enqueued::Stored
        } else {
            Enqueued::Accepted
        }
    }

    /// With drop-head, drops the oldest messages beyond the length limits (after a publish, and
    /// after requeues, as RabbitMQ does).
    fn trim(&mut self, out: &mut Vec<Effect>) {
        if self.rules.args.overflow != Overflow::DropHead {
            return;
        }
        while self.over_limit() {
            match self.pop_oldest() {
                Some(e) => {
                    self.overflowed += 1;
                    self.drop_entry(e, DeathReason::MaxLen, out)
                }
                None => break,
            }
        }
    }

    fn over_limit(&self) -> bool {
        let args = &self.rules.args;
        args.max_length.is_some_and(|m| self.ready as u64 > m)
            || args
                .max_length_bytes
                .is_some_and(|m| self.ready_bytes as u64 > m)
    }

    /// A TTL counts from when the message first entered the queue; one that ran out while the
    /// broker was down expires at once.
    fn restore(&mut self, stored: Vec<StoredMessage>, wall: u64, now: u64) {
        for m in stored {
            let level = self.level_for(m.priority);
            self.next_seq = self.next_seq.max(m.seq + 1);
            let expires_at = self.rules.ttl_for(m.ttl_ms).map(|t| match m.enqueued_at {
                Some(at) => now.saturating_add(at.saturating_add(t).saturating_sub(wall)),
                None => now.saturating_add(t),
            });
            self.push_ready(Entry {
                seq: m.seq,
                msg: m.message,
                expires_at,
                size: m.body_size as u32,
                matched: 0,
                redelivered: m.redelivered,
                durable: true,
                paged_transient: false,
                level,
            });
        }
    }

    /// Hands ready messages to consumers with credit until one or the other runs out, the
    /// head must be read back from the store first, or a batch is decided
    /// ([`Effect::Continue`]: offer these, then dispatch again — so a full sink costs the
    /// give-back of one batch at most, not of everything its consumer's credit allows).
    fn dispatch(&mut self, now: u64, out: &mut Vec<Effect>) {
        if self.consumers.is_empty() || self.deleted {
            return;
        }
        // Consumers that cannot take more now; on the stack for the usual few.
        let mut few = [false; 16];
        let mut many = Vec::new();
        let skip: &mut [bool] = if self.consumers.len() <= few.len() {
            &mut few[..self.consumers.len()]
        } else {
            many.resize(self.consumers.len(), false);
            &mut many
        };
        let first = self.consumers[0].spec.priority;
        let prioritised = self.consumers.iter().any(|c| c.spec.priority != first);
        let mut decided = 0;
        loop {
            if decided == DISPATCH_BATCH {
                out.push(Effect::Continue);
                return;
            }
            decided += 1;
            // Expired messages at the head are never delivered. (A message expiring this very
            // millisecond may still go: that is how a zero TTL means "now or never".)
            while self
                .peek_head()
                .is_some_and(|e| e.expires_at.is_some_and(|t| t < now))
            {
                if let Some(e) = self.pop_head() {
                    self.drop_entry(e, DeathReason::Expired, out);
                }
            }
            let Some(level) = self.head_level() else {
                return;
            };
            if self.levels[level].front().is_some_and(|e| e.msg.is_none()) {
                self.page_in(level, out);
                return;
            }
            let Some(ci) = self.pick_consumer(skip, prioritised) else {
                return;
            };
            let Some(entry) = self.pop_front(level) else {
                return;
            };
            let Some(message) = entry.msg.clone() else {
                return;
            };
            self.next_consumer = ci + 1;
            let c = &self.consumers[ci].spec;
            let (key, redelivered, matched) = (c.key, entry.redelivered, entry.matched);
            self.counters.redeliver += u64::from(redelivered);
            if c.no_ack {
                self.counters.deliver_no_ack += 1;
                out.push(Effect::Deliver(Handout {
                    consumer: ci,
                    key,
                    id: 0,
                    message,
                    redelivered,
                    matched,
                    mark_delivered: None,
                    entry: Some(entry),
                }));
                continue;
            }
            self.counters.deliver += 1;
            let id = self.next_delivery;
            self.next_delivery += 1;
            let mark_delivered = (!redelivered && entry.durable).then_some(entry.seq);
            let u = Unacked {
                consumer: Some(key),
                credit: c.credit.clone(),
                shared: c.shared_credit.clone(),
                entry,
            };
            self.unacked.insert(id, u);
            out.push(Effect::Deliver(Handout {
                consumer: ci,
                key,
                id,
                message,
                redelivered,
                matched,
                mark_delivered,
                entry: None,
            }));
        }
    }

    /// The next consumer (round-robin, highest priority first) that takes a credit; with a
    /// single active consumer, only the oldest one.
    fn pick_consumer(&mut self, skip: &mut [bool], prioritised: bool) -> Option<usize> {
        if self.rules.args.single_active_consumer {
            if !skip[0] && !self.consumers[0].blocked && self.consumers[0].spec.try_acquire() {
                return Some(0);
            }
            skip[0] = true;
            return None;
        }
        let n = self.consumers.len();
        let start = self.next_consumer % n;
        let order = (0..n).map(|i| (start + i) % n);
        if !prioritised {
            for i in order {
                if !skip[i] && !self.consumers[i].blocked {
                    if self.consumers[i].spec.try_acquire() {
                        return Some(i);
                    }
                    skip[i] = true;
                }
            }
            return None;
        }
        let mut candidates: Vec<usize> = order
            .filter(|&i| !skip[i] && !self.consumers[i].blocked)
            .collect();
        candidates.sort_by_key(|&i| std::cmp::Reverse(self.consumers[i].spec.priority));
        for i in candidates {
            if self.consumers[i].spec.try_acquire() {
                return Some(i);
            }
            skip[i] = true;
        }
        None
    }

    /// Asks for the paged-out messages among the first ones of `level`.
    fn page_in(&mut self, level: usize, out: &mut Vec<Effect>) {
        let seqs = self.levels[level]
            .iter()
            .take(self.rules.page_run())
            .filter_map(|e| match (&e.msg, e.stored_as()) {
                (None, Some(at)) => Some((e.seq, at)),
                _ => None,
            })
            .collect();
        out.push(Effect::PageIn { level, seqs });
    }

    /// Puts what the store gave back in place; drops what it could not (the head always moves
    /// on).
    fn loaded(
        &mut self,
        level: usize,
        found: Vec<(u64, Option<Arc<Message>>)>,
        out: &mut Vec<Effect>,
    ) {
        let run = self.rules.page_run();
        let mut found = found.into_iter().peekable();
        let (mut lost, mut loaded, mut loaded_bytes) = (Vec::new(), 0, 0);
        for e in self.levels[level].iter_mut().take(run) {
            while found.peek().is_some_and(|(s, _)| *s < e.seq) {
                found.next();
            }
            if e.msg.is_some() || found.peek().is_none_or(|(s, _)| *s != e.seq) {
                continue;
            }
            match found.next().and_then(|(_, m)| m) {
                Some(m) => {
                    e.msg = Some(m);
                    loaded += 1;
                    loaded_bytes += e.size as usize;
                    if e.paged_transient {
                        // Back in memory: the store's copy has served its purpose.
                        e.paged_transient = false;
                        out.push(Effect::Settle {
                            seq: e.seq,
                            at: StoredAs::Transient,
                        });
                    }
                }
                None => lost.push(e.seq),
            }
        }
        self.loaded += loaded;
        self.loaded_bytes += loaded_bytes;
        if lost.is_empty() {
            return;
        }
        out.push(Effect::Lost(lost.len()));
        for seq in lost {
            if let Some(e) = self.remove_seq(level as u8, seq) {
                settle(&e, out);
            }
        }
    }

    fn bounced(&mut self, bounces: Vec<Bounce>) {
        // Last decided first: each goes back in front of the ones after it, in O(1).
        for b in bounces.into_iter().rev() {
            let entry = if b.id == 0 {
                b.entry
            } else {
                self.unacked.remove(&b.id).map(|u| {
                    release_credits(&u.credit, &u.shared);
                    u.entry
                })
            };
            if let Some(e) = entry {
                // Not delivered after all: uncounted.
                let delivered = if b.id == 0 {
                    &mut self.counters.deliver_no_ack
                } else {
                    &mut self.counters.deliver
                };
                *delivered = delivered.saturating_sub(1);
                self.counters.redeliver = self
                    .counters
                    .redeliver
                    .saturating_sub(u64::from(e.redelivered));
                self.push_ready(e);
            }
            if let Some(c) = self.consumers.get_mut(b.consumer) {
                c.blocked = true;
            }
        }
    }

    fn add_consumer(&mut self, spec: ConsumerSpec, now: u64) -> Reply {
        if self.deleted {
            return Reply::Gone;
        }
        if self.consumers.iter().any(|c| c.spec.exclusive)
            || (spec.exclusive && !self.consumers.is_empty())
        {
            return Reply::InExclusiveUse;
        }
        self.had_consumer = true;
        self.last_used = now;
        self.consumers.push(Slot {
            spec,
            blocked: false,
        });
        Reply::Done
    }

    fn cancel_consumer(
        &mut self,
        key: u64,
        connection: u64,
        now: u64,
        out: &mut Vec<Effect>,
    ) -> bool {
        let Some(pos) = self
            .consumers
            .iter()
            .position(|c| c.spec.key == key && c.spec.connection == connection)
        else {
            return false;
        };
        self.consumers.remove(pos);
        self.last_used = now;
        if self.consumers.is_empty() && self.rules.auto_delete && self.had_consumer {
            out.push(Effect::AutoDelete);
        }
        true
    }

    fn ack(&mut self, ids: &[u64], out: &mut Vec<Effect>) -> Vec<u64> {
        let mut unknown = Vec::new();
        for &id in ids {
            match self.settle_delivery(id) {
                Some(u) => {
                    self.counters.ack += 1;
                    settle(&u.entry, out)
                }
                None => unknown.push(id),
            }
        }
        unknown
    }

    fn reject(&mut self, ids: &[u64], requeue: bool, out: &mut Vec<Effect>) -> Vec<u64> {
        let mut unknown = Vec::new();
        for &id in ids {
            match self.settle_delivery(id) {
                Some(u) if requeue && !self.deleted => {
                    let mut e = u.entry;
                    e.redelivered = true;
                    self.push_ready(e);
                }
                Some(u) => self.drop_entry(u.entry, DeathReason::Rejected, out),
                None => unknown.push(id),
            }
        }
        unknown
    }

    fn settle_delivery(&mut self, id: u64) -> Option<Unacked> {
        let u = self.unacked.remove(&id)?;
        self.unacked.give_back();
        release_credits(&u.credit, &u.shared);
        Some(u)
    }

    fn get(&mut self, no_ack: bool, now: u64, out: &mut Vec<Effect>) -> Option<Fetched> {
        self.last_used = now;
        loop {
            if self
                .peek_head()
                .is_some_and(|e| e.expires_at.is_some_and(|t| t <= now))
            {
                if let Some(e) = self.pop_head() {
                    self.drop_entry(e, DeathReason::Expired, out);
                }
                continue;
            }
            let level = self.head_level()?;
            if self.levels[level].front().is_some_and(|e| e.msg.is_none()) {
                self.page_in(level, out);
                return None;
            }
            let e = self.pop_front(level)?;
            let message = e.msg.clone()?;
            let redelivered = e.redelivered;
            self.counters.redeliver += u64::from(redelivered);
            let id = if no_ack {
                self.counters.get_no_ack += 1;
                settle(&e, out);
                0
            } else {
                self.counters.get += 1;
                if !redelivered && e.durable {
                    out.push(Effect::MarkDelivered { seq: e.seq });
                }
                let id = self.next_delivery;
                self.next_delivery += 1;
                self.unacked.insert(
                    id,
                    Unacked {
                        entry: e,
                        consumer: None,
                        credit: None,
                        shared: None,
                    },
                );
                id
            };
            return Some(Fetched {
                id,
                message,
                redelivered,
                remaining: self.ready,
            });
        }
    }

    fn expire(&mut self, now: u64, out: &mut Vec<Effect>) -> bool {
        let dead_letter = self.rules.args.dead_letter_exchange.is_some();
        for level in 0..self.levels.len() {
            while let Some(front) = self.levels[level]
                .front()
                .filter(|e| e.expires_at.is_some_and(|t| t <= now))
            {
                // Dead-lettered bodies are read back a run at a time, not one by one.
                if front.msg.is_none() && dead_letter {
                    self.page_in(level, out);
                    return false;
                }
                if let Some(e) = self.pop_front(level) {
                    self.drop_entry(e, DeathReason::Expired, out);
                }
            }
        }
        self.rules
            .args
            .expires
            .is_some_and(|x| self.consumers.is_empty() && now.saturating_sub(self.last_used) >= x)
    }

    fn delete(&mut self, out: &mut Vec<Effect>) -> usize {
        self.deleted = true;
        let n = self.ready;
        self.take_all();
        self.unacked.clear();
        for c in std::mem::take(&mut self.consumers) {
            out.push(Effect::Cancel(c.spec));
        }
        // Only what was ever stored needs a drop record: a queue that never paged or stored
        // anything (most private queues) costs the log nothing when it goes.
        out.push(Effect::DropStore {
            durable: self.rules.durable_store,
            transient: self.paged_any,
        });
        n
    }

    /// A message leaves the queue without being acked: dead-lettered if the queue has a
    /// dead-letter exchange, and settled in the store.
    fn drop_entry(&mut self, e: Entry, reason: DeathReason, out: &mut Vec<Effect>) {
        if self.rules.args.dead_letter_exchange.is_some() {
            out.push(Effect::DeadLetter {
                message: e.msg.clone(),
                seq: e.seq,
                at: e.stored_as(),
                reason,
            });
        }
        settle(&e, out);
    }
}

/// The store may forget an entry that leaves the queue, if it has it.
fn settle(e: &Entry, out: &mut Vec<Effect>) {
    if let Some(at) = e.stored_as() {
        out.push(Effect::Settle { seq: e.seq, at });
    }
}
