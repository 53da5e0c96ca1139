//! The resource alarms: below the free-disk watermark, with the message log past its size
//! limit, or with resident memory above the high watermark, publishing connections stop being
//! read on every protocol (AMQP clients that asked are told with connection.blocked), consumers
//! go on, and everything held back is routed once the alarm clears. The limits are moved past
//! the machine's figures at run time, as `rabbitmqctl set_disk_free_limit` and
//! `set_vm_memory_high_watermark` would.

use bytes::BytesMut;
use junction_amqp::codec::Method;
use junction_core::{FieldTable, FieldValue, Properties};
use junction_stomp::codec::Command;
use junction_tests::raw_amqp::RawClient;
use junction_tests::raw_mqtt::RawMqtt;
use junction_tests::raw_stomp::{frame, StompClient};
use junction_tests::{amqp_channel, within, TestBroker};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueDeclareOptions};
use std::time::Duration;

/// How long "nothing happens" is watched for.
const QUIET: Duration = Duration::from_millis(400);

fn wants_blocked() -> FieldTable {
    let mut caps = FieldTable::new();
    caps.insert("connection.blocked", FieldValue::Bool(true));
    let mut props = FieldTable::new();
    props.insert("capabilities", FieldValue::Table(caps));
    props
}

async fn next(d: &mut lapin::Consumer) -> Vec<u8> {
    use futures::StreamExt;
    d.next().await.expect("open").expect("delivery").data
}

async fn next_method(c: &mut RawClient) -> (u16, Method) {
    within(c.recv_method()).await.expect("a method")
}

/// Which alarm a test raises.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Disk,
    Memory,
}

impl Kind {
    fn raise(self, b: &TestBroker) {
        match self {
            Kind::Disk => b.gateway().set_disk_free_limit(u64::MAX),
            Kind::Memory => b.gateway().set_memory_high_watermark(0),
        }
    }

    fn clear(self, b: &TestBroker) {
        match self {
            Kind::Disk => b.gateway().set_disk_free_limit(0),
            Kind::Memory => b.gateway().set_memory_high_watermark(u64::MAX),
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Kind::Disk => "low on disk",
            Kind::Memory => "low on memory",
        }
    }
}

/// A raw AMQP connection that announces the connection.blocked capability, channel 1 open.
async fn blocked_aware_publisher(b: &TestBroker) -> RawClient {
    let mut publisher = within(RawClient::connect_announcing(
        b.addrs.amqp.unwrap(),
        wants_blocked(),
    ))
    .await;
    publisher.send_method(1, &Method::ChannelOpen).await;
    assert!(matches!(
        next_method(&mut publisher).await,
        (1, Method::ChannelOpenOk)
    ));
    publisher
}

#[tokio::test]
async fn amqp_publishers_are_blocked_and_told_while_disk_is_low() {
    amqp_publishers_are_blocked_and_told(Kind::Disk).await
}

#[tokio::test]
async fn amqp_publishers_are_blocked_and_told_while_memory_is_high() {
    amqp_publishers_are_blocked_and_told(Kind::Memory).await
}

async fn amqp_publishers_are_blocked_and_told(kind: Kind) {
    let b = TestBroker::start().await;
    let (_cc, consumer_ch) = amqp_channel(&b.amqp_uri()).await;
    within(consumer_ch.queue_declare(
        "alarm-q",
        QueueDeclareOptions::default(),
        Default::default(),
    ))
    .await
    .unwrap();
    let mut deliveries = within(consumer_ch.basic_consume(
        "alarm-q",
        "",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
        Default::default(),
    ))
    .await
    .unwrap();

    let mut publisher = blocked_aware_publisher(&b).await;
    publisher.publish(1, "", "alarm-q", b"before").await;
    assert_eq!(within(next(&mut deliveries)).await, b"before");

    kind.raise(&b);
    match next_method(&mut publisher).await {
        (0, Method::ConnectionBlocked { reason }) => assert_eq!(reason, kind.reason()),
        other => panic!("expected connection.blocked, got {other:?}"),
    }
    publisher.publish(1, "", "alarm-q", b"held").await;
    // Nothing published while blocked reaches the queue...
    assert!(
        tokio::time::timeout(QUIET, next(&mut deliveries))
            .await
            .is_err(),
        "a blocked publisher's message was routed"
    );
    // ...while a connection that only consumes or declares is still served.
    let (_c2, ch2) = amqp_channel(&b.amqp_uri()).await;
    within(ch2.queue_declare(
        "alarm-other",
        QueueDeclareOptions::default(),
        Default::default(),
    ))
    .await
    .unwrap();

    kind.clear(&b);
    assert!(matches!(
        next_method(&mut publisher).await,
        (0, Method::ConnectionUnblocked)
    ));
    assert_eq!(within(next(&mut deliveries)).await, b"held");
    b.stop().await;
}

