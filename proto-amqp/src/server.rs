//! The connection task: the protocol header, then the shared connection driver.

use crate::codec::{decode_protocol_header, PROTOCOL_HEADER};
use crate::session::Session;
use async_trait::async_trait;
use bytes::BytesMut;
use junction_core::runtime::driver;
use junction_core::runtime::{ConnectionContext, ProtocolAdapter, ServeError, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

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
        // The deadline covers the whole handshake; the driver enforces the rest of it.
        match tokio::time::timeout_at(ctx.handshake_deadline(), io.read_buf(&mut rbuf)).await {
            Ok(Ok(0)) => return Ok(()),
            Err(_) => {
                driver::handshake_expired(&ctx.broker, ctx.peer);
                return Ok(());
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
        }
    }
    driver::serve(
        io,
        ctx,
        rbuf,
        start,
        |ctx, tx| Session::new(ctx, tx, 0),
        Session::release_all,
    )
    .await
}
