//! How many messages each connection published, had routed, was delivered, acknowledged and had
//! confirmed: RabbitMQ's global message counters (`rabbitmq_global_messages_*_total`), by
//! protocol. Each connection counts into atomics of its own (no line shared between
//! connections on the publish path); the registry's lock is taken when a connection logs in
//! and when it ends, when its counts are folded into its protocol's totals.

use crate::vhost::Routed;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Messages received from publishers.
    Received,
    /// Of those, routed to at least one queue.
    Routed,
    /// Unroutable and dropped.
    UnroutableDropped,
    /// Unroutable and returned to a mandatory publisher.
    UnroutableReturned,
    /// Publisher confirms (AMQP basic.ack, MQTT PUBACK/PUBREC, STOMP RECEIPT of a SEND).
    Confirmed,
    /// Delivered to a consumer that acknowledges.
    DeliveredConsumeManualAck,
    /// Delivered to a consumer that does not acknowledge.
    DeliveredConsumeAutoAck,
    /// Fetched (basic.get) to acknowledge.
    DeliveredGetManualAck,
    /// Fetched without acknowledgement.
    DeliveredGetAutoAck,
    /// Delivered again after a requeue.
    Redelivered,
    /// Deliveries acknowledged by consumers.
    Acknowledged,
}

impl Count {
    /// Every kind, in [`Totals`] order.
    pub const ALL: [Count; 11] = [
        Count::Received,
        Count::Routed,
        Count::UnroutableDropped,
        Count::UnroutableReturned,
        Count::Confirmed,
        Count::DeliveredConsumeManualAck,
        Count::DeliveredConsumeAutoAck,
        Count::DeliveredGetManualAck,
        Count::DeliveredGetAutoAck,
        Count::Redelivered,
        Count::Acknowledged,
    ];
}

/// Counts of each [`Count`], in [`Count::ALL`] order.
pub type Totals = [u64; 11];

/// One connection's counters.
#[derive(Debug, Default)]
pub struct MessageCounts([AtomicU64; 11]);

impl MessageCounts {
    /// Adds `n` to `what`.
    #[inline]
    pub fn add(&self, what: Count, n: u64) {
        self.0[what as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// One message received and routed as `r` says; `returned` if it went back to its
    /// mandatory publisher.
    #[inline]
    pub fn published(&self, r: &Routed, returned: bool) {
        self.add(Count::Received, 1);
        if r.queues > 0 {
            self.add(Count::Routed, 1);
        } else if r.unroutable() {
            self.add(
                if returned {
                    Count::UnroutableReturned
                } else {
                    Count::UnroutableDropped
                },
                1,
            );
        }
    }

    /// One delivery: by a consumer or a get, to acknowledge or not, for the first time or not.
    #[inline]
    pub fn delivered(&self, get: bool, manual_ack: bool, redelivered: bool) {
        let what = match (get, manual_ack) {
            (false, true) => Count::DeliveredConsumeManualAck,
            (false, false) => Count::DeliveredConsumeAutoAck,
            (true, true) => Count::DeliveredGetManualAck,
            (true, false) => Count::DeliveredGetAutoAck,
        };
        self.add(what, 1);
        if redelivered {
            self.add(Count::Redelivered, 1);
        }
    }

    /// What it holds now.
    pub fn totals(&self) -> Totals {
        std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed))
    }
}

/// The counts of live connections, by id, and of ended ones, by protocol.
#[derive(Debug, Default)]
pub(crate) struct CountsRegistry {
    live: std::collections::HashMap<
        u64,
        (Arc<str>, Arc<MessageCounts>),
        crate::id_hash::IdHashBuilder,
    >,
    ended: BTreeMap<Arc<str>, Totals>,
}

fn add_into(into: &mut Totals, t: &Totals) {
    for (a, b) in into.iter_mut().zip(t) {
        *a += b;
    }
}

impl CountsRegistry {
    pub(crate) fn open(&mut self, id: u64, protocol: Arc<str>, counts: Arc<MessageCounts>) {
        if let Some((p, old)) = self.live.insert(id, (protocol, counts)) {
            add_into(self.ended.entry(p).or_default(), &old.totals());
        }
    }

    pub(crate) fn close(&mut self, id: u64) {
        if let Some((p, c)) = self.live.remove(&id) {
            add_into(self.ended.entry(p).or_default(), &c.totals());
        }
    }

    /// Logged-in connections by protocol.
    pub(crate) fn live_by_protocol(&self) -> BTreeMap<Arc<str>, usize> {
        let mut n = BTreeMap::new();
        for (p, _) in self.live.values() {
            *n.entry(p.clone()).or_default() += 1;
        }
        n
    }

    /// Totals by protocol, ended connections and live ones together.
    pub(crate) fn by_protocol(&self) -> BTreeMap<Arc<str>, Totals> {
        let mut all = self.ended.clone();
        for (p, c) in self.live.values() {
            add_into(all.entry(p.clone()).or_default(), &c.totals());
        }
        all
    }
}

/// A connection's counters, counted until this drops (with the session), then folded into
/// its protocol's totals.
#[derive(Debug)]
pub struct CountsEntry {
    broker: Arc<crate::Broker>,
    id: u64,
    counts: Arc<MessageCounts>,
}

impl CountsEntry {
    /// Counters for connection `id` speaking `protocol` (a metrics label such as `amqp091`).
    pub fn open(broker: &Arc<crate::Broker>, id: u64, protocol: &str) -> Self {
        let counts = Arc::new(MessageCounts::default());
        broker
            .connections()
            .open_counts(id, Arc::from(protocol), counts.clone());
        CountsEntry {
            broker: broker.clone(),
            id,
            counts,
        }
    }

    /// The counters, to add to.
    #[inline]
    pub fn counts(&self) -> &MessageCounts {
        &self.counts
    }
}

impl Drop for CountsEntry {
    fn drop(&mut self) {
        self.broker.connections().close_counts(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_connections_keep_counting_in_their_protocols_totals() {
        let mut r = CountsRegistry::default();
        let a = Arc::new(MessageCounts::default());
        let b = Arc::new(MessageCounts::default());
        r.open(1, Arc::from("amqp091"), a.clone());
        r.open(2, Arc::from("mqtt311"), b.clone());
        let routed = Routed {
            queues: 2,
            rejected: 0,
            stored: 0,
        };
        a.published(&routed, false);
        a.published(&Routed::default(), true);
        b.published(&Routed::default(), false);
        b.delivered(false, true, true);
        b.add(Count::Acknowledged, 1);
        r.close(1);
        a.published(&routed, false); // after its end: not counted
        let t = r.by_protocol();
        let amqp = t[&Arc::from("amqp091")];
        assert_eq!(amqp[Count::Received as usize], 2);
        assert_eq!(amqp[Count::Routed as usize], 1);
        assert_eq!(amqp[Count::UnroutableReturned as usize], 1);
        let mqtt = t[&Arc::from("mqtt311")];
        assert_eq!(mqtt[Count::UnroutableDropped as usize], 1);
        assert_eq!(mqtt[Count::DeliveredConsumeManualAck as usize], 1);
        assert_eq!(mqtt[Count::Redelivered as usize], 1);
        assert_eq!(mqtt[Count::Acknowledged as usize], 1);
    }
}
