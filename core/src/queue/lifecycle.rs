//! Counts, purge, expiry, deletion, and the work done once the lock is released
//! (settling the store, dead-lettering, auto-delete).

use super::*;

impl Queue {
    /// A message leaves the queue without being acked: settled in the store, and kept for
    /// dead-lettering if the queue has a dead-letter exchange.
    pub(super) fn drop_entry(&self, e: Entry, reason: DeathReason, after: &mut After) {
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
    pub(super) fn id_of(&self, e: &Entry) -> u64 {
        if e.paged_transient {
            self.transient_store_id
        } else {
            self.store_id
        }
    }

    /// Notes that an entry leaving the queue must be forgotten by the store, if it has it.
    pub(super) fn settle_entry(&self, e: &Entry, after: &mut After) {
        if e.durable {
            after.settled_persistent.push(e.seq);
        } else if e.paged_transient {
            after.settled_transient.push(e.seq);
        }
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

    pub(super) fn finish(&self, after: After) {
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
        let Some(host) = self.host.upgrade() else {
            return;
        };
        if self.args.dead_letter_exchange.is_some() {
            for (msg, reason) in after.dead {
                host.dead_letter(self, &msg, reason);
            }
        }
        if after.auto_delete {
            host.auto_delete(self);
        }
    }
}
