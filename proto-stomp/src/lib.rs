//! junction-stomp: the STOMP adapter.
//!
//! Not implemented yet (see the STOMP issue): a client gets an ERROR frame saying so, and the
//! connection closes, so clients fail fast with a clear message instead of hanging.

use async_trait::async_trait;
use junction_core::{ConnectionContext, ProtocolAdapter, ServeError, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The STOMP adapter.
#[derive(Debug, Default, Clone)]
pub struct StompAdapter;

#[async_trait]
impl ProtocolAdapter for StompAdapter {
    fn name(&self) -> &'static str {
        "stomp"
    }

    async fn serve(
        &self,
        mut io: Box<dyn Transport>,
        _ctx: ConnectionContext,
    ) -> Result<(), ServeError> {
        let mut buf = [0u8; 512];
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), io.read(&mut buf)).await;
        let body = "STOMP is not available in this Junction build yet";
        let frame = format!(
            "ERROR\ncontent-type:text/plain\ncontent-length:{}\nmessage:STOMP not available\n\n{body}\0",
            body.len()
        );
        io.write_all(frame.as_bytes()).await?;
        io.shutdown().await?;
        Ok(())
    }
}
