//! An MQTT 5 client (rumqttc) whose incoming packets arrive on a channel, for tests.

use crate::within;
use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{
    Filter, Packet, PubAckReason, Publish, PublishProperties, SubscribeReasonCode,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

/// A connected MQTT 5 client.
pub struct V5Client {
    /// The client.
    pub client: AsyncClient,
    /// Packets received.
    pub events: mpsc::UnboundedReceiver<Packet>,
}

impl V5Client {
    /// Connects (clean start, 2 MiB packets both ways) after `tweak` adjusted the options.
    pub async fn connect(
        addr: SocketAddr,
        id: &str,
        tweak: impl FnOnce(&mut MqttOptions),
    ) -> V5Client {
        let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        o.set_keep_alive(Duration::from_secs(30));
        o.set_max_packet_size(Some(4 << 20));
        tweak(&mut o);
        let (client, mut el) = AsyncClient::new(o, 100);
        let (tx, mut events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(ev) = el.poll().await {
                if let Event::Incoming(p) = ev {
                    if tx.send(p).is_err() {
                        break;
                    }
                }
            }
        });
        loop {
            if let Packet::ConnAck(_) = within(events.recv()).await.expect("CONNACK") {
                break;
            }
        }
        V5Client { client, events }
    }

    /// Subscribes and waits for the SUBACK; its reason code.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> SubscribeReasonCode {
        within(self.client.subscribe_many(vec![Filter::new(filter, qos)]))
            .await
            .expect("subscribe queued");
        loop {
            if let Packet::SubAck(a) = within(self.events.recv()).await.expect("SUBACK") {
                return a.return_codes[0];
            }
        }
    }

    /// The next PUBACK's reason code.
    pub async fn puback(&mut self) -> PubAckReason {
        loop {
            if let Packet::PubAck(a) = within(self.events.recv()).await.expect("a PUBACK") {
                return a.reason;
            }
        }
    }

    /// The next PUBLISH.
    pub async fn next(&mut self) -> Publish {
        loop {
            if let Packet::Publish(p) = within(self.events.recv()).await.expect("a PUBLISH") {
                return p;
            }
        }
    }

    /// Publishes with properties.
    pub async fn publish(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
        props: PublishProperties,
    ) {
        within(self.client.publish_with_properties(
            topic,
            qos,
            retain,
            Bytes::copy_from_slice(payload),
            props,
        ))
        .await
        .expect("publish queued");
    }
}
