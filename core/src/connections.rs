//! Every live connection's notifier: how the broker tells them all of a shutdown or of a change
//! of the resource alarm. The news goes through each connection's own sink, so no connection
//! waits on anything the others share.

use crate::consumer::{Notices, Notifier};
use crate::id_hash::IdHashBuilder;
use crate::value::FieldTable;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// What a logged-in connection says of itself, for listings (the management API's
/// `/api/connections`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionInfo {
    /// The protocol as RabbitMQ names it: "AMQP 0-9-1", "STOMP 1.2", "MQTT 3.1.1", "MQTT 5.0".
    pub protocol: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// The listener's address, when known.
    pub local: Option<SocketAddr>,
    /// The user it logged in as.
    pub user: String,
    /// The vhost it uses.
    pub vhost: String,
    /// When it logged in, in Unix milliseconds.
    pub connected_at: u64,
    /// What the client said of itself (AMQP client properties; the MQTT client id).
    pub client_properties: FieldTable,
    /// What TLS established, when the connection came in over TLS.
    pub tls: Option<std::sync::Arc<crate::runtime::TlsSession>>,
}

/// The registry (one per broker).
#[derive(Debug, Default)]
pub(crate) struct Connections {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    notifiers: HashMap<u64, Notifier, IdHashBuilder>,
    /// What logged-in connections said of themselves.
    infos: HashMap<u64, ConnectionInfo, IdHashBuilder>,
    /// Why an operator closed a connection, until it has read it.
    closing: HashMap<u64, Arc<str>, IdHashBuilder>,
    /// Open AMQP channels, by connection and number.
    channels: std::collections::BTreeMap<(u64, u16), Arc<crate::channels::ChannelStats>>,
    /// Message counts of live connections and, by protocol, of ended ones.
    counts: crate::message_counts::CountsRegistry,
    /// Connections and channels opened and closed since the start.
    churn: Churn,
    shutting_down: bool,
    /// Why publishers are blocked, per alarm source ([`Alarm`]), if they are.
    alarms: [Option<Arc<str>>; 2],
    /// The reason connections see: the first raised source's.
    alarm: Option<Arc<str>>,
}

/// Connections and channels opened and closed since the start (RabbitMQ's
/// `rabbitmq_connections_opened_total` and its kin).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Churn {
    /// Connections registered.
    pub connections_opened: u64,
    /// Connections gone.
    pub connections_closed: u64,
    /// Channels opened.
    pub channels_opened: u64,
    /// Channels closed.
    pub channels_closed: u64,
}