#[tokio::test]
async fn mqtt_and_stomp_publishers_are_paused_while_disk_is_low() {
    mqtt_and_stomp_publishers_are_paused(Kind::Disk).await
}

#[tokio::test]
async fn mqtt_and_stomp_publishers_are_paused_while_memory_is_high() {
    mqtt_and_stomp_publishers_are_paused(Kind::Memory).await
}

async fn mqtt_and_stomp_publishers_are_paused(kind: Kind) {
    let b = TestBroker::start().await;
    let mut mqtt = RawMqtt::open(b.addrs.mqtt.unwrap()).await;
    within(mqtt.connect_v4("alarm-pub", 0)).await;
    let publish = |pkid: u16| {
        let mut p = mqttbytes::v4::Publish::new("alarm/t", mqttbytes::QoS::AtLeastOnce, "x");
        p.pkid = pkid;
        let mut out = BytesMut::new();
        p.write(&mut out).unwrap();
        out
    };
    let puback = |p: Option<mqttbytes::v4::Packet>| match p {
        Some(mqttbytes::v4::Packet::PubAck(a)) => a.pkid,
        other => panic!("expected PUBACK, got {other:?}"),
    };
    mqtt.send(&publish(1)).await;
    assert_eq!(puback(within(mqtt.recv_v4()).await), 1);

    let (mut stomp, _) = within(StompClient::connect(b.addrs.stomp.unwrap())).await;
    within(stomp.send_with_receipt(
        frame(Command::Send, &[("destination", "/queue/alarm-s")], b"a"),
        "r1",
    ))
    .await;

    kind.raise(&b);
    mqtt.send(&publish(2)).await;
    stomp
        .send(&frame(
            Command::Send,
            &[("destination", "/queue/alarm-s"), ("receipt", "r2")],
            b"b",
        ))
        .await;
    // Neither is read while the alarm lasts: no PUBACK, no RECEIPT.
    assert!(tokio::time::timeout(QUIET, mqtt.recv_v4()).await.is_err());
    stomp.expect_silence(QUIET).await;

    kind.clear(&b);
    assert_eq!(puback(within(mqtt.recv_v4()).await), 2);
    let r = within(stomp.recv()).await.expect("receipt");
    assert_eq!(r.command, Command::Receipt, "{r:?}");
    assert_eq!(r.header("receipt-id"), Some("r2"));
    b.stop().await;
}

#[tokio::test]
async fn a_message_log_past_its_limit_blocks_publishers_until_consumers_drain_it() {
    let b = TestBroker::start_with(|c| {
        c.storage.segment_size_mib = 1;
        c.storage.message_log_limit_mib = 2;
    })
    .await;
    let (_cc, ch) = amqp_channel(&b.amqp_uri()).await;
    within(ch.queue_declare(
        "full-q",
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        Default::default(),
    ))
    .await
    .unwrap();
    let mut publisher = blocked_aware_publisher(&b).await;
    let persistent = Properties {
        delivery_mode: Some(2),
        ..Properties::default()
    };
    // 3 MiB of persistent messages: the log passes its 2 MiB.
    let body = vec![b'x'; 64 * 1024];
    for _ in 0..48 {
        publisher
            .publish_with(1, "", "full-q", &persistent, &body)
            .await;
    }
    match next_method(&mut publisher).await {
        (0, Method::ConnectionBlocked { reason }) => assert_eq!(reason, "message log full"),
        other => panic!("expected connection.blocked, got {other:?}"),
    }
    publisher
        .publish_with(1, "", "full-q", &persistent, b"after")
        .await;
    // Consuming (and acking) everything lets the log reclaim its segments.
    let mut deliveries = within(ch.basic_consume(
        "full-q",
        "",
        BasicConsumeOptions::default(),
        Default::default(),
    ))
    .await
    .unwrap();
    use futures::StreamExt;
    for _ in 0..48 {
        let d = within(deliveries.next())
            .await
            .expect("open")
            .expect("delivery");
        assert_eq!(d.data.len(), body.len());
        within(d.ack(BasicAckOptions::default())).await.unwrap();
    }
    assert!(matches!(
        next_method(&mut publisher).await,
        (0, Method::ConnectionUnblocked)
    ));
    let d = within(deliveries.next())
        .await
        .expect("open")
        .expect("delivery");
    assert_eq!(d.data, b"after");
    b.stop().await;
}
