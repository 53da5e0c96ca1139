//! The connection task: a STOMP session on the shared connection driver.

use crate::codec::{decode, Decoded};
use crate::session::{DefaultLogin, Session};
use async_trait::async_trait;
use bytes::BytesMut;
use junction_core::driver::{self, drive};
use junction_core::{
    sink, ConnectionContext, ProtocolAdapter, ServeError, SinkEvent, Transport, WriteBuf,
};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

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

impl driver::Session for Session {
    fn output(&mut self) -> &mut WriteBuf {
        Session::output(self)
    }

    fn note_sent(&mut self, now: u64) {
        Session::note_sent(self, now)
    }

    fn is_closed(&self) -> bool {
        Session::is_closed(self)
    }

    fn needs_sync(&self) -> bool {
        Session::needs_sync(self)
    }

    fn sync_started(&mut self) {
        Session::sync_started(self)
    }

    fn synced(&mut self) {
        Session::synced(self)
    }

    fn poll_timeout(&self) -> Option<u64> {
        Session::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: u64) {
        Session::handle_timeout(self, now)
    }

    fn handle_bytes(&mut self, buf: &mut BytesMut, now: u64) {
        self.note_received(now);
        while !self.is_closed() {
            match decode(buf, &self.codec_limits(), self.version()) {
                Ok(Some(Decoded::Frame(f))) => self.handle_frame(f, now),
                Ok(Some(Decoded::HeartBeat)) => {}
                Ok(None) => return,
                Err(e) => {
                    self.codec_error(&e);
                    buf.clear();
                    return;
                }
            }
        }
    }

    fn has_published(&self) -> bool {
        Session::has_published(self)
    }

    fn peer_alive(&mut self, now: u64) {
        Session::note_received(self, now)
    }

    fn handle_sink_event(&mut self, ev: SinkEvent) {
        Session::handle_sink_event(self, ev)
    }

    fn shutdown(&mut self, _now: u64) {
        Session::shutdown(self)
    }
}

/// Serves one STOMP connection to its end.
pub async fn serve(
    mut io: Box<dyn Transport>,
    ctx: ConnectionContext,
    default_login: Option<DefaultLogin>,
) -> Result<(), ServeError> {
    let start = Instant::now();
    let (tx, mut rx) = sink(ctx.limits.delivery_buffer);
    let shutdown = ctx.shutdown.clone();
    let broker = ctx.broker.clone();
    let mut session = Session::new(ctx, tx, default_login, 0);
    let result = drive(
        &mut io,
        &mut session,
        BytesMut::new(),
        &mut rx,
        &broker,
        shutdown,
        start,
    )
    .await;
    session.release_all();
    rx.return_undelivered();
    let _ = io.shutdown().await;
    result
}
