//! The connection task: a STOMP session on the shared connection driver.

use crate::session::{DefaultLogin, Session};
use async_trait::async_trait;
use bytes::BytesMut;
use junction_core::driver::drive;
use junction_core::{sink, ConnectionContext, ProtocolAdapter, ServeError, Transport};
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
