//! The connection task: owns the socket and the MQTT session.

use crate::codec::decode;
use crate::registry::Registry;
use crate::session::{Session, State};
use async_trait::async_trait;
use bytes::BytesMut;
use junction_core::{sink, ConnectionContext, ProtocolAdapter, ServeError, SinkEvent, Transport};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const MAX_EVENTS_PER_WAKE: usize = 256;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The MQTT adapter. One instance (and so one registry of sessions and retained messages) serves
/// every MQTT listener of a broker.
#[derive(Debug, Default, Clone)]
pub struct MqttAdapter {
    pub registry: Arc<Registry>,
}

#[async_trait]
impl ProtocolAdapter for MqttAdapter {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    async fn serve(
        &self,
        io: Box<dyn Transport>,
        ctx: ConnectionContext,
    ) -> Result<(), ServeError> {
        serve(io, ctx, self.registry.clone()).await
    }
}

fn ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// Waits for a takeover signal, or forever when there is none yet.
async fn kicked(s: &mut Session) -> bool {
    match s.kicked() {
        Some(rx) => rx.changed().await.is_ok() && *rx.borrow(),
        None => std::future::pending().await,
    }
}

/// Serves one MQTT connection to its end.
pub async fn serve(
    mut io: Box<dyn Transport>,
    ctx: ConnectionContext,
    registry: Arc<Registry>,
) -> Result<(), ServeError> {
    let start = Instant::now();
    let (tx, mut rx) = sink(ctx.limits.delivery_buffer);
    let mut shutdown = ctx.shutdown.clone();
    let broker = ctx.broker.clone();
    let mut session = Session::new(ctx, registry.clone(), tx, 0);
    let mut rbuf = BytesMut::with_capacity(8 * 1024);
    let mut events: Vec<SinkEvent> = Vec::with_capacity(MAX_EVENTS_PER_WAKE);
    let result = loop {
        if !session.output().is_empty() {
            if let Err(e) = session.output().write_to(&mut io).await {
                break Err(e.into());
            }
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
            None if session.state() == State::AwaitConnect => start + CONNECT_TIMEOUT,
            None => Instant::now() + Duration::from_secs(3600),
        };
        tokio::select! {
            read = io.read_buf(&mut rbuf) => match read {
                Ok(0) => break Ok(()),
                Err(e) => break Err(e.into()),
                Ok(_) => {
                    let now = ms(start);
                    loop {
                        match decode(&mut rbuf, session.level(), session.max_packet()) {
                            Ok(Some(p)) => session.handle_packet(p, now),
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
                if session.state() == State::AwaitConnect {
                    break Ok(());
                }
                session.handle_timeout(ms(start));
            }
            true = kicked(&mut session) => session.taken_over(),
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    session.shutdown();
                }
            }
        }
    };
    if !session.output().is_empty() {
        let _ = session.output().write_to(&mut io).await;
    }
    if let Some(will) = session.finish() {
        if will.delay == 0 {
            will.publish(&registry);
        } else {
            let registry = registry.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(u64::from(will.delay))).await;
                if !registry.reconnected_since(&will.vhost.name, &will.client_id, will.generation) {
                    will.publish(&registry);
                }
            });
        }
    }
    rx.return_undelivered();
    let _ = io.shutdown().await;
    result
}
