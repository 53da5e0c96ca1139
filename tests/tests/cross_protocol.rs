//! One publish, every protocol: the 3×3 matrix (MQTT, STOMP, AMQP publishers × subscribers),
//! property mapping both ways, redelivery whatever the publisher, request/response across
//! protocols, and retained messages published without MQTT.

use futures::StreamExt;
use junction_stomp::codec::{Command as Stomp, Frame};
use junction_tests::mqtt_v5::V5Client;
use junction_tests::raw_mqtt::RawMqtt;
use junction_tests::raw_stomp::{frame, StompClient};
use junction_tests::{amqp_channel, within, TestBroker};
use lapin::options::*;
use lapin::types::{AMQPValue, FieldArray, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, Consumer};
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use rumqttc::v5::mqttbytes::QoS;

async fn amqp(b: &TestBroker) -> (Connection, Channel) {
    amqp_channel(&b.amqp_uri()).await
}

/// A server-named exclusive queue bound to `amq.topic` with `key`, and a consumer on it.
async fn amqp_topic_consumer(ch: &Channel, key: &str, no_ack: bool) -> (String, Consumer) {
    let q = within(ch.queue_declare(
        "",
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let name = q.name().as_str().to_string();
    within(ch.queue_bind(
        &name,
        "amq.topic",
        key,
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let consumer = within(ch.basic_consume(
        &name,
        "",
        BasicConsumeOptions {
            no_ack,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    (name, consumer)
}

async fn next_delivery(c: &mut Consumer) -> lapin::message::Delivery {
    within(c.next())
        .await
        .expect("consumer open")
        .expect("a delivery")
}

fn header<'a>(t: &'a FieldTable, k: &str) -> Option<&'a AMQPValue> {
    t.inner().get(k)
}

fn long_str(v: Option<&AMQPValue>) -> Option<String> {
    match v {
        Some(AMQPValue::LongString(s)) => Some(s.to_string()),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Proto {
    Mqtt,
    Stomp,
    Amqp,
}

/// The bodies every cell carries: binary with NULs, non-UTF-8, empty, 1 MB.
fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("nul-binary", b"\x00\x01\x02 temp=21.5 \x00\xff".to_vec()),
        ("non-utf8", vec![0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1]),
        ("empty", Vec::new()),
        (
            "one-megabyte",
            (0..1_000_000u32).map(|i| (i % 251) as u8).collect(),
        ),
    ]
}

struct Subscribers {
    mqtt: V5Client,
    stomp: StompClient,
    amqp: Consumer,
    _amqp_conn: Connection,
}

struct Publishers {
    mqtt: V5Client,
    stomp: StompClient,
    amqp: Channel,
    _amqp_conn: Connection,
}

impl Publishers {
    /// Publishes `body` on `sensors/kitchen/temp` (MQTT) = `sensors.kitchen.temp` (STOMP,
    /// AMQP) with a content type, a correlation id, a custom header and a reply address.
    async fn publish(&mut self, proto: Proto, body: &[u8], stomp_dest: &str) {
        match proto {
            Proto::Mqtt => {
                let props = PublishProperties {
                    content_type: Some("application/octet-stream".into()),
                    correlation_data: Some(bytes::Bytes::from_static(b"corr-1")),
                    response_topic: Some("replies/kitchen".into()),
                    user_properties: vec![("site".into(), "kitchen".into())],
                    ..Default::default()
                };
                self.mqtt
                    .publish("sensors/kitchen/temp", QoS::AtLeastOnce, false, body, props)
                    .await;
            }
            Proto::Stomp => {
                let len = body.len().to_string();
                let f = frame(
                    Stomp::Send,
                    &[
                        ("destination", stomp_dest),
                        ("content-length", &len),
                        ("content-type", "application/octet-stream"),
                        ("correlation-id", "corr-1"),
                        ("reply-to", "/topic/replies.kitchen"),
                        ("site", "kitchen"),
                    ],
                    body,
                );
                within(self.stomp.send_with_receipt(f, "sent")).await;
            }
            Proto::Amqp => {
                let mut h = FieldTable::default();
                h.insert("site".into(), AMQPValue::LongString("kitchen".into()));
                let props = BasicProperties::default()
                    .with_content_type(ShortString::from("application/octet-stream"))
                    .with_correlation_id(ShortString::from("corr-1"))
                    .with_reply_to(ShortString::from("/topic/replies.kitchen"))
                    .with_headers(h);
                within(self.amqp.basic_publish(
                    "amq.topic",
                    "sensors.kitchen.temp",
                    BasicPublishOptions::default(),
                    body,
                    props,
                ))
                .await
                .unwrap()
                .await
                .unwrap();
            }
        }
    }
}

async fn subscribers(b: &TestBroker) -> Subscribers {
    let mut mqtt = V5Client::connect(b.addrs.mqtt.unwrap(), "matrix-sub", |_| {}).await;
    mqtt.subscribe("sensors/+/temp", QoS::AtLeastOnce).await;
    let (mut stomp, _) = StompClient::connect(b.addrs.stomp.unwrap()).await;
    stomp.subscribe("s1", "/topic/sensors.*.temp", &[]).await;
    let (conn, ch) = amqp(b).await;
    let (_, amqp) = amqp_topic_consumer(&ch, "sensors.*.temp", true).await;
    Subscribers {
        mqtt,
        stomp,
        amqp,
        _amqp_conn: conn,
    }
}

async fn publishers(b: &TestBroker) -> Publishers {
    let mqtt = V5Client::connect(b.addrs.mqtt.unwrap(), "matrix-pub", |_| {}).await;
    let (stomp, _) = StompClient::connect(b.addrs.stomp.unwrap()).await;
    let (conn, amqp) = amqp(b).await;
    within(amqp.confirm_select(ConfirmSelectOptions::default()))
        .await
        .unwrap();
    Publishers {
        mqtt,
        stomp,
        amqp,
        _amqp_conn: conn,
    }
}

async fn stomp_message(c: &mut StompClient) -> Frame {
    let f = within(c.recv()).await.expect("a STOMP frame");
    assert_eq!(f.command, Stomp::Message, "{f:?}");
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_publisher_reaches_every_subscriber_once_with_its_properties() {
    let b = TestBroker::start().await;
    let mut subs = subscribers(&b).await;
    let mut pubs = publishers(&b).await;
    for from in [Proto::Mqtt, Proto::Stomp, Proto::Amqp] {
        for (i, (kind, body)) in bodies().into_iter().enumerate() {
            // STOMP publishes through /topic/ and /exchange/ alike.
            let dest = if i % 2 == 0 {
                "/topic/sensors.kitchen.temp"
            } else {
                "/exchange/amq.topic/sensors.kitchen.temp"
            };
            pubs.publish(from, &body, dest).await;
            let cell = format!("{from:?} → {{}} ({kind})");

            // MQTT 5 subscriber.
            let m = subs.mqtt.next().await;
            let at = cell.replace("{}", "MQTT");
            assert_eq!(m.payload.as_ref(), body.as_slice(), "{at}: body");
            assert_eq!(m.topic.as_ref(), b"sensors/kitchen/temp", "{at}");
            let p = m.properties.clone().expect("MQTT 5 properties");
            assert_eq!(
                p.content_type.as_deref(),
                Some("application/octet-stream"),
                "{at}"
            );
            assert_eq!(p.correlation_data.as_deref(), Some(&b"corr-1"[..]), "{at}");
            assert_eq!(p.response_topic.as_deref(), Some("replies/kitchen"), "{at}");
            assert!(
                p.user_properties
                    .contains(&("site".into(), "kitchen".into())),
                "{at}: {:?}",
                p.user_properties
            );

            // STOMP subscriber.
            let f = stomp_message(&mut subs.stomp).await;
            let at = cell.replace("{}", "STOMP");
            assert_eq!(f.body.as_ref(), body.as_slice(), "{at}: body");
            assert_eq!(
                f.header("destination"),
                Some("/topic/sensors.kitchen.temp"),
                "{at}"
            );
            assert_eq!(
                f.header("content-type"),
                Some("application/octet-stream"),
                "{at}"
            );
            assert_eq!(f.header("correlation-id"), Some("corr-1"), "{at}");
            assert_eq!(f.header("reply-to"), Some("/topic/replies.kitchen"), "{at}");
            assert_eq!(f.header("site"), Some("kitchen"), "{at}");

            // AMQP subscriber.
            let d = next_delivery(&mut subs.amqp).await;
            let at = cell.replace("{}", "AMQP");
            assert_eq!(d.data, body, "{at}: body");
            assert_eq!(d.routing_key.as_str(), "sensors.kitchen.temp", "{at}");
            let props = &d.properties;
            assert_eq!(
                props.content_type().as_ref().map(|s| s.as_str()),
                Some("application/octet-stream"),
                "{at}"
            );
            assert_eq!(
                props.correlation_id().as_ref().map(|s| s.as_str()),
                Some("corr-1"),
                "{at}"
            );
            assert_eq!(
                props.reply_to().as_ref().map(|s| s.as_str()),
                Some("/topic/replies.kitchen"),
                "{at}"
            );
            let h = props.headers().clone().unwrap_or_default();
            assert_eq!(
                long_str(header(&h, "site")).as_deref(),
                Some("kitchen"),
                "{at}"
            );
            if from == Proto::Mqtt {
                // RabbitMQ's headers for what AMQP has no property for.
                assert_eq!(
                    long_str(header(&h, "x-reply-to-topic")).as_deref(),
                    Some("replies/kitchen"),
                    "{at}"
                );
                assert_eq!(
                    long_str(header(&h, "x-mqtt-client-id")).as_deref(),
                    Some("matrix-pub"),
                    "{at}"
                );
                assert_eq!(
                    long_str(header(&h, "x-mqtt-user")).as_deref(),
                    Some("guest")
                );
                assert_eq!(props.delivery_mode(), &Some(2), "{at}: QoS 1 → persistent");
            }
        }
    }
    // Exactly once: the next message each subscriber sees is this end marker.
    pubs.publish(Proto::Amqp, b"end", "").await;
    assert_eq!(subs.mqtt.next().await.payload.as_ref(), b"end");
    assert_eq!(stomp_message(&mut subs.stomp).await.body.as_ref(), b"end");
    assert_eq!(next_delivery(&mut subs.amqp).await.data, b"end");
    b.stop().await;
}

#[tokio::test]
async fn values_other_protocols_cannot_express_are_encoded_not_dropped() {
    let b = TestBroker::start().await;
    let mut mqtt = V5Client::connect(b.addrs.mqtt.unwrap(), "nested-sub", |_| {}).await;
    mqtt.subscribe("nested/#", QoS::AtMostOnce).await;
    let mut v3 = RawMqtt::open(b.addrs.mqtt.unwrap()).await;
    v3.connect_v4("nested-v3", 30).await;
    within(v3.subscribe_v4("nested/#")).await;
    let (mut stomp, _) = StompClient::connect(b.addrs.stomp.unwrap()).await;
    stomp.subscribe("n", "/topic/nested.#", &[]).await;
    let (_c, ch) = amqp(&b).await;
    let mut inner = FieldTable::default();
    inner.insert("count".into(), AMQPValue::LongLongInt(2));
    let mut h = FieldTable::default();
    h.insert("table".into(), AMQPValue::FieldTable(inner));
    h.insert(
        "list".into(),
        AMQPValue::FieldArray(FieldArray::from(vec![
            AMQPValue::LongInt(1),
            AMQPValue::LongString("two".into()),
        ])),
    );
    h.insert("flag".into(), AMQPValue::Boolean(true));
    within(ch.basic_publish(
        "amq.topic",
        "nested.x",
        BasicPublishOptions::default(),
        b"payload",
        BasicProperties::default().with_headers(h),
    ))
    .await
    .unwrap();
    let m = mqtt.next().await;
    let up = m.properties.expect("properties").user_properties;
    assert!(
        up.contains(&("table".into(), r#"{"count":2}"#.into())),
        "{up:?}"
    );
    assert!(
        up.contains(&("list".into(), r#"[1,"two"]"#.into())),
        "{up:?}"
    );
    assert!(up.contains(&("flag".into(), "true".into())), "{up:?}");
    let f = stomp_message(&mut stomp).await;
    assert_eq!(f.header("table"), Some(r#"{"count":2}"#));
    assert_eq!(f.header("list"), Some(r#"[1,"two"]"#));
    // MQTT 3.1.1 has no headers: the body alone arrives.
    match within(v3.recv_v4()).await {
        Some(mqttbytes::v4::Packet::Publish(p)) => assert_eq!(p.payload.as_ref(), b"payload"),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
    b.stop().await;
}

#[tokio::test]
async fn an_unacked_message_is_redelivered_whatever_protocol_published_it() {
    let b = TestBroker::start().await;
    let (_c, setup) = amqp(&b).await;
    for q in ["jobs-amqp", "jobs-stomp"] {
        within(setup.queue_declare(q, QueueDeclareOptions::default(), FieldTable::default()))
            .await
            .unwrap();
        within(setup.queue_bind(
            q,
            "amq.topic",
            "jobs.*",
            QueueBindOptions::default(),
            FieldTable::default(),
        ))
        .await
        .unwrap();
    }
    let publisher = V5Client::connect(b.addrs.mqtt.unwrap(), "job-maker", |_| {}).await;
    publisher
        .publish(
            "jobs/1",
            QoS::AtLeastOnce,
            false,
            b"job-1",
            Default::default(),
        )
        .await;

    // AMQP manual-ack consumer takes it and goes away without acking.
    let (c1, ch1) = amqp(&b).await;
    let mut first = within(ch1.basic_consume(
        "jobs-amqp",
        "",
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let d = next_delivery(&mut first).await;
    assert_eq!((d.data.as_slice(), d.redelivered), (&b"job-1"[..], false));
    within(c1.close(200, "bye")).await.unwrap();
    let (_c2, ch2) = amqp(&b).await;
    let mut second = within(ch2.basic_consume(
        "jobs-amqp",
        "",
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let d = next_delivery(&mut second).await;
    assert_eq!((d.data.as_slice(), d.redelivered), (&b"job-1"[..], true));

    // STOMP client-ack subscriber likewise.
    let (mut s1, _) = StompClient::connect(b.addrs.stomp.unwrap()).await;
    s1.subscribe("j", "/amq/queue/jobs-stomp", &[("ack", "client")])
        .await;
    let m = stomp_message(&mut s1).await;
    assert_eq!(m.body.as_ref(), b"job-1");
    assert_eq!(m.header("redelivered"), Some("false"));
    drop(s1);
    let (mut s2, _) = StompClient::connect(b.addrs.stomp.unwrap()).await;
    s2.subscribe("j", "/amq/queue/jobs-stomp", &[("ack", "client")])
        .await;
    let m = stomp_message(&mut s2).await;
    assert_eq!(m.body.as_ref(), b"job-1");
    assert_eq!(m.header("redelivered"), Some("true"));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_mqtt_qos0_subscriber_slows_no_one() {
    let b = TestBroker::start().await;
    // Subscribes at QoS 0 and never reads its socket again.
    let mut stalled = RawMqtt::open(b.addrs.mqtt.unwrap()).await;
    stalled.connect_v4("stalled", 0).await;
    within(stalled.subscribe_v4("firehose/#")).await;
    let (_c, ch) = amqp(&b).await;
    let (_, mut healthy) = amqp_topic_consumer(&ch, "firehose.#", true).await;
    let (_p, publisher) = amqp(&b).await;
    within(publisher.confirm_select(ConfirmSelectOptions::default()))
        .await
        .unwrap();
    let body = vec![7u8; 4096];
    let n = 5_000;
    let mut confirms = Vec::with_capacity(n);
    for _ in 0..n {
        confirms.push(
            within(publisher.basic_publish(
                "amq.topic",
                "firehose.data",
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default(),
            ))
            .await
            .unwrap(),
        );
    }
    // 20 MB through: far beyond what the stalled socket can buffer.
    for _ in 0..n {
        assert_eq!(next_delivery(&mut healthy).await.data.len(), 4096);
    }
    for c in confirms {
        assert!(within(c).await.unwrap().is_ack());
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_requester_amqp_server() {
    let b = TestBroker::start().await;
    let (_c, server) = amqp(&b).await;
    let (_, mut requests) = amqp_topic_consumer(&server, "rpc.add", false).await;
    let mut requester = V5Client::connect(b.addrs.mqtt.unwrap(), "requester", |_| {}).await;
    requester
        .subscribe("replies/requester", QoS::AtLeastOnce)
        .await;
    let props = PublishProperties {
        response_topic: Some("replies/requester".into()),
        correlation_data: Some(bytes::Bytes::from_static(b"req-42")),
        ..Default::default()
    };
    requester
        .publish("rpc/add", QoS::AtLeastOnce, false, b"2+3", props)
        .await;
    // The AMQP server, written the usual way.
    let req = next_delivery(&mut requests).await;
    let reply_to = req.properties.reply_to().clone().expect("reply_to");
    let h = req.properties.headers().clone().unwrap_or_default();
    assert_eq!(
        long_str(header(&h, "x-reply-to-topic")).as_deref(),
        Some("replies/requester")
    );
    let corr = req
        .properties
        .correlation_id()
        .clone()
        .expect("correlation_id");
    within(server.basic_publish(
        "",
        reply_to.as_str(),
        BasicPublishOptions::default(),
        b"5",
        BasicProperties::default().with_correlation_id(corr),
    ))
    .await
    .unwrap();
    within(req.ack(BasicAckOptions::default())).await.unwrap();
    let reply = requester.next().await;
    assert_eq!(reply.topic.as_ref(), b"replies/requester");
    assert_eq!(reply.payload.as_ref(), b"5");
    assert_eq!(
        reply.properties.and_then(|p| p.correlation_data).as_deref(),
        Some(&b"req-42"[..])
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_client_calls_stomp_and_mqtt5_responders() {
    let b = TestBroker::start().await;
    let (_c, client) = amqp(&b).await;
    let mut replies = within(client.basic_consume(
        "amq.rabbitmq.reply-to",
        "",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    // STOMP responder on /queue/stomp-service.
    let (mut stomp, _) = StompClient::connect(b.addrs.stomp.unwrap()).await;
    stomp.subscribe("svc", "/queue/stomp-service", &[]).await;
    within(
        client.basic_publish(
            "",
            "stomp-service",
            BasicPublishOptions::default(),
            b"ping",
            BasicProperties::default()
                .with_reply_to(ShortString::from("amq.rabbitmq.reply-to"))
                .with_correlation_id(ShortString::from("c-stomp")),
        ),
    )
    .await
    .unwrap();
    let req = stomp_message(&mut stomp).await;
    let reply_to = req.header("reply-to").expect("reply-to").to_string();
    assert!(
        reply_to.starts_with("/reply-queue/amq.rabbitmq.reply-to."),
        "{reply_to}"
    );
    let answer = frame(
        Stomp::Send,
        &[
            ("destination", reply_to.as_str()),
            ("correlation-id", req.header("correlation-id").unwrap()),
        ],
        b"pong from STOMP",
    );
    within(stomp.send_with_receipt(answer, "r")).await;
    let d = next_delivery(&mut replies).await;
    assert_eq!(d.data, b"pong from STOMP");
    assert_eq!(
        d.properties.correlation_id().as_ref().map(|s| s.as_str()),
        Some("c-stomp")
    );

    // MQTT 5 responder on svc/echo, answered through the response topic it is given.
    let mut responder = V5Client::connect(b.addrs.mqtt.unwrap(), "responder", |_| {}).await;
    responder.subscribe("svc/echo", QoS::AtLeastOnce).await;
    within(
        client.basic_publish(
            "amq.topic",
            "svc.echo",
            BasicPublishOptions::default(),
            b"hello",
            BasicProperties::default()
                .with_reply_to(ShortString::from("amq.rabbitmq.reply-to"))
                .with_correlation_id(ShortString::from("c-mqtt")),
        ),
    )
    .await
    .unwrap();
    let req = responder.next().await;
    let p = req.properties.expect("properties");
    let topic = p.response_topic.expect("a response topic");
    assert!(
        topic.starts_with("$reply/amq.rabbitmq.reply-to."),
        "{topic}"
    );
    let props = PublishProperties {
        correlation_data: p.correlation_data,
        ..Default::default()
    };
    responder
        .publish(&topic, QoS::AtLeastOnce, false, b"hello back", props)
        .await;
    let d = next_delivery(&mut replies).await;
    assert_eq!(d.data, b"hello back");
    assert_eq!(
        d.properties.correlation_id().as_ref().map(|s| s.as_str()),
        Some("c-mqtt")
    );
    b.stop().await;
}

#[tokio::test]
async fn stomp_client_calls_amqp_server() {
    let b = TestBroker::start().await;
    let (_c, server) = amqp(&b).await;
    within(server.queue_declare(
        "amqp-service",
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let mut requests = within(server.basic_consume(
        "amqp-service",
        "",
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let (mut stomp, _) = StompClient::connect(b.addrs.stomp.unwrap()).await;
    let req = frame(
        Stomp::Send,
        &[
            ("destination", "/amq/queue/amqp-service"),
            ("reply-to", "/temp-queue/answers"),
            ("correlation-id", "c-amqp"),
        ],
        b"question",
    );
    within(stomp.send_with_receipt(req, "q")).await;
    let d = next_delivery(&mut requests).await;
    let reply_to = d.properties.reply_to().clone().expect("reply_to");
    within(
        server.basic_publish(
            "",
            reply_to.as_str(),
            BasicPublishOptions::default(),
            b"answer",
            BasicProperties::default()
                .with_correlation_id(d.properties.correlation_id().clone().unwrap()),
        ),
    )
    .await
    .unwrap();
    let m = stomp_message(&mut stomp).await;
    assert_eq!(m.body.as_ref(), b"answer");
    assert_eq!(m.header("destination"), Some("/temp-queue/answers"));
    assert_eq!(m.header("correlation-id"), Some("c-amqp"));
    b.stop().await;
}

#[tokio::test]
async fn messages_published_over_amqp_and_stomp_can_be_retained_for_mqtt() {
    let b = TestBroker::start().await;
    let (_c, ch) = amqp(&b).await;
    let mut h = FieldTable::default();
    h.insert("x-mqtt-retain".into(), AMQPValue::Boolean(true));
    within(ch.basic_publish(
        "amq.topic",
        "status.kitchen",
        BasicPublishOptions::default(),
        b"kitchen online",
        BasicProperties::default().with_headers(h),
    ))
    .await
    .unwrap();
    let (mut stomp, _) = StompClient::connect(b.addrs.stomp.unwrap()).await;
    let f = frame(
        Stomp::Send,
        &[
            ("destination", "/topic/status.hall"),
            ("x-mqtt-retain", "true"),
        ],
        b"hall online",
    );
    within(stomp.send_with_receipt(f, "r")).await;
    // Not retained without the header.
    within(ch.basic_publish(
        "amq.topic",
        "status.attic",
        BasicPublishOptions::default(),
        b"attic online",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    let mut viewer = V5Client::connect(b.addrs.mqtt.unwrap(), "viewer", |_| {}).await;
    viewer.subscribe("status/#", QoS::AtLeastOnce).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = viewer.next().await;
        assert!(m.retain, "{m:?}");
        got.push((
            String::from_utf8_lossy(&m.topic).into_owned(),
            m.payload.to_vec(),
        ));
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            ("status/hall".to_string(), b"hall online".to_vec()),
            ("status/kitchen".to_string(), b"kitchen online".to_vec()),
        ]
    );
    // An empty retained publish over AMQP clears it.
    let mut h = FieldTable::default();
    h.insert("x-mqtt-retain".into(), AMQPValue::Boolean(true));
    within(ch.basic_publish(
        "amq.topic",
        "status.kitchen",
        BasicPublishOptions::default(),
        b"",
        BasicProperties::default().with_headers(h),
    ))
    .await
    .unwrap();
    let m = viewer.next().await;
    assert!(m.payload.is_empty());
    let mut late = V5Client::connect(b.addrs.mqtt.unwrap(), "late-viewer", |_| {}).await;
    late.subscribe("status/#", QoS::AtLeastOnce).await;
    let m = late.next().await;
    assert_eq!(
        m.topic.as_ref(),
        b"status/hall",
        "the kitchen's retained message is gone"
    );
    b.stop().await;
}
