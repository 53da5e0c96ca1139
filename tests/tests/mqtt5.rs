//! MQTT 5 specifics with rumqttc's v5 client: properties, subscription options, shared
//! subscriptions, expiry, assigned client ids, and server DISCONNECT reason codes.

use bytes::Bytes;
use junction_tests::raw_mqtt::RawMqtt;
use junction_tests::{within, TestBroker};
use rumqttc::v5::mqttbytes::v5::{
    Filter, Packet, PublishProperties, RetainForwardRule, SubscribeProperties,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use std::time::Duration;
use tokio::sync::mpsc;

struct C {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Packet>,
    assigned: Option<String>,
    session_present: bool,
}

async fn connect(b: &TestBroker, id: &str, tweak: impl FnOnce(&mut MqttOptions)) -> C {
    let a = b.addrs.mqtt.unwrap();
    let mut o = MqttOptions::new(id, a.ip().to_string(), a.port());
    o.set_keep_alive(Duration::from_secs(30));
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
    let (assigned, session_present) = loop {
        if let Packet::ConnAck(a) = within(events.recv()).await.expect("CONNACK") {
            let present = a.session_present;
            break (
                a.properties.and_then(|p| p.assigned_client_identifier),
                present,
            );
        }
    };
    C {
        client,
        events,
        assigned,
        session_present,
    }
}

impl C {
    /// Waits for the PUBACK of one of our own QoS 1 publishes.
    async fn puback(&mut self) {
        loop {
            if let Packet::PubAck(_) = within(self.events.recv()).await.expect("PUBACK") {
                return;
            }
        }
    }

    async fn suback(&mut self) {
        loop {
            if let Packet::SubAck(_) = within(self.events.recv()).await.expect("SUBACK") {
                return;
            }
        }
    }

    async fn subscribe(&mut self, f: Filter, id: Option<usize>) {
        let props = SubscribeProperties {
            id,
            user_properties: vec![],
        };
        within(self.client.subscribe_many_with_properties(vec![f], props))
            .await
            .unwrap();
        self.suback().await;
    }

    async fn next(&mut self) -> rumqttc::v5::mqttbytes::v5::Publish {
        loop {
            if let Packet::Publish(p) = within(self.events.recv()).await.expect("PUBLISH") {
                return p;
            }
        }
    }

    async fn quiet(&mut self, d: Duration) {
        let end = tokio::time::Instant::now() + d;
        while let Ok(Some(p)) = tokio::time::timeout_at(end, self.events.recv()).await {
            assert!(!matches!(p, Packet::Publish(_)), "unexpected {p:?}");
        }
    }

    async fn publish(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
        props: PublishProperties,
    ) {
        within(
            self.client
                .publish_with_properties(topic, qos, retain, payload.to_vec(), props),
        )
        .await
        .unwrap();
    }
}

fn filter(path: &str, qos: QoS) -> Filter {
    Filter::new(path, qos)
}

#[tokio::test]
async fn properties_travel_and_subscription_ids_come_back() {
    let b = TestBroker::start().await;
    let mut s = connect(&b, "s", |_| {}).await;
    s.subscribe(filter("req/#", QoS::AtLeastOnce), Some(7))
        .await;
    s.subscribe(filter("req/+/x", QoS::AtLeastOnce), Some(9))
        .await;
    let p = connect(&b, "p", |_| {}).await;
    let props = PublishProperties {
        content_type: Some("application/json".into()),
        response_topic: Some("replies/p".into()),
        correlation_data: Some(Bytes::from_static(b"corr-1")),
        user_properties: vec![("tenant".into(), "acme".into())],
        ..Default::default()
    };
    p.publish("req/a/x", QoS::AtLeastOnce, false, b"{}", props)
        .await;
    let m = s.next().await;
    let got = m.properties.expect("properties");
    assert_eq!(got.content_type.as_deref(), Some("application/json"));
    assert_eq!(got.response_topic.as_deref(), Some("replies/p"));
    assert_eq!(got.correlation_data.as_deref(), Some(&b"corr-1"[..]));
    assert!(got
        .user_properties
        .contains(&("tenant".to_string(), "acme".to_string())));
    let mut ids = got.subscription_identifiers.clone();
    ids.sort();
    assert_eq!(
        ids,
        vec![7, 9],
        "one delivery carrying both subscription identifiers"
    );
    s.quiet(Duration::from_millis(300)).await;
    b.stop().await;
}

/// User properties are a list: repeated keys and their order survive MQTT 5 → MQTT 5, and an
/// AMQP consumer sees each key's first value plus the whole list in x-mqtt-user-properties.
#[tokio::test]
async fn user_properties_keep_repeated_keys_and_order() {
    let b = TestBroker::start().await;
    let mut s = connect(&b, "up-sub", |_| {}).await;
    s.subscribe(filter("up/t", QoS::AtLeastOnce), None).await;
    let (_c, ch) = junction_tests::amqp_channel(&b.amqp_uri()).await;
    let q = within(ch.queue_declare("", Default::default(), Default::default()))
        .await
        .unwrap();
    within(ch.queue_bind(
        q.name().as_str(),
        "amq.topic",
        "up.t",
        Default::default(),
        Default::default(),
    ))
    .await
    .unwrap();
    let list: Vec<(String, String)> = [("tag", "b"), ("zone", "1"), ("tag", "a"), ("tag", "b")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let p = connect(&b, "up-pub", |_| {}).await;
    let props = PublishProperties {
        user_properties: list.clone(),
        ..Default::default()
    };
    p.publish("up/t", QoS::AtLeastOnce, false, b"x", props)
        .await;
    let got = s.next().await.properties.expect("properties");
    assert_eq!(got.user_properties, list, "the list as sent, in order");
    let got = within(ch.basic_get(q.name().as_str(), Default::default()))
        .await
        .unwrap()
        .expect("a message");
    let headers = got.properties.headers().clone().expect("headers");
    let h = headers.inner();
    assert_eq!(
        h.get("tag"),
        Some(&lapin::types::AMQPValue::LongString("b".into()))
    );
    match h.get("x-mqtt-user-properties") {
        Some(lapin::types::AMQPValue::FieldArray(a)) => assert_eq!(a.as_slice().len(), 4),
        other => panic!("the list travels as an array: {other:?}"),
    }
    b.stop().await;
}

#[tokio::test]
async fn no_local_retain_as_published_and_retain_handling() {
    let b = TestBroker::start().await;
    let mut me = connect(&b, "me", |_| {}).await;
    let mut f = filter("chat/#", QoS::AtLeastOnce);
    f.nolocal = true;
    me.subscribe(f, None).await;
    me.publish(
        "chat/room",
        QoS::AtLeastOnce,
        false,
        b"my own",
        Default::default(),
    )
    .await;
    let other = connect(&b, "other", |_| {}).await;
    other
        .publish(
            "chat/room",
            QoS::AtLeastOnce,
            false,
            b"theirs",
            Default::default(),
        )
        .await;
    assert_eq!(
        &me.next().await.payload[..],
        b"theirs",
        "no-local skips my own message"
    );
    // Retain-as-published keeps the retain flag on live deliveries.
    let mut rap = connect(&b, "rap", |_| {}).await;
    let mut f = filter("state/#", QoS::AtLeastOnce);
    f.preserve_retain = true;
    rap.subscribe(f, None).await;
    other
        .publish(
            "state/lamp",
            QoS::AtLeastOnce,
            true,
            b"on",
            Default::default(),
        )
        .await;
    assert!(rap.next().await.retain);
    // Retain handling 2: no retained messages at subscribe time.
    let mut never = connect(&b, "never", |_| {}).await;
    let mut f = filter("state/#", QoS::AtLeastOnce);
    f.retain_forward_rule = RetainForwardRule::Never;
    never.subscribe(f, None).await;
    never.quiet(Duration::from_millis(300)).await;
    let mut always = connect(&b, "always", |_| {}).await;
    always
        .subscribe(filter("state/#", QoS::AtLeastOnce), None)
        .await;
    let m = always.next().await;
    assert!(m.retain && &m.payload[..] == b"on");
    b.stop().await;
}

#[tokio::test]
async fn shared_subscription_spreads_messages() {
    let b = TestBroker::start().await;
    let mut w1 = connect(&b, "w1", |_| {}).await;
    let mut w2 = connect(&b, "w2", |_| {}).await;
    w1.subscribe(filter("$share/workers/jobs/+", QoS::AtLeastOnce), None)
        .await;
    w2.subscribe(filter("$share/workers/jobs/+", QoS::AtLeastOnce), None)
        .await;
    let p = connect(&b, "p", |_| {}).await;
    for i in 0..10u8 {
        p.publish(
            "jobs/new",
            QoS::AtLeastOnce,
            false,
            &[i],
            Default::default(),
        )
        .await;
    }
    let mut got = Vec::new();
    let (mut n1, mut n2) = (0, 0);
    while got.len() < 10 {
        tokio::select! {
            m = w1.next() => { n1 += 1; got.push(m.payload[0]); }
            m = w2.next() => { n2 += 1; got.push(m.payload[0]); }
        }
    }
    got.sort();
    assert_eq!(
        got,
        (0..10).collect::<Vec<u8>>(),
        "each message once across the group"
    );
    assert!(n1 > 0 && n2 > 0, "spread across members: {n1}/{n2}");
    b.stop().await;
}

#[tokio::test]
async fn expired_messages_are_not_delivered() {
    let b = TestBroker::start().await;
    let mut s = connect(&b, "s", |o| {
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(60));
    })
    .await;
    s.subscribe(filter("news", QoS::AtLeastOnce), None).await;
    within(s.client.disconnect()).await.unwrap();
    let p = connect(&b, "p", |_| {}).await;
    let short = PublishProperties {
        message_expiry_interval: Some(1),
        ..Default::default()
    };
    p.publish("news", QoS::AtLeastOnce, false, b"stale", short)
        .await;
    let long = PublishProperties {
        message_expiry_interval: Some(3600),
        ..Default::default()
    };
    p.publish("news", QoS::AtLeastOnce, false, b"fresh", long)
        .await;
    tokio::time::sleep(Duration::from_millis(1300)).await; // the expiry itself is under test
    let mut s = connect(&b, "s", |o| {
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(60));
    })
    .await;
    let m = s.next().await;
    assert_eq!(&m.payload[..], b"fresh");
    let left = m
        .properties
        .and_then(|p| p.message_expiry_interval)
        .unwrap();
    assert!(
        (3590..=3600).contains(&left),
        "remaining interval forwarded: {left}"
    );
    s.quiet(Duration::from_millis(200)).await;
    b.stop().await;
}

