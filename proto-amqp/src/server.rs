//! The connection task: the protocol header, then the shared connection driver.

use crate::codec::{decode_protocol_header, PROTOCOL_HEADER};
use crate::session::Session;
use async_trait::async_trait;
use bytes::BytesMut;
use junction_core::driver;
use junction_core::{ConnectionContext, ProtocolAdapter, ServeError, Transport};
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
