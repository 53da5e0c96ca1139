//! MQTT's limits on a session's subscriptions and a vhost's retained messages, with rumqttc
//! (3.1.1 and 5): the refusal each version can express, nothing else disturbed.

use junction_core::refusals::Refusal;
use junction_tests::mqtt_v5::V5Client;
use junction_tests::{within, TestBroker};
use rumqttc::v5::mqttbytes::v5::{PubAckReason, PublishProperties, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::{MqttOptions, Packet};
use std::time::Duration;

async fn limited() -> TestBroker {
    TestBroker::start_with(|c| {
        c.mqtt.max_subscriptions = 2;
        c.mqtt.max_retained_messages = 2;
    })
    .await
}

#[tokio::test]
async fn mqtt5_refuses_a_subscription_past_the_limit_with_0x97() {
    let b = limited().await;
    let mut c = V5Client::connect(b.addrs.mqtt.unwrap(), "subs5", |_| {}).await;
    let ok = SubscribeReasonCode::Success(QoS::AtLeastOnce);
    assert_eq!(c.subscribe("a/#", QoS::AtLeastOnce).await, ok);
    assert_eq!(c.subscribe("b/#", QoS::AtLeastOnce).await, ok);
    assert_eq!(
        c.subscribe("c/#", QoS::AtLeastOnce).await,
        SubscribeReasonCode::QuotaExceeded
    );
    assert_eq!(
        c.subscribe("a/#", QoS::AtLeastOnce).await,
        ok,
        "replacing a subscription is not a new one"
    );
    let refusals = b.gateway().broker().refusals();
    assert_eq!(refusals.get(Refusal::SubscriptionLimit), 1);
    // The session still works: its subscriptions deliver.
    c.publish(
        "b/x",
        QoS::AtLeastOnce,
        false,
        b"1",
        PublishProperties::default(),
    )
    .await;
    assert_eq!(c.next().await.topic, "b/x");
    b.stop().await;
}

#[tokio::test]
async fn mqtt5_refuses_a_retained_message_past_the_vhost_limit_with_0x97() {
    let b = limited().await;
    let mut c = V5Client::connect(b.addrs.mqtt.unwrap(), "ret5", |_| {}).await;
    let props = PublishProperties::default;
    for t in ["r/1", "r/2"] {
        c.publish(t, QoS::AtLeastOnce, true, b"v", props()).await;
        assert_eq!(c.puback().await, PubAckReason::NoMatchingSubscribers);
    }
    c.publish("r/3", QoS::AtLeastOnce, true, b"v", props())
        .await;
    assert_eq!(c.puback().await, PubAckReason::QuotaExceeded);
    c.publish("r/1", QoS::AtLeastOnce, true, b"new", props())
        .await;
    assert_eq!(
        c.puback().await,
        PubAckReason::NoMatchingSubscribers,
        "replacing a retained message is allowed"
    );
    // A fresh subscriber gets exactly the two retained topics, r/1 with its new value.
    let mut s = V5Client::connect(b.addrs.mqtt.unwrap(), "ret5-sub", |_| {}).await;
    s.subscribe("r/#", QoS::AtLeastOnce).await;
    let (first, second) = (s.next().await, s.next().await);
    assert_eq!(
        (&first.topic[..], &first.payload[..]),
        (&b"r/1"[..], &b"new"[..])
    );
    assert_eq!(&second.topic[..], b"r/2");
    let counts = b.gateway().broker().refusals();
    assert_eq!(counts.get(Refusal::RetainedLimit), 1);
    b.stop().await;
}

#[tokio::test]
async fn mqtt311_gets_0x80_and_keeps_its_message_unretained() {
    let b = limited().await;
    let a = b.addrs.mqtt.unwrap();
    let mut o = MqttOptions::new("lim4", a.ip().to_string(), a.port());
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = junction_tests::mqtt_v4::spawn(o);
    let mut codes = Vec::new();
    for f in ["x/#", "y/#", "z/#"] {
        client.subscribe(f, rumqttc::QoS::AtMostOnce).await.unwrap();
        loop {
            if let Packet::SubAck(s) = within(events.recv()).await.unwrap() {
                codes.push(s.return_codes[0]);
                break;
            }
        }
    }
    assert_eq!(codes[2], rumqttc::SubscribeReasonCode::Failure);
    // Fill the retained limit, then a third retained topic: delivered, not retained.
    for t in ["x/1", "x/2", "x/3"] {
        client
            .publish(t, rumqttc::QoS::AtLeastOnce, true, "v")
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 3 {
        if let Packet::Publish(p) = within(events.recv()).await.unwrap() {
            got.push(p.topic);
        }
    }
    assert_eq!(got, ["x/1", "x/2", "x/3"]);
    let mut s = V5Client::connect(a, "lim4-sub", |_| {}).await;
    s.subscribe("x/#", QoS::AtMostOnce).await;
    let retained = [s.next().await.topic, s.next().await.topic];
    assert_eq!(retained, [&b"x/1"[..], &b"x/2"[..]]);
    b.stop().await;
}
