//! MQTT 3.1.1 and 5.0 with rumqttc (and a raw socket for what it never sends) against a real
//! Junction: QoS flows, sessions, retained messages, wills, MQTT 5 extras, bad input.

use junction_tests::raw_mqtt::RawMqtt;
use junction_tests::{within, TestBroker};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

struct V4 {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Packet>,
    task: JoinHandle<()>,
    session_present: bool,
}

async fn v4(b: &TestBroker, id: &str, clean: bool, will: Option<LastWill>) -> V4 {
    let a = b.addrs.mqtt.unwrap();
    let mut o = MqttOptions::new(id, a.ip().to_string(), a.port());
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_session(clean);
    if let Some(w) = will {
        o.set_last_will(w);
    }
    let (client, mut el) = AsyncClient::new(o, 100);
    let (tx, mut events) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Ok(ev) = el.poll().await {
            if let Event::Incoming(p) = ev {
                if tx.send(p).is_err() {
                    break;
                }
            }
        }
    });
    let session_present = loop {
        match within(events.recv()).await.expect("CONNACK") {
            Packet::ConnAck(a) => {
                assert_eq!(a.code, rumqttc::ConnectReturnCode::Success);
                break a.session_present;
            }
            _ => continue,
        }
    };
    V4 {
        client,
        events,
        task,
        session_present,
    }
}

impl V4 {
    async fn subscribe(&mut self, filter: &str, qos: QoS) {
        within(self.client.subscribe(filter, qos)).await.unwrap();
        loop {
            if let Packet::SubAck(_) = within(self.events.recv()).await.expect("SUBACK") {
                return;
            }
        }
    }

    async fn publish(&self, topic: &str, qos: QoS, retain: bool, payload: &[u8]) {
        within(self.client.publish(topic, qos, retain, payload.to_vec()))
            .await
            .unwrap();
    }

    async fn next(&mut self) -> rumqttc::Publish {
        loop {
            match within(self.events.recv()).await.expect("a PUBLISH") {
                Packet::Publish(p) => return p,
                _ => continue,
            }
        }
    }

    async fn quiet(&mut self, d: Duration) {
        let end = tokio::time::Instant::now() + d;
        while let Ok(Some(p)) = tokio::time::timeout_at(end, self.events.recv()).await {
            assert!(!matches!(p, Packet::Publish(_)), "unexpected {p:?}");
        }
    }

    /// Waits until `n` acknowledgements of our own publishes arrived (PUBACK or PUBCOMP).
    async fn acked(&mut self, n: usize) {
        let mut seen = 0;
        while seen < n {
            if let Packet::PubAck(_) | Packet::PubComp(_) =
                within(self.events.recv()).await.expect("ack")
            {
                seen += 1;
            }
        }
    }

    async fn disconnect(self) {
        within(self.client.disconnect()).await.unwrap();
        let _ = within(self.task).await;
    }

