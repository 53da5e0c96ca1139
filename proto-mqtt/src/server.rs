//! The connection task: an MQTT session on the shared connection driver, then its will.

use crate::registry::Registry;
use crate::session::Session;
use async_trait::async_trait;
use bytes::BytesMut;
use junction_core::runtime::driver;
use junction_core::runtime::{ConnectionContext, ProtocolAdapter, ServeError, Transport};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// The MQTT adapter. One instance (and so one registry of sessions and retained messages) serves
/// every MQTT listener of a broker.
#[derive(Debug, Clone)]
pub struct MqttAdapter {
    /// Every client's session and the retained messages.
    pub registry: Arc<Registry>,
}

impl MqttAdapter {
    /// The MQTT adapter of `broker`: sessions and retained messages live in the broker's
    /// metadata store, and every message published to `amq.topic` with `x-mqtt-retain: true`
    /// (over any protocol) becomes the retained message of its topic.
    pub fn durable(broker: &junction_core::Broker) -> MqttAdapter {
        let registry = Arc::new(Registry::durable(broker));
        let weak = Arc::downgrade(&registry);
        broker.add_publish_tap(
            "amq.topic",
            Arc::new(move |vhost, message| {
                if let Some(r) = weak.upgrade() {
                    r.retain_published(&vhost.name, message);
                }
            }),
        );
        MqttAdapter { registry }
    }
}

#[async_trait]
impl ProtocolAdapter for MqttAdapter {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    /// Serves one MQTT connection to its end, then publishes its will if one is due. (The
    /// body is here rather than in a helper: each async layer would keep its own copy of the
    /// arguments in every connection's future.)
    async fn serve(
        &self,
        io: Box<dyn Transport>,
        ctx: ConnectionContext,
    ) -> Result<(), ServeError> {
        let registry = self.registry.clone();
        let reg = registry.clone();
        driver::serve(
            io,
            ctx,
            BytesMut::new(),
            Instant::now(),
            |ctx, tx| Session::new(ctx, reg, tx, 0),
            |session| {
                let Some(will) = session.finish() else { return };
                if will.delay == 0 {
                    will.publish();
                    return;
                }
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(u64::from(will.delay))).await;
                    if !registry.reconnected_since(
                        &will.vhost.name,
                        &will.client_id,
                        will.generation,
                    ) {
                        will.publish();
                    }
                });
            },
        )
        .await
    }
}
