//! What each open AMQP channel reports for listings (`/api/channels`): its prefetch, consumers,
//! unacked deliveries and modes. The session writes them into relaxed atomics it alone writes,
//! so reporting costs a delivery one store and takes no lock; the registry's lock is taken
//! only when a channel opens or closes.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

/// One channel's numbers, written by its session.
#[derive(Debug, Default)]
pub struct ChannelStats {
    prefetch: AtomicU32,
    global_prefetch: AtomicU32,
    consumers: AtomicU32,
    unacked: AtomicU32,
    confirm: AtomicBool,
    transactional: AtomicBool,
}

/// A channel's numbers at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelSnapshot {
    /// `basic.qos` per consumer (0: none).
    pub prefetch: u32,
    /// `basic.qos` with `global` (0: none).
    pub global_prefetch: u32,
    /// Consumers on the channel.
    pub consumers: u32,
    /// Deliveries waiting for an ack.
    pub unacked: u32,
    /// In confirm mode.
    pub confirm: bool,
    /// In transaction mode.
    pub transactional: bool,
}

impl ChannelStats {
    /// Records everything at once (after each channel method).
    pub fn set(&self, s: ChannelSnapshot) {
        self.prefetch.store(s.prefetch, Ordering::Relaxed);
        self.global_prefetch
            .store(s.global_prefetch, Ordering::Relaxed);
        self.consumers.store(s.consumers, Ordering::Relaxed);
        self.unacked.store(s.unacked, Ordering::Relaxed);
        self.confirm.store(s.confirm, Ordering::Relaxed);
        self.transactional.store(s.transactional, Ordering::Relaxed);
    }

    /// Records the unacked count alone (after a delivery).
    pub fn set_unacked(&self, n: usize) {
        self.unacked
            .store(u32::try_from(n).unwrap_or(u32::MAX), Ordering::Relaxed);
    }

    /// What it holds now.
    pub fn snapshot(&self) -> ChannelSnapshot {
        ChannelSnapshot {
            prefetch: self.prefetch.load(Ordering::Relaxed),
            global_prefetch: self.global_prefetch.load(Ordering::Relaxed),
            consumers: self.consumers.load(Ordering::Relaxed),
            unacked: self.unacked.load(Ordering::Relaxed),
            confirm: self.confirm.load(Ordering::Relaxed),
            transactional: self.transactional.load(Ordering::Relaxed),
        }
    }
}

/// A channel listed until this drops (with its channel, or with the whole session).
#[derive(Debug)]
pub struct ChannelEntry {
    broker: Arc<crate::Broker>,
    connection: u64,
    number: u16,
    stats: Arc<ChannelStats>,
}

impl ChannelEntry {
    /// Lists channel `number` of `connection` on `broker`.
    pub fn open(broker: &Arc<crate::Broker>, connection: u64, number: u16) -> Self {
        let stats = Arc::new(ChannelStats::default());
        broker
            .connections()
            .add_channel(connection, number, stats.clone());
        ChannelEntry {
            broker: broker.clone(),
            connection,
            number,
            stats,
        }
    }

    /// Its numbers, to write.
    pub fn stats(&self) -> &ChannelStats {
        &self.stats
    }
}

impl Drop for ChannelEntry {
    fn drop(&mut self) {
        self.broker
            .connections()
            .remove_channel(self.connection, self.number);
    }
}