/// What can raise the resource alarm. Each source is raised and cleared on its own; publishers
/// are blocked while any is raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alarm {
    /// Resident memory above the high watermark.
    Memory,
    /// Free disk space below its limit, or the message log over its size limit.
    Disk,
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers connection `id` until the returned guard drops. One registered after the
    /// shutdown began hears of it at once.
    pub(crate) fn register(&self, id: u64, notifier: Notifier) -> Registration<'_> {
        let mut st = self.lock();
        if st.shutting_down {
            notifier.notify(Notices::SHUTDOWN);
        }
        st.notifiers.insert(id, notifier);
        st.churn.connections_opened += 1;
        Registration {
            connections: self,
            id,
        }
    }

    /// Tells every connection, now and from now on, that the broker shuts down.
    pub(crate) fn shut_down(&self) {
        let mut st = self.lock();
        st.shutting_down = true;
        notify_all(&st, Notices::SHUTDOWN);
    }

    /// Lets connections open again after [`Self::shut_down`] (the client listeners were
    /// stopped and are started again without a restart).
    pub(crate) fn resume(&self) {
        self.lock().shutting_down = false;
    }

    /// Raises (`Some(reason)`) or clears `source`; tells every connection when that changed
    /// what they see. Returns whether the source itself changed.
    pub(crate) fn set_alarm(&self, source: Alarm, reason: Option<&str>) -> bool {
        let mut st = self.lock();
        let slot = &mut st.alarms[source as usize];
        if slot.as_deref() == reason {
            return false;
        }
        *slot = reason.map(Arc::from);
        let seen = st.alarms.iter().flatten().next().cloned();
        if seen != st.alarm {
            st.alarm = seen;
            notify_all(&st, Notices::ALARM_CHANGED);
        }
        true
    }

    /// The reason `source` is raised for, if it is.
    pub(crate) fn alarm_of(&self, source: Alarm) -> Option<Arc<str>> {
        self.lock().alarms[source as usize].clone()
    }

    pub(crate) fn alarm(&self) -> Option<Arc<str>> {
        self.lock().alarm.clone()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().notifiers.len()
    }

    /// Records what a registered connection says of itself (after its login).
    pub(crate) fn describe(&self, id: u64, info: ConnectionInfo) {
        let mut st = self.lock();
        if st.notifiers.contains_key(&id) {
            st.infos.insert(id, info);
        }
    }

    /// Every logged-in connection, by id.
    pub(crate) fn list(&self) -> Vec<(u64, ConnectionInfo)> {
        let mut all: Vec<(u64, ConnectionInfo)> = self
            .lock()
            .infos
            .iter()
            .map(|(id, i)| (*id, i.clone()))
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    /// Lists channel `number` of connection `id`.
    pub(crate) fn add_channel(
        &self,
        id: u64,
        number: u16,
        stats: Arc<crate::channels::ChannelStats>,
    ) {
        let mut st = self.lock();
        st.channels.insert((id, number), stats);
        st.churn.channels_opened += 1;
    }

    /// Stops listing channel `number` of connection `id`.
    pub(crate) fn remove_channel(&self, id: u64, number: u16) {
        let mut st = self.lock();
        if st.channels.remove(&(id, number)).is_some() {
            st.churn.channels_closed += 1;
        }
    }

    /// Connections and channels opened and closed so far.
    pub(crate) fn churn(&self) -> Churn {
        self.lock().churn
    }

    /// Every open channel of a logged-in connection: the connection's id and what it said of
    /// itself, the channel's number and its numbers, by connection then number.
    pub(crate) fn channels(
        &self,
    ) -> Vec<(u64, ConnectionInfo, u16, crate::channels::ChannelSnapshot)> {
        let st = self.lock();
        st.channels
            .iter()
            .filter_map(|((id, n), s)| {
                let info = st.infos.get(id)?;
                Some((*id, info.clone(), *n, s.snapshot()))
            })
            .collect()
    }

    /// Open channels of every connection.
    pub(crate) fn channel_total(&self) -> usize {
        self.lock().channels.len()
    }

    /// Open channels of connection `id`.
    pub(crate) fn channel_count(&self, id: u64) -> usize {
        self.lock().channels.range((id, 0)..=(id, u16::MAX)).count()
    }

    /// Counts connection `id`'s messages in `counts` until [`Connections::close_counts`].
    pub(crate) fn open_counts(
        &self,
        id: u64,
        protocol: Arc<str>,
        counts: Arc<crate::message_counts::MessageCounts>,
    ) {
        self.lock().counts.open(id, protocol, counts);
    }

    /// Folds connection `id`'s counts into its protocol's totals.
    pub(crate) fn close_counts(&self, id: u64) {
        self.lock().counts.close(id);
    }

    /// Logged-in connections by protocol label.
    pub(crate) fn by_protocol(&self) -> std::collections::BTreeMap<Arc<str>, usize> {
        self.lock().counts.live_by_protocol()
    }

    /// Message counts by protocol, of every connection so far.
    pub(crate) fn message_totals(
        &self,
    ) -> std::collections::BTreeMap<Arc<str>, crate::message_counts::Totals> {
        self.lock().counts.by_protocol()
    }

    /// Asks connection `id` to close, telling its client `reason`; false if there is none.
    pub(crate) fn close(&self, id: u64, reason: &str) -> bool {
        let mut st = self.lock();
        let Some(n) = st.notifiers.get(&id).cloned() else {
            return false;
        };
        st.closing.insert(id, Arc::from(reason));
        drop(st);
        n.notify(Notices::CLOSE);
        true
    }

    /// Why an operator closed connection `id`, if one did.
    pub(crate) fn close_reason(&self, id: u64) -> Option<Arc<str>> {
        self.lock().closing.remove(&id)
    }
}