/// Clean Start 0 with Session Expiry 0 resumes the stored session (Session Present 1) with
/// what was queued while the client was away; the session then ends with that connection.
#[tokio::test]
async fn resuming_with_expiry_zero_delivers_what_was_queued_then_ends_the_session() {
    let b = TestBroker::start().await;
    let persistent = |o: &mut MqttOptions| {
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(60));
    };
    let mut s = connect(&b, "resume0", persistent).await;
    assert!(!s.session_present);
    s.subscribe(filter("away", QoS::AtLeastOnce), None).await;
    within(s.client.disconnect()).await.unwrap();
    let mut p = connect(&b, "resume0-pub", |_| {}).await;
    p.publish(
        "away",
        QoS::AtLeastOnce,
        false,
        b"while away",
        Default::default(),
    )
    .await;
    p.puback().await;
    let mut s = connect(&b, "resume0", |o| {
        o.set_clean_start(false);
        o.set_session_expiry_interval(None);
    })
    .await;
    assert!(s.session_present, "the stored session is resumed");
    assert_eq!(&s.next().await.payload[..], b"while away");
    within(s.client.disconnect()).await.unwrap();
    let s = connect(&b, "resume0", persistent).await;
    assert!(!s.session_present, "expiry 0 ended the session");
    b.stop().await;
}

