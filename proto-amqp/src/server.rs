//! The connection task: the protocol header, then the shared connection driver.

use crate::codec::{decode, decode_protocol_header, PROTOCOL_HEADER};
use crate::session::Session;
use async_trait::async_trait;
use bytes::BytesMut;
use junction_core::driver::{self, drive};
use junction_core::{
    sink, ConnectionContext, ProtocolAdapter, ServeError, SinkEvent, Transport, WriteBuf,
};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

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
        // Every complete frame in the buffer; it holds at most one read plus one partial frame
        // (bounded by frame_max).
        while !self.is_closed() {
            match decode(buf, &self.codec_limits()) {
                Ok(Some(frame)) => self.handle_frame(frame, now),
                Ok(None) => return,
                Err(e) => {
                    self.codec_error(&e, now);
                    buf.clear();
                    return;
                }
            }
        }
    }

    fn handle_sink_event(&mut self, ev: SinkEvent) {
        Session::handle_sink_event(self, ev)
    }

    fn shutdown(&mut self, now: u64) {
        Session::shutdown(self, now)
    }

    fn linger_after_close(&self) -> bool {
        true
    }

    fn has_published(&self) -> bool {
        Session::has_published(self)
    }

    fn resource_alarm(&mut self, reason: Option<&str>) {
        Session::resource_alarm(self, reason)
    }

    fn peer_alive(&mut self, now: u64) {
        Session::peer_alive(self, now)
    }
}

/// Serves one AMQP connection to its end.
pub async fn serve(mut io: Box<dyn Transport>, ctx: ConnectionContext) -> Result<(), ServeError> {
    let start = Instant::now();
    let mut rbuf = BytesMut::with_capacity(512);
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
    let shutdown = ctx.shutdown.clone();
    let broker = ctx.broker.clone();
    let mut session = Session::new(ctx, tx, 0);
    let result = drive(
        &mut io,
        &mut session,
        rbuf,
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
