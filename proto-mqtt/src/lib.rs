//! junction-mqtt: the MQTT adapter.
//!
//! Not implemented yet (see the MQTT issue): a CONNECT is answered with CONNACK "server
//! unavailable" (3.1.1 return code 3, 5.0 reason code 0x88) and the connection closes.

use async_trait::async_trait;
use junction_core::{ConnectionContext, ProtocolAdapter, ServeError, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The MQTT adapter.
#[derive(Debug, Default, Clone)]
pub struct MqttAdapter;

/// The protocol level of a CONNECT packet at the start of `b`, if it is one.
fn connect_level(b: &[u8]) -> Option<u8> {
    if b.first()? >> 4 != 1 {
        return None;
    }
    let mut i = 1;
    while *b.get(i)? & 0x80 != 0 {
        i += 1;
        if i > 4 {
            return None;
        }
    }
    let name_len = u16::from_be_bytes([*b.get(i + 1)?, *b.get(i + 2)?]) as usize;
    b.get(i + 3 + name_len).copied()
}

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
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), io.read(&mut buf))
            .await
            .unwrap_or(Ok(0))?;
        let connack: &[u8] = match connect_level(&buf[..n]) {
            Some(5) => &[0x20, 0x03, 0x00, 0x88, 0x00],
            Some(_) => &[0x20, 0x02, 0x00, 0x03],
            None => &[],
        };
        io.write_all(connack).await?;
        io.shutdown().await?;
        Ok(())
    }
}
