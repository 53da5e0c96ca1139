//! Messages in: enqueue with its limits (length, bytes, overflow, TTL, priority), and the
//! messages a durable queue recovers at start.

use super::*;

impl Queue {
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

    /// The TTL that applies to a message with its own TTL `message_ttl`.
    pub(super) fn ttl_for(&self, message_ttl: Option<u64>) -> Option<u64> {
        match (self.args.message_ttl, message_ttl) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(super) fn level_for(&self, priority: Option<u8>, st: &State) -> u8 {
        priority.map_or(0, |p| p.min((st.levels.len() - 1) as u8))
    }

    pub(super) fn is_durable_message(&self, msg: &Message) -> bool {
        self.durable_store && msg.properties.is_persistent() && self.store.is_some()
    }
}
