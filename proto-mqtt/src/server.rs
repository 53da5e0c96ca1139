//! The connection task: an MQTT session on the shared connection driver, then its will.

use crate::codec::decode;
use crate::registry::Registry;
use crate::session::Session;
use async_trait::async_trait;
use bytes::BytesMut;
use junction_core::driver::{self, drive, Takeover};
use junction_core::{
    sink, ConnectionContext, ProtocolAdapter, ServeError, SinkEvent, Transport, WriteBuf,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

use tokio::time::Instant;

/// The MQTT adapter. One instance (and so one registry of sessions and retained messages) serves
/// every MQTT listener of a broker.
#[derive(Debug, Clone)]
pub struct MqttAdapter {
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

    async fn serve(
        &self,
        io: Box<dyn Transport>,
        ctx: ConnectionContext,
    ) -> Result<(), ServeError> {
        serve(io, ctx, self.registry.clone()).await
    }
}

impl driver::Session for Session {
    fn output(&mut self) -> &mut WriteBuf {
        Session::output(self)
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
        while !self.is_closed() {
            match decode(buf, self.level(), self.max_packet()) {
                Ok(Some(p)) => self.handle_packet(p, now),
                Ok(None) => return,
                Err(e) => {
                    self.codec_error(&e);
                    buf.clear();
                    return;
                }
            }
        }
    }

    fn handle_sink_event(&mut self, ev: SinkEvent) {
        Session::handle_sink_event(self, ev)
    }

    fn shutdown(&mut self, _now: u64) {
        Session::shutdown(self)
    }

    fn takeover_signal(&self) -> Option<&Takeover> {
        Session::takeover_signal(self)
    }

    fn taken_over(&mut self) {
        Session::taken_over(self)
    }

    fn has_published(&self) -> bool {
        Session::has_published(self)
    }

    fn peer_alive(&mut self, now: u64) {
        Session::peer_alive(self, now)
    }
}

/// Serves one MQTT connection to its end, then publishes its will if one is due.
pub async fn serve(
    mut io: Box<dyn Transport>,
    ctx: ConnectionContext,
    registry: Arc<Registry>,
) -> Result<(), ServeError> {
    let start = Instant::now();
    let (tx, mut rx) = sink(ctx.limits.delivery_buffer);
    let shutdown = ctx.shutdown.clone();
    let broker = ctx.broker.clone();
    let mut session = Session::new(ctx, registry.clone(), tx, 0);
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
    if let Some(will) = session.finish() {
        if will.delay == 0 {
            will.publish();
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(u64::from(will.delay))).await;
                if !registry.reconnected_since(&will.vhost.name, &will.client_id, will.generation) {
                    will.publish();
                }
            });
        }
    }
    rx.return_undelivered();
    let _ = io.shutdown().await;
    result
}
