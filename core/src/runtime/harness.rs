//! A session without sockets: the test harness every protocol's session tests stand on (in
//! the manner of quinn-proto's `Pair`). Bytes and clock values go in, the bytes the session
//! would write come out, and the core's state can be inspected in between. It plays the
//! driver's part — sink events handed to the session, store syncs started and finished — in
//! one thread, with no timer and no I/O: time moves only when the test says so.

use super::adapter::{ConnectionContext, Limits};
use super::driver::Session;
use crate::consumer::{sink, DeliveryReceiver, DeliverySink};
use crate::Broker;
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;

/// One session and what the driver would do around it.
pub struct Harness<S> {
    /// The session under test.
    pub session: S,
    /// The broker it talks to.
    pub broker: Arc<Broker>,
    rx: DeliveryReceiver,
    input: BytesMut,
    now: u64,
    /// Syncs finish as soon as they start (the default), or only on [`Harness::finish_sync`].
    auto_sync: bool,
    sync_in_flight: bool,
    /// What the session wrote, as the driver would have sent it.
    written: Vec<u8>,
    /// The connection id the session was given.
    pub connection_id: u64,
}

/// The peer address sessions under the harness see.
pub const PEER: &str = "127.0.0.1:40000";

impl<S: Session> Harness<S> {
    /// A session made by `make` with a fresh context on `broker`, at time 0.
    pub fn new(
        broker: Arc<Broker>,
        limits: Limits,
        make: impl FnOnce(ConnectionContext, DeliverySink) -> S,
    ) -> Self {
        let peer: SocketAddr = PEER.parse().expect("a socket address");
        let ctx = ConnectionContext::new(broker.clone(), peer, Arc::new(limits));
        let connection_id = ctx.connection_id;
        let (tx, rx) = sink(ctx.limits.delivery_buffer);
        let session = make(ctx, tx);
        Harness {
            session,
            broker,
            rx,
            input: BytesMut::new(),
            now: 0,
            auto_sync: true,
            sync_in_flight: false,
            written: Vec::new(),
            connection_id,
        }
    }

    /// Milliseconds since the connection started, as the session was last told.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// From now on a store sync finishes only when [`Harness::finish_sync`] says so.
    pub fn hold_syncs(&mut self) {
        self.auto_sync = false;
    }

    /// Hands `bytes` to the session as one read, then lets it settle ([`Harness::settle`]).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        if !self.session.input_paused() {
            self.session.handle_bytes(&mut self.input, self.now);
        }
        self.settle();
    }

    /// Bytes read but not yet taken by the session (it paused its input).
    pub fn unread(&self) -> usize {
        self.input.len()
    }

    /// Hands the session what the core delivered and starts (and, unless held, finishes) the
    /// store syncs it asks for, until nothing more happens.
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(ev) = self.rx.try_recv() {
                self.session.handle_sink_event(ev);
                moved = true;
            }
            self.rx.wake_queues();
            if !self.sync_in_flight && self.session.needs_sync() {
                self.session.sync_started();
                self.sync_in_flight = true;
                moved = true;
            }
            if self.sync_in_flight && self.auto_sync {
                self.complete_sync();
                moved = true;
            }
            if !moved {
                self.flush();
                return;
            }
        }
        panic!("the session did not settle");
    }

    fn complete_sync(&mut self) {
        self.sync_in_flight = false;
        self.session.synced();
        if !self.input.is_empty() && !self.session.input_paused() {
            self.session.handle_bytes(&mut self.input, self.now);
        }
    }

    /// True while a sync the session started has not finished.
    pub fn sync_pending(&self) -> bool {
        self.sync_in_flight
    }

    /// Finishes the sync in flight (after [`Harness::hold_syncs`]); false if there was none.
    pub fn finish_sync(&mut self) -> bool {
        if !self.sync_in_flight {
            return false;
        }
        self.complete_sync();
        self.settle();
        true
    }

    /// Moves time on by `ms`, running the session's timer each time it falls due on the way.
    pub fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        for _ in 0..100_000 {
            match self.session.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.session.handle_timeout(self.now);
                    self.settle();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// "Writes" what the session has output, as the driver does after each turn.
    fn flush(&mut self) {
        let out = self.session.output().take_vec();
        if !out.is_empty() {
            self.written.extend_from_slice(&out);
            self.session.note_sent(self.now);
        }
    }

    /// Takes the bytes the session has written since the last call.
    pub fn take_output(&mut self) -> Vec<u8> {
        self.flush();
        std::mem::take(&mut self.written)
    }

    /// True once the session has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }
}