fn notify_all(st: &State, news: Notices) {
    for n in st.notifiers.values() {
        n.notify(news);
    }
}

/// Keeps a connection registered; deregisters it when dropped.
#[derive(Debug)]
pub struct Registration<'a> {
    connections: &'a Connections,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut st = self.connections.lock();
        st.notifiers.remove(&self.id);
        st.infos.remove(&self.id);
        let id = self.id;
        let before = st.channels.len();
        st.channels.retain(|(c, _), _| *c != id);
        st.churn.channels_closed += (before - st.channels.len()) as u64;
        st.churn.connections_closed += 1;
        st.closing.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::sink;
    use std::future::Future;

    fn notices(rx: &mut crate::DeliveryReceiver) -> Notices {
        let mut buf = Vec::new();
        let fut = std::pin::pin!(rx.recv_many(&mut buf, 8));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match fut.poll(&mut cx) {
            std::task::Poll::Ready(got) => got.notices,
            std::task::Poll::Pending => Notices::default(),
        }
    }

    #[test]
    fn alarm_changes_reach_every_registered_connection_once() {
        let c = Connections::default();
        let (tx1, mut rx1) = sink(4);
        let (tx2, mut rx2) = sink(4);
        let r1 = c.register(1, tx1.notifier());
        let _r2 = c.register(2, tx2.notifier());
        assert!(c.set_alarm(Alarm::Disk, Some("disk")));
        assert!(
            !c.set_alarm(Alarm::Disk, Some("disk")),
            "no change, no news"
        );
        assert_eq!(c.alarm().as_deref(), Some("disk"));
        for rx in [&mut rx1, &mut rx2] {
            assert!(notices(rx).alarm_changed);
            assert!(notices(rx).is_empty());
        }
        drop(r1);
        assert_eq!(c.len(), 1);
        assert!(c.set_alarm(Alarm::Disk, None));
        assert!(notices(&mut rx1).is_empty(), "deregistered");
        assert!(notices(&mut rx2).alarm_changed);
    }

    #[test]
    fn publishers_stay_blocked_while_any_source_is_raised() {
        let c = Connections::default();
        let (tx, mut rx) = sink(4);
        let _r = c.register(1, tx.notifier());
        assert!(c.set_alarm(Alarm::Disk, Some("low on disk")));
        assert!(notices(&mut rx).alarm_changed);
        // Memory raised too: the reason seen is memory's, and connections hear of it.
        assert!(c.set_alarm(Alarm::Memory, Some("low on memory")));
        assert_eq!(c.alarm().as_deref(), Some("low on memory"));
        assert!(notices(&mut rx).alarm_changed);
        // Disk cleared: still blocked for memory, nothing new to tell.
        assert!(c.set_alarm(Alarm::Disk, None));
        assert_eq!(c.alarm().as_deref(), Some("low on memory"));
        assert!(notices(&mut rx).is_empty());
        assert!(c.set_alarm(Alarm::Memory, None));
        assert_eq!(c.alarm(), None);
        assert!(notices(&mut rx).alarm_changed);
        assert_eq!(c.alarm_of(Alarm::Disk), None);
    }

    #[test]
    fn a_connection_registered_after_the_shutdown_hears_of_it() {
        let c = Connections::default();
        let (tx1, mut rx1) = sink(4);
        let _r1 = c.register(1, tx1.notifier());
        c.shut_down();
        assert!(notices(&mut rx1).shutdown);
        let (tx2, mut rx2) = sink(4);
        let _r2 = c.register(2, tx2.notifier());
        assert!(notices(&mut rx2).shutdown);
    }
}