/// A retained message's Message Expiry Interval applies: sent with the remaining interval while
/// it lasts, not sent (and forgotten) once it has passed.
#[tokio::test]
async fn retained_messages_expire() {
    let b = TestBroker::start().await;
    let p = connect(&b, "ret-pub", |_| {}).await;
    let short = PublishProperties {
        message_expiry_interval: Some(1),
        ..Default::default()
    };
    p.publish("ret/short", QoS::AtLeastOnce, true, b"brief", short)
        .await;
    let long = PublishProperties {
        message_expiry_interval: Some(3600),
        ..Default::default()
    };
    p.publish("ret/long", QoS::AtLeastOnce, true, b"lasting", long)
        .await;
    let mut early = connect(&b, "ret-early", |_| {}).await;
    early
        .subscribe(filter("ret/#", QoS::AtLeastOnce), None)
        .await;
    let mut got = [early.next().await, early.next().await];
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(&got[1].payload[..], b"brief");
    let left = got[1]
        .properties
        .as_ref()
        .and_then(|p| p.message_expiry_interval);
    assert_eq!(left, Some(1), "the remaining interval is forwarded");
    // The expiry itself is under test: wait it out (plus the timestamp's whole second).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut late = connect(&b, "ret-late", |_| {}).await;
    late.subscribe(filter("ret/#", QoS::AtLeastOnce), None)
        .await;
    assert_eq!(&late.next().await.payload[..], b"lasting");
    late.quiet(Duration::from_millis(200)).await;
    b.stop().await;
}

