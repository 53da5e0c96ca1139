//! The connection loop every adapter's server runs: socket bytes and core deliveries in, the
//! session's coalesced output out, timers and shutdown in between. Protocol logic stays in the
//! adapter's sans-IO session; this is only the plumbing, written once.

use crate::adapter::{ServeError, Transport};
use crate::broker::Broker;
use crate::consumer::{DeliveryReceiver, SinkEvent};
use crate::write_buf::WriteBuf;
use bytes::BytesMut;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::time::Instant;

/// Sink events handled per wake-up.
const MAX_EVENTS_PER_WAKE: usize = 256;
/// How long to wait for the peer to close its end after a graceful close, when asked to.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// What the driver needs from a protocol session. Times are milliseconds since the connection
/// started.
pub trait Session {
    /// Output waiting to be written.
    fn output(&mut self) -> &mut WriteBuf;
    /// The output was written at `now`.
    fn note_sent(&mut self, _now: u64) {}
    fn is_closed(&self) -> bool;
    /// True when acknowledgements are held until the message store has synced.
    fn needs_sync(&self) -> bool;
    /// The store has synced: release what was held.
    fn synced(&mut self);
    /// When [`Session::handle_timeout`] should next run.
    fn poll_timeout(&self) -> Option<u64>;
    fn handle_timeout(&mut self, now: u64);
    /// Decodes and handles every complete frame in `buf`, leaving a partial one.
    fn handle_bytes(&mut self, buf: &mut BytesMut, now: u64);
    fn handle_sink_event(&mut self, ev: SinkEvent);
    /// The broker is shutting down: close with the protocol's own close.
    fn shutdown(&mut self, now: u64);
    /// A signal that another connection took this one's identity (MQTT client ids).
    fn takeover_signal(&mut self) -> Option<&mut watch::Receiver<bool>> {
        None
    }
    /// Another connection took over.
    fn taken_over(&mut self) {}
    /// After a graceful close, wait briefly for the peer to close first (AMQP, as RabbitMQ).
    fn linger_after_close(&self) -> bool {
        false
    }
}

async fn takeover<S: Session>(s: &mut S) -> bool {
    match s.takeover_signal() {
        Some(rx) => rx.changed().await.is_ok() && *rx.borrow(),
        None => std::future::pending().await,
    }
}

/// Runs a connection until the session closes or the peer goes away. `rbuf` may already hold
/// bytes read before the session existed. Afterwards the caller releases the session's consumers
/// and then calls [`DeliveryReceiver::return_undelivered`].
pub async fn drive<S: Session>(
    io: &mut Box<dyn Transport>,
    session: &mut S,
    mut rbuf: BytesMut,
    rx: &mut DeliveryReceiver,
    broker: &Broker,
    mut shutdown: watch::Receiver<bool>,
    start: Instant,
) -> Result<(), ServeError> {
    let ms = || start.elapsed().as_millis() as u64;
    let mut events: Vec<SinkEvent> = Vec::with_capacity(MAX_EVENTS_PER_WAKE);
    if !rbuf.is_empty() {
        session.handle_bytes(&mut rbuf, ms());
    }
    let result = loop {
        if !session.output().is_empty() {
            if let Err(e) = session.output().write_to(io).await {
                break Err(e.into());
            }
            session.note_sent(ms());
        }
        if session.is_closed() {
            if session.linger_after_close() {
                let mut scratch = [0u8; 1024];
                let _ = tokio::time::timeout(CLOSE_LINGER, async {
                    while matches!(io.read(&mut scratch).await, Ok(n) if n > 0) {}
                })
                .await;
            }
            break Ok(());
        }
        if session.needs_sync() {
            if let Err(e) = broker.sync().await {
                // Nothing held may be acknowledged: the connection ends without the acks.
                tracing::error!(error = %e, "store sync failed; closing the connection");
                break Err(ServeError::Protocol(format!("store sync failed: {e}")));
            }
            session.synced();
            continue;
        }
        let deadline = session
            .poll_timeout()
            .map(|t| start + Duration::from_millis(t))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            read = io.read_buf(&mut rbuf) => match read {
                Ok(0) => break Ok(()),
                Err(e) => break Err(e.into()),
                Ok(_) => session.handle_bytes(&mut rbuf, ms()),
            },
            n = rx.recv_many(&mut events, MAX_EVENTS_PER_WAKE) => {
                if n == 0 {
                    break Ok(());
                }
                for ev in events.drain(..) {
                    session.handle_sink_event(ev);
                }
                rx.wake_queues();
            }
            _ = tokio::time::sleep_until(deadline) => session.handle_timeout(ms()),
            true = takeover(session) => session.taken_over(),
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    session.shutdown(ms());
                }
            }
        }
    };
    // Whatever the session still had to say (e.g. a DISCONNECT or ERROR) goes out if it can.
    if !session.output().is_empty() {
        let _ = session.output().write_to(io).await;
    }
    result
}
