//! Consumers as the core sees them: a bounded sink into the adapter's connection task and a credit.

use crate::message::Message;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Poll, Waker};

/// The queue a delivery came from, as its consumer's connection sees it: where the delivery is
/// acked or given back, and what a sink that drained wakes. (A trait, so this module does not
/// depend on the queue's.)
pub trait DeliveryQueue: Send + Sync + std::fmt::Debug {
    /// Acknowledges deliveries; returns the ids the queue did not know.
    fn ack(&self, ids: &[u64]) -> Vec<u64>;
    /// Requeues (to their original place) or dead-letters / drops deliveries; returns the ids
    /// the queue did not know.
    fn reject(&self, ids: &[u64], requeue: bool) -> Vec<u64>;
    /// Offers ready messages to consumers again: a sink the queue found full has drained.
    fn resume(&self);
    /// The queue's name.
    fn name(&self) -> &str;
}

/// Whether two handles name the same queue.
pub fn same_queue(a: &Arc<dyn DeliveryQueue>, b: &Arc<dyn DeliveryQueue>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

/// A message handed to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The adapter's key for the consumer (unique within its connection's sink).
    pub consumer: u64,
    /// The queue it came from, to ack it into.
    pub queue: Arc<dyn DeliveryQueue>,
    /// The queue's id for this delivery, used to ack it; 0 for no-ack deliveries.
    pub id: u64,
    /// The message (shared, never copied per consumer).
    pub message: Arc<Message>,
    /// It was delivered before (requeued, or recovered as delivered).
    pub redelivered: bool,
    /// The [`crate::exchange::MATCH_BIT`]s of the bindings that routed it to the queue; 0 when
    /// none carried one or it was recovered from the store (the bits are not stored).
    pub matched: u32,
}

/// What the core pushes into a consumer's sink.
#[derive(Debug)]
pub enum SinkEvent {
    /// A message for the consumer.
    Deliver(Delivery),
    /// The queue went away under the consumer (consumer-cancel notification).
    Cancelled {
        /// The consumer's key.
        consumer: u64,
    },
}

/// The sending half, owned by queues through their consumers.
#[derive(Debug)]
pub struct DeliverySink {
    chan: Arc<Chan>,
}

/// The receiving half, owned by the adapter's connection task.
#[derive(Debug)]
pub struct DeliveryReceiver {
    chan: Arc<Chan>,
}

/// A bounded queue of events under one short lock. Unlike a general-purpose channel it holds
/// no memory while empty (idle connections stay small), and the receiver takes a whole batch per
/// lock.
#[derive(Debug)]
struct Chan {
    capacity: usize,
    state: Mutex<ChanState>,
}

#[derive(Debug, Default)]
struct ChanState {
    events: VecDeque<SinkEvent>,
    /// Queues that found the sink full.
    #[expect(
        clippy::box_collection,
        reason = "8 bytes instead of 24 in every connection's sink; parking is rare"
    )]
    parked: Option<Box<Vec<Weak<dyn DeliveryQueue>>>>,
    receiver: Option<Waker>,
    /// The receiver registered `receiver` while waiting and has not begun a turn since
    /// ([`DeliveryReceiver::begin_turn`]).
    idle: bool,
    /// A connection that waits for this receiver's next turn ([`DeliveryReceiver::after_turn`]).
    after_turn: Option<Waker>,
    senders: usize,
    receiver_gone: bool,
    notices: Notices,
}

/// Broker-wide news for a connection, delivered through its sink: its loop then waits on
/// nothing broker-wide (polling a shared `Notify` would take that one's lock on every wake-up of
/// every connection).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Notices {
    /// The broker is shutting down.
    pub shutdown: bool,
    /// The resource alarm changed (read it from the broker).
    pub alarm_changed: bool,
    /// An operator closed this connection (the reason is the broker's to read).
    pub close: bool,
}

impl Notices {
    /// The broker is shutting down.
    pub const SHUTDOWN: Notices = Notices {
        shutdown: true,
        alarm_changed: false,
        close: false,
    };
    /// The resource alarm changed.
    pub const ALARM_CHANGED: Notices = Notices {
        shutdown: false,
        alarm_changed: true,
        close: false,
    };
    /// An operator closed the connection.
    pub const CLOSE: Notices = Notices {
        shutdown: false,
        alarm_changed: false,
        close: true,
    };