#[tokio::test]
async fn empty_client_id_is_assigned() {
    let b = TestBroker::start().await;
    let c = connect(&b, "", |_| {}).await;
    assert!(
        c.assigned
            .as_deref()
            .is_some_and(|id| id.starts_with("junction-")),
        "{:?}",
        c.assigned
    );
    b.stop().await;
}

/// Writes a v5 packet with mqttbytes.
fn v5_bytes(f: impl FnOnce(&mut bytes::BytesMut)) -> bytes::BytesMut {
    let mut out = bytes::BytesMut::new();
    f(&mut out);
    out
}

/// Reads to the end of the connection: it must be exactly one DISCONNECT with `code`. Parsed by
/// hand (mqttbytes' own parser does not know every reason code the spec allows, e.g. 0x8C).
async fn expect_disconnect(raw: &mut RawMqtt, code: u8) {
    let bytes = within(raw.rest()).await;
    assert_eq!(bytes.first(), Some(&0xE0), "a DISCONNECT: {bytes:?}");
    let len = bytes[1] as usize;
    assert_eq!(
        bytes.len(),
        2 + len,
        "nothing after the DISCONNECT: {bytes:?}"
    );
    assert_eq!(bytes[2], code, "reason code: {bytes:?}");
}

#[tokio::test]
async fn server_disconnect_reason_codes() {
    let b = TestBroker::start().await;
    let a = b.addrs.mqtt.unwrap();
    // Takeover: 0x8E.
    let mut first = RawMqtt::open(a).await;
    first.connect_v5("dup").await;
    let mut second = RawMqtt::open(a).await;
    second.connect_v5("dup").await;
    expect_disconnect(&mut first, 0x8E).await;
    // Wildcard in a topic name: 0x90.
    let mut raw = RawMqtt::open(a).await;
    raw.connect_v5("w").await;
    raw.send(&v5_bytes(|o| {
        mqttbytes::v5::Publish::new("a/+", mqttbytes::QoS::AtMostOnce, b"x".to_vec())
            .write(o)
            .unwrap();
    }))
    .await;
    expect_disconnect(&mut raw, 0x90).await;
    // AUTH is refused: 0x8C.
    let mut raw = RawMqtt::open(a).await;
    raw.connect_v5("auth").await;
    raw.send(&[0xF0, 0x00]).await;
    expect_disconnect(&mut raw, 0x8C).await;
    // An unknown topic alias: 0x82; an alias past the maximum: 0x94.
    let mut raw = RawMqtt::open(a).await;
    raw.connect_v5("alias").await;
    let mut p = mqttbytes::v5::Publish::new("", mqttbytes::QoS::AtMostOnce, b"x".to_vec());
    p.properties = Some(mqttbytes::v5::PublishProperties {
        payload_format_indicator: None,
        message_expiry_interval: None,
        topic_alias: Some(3),
        response_topic: None,
        correlation_data: None,
        user_properties: vec![],
        subscription_identifiers: vec![],
        content_type: None,
    });
    raw.send(&v5_bytes(|o| {
        p.write(o).unwrap();
    }))
    .await;
    expect_disconnect(&mut raw, 0x82).await;
    b.stop().await;
}

