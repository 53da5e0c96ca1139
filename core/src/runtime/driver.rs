//! The connection loop every adapter's server runs: socket bytes and core deliveries in, the
//! session's coalesced output out, timers and shutdown in between. Protocol logic stays in the
//! adapter's sans-IO session; this is only the plumbing, written once.

use crate::consumer::{noting_woken, sink, DeliverySink, SinkEvent};
use crate::error::CoreResult;
use crate::refusals::Refusal;
use crate::runtime::adapter::{ConnectionContext, ServeError, Transport};
use crate::runtime::outbox::Outbox;
use crate::runtime::write_buf::WriteBuf;
use bytes::BytesMut;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Read sizes: an idle connection keeps a small buffer, a busy one grows it.
const READ_MIN: usize = 128;
const READ_MAX: usize = 64 * 1024;
/// Sink events handled per wake-up.
const MAX_EVENTS_PER_WAKE: usize = 256;
/// How long to wait for the peer to close its end after a graceful close, when asked to.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// What the driver needs from a protocol session. Times are milliseconds since the connection
/// started.
pub trait Session {
    /// What the session holds until a store sync (see [`Outbox`]).
    type Held;
    /// The session's outbound side.
    fn outbox(&mut self) -> &mut Outbox<Self::Held>;
    /// The session's outbound side, to look at.
    fn outbox_ref(&self) -> &Outbox<Self::Held>;
    /// Output waiting to be written.
    fn output(&mut self) -> &mut WriteBuf {
        &mut self.outbox().out
    }
    /// The output was written at `now`.
    fn note_sent(&mut self, now: u64) {
        self.outbox().last_send = now;
    }
    /// True once the session has ended: the driver closes the socket.
    fn is_closed(&self) -> bool;
    /// True once the handshake is over (the client is logged in and, for AMQP, the connection
    /// open): until then the connection must finish it by [`ConnectionContext::handshake_deadline`].
    fn is_established(&self) -> bool;
    /// True when something waits for a store sync that has not been started yet.
    fn needs_sync(&self) -> bool {
        self.outbox_ref().held.needs_sync()
    }
    /// A store sync starts now: it covers everything held so far.
    fn sync_started(&mut self) {
        self.outbox().held.sync_started();
    }
    /// The sync started last has finished: release what it covered.
    fn synced(&mut self);
    /// When [`Session::handle_timeout`] should next run.
    fn poll_timeout(&self) -> Option<u64>;
    /// Acts on time having passed (heart-beats, keep-alive, close timeouts).
    fn handle_timeout(&mut self, now: u64);
    /// Decodes and handles every complete frame in `buf`, leaving a partial one.
    fn handle_bytes(&mut self, buf: &mut BytesMut, now: u64);
    /// Handles what the core pushed into the connection's sink.
    fn handle_sink_event(&mut self, ev: SinkEvent);
    /// The broker is shutting down: close with the protocol's own close.
    fn shutdown(&mut self, now: u64);
    /// An operator closed the connection (management API, `junction ctl`): close it with the
    /// protocol's close, telling the client `reason`. Without a protocol of its own, as a
    /// shutdown.
    fn close_by_operator(&mut self, reason: &str, now: u64) {
        let _ = reason;
        self.shutdown(now);
    }
    /// A signal that another connection took this one's identity (MQTT client ids).
    fn takeover_signal(&self) -> Option<&Takeover> {
        None
    }
    /// Another connection took over.
    fn taken_over(&mut self) {}
    /// True once the connection has published: a resource alarm then stops reading from it.
    fn has_published(&self) -> bool {
        false
    }
    /// The resource alarm was raised (`Some(reason)`) or cleared (AMQP's connection.blocked).
    fn resource_alarm(&mut self, _reason: Option<&str>) {}
    /// The peer's input is not being read (blocked by an alarm): count it as alive.
    fn peer_alive(&mut self, _now: u64) {}
    /// The session takes no more input for now (a reply waits for the store): bytes already
    /// read stay in the buffer and are handed over again once [`Session::synced`] lifted it.
    fn input_paused(&self) -> bool {
        self.outbox_ref().held.input_barred()
    }
    /// After a graceful close, wait briefly for the peer to close first (AMQP, as RabbitMQ).
    fn linger_after_close(&self) -> bool {
        false
    }
}

/// Sizes reads to the traffic: reads that fill the buffer double the next one, small reads
/// halve it, and an emptied buffer larger than needed is let go (idle connections stay small).
#[derive(Debug)]
struct ReadSize {
    next: usize,
    spare: usize,
}

impl Default for ReadSize {
    fn default() -> Self {
        ReadSize {
            next: READ_MIN,
            spare: 0,
        }
    }
}

