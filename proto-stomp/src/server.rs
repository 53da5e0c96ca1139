//! The connection task: owns the socket and the STOMP session.

use crate::codec::{decode, Decoded};
use crate::session::{DefaultLogin, Session};
use async_trait::async_trait;
use bytes::BytesMut;
use junction_core::{sink, ConnectionContext, ProtocolAdapter, ServeError, SinkEvent, Transport};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const MAX_EVENTS_PER_WAKE: usize = 256;
/// How long a client has to send CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The STOMP adapter.
#[derive(Debug, Clone)]
pub struct StompAdapter {
    /// Used when CONNECT carries no login (RabbitMQ's `stomp.default_user`).
    pub default_login: Option<DefaultLogin>,
}

impl Default for StompAdapter {
    fn default() -> Self {
        StompAdapter {
            default_login: Some(DefaultLogin {
                login: "guest".into(),
                passcode: "guest".into(),
            }),
        }
    }
}

#[async_trait]
impl ProtocolAdapter for StompAdapter {
    fn name(&self) -> &'static str {
        "stomp"
    }

    async fn serve(
        &self,
        io: Box<dyn Transport>,
        ctx: ConnectionContext,
    ) -> Result<(), ServeError> {
        serve(io, ctx, self.default_login.clone()).await
    }
}

fn ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// Serves one STOMP connection to its end.
pub async fn serve(
    mut io: Box<dyn Transport>,
    ctx: ConnectionContext,
    default_login: Option<DefaultLogin>,
) -> Result<(), ServeError> {
    let start = Instant::now();
    let (tx, mut rx) = sink(ctx.limits.delivery_buffer);
    let mut shutdown = ctx.shutdown.clone();
    let broker = ctx.broker.clone();
    let mut session = Session::new(ctx, tx, default_login, 0);
    let mut rbuf = BytesMut::with_capacity(8 * 1024);
    let mut events: Vec<SinkEvent> = Vec::with_capacity(MAX_EVENTS_PER_WAKE);
    let connect_deadline = start + CONNECT_TIMEOUT;
    let result = loop {
        if !session.output().is_empty() {
            if let Err(e) = session.output().write_to(&mut io).await {
                break Err(e.into());
            }
            session.note_sent(ms(start));
        }
        if session.is_closed() {
            break Ok(());
        }
        if session.needs_sync() {
            if let Err(e) = broker.message_store().sync().await {
                tracing::error!(error = %e, "message store sync failed");
            }
            session.synced();
            continue;
        }
        let deadline = match session.poll_timeout() {
            Some(t) => start + Duration::from_millis(t),
            None if session.state() == crate::session::State::AwaitConnect => connect_deadline,
            None => Instant::now() + Duration::from_secs(3600),
        };
        tokio::select! {
            read = io.read_buf(&mut rbuf) => match read {
                Ok(0) => break Ok(()),
                Err(e) => break Err(e.into()),
                Ok(_) => {
                    let now = ms(start);
                    session.note_received(now);
                    loop {
                        let limits = session.codec_limits();
                        match decode(&mut rbuf, &limits, session.version()) {
                            Ok(Some(Decoded::Frame(f))) => session.handle_frame(f, now),
                            Ok(Some(Decoded::HeartBeat)) => {}
                            Ok(None) => break,
                            Err(e) => {
                                session.codec_error(&e);
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
            _ = tokio::time::sleep_until(deadline) => {
                if session.state() == crate::session::State::AwaitConnect {
                    break Ok(());
                }
                session.handle_timeout(ms(start));
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    session.shutdown();
                }
            }
        }
    };
    session.release_all();
    rx.return_undelivered();
    let _ = io.shutdown().await;
    result
}
