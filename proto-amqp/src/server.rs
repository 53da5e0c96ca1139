//! The connection task: owns the socket and the session, and moves bytes between them.

use crate::codec::{self, decode, decode_protocol_header, PROTOCOL_HEADER};
use crate::session::Session;
use async_trait::async_trait;
use bytes::BytesMut;
use junction_core::{sink, ConnectionContext, ProtocolAdapter, ServeError, SinkEvent, Transport};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// Sink events handled per wake-up.
const MAX_EVENTS_PER_WAKE: usize = 256;
/// How long to wait for the client to close its end after the close handshake.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// How long a client has to send the protocol header.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The AMQP 0-9-1 adapter.
#[derive(Debug, Default, Clone)]
pub struct AmqpAdapter;

#[async_trait]
impl ProtocolAdapter for AmqpAdapter {
    fn name(&self) -> &'static str {
        "amqp"
    }

    async fn serve(
        &self,
        io: Box<dyn Transport>,
        ctx: ConnectionContext,
    ) -> Result<(), ServeError> {
        serve(io, ctx).await
    }
}

fn ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// Serves one AMQP connection to its end.
pub async fn serve(mut io: Box<dyn Transport>, ctx: ConnectionContext) -> Result<(), ServeError> {
    let start = Instant::now();
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    // The protocol header.
    loop {
        match decode_protocol_header(&mut rbuf) {
            Ok(Some(())) => break,
            Ok(None) => {}
            Err(_) => {
                let _ = io.write_all(PROTOCOL_HEADER).await;
                let _ = io.shutdown().await;
                return Err(ServeError::Protocol("bad AMQP protocol header".into()));
            }
        }
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, io.read_buf(&mut rbuf)).await {
            Ok(Ok(0)) | Err(_) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
        }
    }
    let (tx, mut rx) = sink(ctx.limits.delivery_buffer);
    let mut shutdown = ctx.shutdown.clone();
    let broker = ctx.broker.clone();
    let mut session = Session::new(ctx, tx, ms(start));
    let mut events: Vec<SinkEvent> = Vec::with_capacity(MAX_EVENTS_PER_WAKE);
    let result = loop {
        if !session.output().is_empty() {
            if let Err(e) = session.output().write_to(&mut io).await {
                break Err(e.into());
            }
            session.note_sent(ms(start));
        }
        if session.is_closed() {
            // As RabbitMQ does, let the client close the socket first after close-ok.
            let mut sink_buf = [0u8; 1024];
            let _ = tokio::time::timeout(CLOSE_LINGER, async {
                while matches!(io.read(&mut sink_buf).await, Ok(n) if n > 0) {}
            })
            .await;
            break Ok(());
        }
        if session.needs_sync() {
            if let Err(e) = broker.message_store().sync().await {
                tracing::error!(error = %e, "message store sync failed");
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
                Ok(_) => {
                    let now = ms(start);
                    // Every complete frame in the buffer; the buffer holds at most one read
                    // plus one partial frame (bounded by frame_max).
                    loop {
                        let limits: codec::Limits = session.codec_limits();
                        match decode(&mut rbuf, &limits) {
                            Ok(Some(frame)) => session.handle_frame(frame, now),
                            Ok(None) => break,
                            Err(e) => {
                                session.codec_error(&e, now);
                                rbuf.clear();
                                break;
                            }
                        }
                        if session.is_closed() {
                            break;
                        }
                    }
                }
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
            _ = tokio::time::sleep_until(deadline) => session.handle_timeout(ms(start)),
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    session.shutdown(ms(start));
                }
            }
        }
    };
    session.release_all();
    rx.return_undelivered();
    let _ = io.shutdown().await;
    result
}