#[tokio::test]
async fn topic_alias_from_the_client_is_resolved() {
    let b = TestBroker::start().await;
    let mut s = connect(&b, "s", |_| {}).await;
    s.subscribe(filter("long/topic/name", QoS::AtMostOnce), None)
        .await;
    let mut raw = RawMqtt::open(b.addrs.mqtt.unwrap()).await;
    raw.connect_v5("aliaser").await;
    let props = |alias| mqttbytes::v5::PublishProperties {
        payload_format_indicator: None,
        message_expiry_interval: None,
        topic_alias: Some(alias),
        response_topic: None,
        correlation_data: None,
        user_properties: vec![],
        subscription_identifiers: vec![],
        content_type: None,
    };
    for (topic, body) in [("long/topic/name", &b"first"[..]), ("", &b"second"[..])] {
        let mut p = mqttbytes::v5::Publish::new(topic, mqttbytes::QoS::AtMostOnce, body.to_vec());
        p.properties = Some(props(1));
        raw.send(&v5_bytes(|o| {
            p.write(o).unwrap();
        }))
        .await;
    }
    assert_eq!(&s.next().await.payload[..], b"first");
    let m = s.next().await;
    assert_eq!(&m.payload[..], b"second");
    b.stop().await;
}

#[tokio::test]
async fn too_large_packets_are_refused_with_0x95() {
    let b = TestBroker::start_with(|c| c.limits.max_message_size = 1024).await;
    let mut raw = RawMqtt::open(b.addrs.mqtt.unwrap()).await;
    let ack = raw.connect_v5("big").await;
    let max = ack
        .properties
        .and_then(|p| p.max_packet_size)
        .expect("maximum packet size announced");
    let payload = vec![0u8; max as usize + 10];
    raw.send(&v5_bytes(|o| {
        mqttbytes::v5::Publish::new("t", mqttbytes::QoS::AtMostOnce, payload)
            .write(o)
            .unwrap();
    }))
    .await;
    expect_disconnect(&mut raw, 0x95).await;
    b.stop().await;
}

/// A v5 CONNECT with a will delayed by `delay` seconds and a session that outlives the socket.
async fn connect_with_delayed_will(b: &TestBroker, id: &str, delay: u32) -> RawMqtt {
    let mut raw = RawMqtt::open(b.addrs.mqtt.unwrap()).await;
    let mut c = mqttbytes::v5::Connect::new(id);
    c.clean_session = false;
    c.properties = Some(mqttbytes::v5::ConnectProperties {
        session_expiry_interval: Some(30),
        receive_maximum: None,
        max_packet_size: None,
        topic_alias_max: None,
        request_response_info: None,
        request_problem_info: None,
        user_properties: vec![],
        authentication_method: None,
        authentication_data: None,
    });
    let mut will = mqttbytes::v5::LastWill::new(
        "wills",
        format!("{id} gone"),
        mqttbytes::QoS::AtMostOnce,
        false,
    );
    will.properties = Some(mqttbytes::v5::WillProperties {
        delay_interval: Some(delay),
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: vec![],
    });
    c.last_will = Some(will);
    raw.send(&v5_bytes(|o| {
        c.write(o).unwrap();
    }))
    .await;
    assert!(matches!(
        within(raw.recv_v5()).await,
        Some(mqttbytes::v5::Packet::ConnAck(_))
    ));
    raw
}

#[tokio::test]
async fn will_delay_is_cancelled_by_a_reconnect() {
    let b = TestBroker::start().await;
    let mut watcher = connect(&b, "watcher", |_| {}).await;
    watcher
        .subscribe(filter("wills", QoS::AtMostOnce), None)
        .await;
    // Drops and comes back within the delay: no will.
    let raw = connect_with_delayed_will(&b, "flaky", 1).await;
    drop(raw);
    let _back = connect_with_delayed_will(&b, "flaky", 1).await;
    // Drops for good: the will comes after the delay.
    let raw = connect_with_delayed_will(&b, "gone-for-good", 1).await;
    let dropped_at = tokio::time::Instant::now();
    drop(raw);
    let m = watcher.next().await;
    assert_eq!(&m.payload[..], b"gone-for-good gone");
    assert!(
        dropped_at.elapsed() >= Duration::from_millis(900),
        "published after the delay"
    );
    watcher.quiet(Duration::from_millis(600)).await;
    b.stop().await;
}

