//! The connection task: a STOMP session on the shared connection driver.

use crate::session::{DefaultLogin, Session};
use async_trait::async_trait;
use bytes::BytesMut;
use junction_core::runtime::driver;
use junction_core::runtime::{ConnectionContext, ProtocolAdapter, ServeError, Transport};
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
    io: Box<dyn Transport>,
    ctx: ConnectionContext,
    default_login: Option<DefaultLogin>,
) -> Result<(), ServeError> {
    driver::serve(
        io,
        ctx,
        BytesMut::new(),
        Instant::now(),
        |ctx, tx| Session::new(ctx, tx, default_login, 0),
        Session::release_all,
    )
    .await
}