impl ReadSize {
    fn prepare(&mut self, buf: &mut BytesMut) {
        if buf.capacity() - buf.len() < self.next / 2 {
            buf.reserve(self.next);
        }
        self.spare = buf.capacity() - buf.len();
    }

    fn note(&mut self, n: usize, buf: &mut BytesMut) {
        if n >= self.spare {
            self.next = (self.next * 2).min(READ_MAX);
        } else if n < self.next / 4 {
            self.next = (self.next / 2).max(READ_MIN);
        }
        if buf.is_empty() && buf.capacity() > 2 * self.next {
            *buf = BytesMut::new();
        }
    }
}

type SyncFuture<'a> = Pin<Box<dyn Future<Output = CoreResult<()>> + Send + 'a>>;

async fn sync_done(f: &mut Option<SyncFuture<'_>>) -> CoreResult<()> {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Tells a connection that another one took its identity over. Far smaller than a watch
/// channel, which matters with one per idle connection.
#[derive(Debug, Clone, Default)]
pub struct Takeover(Arc<(AtomicBool, Notify)>);

impl Takeover {
    /// A signal not yet given.
    pub fn new() -> Self {
        Takeover::default()
    }

    /// Signals the connection holding this (it may not be waiting yet).
    pub fn signal(&self) {
        self.0 .0.store(true, Ordering::Release);
        self.0 .1.notify_one();
    }

    /// True once the session has been taken over.
    pub fn is_signalled(&self) -> bool {
        self.0 .0.load(Ordering::Acquire)
    }

    /// Waits until [`Takeover::signal`] was called.
    pub async fn signalled(&self) {
        while !self.is_signalled() {
            self.0 .1.notified().await;
        }
    }
}

/// Counts and logs a connection dropped for not finishing its handshake in time.
pub fn handshake_expired(broker: &crate::Broker, peer: std::net::SocketAddr) {
    if broker.refusals().count(Refusal::HandshakeTimeout) {
        tracing::warn!(%peer, "handshake not completed in time: connection dropped");
    } else {
        tracing::debug!(%peer, "handshake not completed in time: connection dropped");
    }
}

async fn taken_over(t: Option<Takeover>) {
    match t {
        Some(t) => t.signalled().await,
        None => std::future::pending().await,
    }
}

/// Serves one connection: builds its session around a fresh delivery sink, runs it until the
/// session closes or the peer goes away, lets `finish` release what the session holds (its
/// consumers, an MQTT will), hands the deliveries still buffered back to their queues and closes
/// the transport. `rbuf` holds bytes read before the session existed. (One async function, not
/// two: each layer would keep its own copy of the arguments in every connection's future.)
pub async fn serve<S: Session>(
    mut io: Box<dyn Transport>,
    ctx: ConnectionContext,
    mut rbuf: BytesMut,
    start: Instant,
    new_session: impl FnOnce(ConnectionContext, DeliverySink) -> S,
    finish: impl FnOnce(&mut S),
) -> Result<(), ServeError> {
    let (tx, mut rx) = sink(ctx.limits.delivery_buffer);
    let broker = ctx.broker.clone();
    let (handshake_deadline, peer) = (ctx.handshake_deadline(), ctx.peer);
    let connection_id = ctx.connection_id;
    // Shutdown and alarm changes arrive through the sink from here on.
    let _registered = broker.register_connection(ctx.connection_id, tx.notifier());
    let mut session = new_session(ctx, tx);
    let (io, session, rx) = (&mut io, &mut session, &mut rx);
    let ms = || start.elapsed().as_millis() as u64;
    let mut events: Vec<SinkEvent> = Vec::new();
    let mut reads = ReadSize::default();
    if !rbuf.is_empty() {
        session.handle_bytes(&mut rbuf, ms());
    }
    let mut sync: Option<SyncFuture<'_>> = None;
    let mut alarm_raised = broker.resource_alarm();
    if let Some(reason) = &alarm_raised {
        session.resource_alarm(Some(reason));
    }
    // The waits that outlive one turn of the loop are made once, not on every wake-up: each
    // new one would register with its timer wheel and deregister when dropped. Pinned in
    // place, not boxed: part of the connection's one task allocation.
    let far = || Instant::now() + Duration::from_secs(3600);
    let mut armed = far();
    let takeover = taken_over(None);
    let timer = tokio::time::sleep_until(armed);
    tokio::pin!(takeover, timer);
    let (mut shutdown_seen, mut takeover_armed) = (false, false);
    // The idle connection the last input woke (a subscriber of what it published).
    let mut woken = None;
    let result = loop {
        rx.begin_turn();
        if let Some(w) = woken.take() {
            if !session.output().is_empty() {
                rx.after_turn(w).await;
            }
        }
        if !session.output().is_empty() {
            if let Err(e) = session.output().write_to(io).await {
                break Err(e.into());
            }
            session.note_sent(ms());
        }
        if sync.is_none() && session.needs_sync() {
            session.sync_started();
            sync = Some(Box::pin(broker.sync()));
        }
        if session.is_closed() {
            // What the session acknowledged before closing goes out once it is durable.
            if let Some(f) = sync.take() {
                if f.await.is_ok() {
                    session.synced();
                    continue;
                }
            }
            if session.linger_after_close() {
                // On the heap: a buffer held across this await would enlarge every connection.
                let mut scratch = vec![0u8; 1024];
                let _ = tokio::time::timeout(CLOSE_LINGER, async {
                    while matches!(io.read(&mut scratch).await, Ok(n) if n > 0) {}
                })
                .await;
            }
            break Ok(());
        }
        if !takeover_armed {
            if let Some(t) = session.takeover_signal() {
                takeover.set(taken_over(Some(t.clone())));
                takeover_armed = true;
            }
        }
        // The timer is moved only when the session needs it earlier: one that fires early
        // costs a spurious turn, whereas re-arming on every packet (keep-alive deadlines move
        // with each) would cost a timer-wheel update each time.
        let established = session.is_established();
        let deadline = session
            .poll_timeout()
            .map(|t| start + Duration::from_millis(t))
            .into_iter()
            .chain((!established).then_some(handshake_deadline))
            .min();
        if let Some(d) = deadline.filter(|d| *d < armed) {
            armed = d;
            timer.as_mut().reset(d);
        }
        // A publishing connection is not read while an alarm is set (RabbitMQ's "blocked").
        let paused = (alarm_raised.is_some() && session.has_published()) || session.input_paused();
        if !paused {
            reads.prepare(&mut rbuf);
        }
        tokio::select! {
            done = sync_done(&mut sync) => {
                sync = None;
                if let Err(e) = done {
                    // Nothing held may be acknowledged: the connection ends without the acks.
                    tracing::error!(error = %e, "store sync failed; closing the connection");
                    break Err(ServeError::Protocol(format!("store sync failed: {e}")));
                }
                session.synced();
                if !rbuf.is_empty() && !session.input_paused() {
                    woken = noting_woken(|| session.handle_bytes(&mut rbuf, ms()));
                }
            }
            read = io.read_buf(&mut rbuf), if !paused => match read {
                Ok(0) => break Ok(()),
                Err(e) => break Err(e.into()),
                Ok(n) => {
                    woken = noting_woken(|| session.handle_bytes(&mut rbuf, ms()));
                    reads.note(n, &mut rbuf);
                }
            },
            got = rx.recv_many(&mut events, MAX_EVENTS_PER_WAKE) => {
                if got.closed {
                    break Ok(());
                }
                for ev in events.drain(..) {
                    session.handle_sink_event(ev);
                }
                if got.events < 8 && events.capacity() > 64 {
                    // Light traffic: do not keep a burst's buffer.
                    events = Vec::new();
                }
                rx.wake_queues();
                if got.notices.alarm_changed {
                    let reason = broker.resource_alarm();
                    if reason != alarm_raised {
                        if reason.is_none() {
                            session.peer_alive(ms());
                        }
                        session.resource_alarm(reason.as_deref());
                        alarm_raised = reason;
                    }
                }
                if got.notices.shutdown && !shutdown_seen {
                    shutdown_seen = true;
                    session.shutdown(ms());
                }
                if got.notices.close && !shutdown_seen {
                    if let Some(reason) = broker.take_close_reason(connection_id) {
                        shutdown_seen = true;
                        tracing::info!(%peer, %reason, "connection closed by an operator");
                        session.close_by_operator(&reason, ms());
                    }
                }
            }
            () = &mut timer => {
                armed = far();
                timer.as_mut().reset(armed);
                if !session.is_established() && Instant::now() >= handshake_deadline {
                    handshake_expired(&broker, peer);
                    break Ok(());
                }
                if paused {
                    session.peer_alive(ms());
                }
                session.handle_timeout(ms());
            }
            () = &mut takeover, if takeover_armed => {
                takeover.set(taken_over(None));
                session.taken_over();
            }
        }
    };
    rx.begin_turn();
    // Whatever the session still had to say (e.g. a DISCONNECT or ERROR) goes out if it can.
    if !session.output().is_empty() {
        let _ = session.output().write_to(io).await;
    }
    finish(session);
    rx.return_undelivered();
    let _ = io.shutdown().await;
    result
}
