//! junction-mqtt: the MQTT 3.1.1 and 5.0 adapter.

pub mod codec;
pub mod topic;

use async_trait::async_trait;
use junction_core::{ConnectionContext, ProtocolAdapter, ServeError, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The MQTT adapter.
#[derive(Debug, Default, Clone)]
pub struct MqttAdapter;

#[async_trait]
impl ProtocolAdapter for MqttAdapter {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    async fn serve(
        &self,
        mut io: Box<dyn Transport>,
        _ctx: ConnectionContext,
    ) -> Result<(), ServeError> {
        let mut buf = [0u8; 512];
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), io.read(&mut buf)).await;
        io.write_all(&[0x20, 0x02, 0x00, 0x03]).await?;
        io.shutdown().await?;
        Ok(())
    }
}