    /// Drops the connection without DISCONNECT, as a crashed device would.
    fn crash(self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn qos_levels_are_capped_by_the_subscription_and_arrive_once() {
    let b = TestBroker::start().await;
    let mut sub1 = v4(&b, "sub1", true, None).await;
    let mut sub2 = v4(&b, "sub2", true, None).await;
    sub1.subscribe("sensors/+/temp", QoS::AtLeastOnce).await;
    sub2.subscribe("sensors/#", QoS::ExactlyOnce).await;
    let mut p = v4(&b, "pub", true, None).await;
    for (i, q) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        p.publish("sensors/kitchen/temp", q, false, &[i as u8])
            .await;
    }
    p.acked(2).await;
    let mut got1 = Vec::new();
    let mut got2 = Vec::new();
    for _ in 0..3 {
        let m = sub1.next().await;
        got1.push((m.payload[0], m.qos));
        let m = sub2.next().await;
        got2.push((m.payload[0], m.qos));
    }
    got1.sort_by_key(|g| g.0);
    got2.sort_by_key(|g| g.0);
    assert_eq!(
        got1,
        vec![
            (0, QoS::AtMostOnce),
            (1, QoS::AtLeastOnce),
            (2, QoS::AtLeastOnce)
        ]
    );
    assert_eq!(
        got2,
        vec![
            (0, QoS::AtMostOnce),
            (1, QoS::AtLeastOnce),
            (2, QoS::ExactlyOnce)
        ]
    );
    sub1.quiet(Duration::from_millis(300)).await;
    sub2.quiet(Duration::from_millis(100)).await;
    b.stop().await;
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_once_and_dollar_topics_are_not_wildcarded() {
    let b = TestBroker::start().await;
    let mut s = v4(&b, "s", true, None).await;
    s.subscribe("a/#", QoS::AtLeastOnce).await;
    s.subscribe("a/+/c", QoS::AtMostOnce).await;
    s.subscribe("#", QoS::AtMostOnce).await;
    let p = v4(&b, "p", true, None).await;
    p.publish("a/b/c", QoS::AtLeastOnce, false, b"x").await;
    p.publish("$SYS/broker/load", QoS::AtLeastOnce, false, b"sys")
        .await;
    let m = s.next().await;
    assert_eq!(
        (m.topic.as_str(), m.qos),
        ("a/b/c", QoS::AtLeastOnce),
        "highest granted QoS"
    );
    s.quiet(Duration::from_millis(300)).await;
    s.subscribe("$SYS/#", QoS::AtMostOnce).await;
    p.publish("$SYS/broker/load", QoS::AtMostOnce, false, b"sys")
        .await;
    assert_eq!(s.next().await.topic, "$SYS/broker/load");
    b.stop().await;
}

#[tokio::test]
async fn retained_messages_are_stored_replaced_and_cleared() {
    let b = TestBroker::start().await;
    let p = v4(&b, "p", true, None).await;
    p.publish("home/door", QoS::AtLeastOnce, true, b"open")
        .await;
    p.publish("home/door", QoS::AtLeastOnce, true, b"closed")
        .await;
    p.publish("home/window", QoS::AtMostOnce, true, b"shut")
        .await;
    let mut p = p;
    p.acked(2).await;
    let mut s = v4(&b, "s", true, None).await;
    s.subscribe("home/+", QoS::AtLeastOnce).await;
    let mut got = [s.next().await, s.next().await];
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(
        (got[0].topic.as_str(), &got[0].payload[..], got[0].retain),
        ("home/door", &b"closed"[..], true)
    );
    assert_eq!(
        (got[1].topic.as_str(), &got[1].payload[..], got[1].retain),
        ("home/window", &b"shut"[..], true)
    );
    // A live message is not flagged retained.
    p.publish("home/door", QoS::AtLeastOnce, false, b"ajar")
        .await;
    let m = s.next().await;
    assert!(!m.retain);
    // An empty retained publish clears.
    p.publish("home/door", QoS::AtLeastOnce, true, b"").await;
    let _ = s.next().await;
    let mut late = v4(&b, "late", true, None).await;
    late.subscribe("home/door", QoS::AtLeastOnce).await;
    late.quiet(Duration::from_millis(300)).await;
    b.stop().await;
}

#[tokio::test]
async fn persistent_session_keeps_subscriptions_and_queues_messages() {
    let b = TestBroker::start().await;
    let mut s = v4(&b, "device-7", false, None).await;
    assert!(!s.session_present);
    s.subscribe("cmd/device-7/#", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let mut p = v4(&b, "ctl", true, None).await;
    p.publish("cmd/device-7/reboot", QoS::AtLeastOnce, false, b"now")
        .await;
    p.publish("cmd/device-7/fw", QoS::AtMostOnce, false, b"v2")
        .await;
    p.acked(1).await;
    let mut s = v4(&b, "device-7", false, None).await;
    assert!(s.session_present);
    let m = s.next().await;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("cmd/device-7/reboot", &b"now"[..])
    );
    // A clean session throws it all away.
    s.disconnect().await;
    let s = v4(&b, "device-7", true, None).await;
    assert!(!s.session_present);
    b.stop().await;
}

#[tokio::test]
async fn will_on_crash_not_on_clean_disconnect() {
    let b = TestBroker::start().await;
    let mut watcher = v4(&b, "watcher", true, None).await;
    watcher.subscribe("status/#", QoS::AtLeastOnce).await;
    let will = |id: &str| {
        Some(LastWill::new(
            format!("status/{id}"),
            "offline",
            QoS::AtLeastOnce,
            false,
        ))
    };
    let polite = v4(&b, "polite", true, will("polite")).await;
    polite.disconnect().await;
    watcher.quiet(Duration::from_millis(300)).await;
    let crashy = v4(&b, "crashy", true, will("crashy")).await;
    crashy.crash();
    let m = watcher.next().await;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("status/crashy", &b"offline"[..])
    );
    b.stop().await;
}

#[tokio::test]
async fn keep_alive_timeout_disconnects_and_publishes_will() {
    let b = TestBroker::start().await;
    let mut watcher = v4(&b, "watcher", true, None).await;
    watcher.subscribe("gone", QoS::AtMostOnce).await;
    let mut raw = RawMqtt::open(b.addrs.mqtt.unwrap()).await;
    let mut c = mqttbytes::v4::Connect::new("silent");
    c.keep_alive = 1;
    c.last_will = Some(mqttbytes::v4::LastWill::new(
        "gone",
        "silent went away",
        mqttbytes::QoS::AtMostOnce,
        false,
    ));
    let mut out = bytes::BytesMut::new();
    c.write(&mut out).unwrap();
    raw.send(&out).await;
    let started = tokio::time::Instant::now();
    assert!(matches!(
        within(raw.recv_v4()).await,
        Some(mqttbytes::v4::Packet::ConnAck(_))
    ));
    assert!(within(raw.recv_v4()).await.is_none(), "closed for silence");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert_eq!(&watcher.next().await.payload[..], b"silent went away");
    b.stop().await;
}

#[tokio::test]
async fn second_connection_takes_the_session_over() {
    let b = TestBroker::start().await;
    let mut first = RawMqtt::open(b.addrs.mqtt.unwrap()).await;
    first.connect_v4("same-id", 0).await;
    let _second = v4(&b, "same-id", true, None).await;
    assert!(
        within(first.recv_v4()).await.is_none(),
        "first connection closed"
    );
    b.stop().await;
}

/// A connection that takes over a live persistent session (a device reconnecting before the
/// broker noticed its old connection died) resumes it: Session Present 1, subscriptions kept.
#[tokio::test]
async fn a_takeover_of_a_persistent_session_resumes_it() {
    let b = TestBroker::start().await;
    let mut first = v4(&b, "roaming", false, None).await;
    assert!(!first.session_present);
    first.subscribe("roam/t", QoS::AtLeastOnce).await;
    let publisher = v4(&b, "roam-pub", true, None).await;
    publisher
        .publish("roam/t", QoS::AtLeastOnce, false, b"one")
        .await;
    assert_eq!(&first.next().await.payload[..], b"one");
    // The old connection is still open when the new one arrives.
    let mut second = v4(&b, "roaming", false, None).await;
    assert!(second.session_present, "the live session is resumed");
    publisher
        .publish("roam/t", QoS::AtLeastOnce, false, b"two")
        .await;
    assert_eq!(&second.next().await.payload[..], b"two");
    first.crash();
    // And once more after a QoS 1 exchange and a crash without DISCONNECT.
    second.crash();
    let third = v4(&b, "roaming", false, None).await;
    assert!(third.session_present);
    b.stop().await;
}

#[tokio::test]
async fn connect_refusals_use_the_right_codes() {
    let b = TestBroker::start().await;
    let a = b.addrs.mqtt.unwrap();
    // An unknown level (6) is refused with return code 1.
    let mut raw = RawMqtt::open(a).await;
    let mut v6 = vec![0x10, 14, 0, 4];
    v6.extend_from_slice(b"MQTT");
    v6.extend_from_slice(&[6, 0x02, 0, 60, 0, 2, b'c', b'1']);
    raw.send(&v6).await;
    assert_eq!(within(raw.rest()).await, vec![0x20, 2, 0, 1]);
    // MQTT 3.1 (MQIsdp, level 3) is accepted, as by Mosquitto and RabbitMQ, and served as 3.1.1;
    // its CONNACK never sets Session Present (a reserved byte in 3.1).
    let mut raw = RawMqtt::open(a).await;
    let mut v3 = vec![0x10, 16, 0, 6];
    v3.extend_from_slice(b"MQIsdp");
    v3.extend_from_slice(&[3, 0x00, 0, 60, 0, 2, b'c', b'3']);
    raw.send(&v3).await;
    match within(raw.recv_v4()).await {
        Some(mqttbytes::v4::Packet::ConnAck(ack)) => {
            assert_eq!(ack.code, mqttbytes::v4::ConnectReturnCode::Success);
            assert!(!ack.session_present);
        }
        other => panic!("{other:?}"),
    }
    raw.subscribe_v4("old/t").await;
    // Bad password: 4.
    let mut raw = RawMqtt::open(a).await;
    let mut c = mqttbytes::v4::Connect::new("x");
    c.login = Some(mqttbytes::v4::Login::new("guest", "wrong"));
    let mut out = bytes::BytesMut::new();
    c.write(&mut out).unwrap();
    raw.send(&out).await;
    match within(raw.recv_v4()).await {
        Some(mqttbytes::v4::Packet::ConnAck(ack)) => {
            assert_eq!(
                ack.code,
                mqttbytes::v4::ConnectReturnCode::BadUserNamePassword
            )
        }
        other => panic!("{other:?}"),
    }
    // Empty client id without clean session: 2.
    let mut raw = RawMqtt::open(a).await;
    let mut c = mqttbytes::v4::Connect::new("");
    c.clean_session = false;
    let mut out = bytes::BytesMut::new();
    c.write(&mut out).unwrap();
    raw.send(&out).await;
    match within(raw.recv_v4()).await {
        Some(mqttbytes::v4::Packet::ConnAck(ack)) => {
            assert_eq!(ack.code, mqttbytes::v4::ConnectReturnCode::BadClientId)
        }
        other => panic!("{other:?}"),
    }
    b.stop().await;
}

#[tokio::test]
async fn qos2_resend_is_routed_once() {
    let b = TestBroker::start().await;
    let mut s = v4(&b, "s", true, None).await;
    s.subscribe("x", QoS::ExactlyOnce).await;
    let mut raw = RawMqtt::open(b.addrs.mqtt.unwrap()).await;
    raw.connect_v4("q2", 0).await;
    let mut p = mqttbytes::v4::Publish::new("x", mqttbytes::QoS::ExactlyOnce, b"once".to_vec());
    p.pkid = 9;
    let mut out = bytes::BytesMut::new();
    p.write(&mut out).unwrap();
    raw.send(&out).await;
    assert!(
        matches!(within(raw.recv_v4()).await, Some(mqttbytes::v4::Packet::PubRec(r)) if r.pkid == 9)
    );
    // The same packet again, as after a lost PUBREC.
    p.dup = true;
    let mut out = bytes::BytesMut::new();
    p.write(&mut out).unwrap();
    raw.send(&out).await;
    assert!(
        matches!(within(raw.recv_v4()).await, Some(mqttbytes::v4::Packet::PubRec(r)) if r.pkid == 9)
    );
    let mut rel = bytes::BytesMut::new();
    mqttbytes::v4::PubRel::new(9).write(&mut rel).unwrap();
    raw.send(&rel).await;
    assert!(
        matches!(within(raw.recv_v4()).await, Some(mqttbytes::v4::Packet::PubComp(r)) if r.pkid == 9)
    );
    assert_eq!(&s.next().await.payload[..], b"once");
    s.quiet(Duration::from_millis(300)).await;
    b.stop().await;
}

#[tokio::test]
async fn bad_input_closes_only_that_connection() {
    let b = TestBroker::start().await;
    let mut ok = v4(&b, "bystander", true, None).await;
    ok.subscribe("t", QoS::AtMostOnce).await;
    let a = b.addrs.mqtt.unwrap();
    // A wildcard in a PUBLISH topic.
    let mut raw = RawMqtt::open(a).await;
    raw.connect_v4("bad1", 0).await;
    raw.send(&[0x30, 5, 0, 3, b'a', b'/', b'#']).await;
    assert!(within(raw.recv_v4()).await.is_none());
    // A second CONNECT.
    let mut raw = RawMqtt::open(a).await;
    raw.connect_v4("bad2", 0).await;
    let mut out = bytes::BytesMut::new();
    mqttbytes::v4::Connect::new("bad2").write(&mut out).unwrap();
    raw.send(&out).await;
    assert!(within(raw.recv_v4()).await.is_none());
    // Garbage, and a packet announcing 200 MB.
    for junk in [
        &[0x30u8, 0xff, 0xff, 0xff, 0x7f][..],
        &[0x00, 0x00][..],
        &[0x30, 3, 0, 9, b'a'][..],
    ] {
        let mut raw = RawMqtt::open(a).await;
        raw.connect_v4("bad3", 0).await;
        raw.send(junk).await;
        assert!(within(raw.recv_v4()).await.is_none(), "{junk:?}");
    }
    let p = v4(&b, "p", true, None).await;
    p.publish("t", QoS::AtMostOnce, false, b"still fine").await;
    assert_eq!(&ok.next().await.payload[..], b"still fine");
    b.stop().await;
}

/// A publisher's PUBACKs wait at most for the turn of a subscriber its publish woke, never for
/// that subscriber's socket: one that stops reading holds up no one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_holds_up_no_puback() {
    let b = TestBroker::start().await;
    let mut stalled = RawMqtt::open(b.addrs.mqtt.unwrap()).await;
    stalled.connect_v4("stalled", 0).await;
    within(stalled.subscribe_v4("feed/#")).await;
    let mut healthy = v4(&b, "healthy", true, None).await;
    healthy.subscribe("feed/#", QoS::AtMostOnce).await;
    let mut publisher = v4(&b, "publisher", true, None).await;
    let body = vec![5u8; 8192];
    let n = 2_000;
    let sending = {
        let client = publisher.client.clone();
        let body = body.clone();
        tokio::spawn(async move {
            for _ in 0..n {
                within(client.publish("feed/x", QoS::AtLeastOnce, false, body.clone()))
                    .await
                    .unwrap();
            }
        })
    };
    // 16 MB through: far beyond what the stalled socket can buffer.
    for _ in 0..n {
        assert_eq!(healthy.next().await.payload.len(), body.len());
    }
    publisher.acked(n).await;
    within(sending).await.unwrap();
    b.stop().await;
}