/// Flow control: the server never has more unacknowledged QoS 1 PUBLISHes out than the
/// client's Receive Maximum; the rest wait until the client acknowledges.
#[tokio::test]
async fn receive_maximum_bounds_what_a_silent_client_is_sent() {
    let b = TestBroker::start().await;
    let mut raw = RawMqtt::open(b.addrs.mqtt.unwrap()).await;
    let mut c = mqttbytes::v5::Connect::new("slow-acker");
    c.properties = Some(mqttbytes::v5::ConnectProperties {
        session_expiry_interval: None,
        receive_maximum: Some(2),
        max_packet_size: None,
        topic_alias_max: None,
        request_response_info: None,
        request_problem_info: None,
        user_properties: vec![],
        authentication_method: None,
        authentication_data: None,
    });
    raw.send(&v5_bytes(|o| {
        c.write(o).unwrap();
    }))
    .await;
    assert!(matches!(
        within(raw.recv_v5()).await,
        Some(mqttbytes::v5::Packet::ConnAck(_))
    ));
    let mut sub = mqttbytes::v5::Subscribe::new("flow/t", mqttbytes::QoS::AtLeastOnce);
    sub.pkid = 1;
    raw.send(&v5_bytes(|o| {
        sub.write(o).unwrap();
    }))
    .await;
    assert!(matches!(
        within(raw.recv_v5()).await,
        Some(mqttbytes::v5::Packet::SubAck(_))
    ));
    let p = connect(&b, "flow-pub", |_| {}).await;
    for i in 0..5u8 {
        p.publish("flow/t", QoS::AtLeastOnce, false, &[i], Default::default())
            .await;
    }
    let publish = |p: Option<mqttbytes::v5::Packet>| match p {
        Some(mqttbytes::v5::Packet::Publish(p)) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    };
    let first = publish(within(raw.recv_v5()).await);
    let _second = publish(within(raw.recv_v5()).await);
    // Two in flight: nothing more until one is acknowledged.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), raw.recv_v5())
            .await
            .is_err(),
        "a third PUBLISH beyond Receive Maximum 2"
    );
    raw.send(&v5_bytes(|o| {
        mqttbytes::v5::PubAck::new(first.pkid).write(o).unwrap();
    }))
    .await;
    let third = publish(within(raw.recv_v5()).await);
    assert_eq!(&third.payload[..], &[2]);
    b.stop().await;
}

/// Topic aliases from the server: with Topic Alias Maximum 1 a repeated topic is sent as the
/// alias alone after its first PUBLISH; a second topic, with no alias left, goes out in full.
#[tokio::test]
async fn the_server_sends_topic_aliases_within_the_clients_maximum() {
    let b = TestBroker::start().await;
    let mut raw = RawMqtt::open(b.addrs.mqtt.unwrap()).await;
    let mut c = mqttbytes::v5::Connect::new("aliased");
    c.properties = Some(mqttbytes::v5::ConnectProperties {
        session_expiry_interval: None,
        receive_maximum: None,
        max_packet_size: None,
        topic_alias_max: Some(1),
        request_response_info: None,
        request_problem_info: None,
        user_properties: vec![],
        authentication_method: None,
        authentication_data: None,
    });
    raw.send(&v5_bytes(|o| {
        c.write(o).unwrap();
    }))
    .await;
    assert!(matches!(
        within(raw.recv_v5()).await,
        Some(mqttbytes::v5::Packet::ConnAck(_))
    ));
    let mut sub = mqttbytes::v5::Subscribe::new("alias/#", mqttbytes::QoS::AtMostOnce);
    sub.pkid = 1;
    raw.send(&v5_bytes(|o| {
        sub.write(o).unwrap();
    }))
    .await;
    assert!(matches!(
        within(raw.recv_v5()).await,
        Some(mqttbytes::v5::Packet::SubAck(_))
    ));
    let p = connect(&b, "alias-pub", |_| {}).await;
    for t in ["alias/long/topic", "alias/long/topic", "alias/other"] {
        p.publish(t, QoS::AtMostOnce, false, b"x", Default::default())
            .await;
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        match within(raw.recv_v5()).await {
            Some(mqttbytes::v5::Packet::Publish(p)) => {
                let alias = p.properties.and_then(|pp| pp.topic_alias);
                seen.push((p.topic.clone(), alias));
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    assert_eq!(
        seen,
        vec![
            ("alias/long/topic".to_string(), Some(1)),
            (String::new(), Some(1)),
            ("alias/other".to_string(), None),
        ]
    );
    b.stop().await;
}
