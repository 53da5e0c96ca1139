//! A hostile client must not stall or exhaust the broker: handshakes have one deadline on every
//! protocol, the connection limit refuses the excess, random bytes get the protocol's error, and
//! pathological topic patterns route in linear time.

use bytes::BytesMut;
use junction_amqp::codec::Method;
use junction_core::refusals::Refusal;
use junction_stomp::codec::Command;
use junction_tests::raw_amqp::RawClient;
use junction_tests::raw_mqtt::RawMqtt;
use junction_tests::raw_stomp::StompClient;
use junction_tests::{amqp_channel, eventually, within, TestBroker};
use lapin::options::{BasicConsumeOptions, BasicPublishOptions};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HANDSHAKE: Duration = Duration::from_millis(400);

/// Writes `bytes` one at a time, `gap` apart, then goes on trickling `filler` bytes if any (a
/// bounded number), while reading whatever the broker sends; returns once the broker has closed the
/// connection, and how long after the connect that was.
async fn trickle_until_closed(addr: SocketAddr, bytes: &[u8], filler: Option<u8>) -> Duration {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let (mut r, mut w) = s.split();
    let reader = async {
        let mut buf = [0u8; 1024];
        while matches!(r.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    let writer = async {
        let gap = Duration::from_millis(25);
        let fill = filler.map_or(0, |_| 400);
        for b in bytes
            .iter()
            .copied()
            .chain(std::iter::repeat_n(filler.unwrap_or(0), fill))
        {
            if w.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(gap).await;
        }
        // Keep the connection up until the reader has seen the close.
        std::future::pending::<()>().await;
    };
    within(async {
        tokio::select! {
            () = reader => {},
            () = writer => {},
        }
    })
    .await;
    started.elapsed()
}

#[tokio::test]
async fn every_protocol_drops_a_handshake_that_does_not_finish_in_time() {
    let b =
        TestBroker::start_with(|c| c.limits.handshake_timeout = HANDSHAKE.as_millis() as u64).await;
    let a = &b.addrs;
    // AMQP: the header then a frame that never completes; the header itself, slowly.
    let amqp_frame = [&b"AMQP\x00\x00\x09\x01"[..], &[1, 0, 0, 0, 0, 0x10, 0]].concat();
    // MQTT: a CONNECT whose remaining length promises more than ever comes.
    let mqtt = [0x10u8, 0xff, 0x7f];
    // STOMP: a CONNECT whose headers never end.
    let stomp = b"CONNECT\naccept-version:1.2\nhost:/\nx:";
    // WebSocket: a request that never ends.
    let ws = b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let cases: Vec<(&str, SocketAddr, &[u8], Option<u8>)> = vec![
        (
            "AMQP header only",
            a.amqp.unwrap(),
            b"AMQP\x00\x00\x09\x01",
            None,
        ),
        ("AMQP half a header", a.amqp.unwrap(), b"AMQP", None),
        ("AMQP frame trickle", a.amqp.unwrap(), &amqp_frame, Some(0)),
        ("MQTT silent", a.mqtt.unwrap(), b"", None),
        ("MQTT trickle", a.mqtt.unwrap(), &mqtt, Some(0)),
        ("STOMP", a.stomp.unwrap(), stomp, Some(b'a')),
        (
            "STOMP over WebSocket, silent",
            a.stomp_ws.unwrap(),
            b"",
            None,
        ),
        ("STOMP over WebSocket", a.stomp_ws.unwrap(), ws, Some(b'a')),
        ("MQTT over WebSocket", a.mqtt_ws.unwrap(), ws, Some(b'a')),
    ];
    let n = cases.len() as u64;
    let runs = cases
        .into_iter()
        .map(|(name, addr, bytes, filler)| async move {
            (name, trickle_until_closed(addr, bytes, filler).await)
        });
    for (name, took) in futures::future::join_all(runs).await {
        // Dropped at the deadline, counted from accept: not before, and not per read.
        assert!(took >= HANDSHAKE, "{name}: closed after {took:?}");
        assert!(took < HANDSHAKE * 8, "{name}: closed only after {took:?}");
    }
    let refusals = b.gateway().broker().refusals();
    assert_eq!(refusals.get(Refusal::HandshakeTimeout), n);
    // A client that finishes in time is served.
    let (_c, ch) = amqp_channel(&b.amqp_uri()).await;
    within(ch.queue_declare("after", Default::default(), Default::default()))
        .await
        .expect("declare");
    b.stop().await;
}

#[tokio::test]
async fn an_amqp_client_that_stops_before_tune_ok_is_dropped() {
    let b =
        TestBroker::start_with(|c| c.limits.handshake_timeout = HANDSHAKE.as_millis() as u64).await;
    let started = Instant::now();
    let mut s = within(TcpStream::connect(b.addrs.amqp.unwrap()))
        .await
        .unwrap();
    s.write_all(b"AMQP\x00\x00\x09\x01").await.unwrap();
    // connection.start arrives; nothing more is sent.
    let mut buf = vec![0u8; 4096];
    let n = within(s.read(&mut buf)).await.unwrap();
    assert!(n > 0, "connection.start");
    while within(s.read(&mut buf))
        .await
        .map(|n| n > 0)
        .unwrap_or(false)
    {}
    assert!(started.elapsed() >= HANDSHAKE);
    b.stop().await;
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_and_the_rest_served() {
    let b = TestBroker::start_with(|c| c.limits.max_connections = 3).await;
    let addr = b.addrs.mqtt.unwrap();
    let mut held = Vec::new();
    for i in 0..3 {
        let mut m = within(RawMqtt::open(addr)).await;
        within(m.connect_v4(&format!("held-{i}"), 0)).await;
        held.push(m);
    }
    // The fourth, on any listener, is closed at once.
    let mut extra = within(TcpStream::connect(b.addrs.amqp.unwrap()))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(within(extra.read(&mut buf)).await.unwrap_or(0), 0);
    let refusals = b.gateway().broker().refusals();
    assert_eq!(refusals.get(Refusal::ConnectionLimit), 1);
    // One leaves; a new one is served.
    drop(held.pop());
    eventually(|| b.gateway().connection_count() < 3).await;
    let mut again = within(RawMqtt::open(addr)).await;
    within(again.connect_v4("again", 0)).await;
    b.stop().await;
}

#[tokio::test]
async fn stomp_random_bytes_get_an_error_frame_and_a_close() {
    let b = TestBroker::start().await;
    let addr = b.addrs.stomp.unwrap();
    // Before CONNECT: bytes that no command starts with.
    let mut c = within(StompClient::open(addr)).await;
    c.send_raw(b"\x16\x03\x01\x00\xa5\x01\x00").await;
    let e = within(c.recv()).await.expect("an ERROR frame");
    assert_eq!(e.command, Command::Error);
    assert!(within(c.recv()).await.is_none(), "closed after the ERROR");
    // After CONNECT.
    let (mut c, _) = within(StompClient::connect(addr)).await;
    c.send_raw(&[0xde, 0xad, 0xbe, 0xef, b'!']).await;
    let e = within(c.recv()).await.expect("an ERROR frame");
    assert_eq!(e.command, Command::Error);
    assert_eq!(e.header("message"), Some("malformed frame"));
    assert!(within(c.recv()).await.is_none(), "closed after the ERROR");
    let refusals = b.gateway().broker().refusals();
    assert_eq!(refusals.get(Refusal::MalformedFrame), 2);
    b.stop().await;
}

/// `#.#.…` patterns with a literal that never comes, bound over AMQP and STOMP, against deep
/// routing keys from every protocol: each publish must route at once (the old matcher took
/// minutes of CPU per publish), and the broker keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_topic_patterns_do_not_stall_routing() {
    let b = TestBroker::start().await;
    let (_c, ch) = amqp_channel(&b.amqp_uri()).await;
    let hashes = junction_tests::bind_hostile_patterns(&ch).await;
    let (mut stomp, _) = within(StompClient::connect(b.addrs.stomp.unwrap())).await;
    stomp
        .subscribe("hostile", &format!("/topic/{hashes}.q.{hashes}.z"), &[])
        .await;
    // A round-trip consumer on a plain key, to see the broker answering after each publish.
    let probe = within(ch.queue_declare("probe", Default::default(), Default::default()))
        .await
        .unwrap();
    let mut deliveries = within(ch.basic_consume(
        probe.name().as_str(),
        "probe",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
        Default::default(),
    ))
    .await
    .unwrap();
    // MQTT publishes to 40 and 199 levels that never end in `z`.
    let mut m = within(RawMqtt::open(b.addrs.mqtt.unwrap())).await;
    within(m.connect_v4("deep", 0)).await;
    for levels in [40, 199] {
        let topic = vec!["a"; levels].join("/");
        let mut out = BytesMut::new();
        mqttbytes::v4::Publish::new(topic, mqttbytes::QoS::AtMostOnce, "x")
            .write(&mut out)
            .unwrap();
        m.send(&out).await;
    }
    // And over AMQP (a 127-word key, the most a short string holds).
    let key = vec!["a"; 127].join(".");
    within(ch.basic_publish(
        "amq.topic",
        &key,
        BasicPublishOptions::default(),
        b"x",
        Default::default(),
    ))
    .await
    .unwrap();
    for i in 0..3 {
        within(ch.basic_publish(
            "",
            "probe",
            BasicPublishOptions::default(),
            format!("{i}").as_bytes(),
            Default::default(),
        ))
        .await
        .unwrap();
        use futures::StreamExt;
        let d = within(deliveries.next()).await.unwrap().unwrap();
        assert_eq!(d.data, format!("{i}").as_bytes());
    }
    b.stop().await;
}

#[tokio::test]
async fn keys_and_topics_past_the_word_limit_are_refused() {
    let b = TestBroker::start().await;
    let mut c = within(RawClient::connect(b.addrs.amqp.unwrap(), 0)).await;
    c.open_channel(1).await;
    c.send_method(
        1,
        &Method::QueueDeclare {
            queue: "deep".into(),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            no_wait: false,
            arguments: Default::default(),
        },
    )
    .await;
    assert!(matches!(
        within(c.recv_method()).await,
        Some((1, Method::QueueDeclareOk { .. }))
    ));
    // 201 words fit in a short string only as empty words.
    c.send_method(
        1,
        &Method::QueueBind {
            queue: "deep".into(),
            exchange: "amq.topic".into(),
            routing_key: ".".repeat(200),
            no_wait: false,
            arguments: Default::default(),
        },
    )
    .await;
    match within(c.recv_method()).await {
        Some((1, Method::ChannelClose { reply_code, .. })) => assert_eq!(reply_code, 406),
        other => panic!("expected channel.close 406, got {other:?}"),
    }
    // MQTT: a topic of 201 levels closes the connection.
    let mut m = within(RawMqtt::open(b.addrs.mqtt.unwrap())).await;
    within(m.connect_v4("too-deep", 0)).await;
    let mut out = BytesMut::new();
    let mut p =
        mqttbytes::v4::Publish::new(vec!["a"; 201].join("/"), mqttbytes::QoS::AtLeastOnce, "x");
    p.pkid = 1;
    p.write(&mut out).unwrap();
    m.send(&out).await;
    assert!(
        within(m.recv_v4()).await.is_none(),
        "closed, not acknowledged"
    );
    b.stop().await;
}

/// An MQTT subscriber (clean session) that stops reading loses the QoS 0 messages that arrive
/// while `max_queued_messages` are waiting for it (counted) instead of growing the broker; a
/// persistent-session subscriber that reads gets everything, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt_subscriber_that_stops_reading_loses_qos0_messages_not_memory() {
    let b = TestBroker::start_with(|c| c.mqtt.max_queued_messages = 100).await;
    let addr = b.addrs.mqtt.unwrap();
    let mut stalled = within(RawMqtt::open(addr)).await;
    within(stalled.connect_v4("stalled", 0)).await;
    within(stalled.subscribe_v4("flood/t")).await;
    // The reader keeps a persistent session, whose queue has no such limit.
    let mut reader = within(RawMqtt::open(addr)).await;
    let mut connect = mqttbytes::v4::Connect::new("reader");
    connect.clean_session = false;
    let mut out = BytesMut::new();
    connect.write(&mut out).unwrap();
    reader.send(&out).await;
    assert!(matches!(
        within(reader.recv_v4()).await,
        Some(mqttbytes::v4::Packet::ConnAck(_))
    ));
    within(reader.subscribe_v4("flood/t")).await;
    let mut publisher = within(RawMqtt::open(addr)).await;
    within(publisher.connect_v4("flooder", 0)).await;
    let body = vec![b'x'; 4096];
    let n = 10_000u32;
    let read_all = async {
        for i in 0..n {
            match within(reader.recv_v4()).await {
                Some(mqttbytes::v4::Packet::Publish(p)) => {
                    assert_eq!(p.payload[..4], i.to_be_bytes(), "in order, none lost");
                }
                other => panic!("expected PUBLISH, got {other:?}"),
            }
        }
    };
    let publish_all = async {
        let mut out = BytesMut::new();
        for i in 0..n {
            let mut m = body.clone();
            m[..4].copy_from_slice(&i.to_be_bytes());
            mqttbytes::v4::Publish::new("flood/t", mqttbytes::QoS::AtMostOnce, m)
                .write(&mut out)
                .unwrap();
            if out.len() > 64 * 1024 {
                publisher.send(&out).await;
                out.clear();
            }
        }
        publisher.send(&out).await;
    };
    tokio::join!(read_all, publish_all);
    // 40 MB went past the stalled subscriber: its queue holds at most its limit.
    let vh = b.gateway().broker().vhost("/").unwrap();
    let q = vh
        .queues()
        .into_iter()
        .find(|q| q.name().starts_with("mqtt-subscription-stalled-"))
        .expect("the stalled session's queue");
    eventually(|| q.overflowed_count() > 0).await;
    assert!(q.message_count() <= 100, "{} ready", q.message_count());
    drop(stalled);
    b.stop().await;
}

/// What MQTT 3.1.1 and 5.0 say MUST close the connection is not acknowledged: SUBSCRIBE with
/// reserved flags wrong, SUBSCRIBE/UNSUBSCRIBE with no filter or packet id 0 (v5: DISCONNECT
/// 0x81 malformed / 0x82 protocol error).
#[tokio::test]
async fn mqtt_subscriptions_that_break_the_spec_close_the_connection() {
    let b = TestBroker::start().await;
    let addr = b.addrs.mqtt.unwrap();
    for bad in [
        &[0x80u8, 8, 0, 1, 0, 3, b'a', b'/', b'b', 0][..],
        &[0x82, 2, 0, 1],
        &[0xA2, 2, 0, 1],
        &[0x82, 6, 0, 0, 0, 1, b'a', 0],
        // Reserved bits in a requested QoS byte; U+0000 in a topic name.
        &[0x82, 6, 0, 1, 0, 1, b'a', 0x04],
        &[0x30, 5, 0, 2, b'a', 0, b'x'],
    ] {
        let mut m = within(RawMqtt::open(addr)).await;
        within(m.connect_v4("strict", 0)).await;
        m.send(bad).await;
        assert!(
            within(m.recv_v4()).await.is_none(),
            "{bad:?}: closed, no ack"
        );
    }
    // A CONNECT with its reserved flag set, or a password without a user name (3.1.1): closed
    // with no CONNACK.
    for flags in [0x03u8, 0x42] {
        let mut m = within(RawMqtt::open(addr)).await;
        let mut connect = vec![
            0x10, 16, 0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 60, 0, 1, b'c',
        ];
        connect.extend([0, 1, b'p']);
        connect[1] = (connect.len() - 2) as u8;
        m.send(&connect).await;
        assert!(
            within(m.rest()).await.is_empty(),
            "flags {flags:#04x}: closed without a CONNACK"
        );
    }
    // MQTT 5: [type/flags, length, pkid, pkid, properties length, ...filters].
    for (bad, reason) in [
        (&[0x80u8, 9, 0, 1, 0, 0, 3, b'a', b'/', b'b', 0][..], 0x81u8),
        (&[0x82, 3, 0, 1, 0], 0x82),
        (&[0xA2, 3, 0, 1, 0], 0x82),
        (&[0x82, 7, 0, 0, 0, 0, 1, b'a', 0], 0x82),
    ] {
        let mut m = within(RawMqtt::open(addr)).await;
        within(m.connect_v5("strict5")).await;
        m.send(bad).await;
        // mqttbytes decodes only the reason codes it lists: read the DISCONNECT's bytes.
        let rest = within(m.rest()).await;
        assert_eq!(
            rest.first(),
            Some(&0xE0),
            "{bad:?}: a DISCONNECT, got {rest:?}"
        );
        assert_eq!(rest.get(2), Some(&reason), "{bad:?}: {rest:?}");
    }
    b.stop().await;
}