    /// True if there is no news.
    pub fn is_empty(&self) -> bool {
        *self == Notices::default()
    }
}

/// What one wait in [`DeliveryReceiver::recv_many`] brought.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Events appended to the caller's buffer.
    pub events: usize,
    /// Broker-wide news that came with the wait.
    pub notices: Notices,
    /// Every sender is gone and nothing is left.
    pub closed: bool,
}

/// Tells one connection of broker-wide news. Does not count as a sender, and does not keep
/// the connection's sink alive.
#[derive(Debug, Clone)]
pub struct Notifier(Weak<Chan>);

impl Notifier {
    /// Tells the connection of `news` (wakes it if it waits).
    pub fn notify(&self, news: Notices) {
        let Some(chan) = self.0.upgrade() else {
            return;
        };
        let waker = {
            let mut st = chan.lock();
            st.notices.shutdown |= news.shutdown;
            st.notices.alarm_changed |= news.alarm_changed;
            st.notices.close |= news.close;
            st.receiver.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Chan {
    fn lock(&self) -> MutexGuard<'_, ChanState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bounded sink of `capacity` events. When it is full, queues park themselves on it and are
/// woken by [`DeliveryReceiver::wake_queues`] once the adapter has drained it.
pub fn sink(capacity: usize) -> (DeliverySink, DeliveryReceiver) {
    let chan = Arc::new(Chan {
        capacity: capacity.max(1),
        state: Mutex::new(ChanState {
            senders: 1,
            ..ChanState::default()
        }),
    });
    (
        DeliverySink { chan: chan.clone() },
        DeliveryReceiver { chan },
    )
}

/// The idle receiver a connection's turn woke last, so that the connection can let it write
/// first (see [`DeliveryReceiver::after_turn`]). Per thread: a turn runs on one thread.
struct WokenOnThread {
    recording: Cell<bool>,
    last: RefCell<Option<Arc<Chan>>>,
}

thread_local! {
    static WOKEN: WokenOnThread = const {
        WokenOnThread {
            recording: Cell::new(false),
            last: RefCell::new(None),
        }
    };
}

fn note_woken(chan: &Arc<Chan>) {
    WOKEN.with(|w| {
        if w.recording.get() {
            if let Ok(mut last) = w.last.try_borrow_mut() {
                *last = Some(chan.clone());
            }
        }
    });
}

/// A receiver that a turn of another connection woke from idle.
#[derive(Debug)]
pub struct Woken(Arc<Chan>);

/// Runs `f` (a connection handling its input) and returns the last receiver it woke from idle.
pub fn noting_woken(f: impl FnOnce()) -> Option<Woken> {
    WOKEN.with(|w| w.recording.set(true));
    f();
    WOKEN
        .with(|w| {
            w.recording.set(false);
            w.last.try_borrow_mut().ok().and_then(|mut l| l.take())
        })
        .map(Woken)
}

/// Outcome of offering an event to a sink.
pub(crate) enum Offer {
    Sent,
    Full(SinkEvent),
    Closed,
}

impl Clone for DeliverySink {
    fn clone(&self) -> Self {
        self.chan.lock().senders += 1;
        DeliverySink {
            chan: self.chan.clone(),
        }
    }
}

impl Drop for DeliverySink {
    fn drop(&mut self) {
        let mut st = self.chan.lock();
        st.senders -= 1;
        let waker = if st.senders == 0 {
            st.receiver.take()
        } else {
            None
        };
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl DeliverySink {
    /// Queues `ev`, bounded by the capacity unless `always`.
    fn push(&self, ev: SinkEvent, always: bool) -> Offer {
        let mut st = self.chan.lock();
        if st.receiver_gone {
            return Offer::Closed;
        }
        if !always && st.events.len() >= self.chan.capacity {
            return Offer::Full(ev);
        }
        st.events.push_back(ev);
        let waker = st.receiver.take();
        let idle = st.idle;
        drop(st);
        if let Some(w) = waker {
            if idle {
                note_woken(&self.chan);
            }
            w.wake();
        }
        Offer::Sent
    }

    pub(crate) fn offer(&self, ev: SinkEvent) -> Offer {
        self.push(ev, false)
    }

    /// Parks `queue` until the receiver drains; the caller must retry once after parking.
    pub(crate) fn park(&self, queue: &Weak<dyn DeliveryQueue>) {
        let mut st = self.chan.lock();
        let parked = st.parked.get_or_insert_default();
        if !parked
            .iter()
            .any(|q| std::ptr::addr_eq(q.as_ptr(), queue.as_ptr()))
        {
            parked.push(queue.clone());
        }
    }

    /// Sends an event that must not be lost (a cancel), beyond the capacity if need be.
    pub(crate) fn send_reliably(&self, ev: SinkEvent) {
        self.push(ev, true);
    }

    /// True once the receiving connection is gone.
    pub fn is_closed(&self) -> bool {
        self.chan.lock().receiver_gone
    }

    /// A handle that tells this sink's connection of broker-wide news.
    pub fn notifier(&self) -> Notifier {
        Notifier(Arc::downgrade(&self.chan))
    }

    /// The receiver waits for events (registered and not yet woken).
    #[cfg(test)]
    pub(crate) fn receiver_waiting(&self) -> bool {
        self.chan.lock().receiver.is_some()
    }

    /// Another connection waits for the receiver's next turn.
    #[cfg(test)]
    pub(crate) fn turn_awaited(&self) -> bool {
        self.chan.lock().after_turn.is_some()
    }
}

impl Drop for DeliveryReceiver {
    fn drop(&mut self) {
        self.chan.lock().receiver_gone = true;
        self.begin_turn();
        self.return_undelivered();
    }
}

impl DeliveryReceiver {
    /// Takes an event without waiting.
    pub fn try_recv(&mut self) -> Option<SinkEvent> {
        self.chan.lock().events.pop_front()
    }

    /// Takes up to `limit` events that are ready and any notices, after waiting for the first
    /// of either (or for every sender to be gone).
    pub async fn recv_many(&mut self, buf: &mut Vec<SinkEvent>, limit: usize) -> Received {
        std::future::poll_fn(|cx| {
            let mut st = self.chan.lock();
            let notices = std::mem::take(&mut st.notices);
            if !st.events.is_empty() {
                let n = st.events.len().min(limit);
                buf.extend(st.events.drain(..n));
                if st.events.is_empty() && n < 8 && st.events.capacity() > 64 {
                    // Light traffic: do not keep a burst's buffer.
                    st.events = VecDeque::new();
                }
                return Poll::Ready(Received {
                    events: n,
                    notices,
                    closed: false,
                });
            }
            if !notices.is_empty() || st.senders == 0 {
                return Poll::Ready(Received {
                    events: 0,
                    notices,
                    closed: notices.is_empty(),
                });
            }
            st.receiver = Some(cx.waker().clone());
            st.idle = true;
            Poll::Pending
        })
        .await
    }

    /// The receiver's connection begins a turn (before it writes anything, and before every
    /// wait but [`DeliveryReceiver::recv_many`]'s): a connection waiting in
    /// [`DeliveryReceiver::after_turn`] for this one may go on. Dropping the receiver does the
    /// same.
    pub fn begin_turn(&self) {
        let after = {
            let mut st = self.chan.lock();
            st.idle = false;
            st.after_turn.take()
        };
        if let Some(w) = after {
            w.wake();
        }
    }

    /// Waits until the connection `woken` stands for begins its turn. A connection whose input
    /// woke an idle one waits here before writing its own replies, so that the deliveries it
    /// caused are written first (MQTT: the subscriber's PUBLISH before the publisher's PUBACK,
    /// as Mosquitto writes them); the woken task runs next on this thread. Returns at once when
    /// that turn has begun, when `woken` is this receiver, or when another connection already
    /// waits. The woken connection was idle with events in its sink, so its turn begins
    /// without waiting for anything else: this cannot stall behind a slow peer.
    pub async fn after_turn(&self, woken: Woken) {
        if Arc::ptr_eq(&woken.0, &self.chan) {
            return;
        }
        let mut registered = false;
        std::future::poll_fn(|cx| {
            if registered {
                return Poll::Ready(());
            }
            let mut st = woken.0.lock();
            if !st.idle || st.events.is_empty() || st.receiver_gone || st.after_turn.is_some() {
                return Poll::Ready(());
            }
            st.after_turn = Some(cx.waker().clone());
            registered = true;
            Poll::Pending
        })
        .await
    }

    /// Gives every delivery still in the sink back to its queue (the connection is ending).
    pub fn return_undelivered(&mut self) {
        let events = std::mem::take(&mut self.chan.lock().events);
        for ev in events {
            if let SinkEvent::Deliver(d) = ev {
                if d.id != 0 {
                    d.queue.reject(&[d.id], true);
                }
            }
        }
    }

    /// Lets queues that found the sink full dispatch again. Call after draining.
    pub fn wake_queues(&self) {
        let Some(parked) = self.chan.lock().parked.take() else {
            return;
        };
        for q in parked.iter().filter_map(Weak::upgrade) {
            q.resume();
        }
    }
}

/// A prefetch window. `limit` 0 means unlimited.
#[derive(Debug, Default)]
pub struct Credit {
    limit: AtomicU32,
    in_flight: AtomicU32,
    paused: AtomicBool,
}

impl Credit {
    /// A window of `limit` deliveries (0: unlimited).
    pub fn new(limit: u32) -> Arc<Credit> {
        Arc::new(Credit {
            limit: AtomicU32::new(limit),
            in_flight: AtomicU32::new(0),
            paused: AtomicBool::new(false),
        })
    }

    /// Stops (or resumes) deliveries through this credit, whatever the window (flow control).
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
    }

    /// True while deliveries through this credit are stopped.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Changes the window (basic.qos on a live channel).
    pub fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Release);
    }

    /// The window (0: unlimited).
    pub fn limit(&self) -> u32 {
        self.limit.load(Ordering::Acquire)
    }

    /// Deliveries taken and not yet released.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    pub(crate) fn try_acquire(&self) -> bool {
        if self.is_paused() {
            return false;
        }
        let limit = self.limit.load(Ordering::Acquire);
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (limit == 0 || n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    pub(crate) fn release(&self) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// What an adapter supplies to start consuming.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The adapter's key, echoed in every [`Delivery`].
    pub key: u64,
    /// The protocol's name for the consumer (AMQP consumer tag), for listings and errors.
    pub tag: String,
    /// The connection that owns the consumer (for exclusive queues).
    pub connection: u64,
    /// The adapter's channel for it (the AMQP channel number; 1 for STOMP and MQTT, as
    /// RabbitMQ's plugins report their one channel; 0 in tests).
    pub channel: u16,
    /// Deliveries are settled on sending (AMQP no-ack, MQTT QoS 0, STOMP ack:auto).
    pub no_ack: bool,
    /// The consumer wants to be the queue's only one (AMQP exclusive consume).
    pub exclusive: bool,
    /// Higher priority consumers are served first (`x-priority`).
    pub priority: i32,
    /// The consumer's own window.
    pub credit: Option<Arc<Credit>>,
    /// A window shared with other consumers (AMQP global qos on a channel).
    pub shared_credit: Option<Arc<Credit>>,
    /// Where its deliveries go: its connection's sink.
    pub sink: DeliverySink,
}

impl ConsumerSpec {
    pub(crate) fn try_acquire(&self) -> bool {
        if self.no_ack {
            return !self.credit.as_ref().is_some_and(|c| c.is_paused());
        }
        let own = self.credit.as_ref().is_none_or(|c| c.try_acquire());
        if !own {
            return false;
        }
        if let Some(shared) = &self.shared_credit {
            if !shared.try_acquire() {
                if let Some(c) = &self.credit {
                    c.release();
                }
                return false;
            }
        }
        true
    }
}

pub(crate) fn release_credits(own: &Option<Arc<Credit>>, shared: &Option<Arc<Credit>>) {
    if let Some(c) = own {
        c.release();
    }
    if let Some(c) = shared {
        c.release();
    }
}