#[tokio::test]
async fn mqtt_publish_reaches_an_amqp_queue_bound_to_amq_topic() {
    use lapin::options::*;
    let b = TestBroker::start().await;
    let conn = within(lapin::Connection::connect(
        &b.amqp_uri(),
        lapin::ConnectionProperties::default(),
    ))
    .await
    .unwrap();
    let ch = within(conn.create_channel()).await.unwrap();
    within(ch.queue_declare(
        "backend",
        QueueDeclareOptions::default(),
        Default::default(),
    ))
    .await
    .unwrap();
    within(ch.queue_bind(
        "backend",
        "amq.topic",
        "sensors.*.temp",
        QueueBindOptions::default(),
        Default::default(),
    ))
    .await
    .unwrap();
    let mut p = v4(&b, "thermo", true, None).await;
    p.publish("sensors/kitchen/temp", QoS::AtLeastOnce, false, b"21.5")
        .await;
    p.acked(1).await;
    let m = within(ch.basic_get("backend", BasicGetOptions { no_ack: true }))
        .await
        .unwrap()
        .expect("message");
    assert_eq!(m.delivery.data, b"21.5");
    assert_eq!(m.delivery.routing_key.as_str(), "sensors.kitchen.temp");
    assert_eq!(*m.delivery.properties.delivery_mode(), Some(2));
    let headers = m.delivery.properties.headers().clone().unwrap();
    assert_eq!(
        headers.inner().get("x-mqtt-client-id"),
        Some(&lapin::types::AMQPValue::LongString("thermo".into()))
    );
    b.stop().await;
}
