//! Messages out: consumers served round-robin by credit, acks, rejects, requeues, gets.

use super::*;

impl Queue {
    /// A durable message handed out for the first time: the store remembers it was delivered.
    pub(super) fn note_delivered(&self, e: &Entry) {
        if !e.redelivered && e.durable {
            if let Some(store) = &self.store {
                store.mark_delivered(self.store_id, e.seq);
            }
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

    pub(super) fn dispatch_locked(self: &Arc<Self>, st: &mut State, now: u64, after: &mut After) {
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
    pub(super) fn pick_consumer(
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

    pub(super) fn settle(&self, st: &mut State, id: u64) -> Option<Unacked> {
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
}
