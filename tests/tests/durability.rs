//! Durability against the real `junction` process: what was acknowledged survives a clean
//! restart (SIGTERM) and a crash (SIGKILL) on every protocol; what is transient does not; a
//! torn log tail is cut off and a damaged record inside the log skipped, both reported; a crash loop under load loses no confirmed message
//! and duplicates none.

use bytes::BytesMut;
use junction_stomp::codec::Command as Stomp;
use junction_tests::process::{JunctionProcess, Ports};
use junction_tests::raw_mqtt::RawMqtt;
use junction_tests::raw_stomp::{frame, StompClient};
use junction_tests::{amqp_channel, within};
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use mqttbytes::v4;
use mqttbytes::QoS;
use std::collections::HashSet;
use std::path::Path;

#[derive(Debug, Clone, Copy)]
enum Stop {
    Term,
    Kill9,
}

async fn stop(p: JunctionProcess, how: Stop) {
    match how {
        Stop::Term => {
            let s = p.terminate().await;
            assert!(s.success(), "clean exit on SIGTERM: {s}");
        }
        Stop::Kill9 => p.kill9().await,
    }
}

async fn amqp(p: &JunctionProcess) -> (Connection, Channel) {
    let (c, ch) = amqp_channel(&p.amqp_uri()).await;
    within(ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .unwrap();
    (c, ch)
}

async fn declare(ch: &Channel, name: &str, durable: bool, args: FieldTable) {
    within(ch.queue_declare(
        name,
        QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        args,
    ))
    .await
    .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

fn props(mode: u8) -> BasicProperties {
    BasicProperties::default().with_delivery_mode(mode)
}

/// Publishes every body (pipelined) and waits for every confirm to be an ack.
async fn publish_confirmed(ch: &Channel, queue: &str, bodies: &[Vec<u8>], mode: u8) {
    let mut confirms = Vec::new();
    for b in bodies {
        let pc =
            within(ch.basic_publish("", queue, BasicPublishOptions::default(), b, props(mode)))
                .await
                .expect("publish");
        confirms.push(pc);
    }
    for pc in confirms {
        assert!(within(pc).await.expect("confirm").is_ack());
    }
}

/// basic.get until empty (acking each): (body, redelivered, headers).
async fn drain(ch: &Channel, queue: &str) -> Vec<(Vec<u8>, bool, FieldTable)> {
    let mut out = Vec::new();
    while let Some(m) = within(ch.basic_get(queue, BasicGetOptions { no_ack: false }))
        .await
        .expect("basic.get")
    {
        within(m.delivery.ack(BasicAckOptions::default()))
            .await
            .unwrap();
        out.push((
            m.delivery.data.clone(),
            m.delivery.redelivered,
            m.delivery.properties.headers().clone().unwrap_or_default(),
        ));
    }
    out
}

fn numbered(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}-{i:04}").into_bytes())
        .collect()
}

async fn mqtt_connect(p: &JunctionProcess, id: &str, clean: bool) -> (RawMqtt, bool) {
    let mut c = RawMqtt::open(p.mqtt_addr()).await;
    let mut connect = v4::Connect::new(id);
    connect.clean_session = clean;
    connect.keep_alive = 60;
    let mut out = BytesMut::new();
    connect.write(&mut out).unwrap();
    c.send(&out).await;
    match within(c.recv_v4()).await {
        Some(v4::Packet::ConnAck(a)) => {
            assert_eq!(a.code, v4::ConnectReturnCode::Success);
            (c, a.session_present)
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

async fn mqtt_send(c: &mut RawMqtt, packet: impl FnOnce(&mut BytesMut)) {
    let mut out = BytesMut::new();
    packet(&mut out);
    c.send(&out).await;
}

async fn mqtt_next(c: &mut RawMqtt) -> v4::Packet {
    within(c.recv_v4()).await.expect("an MQTT packet")
}

/// What each protocol leaves behind before the broker goes down.
async fn fill(p: &JunctionProcess) {
    // AMQP: persistent + transient on a durable queue, persistent on a non-durable queue,
    // a dead-lettered message, and five delivered-but-unacked messages.
    let (conn, ch) = amqp(p).await;
    declare(&ch, "amqp-durable", true, FieldTable::default()).await;
    declare(&ch, "amqp-transient-queue", false, FieldTable::default()).await;
    declare(&ch, "dlx-dst", true, FieldTable::default()).await;
    let mut dlx = FieldTable::default();
    dlx.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    dlx.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString("dlx-dst".into()),
    );
    declare(&ch, "dlx-src", true, dlx).await;
    publish_confirmed(&ch, "amqp-durable", &numbered("amqp", 20), 2).await;
    publish_confirmed(&ch, "amqp-durable", &[b"transient".to_vec()], 1).await;
    publish_confirmed(&ch, "amqp-transient-queue", &[b"gone".to_vec()], 2).await;
    publish_confirmed(&ch, "dlx-src", &[b"poison".to_vec()], 2).await;
    let m = within(ch.basic_get("dlx-src", BasicGetOptions { no_ack: false }))
        .await
        .unwrap()
        .expect("the poison message");
    within(m.delivery.nack(BasicNackOptions {
        requeue: false,
        multiple: false,
    }))
    .await
    .unwrap();
    // Held unacked by a second connection that dies with the broker.
    let (_holder_conn, holder) = amqp(p).await;
    within(holder.basic_qos(5, BasicQosOptions::default()))
        .await
        .unwrap();
    for _ in 0..5 {
        let got = within(holder.basic_get("amqp-durable", BasicGetOptions { no_ack: false }))
            .await
            .unwrap();
        assert!(got.is_some());
    }

    // STOMP: persistent SENDs with receipts.
    let (mut s, connected) = StompClient::connect(p.stomp_addr()).await;
    assert_eq!(connected.command, Stomp::Connected);
    for (i, body) in numbered("stomp", 10).iter().enumerate() {
        let f = frame(
            Stomp::Send,
            &[
                ("destination", "/queue/stomp-durable"),
                ("persistent", "true"),
            ],
            body,
        );
        within(s.send_with_receipt(f, &format!("r{i}"))).await;
    }

    // MQTT: a persistent session subscribed at QoS 1 that is away while 10 messages arrive,
    // and a retained message.
    let (mut dev, _) = mqtt_connect(p, "dev-1", false).await;
    mqtt_send(&mut dev, |o| {
        let mut s = v4::Subscribe::new("sensors/#", QoS::AtLeastOnce);
        s.pkid = 1;
        s.write(o).unwrap();
    })
    .await;
    assert!(matches!(mqtt_next(&mut dev).await, v4::Packet::SubAck(_)));
    mqtt_send(&mut dev, |o| {
        v4::Disconnect.write(o).unwrap();
    })
    .await;
    let (mut publisher, _) = mqtt_connect(p, "publisher-1", true).await;
    for (i, body) in numbered("mqtt", 10).into_iter().enumerate() {
        let mut pb = v4::Publish::new("sensors/kitchen/temp", QoS::AtLeastOnce, body);
        pb.pkid = i as u16 + 1;
        mqtt_send(&mut publisher, |o| {
            pb.write(o).unwrap();
        })
        .await;
    }
    let mut retained = v4::Publish::new("status/kitchen", QoS::AtLeastOnce, b"online".to_vec());
    retained.retain = true;
    retained.pkid = 100;
    mqtt_send(&mut publisher, |o| {
        retained.write(o).unwrap();
    })
    .await;
    let mut acked = HashSet::new();
    while acked.len() < 11 {
        match mqtt_next(&mut publisher).await {
            v4::Packet::PubAck(a) => {
                acked.insert(a.pkid);
            }
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
    // A last confirmed publish: its fsync covers every record written before it (the
    // dead-lettering, the delivered marks, the MQTT session's queue).
    publish_confirmed(&ch, "amqp-durable", &[b"fence".to_vec()], 2).await;
    drop(conn);
}

/// Checks everything [`fill`] left, after the restart.
async fn check(p: &JunctionProcess, how: Stop) {
    let (_conn, ch) = amqp(p).await;
    let got = drain(&ch, "amqp-durable").await;
    let bodies: Vec<Vec<u8>> = got.iter().map(|(b, _, _)| b.clone()).collect();
    let mut expected = numbered("amqp", 20);
    expected.push(b"fence".to_vec());
    assert_eq!(
        bodies
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect::<Vec<_>>(),
        "{how:?}: persistent messages in order, the transient one gone"
    );
    let redelivered: Vec<bool> = got.iter().map(|(_, r, _)| *r).collect();
    assert_eq!(
        &redelivered[..5],
        &[true; 5],
        "{how:?}: delivered before → redelivered"
    );
    assert!(
        redelivered[5..].iter().all(|r| !r),
        "{how:?}: {redelivered:?}"
    );
    let dead = drain(&ch, "dlx-dst").await;
    assert_eq!(dead.len(), 1, "{how:?}: the dead-lettered message survives");
    assert_eq!(dead[0].0, b"poison");
    let deaths = match dead[0].2.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a.as_slice().to_vec(),
        other => panic!("{how:?}: x-death lost: {other:?}"),
    };
    let AMQPValue::FieldTable(death) = &deaths[0] else {
        panic!("x-death entry is a table")
    };
    assert_eq!(
        death.inner().get("queue"),
        Some(&AMQPValue::LongString("dlx-src".into()))
    );
    assert_eq!(
        death.inner().get("reason"),
        Some(&AMQPValue::LongString("rejected".into()))
    );
    let e = within(ch.queue_declare(
        "amqp-transient-queue",
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect_err("a non-durable queue is gone after a restart");
    assert!(e.to_string().contains("NOT_FOUND"), "{e}");

    let (mut s, _) = StompClient::connect(p.stomp_addr()).await;
    s.subscribe("s1", "/queue/stomp-durable", &[]).await;
    for expected in numbered("stomp", 10) {
        let m = within(s.recv()).await.expect("a MESSAGE");
        assert_eq!(m.command, Stomp::Message);
        assert_eq!(m.body.to_vec(), expected, "{how:?}: STOMP order");
    }

    let (mut dev, present) = mqtt_connect(p, "dev-1", false).await;
    assert!(present, "{how:?}: the persistent MQTT session survives");
    for expected in numbered("mqtt", 10) {
        match mqtt_next(&mut dev).await {
            v4::Packet::Publish(m) => {
                assert_eq!(m.payload.to_vec(), expected, "{how:?}: MQTT order");
                mqtt_send(&mut dev, |o| {
                    v4::PubAck::new(m.pkid).write(o).unwrap();
                })
                .await;
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    let (mut fresh, _) = mqtt_connect(p, "viewer-1", true).await;
    mqtt_send(&mut fresh, |o| {
        let mut s = v4::Subscribe::new("status/#", QoS::AtLeastOnce);
        s.pkid = 1;
        s.write(o).unwrap();
    })
    .await;
    assert!(matches!(mqtt_next(&mut fresh).await, v4::Packet::SubAck(_)));
    match mqtt_next(&mut fresh).await {
        v4::Packet::Publish(m) => {
            assert!(m.retain, "{how:?}");
            assert_eq!(m.payload.as_ref(), b"online");
        }
        other => panic!("{how:?}: expected the retained message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_restart_and_kill9_on_every_protocol() {
    for how in [Stop::Term, Stop::Kill9] {
        let root = tempfile::tempdir().unwrap();
        let ports = Ports::free();
        let p = JunctionProcess::start(root.path(), ports, "").await;
        fill(&p).await;
        stop(p, how).await;
        let p = JunctionProcess::start(root.path(), ports, "").await;
        check(&p, how).await;
        stop(p, Stop::Term).await;
    }
}

/// A queue far deeper than its memory window: consumers get the paged-out messages in order,
/// and after a crash the rest come back from disk (redelivered where they had been handed out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_deeper_than_memory_is_served_from_disk_across_a_crash() {
    let root = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let cfg = "[storage]\nmemory_window_messages = 100\n";
    let p = JunctionProcess::start(root.path(), ports, cfg).await;
    let (_c, ch) = amqp(&p).await;
    declare(&ch, "deep", true, FieldTable::default()).await;
    let bodies: Vec<Vec<u8>> = (0..3000)
        .map(|i| format!("deep-{i:05}-{}", "x".repeat(1000)).into_bytes())
        .collect();
    publish_confirmed(&ch, "deep", &bodies, 2).await;
    within(ch.basic_qos(50, BasicQosOptions::default()))
        .await
        .unwrap();
    let mut consumer = within(ch.basic_consume(
        "deep",
        "c",
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    use futures::StreamExt;
    for (i, want) in bodies[..1000].iter().enumerate() {
        let d = within(consumer.next())
            .await
            .expect("a delivery")
            .expect("no error");
        assert_eq!(&d.data, want, "delivery {i}");
        within(d.ack(BasicAckOptions::default())).await.unwrap();
    }
    p.kill9().await;
    let p = JunctionProcess::start(root.path(), ports, cfg).await;
    let (_c, ch) = amqp(&p).await;
    let got = drain(&ch, "deep").await;
    // Acks are not waited for on disk (as in RabbitMQ): the last acked ones may come back, but
    // only as an unbroken run before the 2,000 never acked, in order.
    let names = |b: &[Vec<u8>]| -> Vec<String> {
        b.iter()
            .map(|m| String::from_utf8_lossy(&m[..10]).into_owned())
            .collect()
    };
    let back: Vec<Vec<u8>> = got.iter().map(|m| m.0.clone()).collect();
    assert!(back.len() >= 2000, "{} came back", back.len());
    assert_eq!(names(&back), names(&bodies[3000 - back.len()..]));
    stop(p, Stop::Term).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_qos2_across_a_crash_is_exactly_once() {
    let root = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let p = JunctionProcess::start(root.path(), ports, "").await;
    // A persistent subscriber at QoS 2, away.
    let (mut sub, _) = mqtt_connect(&p, "sub-2", false).await;
    mqtt_send(&mut sub, |o| {
        let mut s = v4::Subscribe::new("q2/#", QoS::ExactlyOnce);
        s.pkid = 1;
        s.write(o).unwrap();
    })
    .await;
    assert!(matches!(mqtt_next(&mut sub).await, v4::Packet::SubAck(_)));
    mqtt_send(&mut sub, |o| v4::Disconnect.write(o).map(drop).unwrap()).await;
    // A persistent publisher: PUBLISH QoS 2 id 7, PUBREC received, then the broker crashes
    // before the PUBREL.
    let (mut publ, _) = mqtt_connect(&p, "pub-2", false).await;
    let mut m = v4::Publish::new("q2/x", QoS::ExactlyOnce, b"once".to_vec());
    m.pkid = 7;
    mqtt_send(&mut publ, |o| m.write(o).map(drop).unwrap()).await;
    assert!(matches!(mqtt_next(&mut publ).await, v4::Packet::PubRec(r) if r.pkid == 7));
    p.kill9().await;

    let p = JunctionProcess::start(root.path(), ports, "").await;
    let (mut publ, present) = mqtt_connect(&p, "pub-2", false).await;
    assert!(present);
    // The client did not see a PUBCOMP, so it sends the PUBLISH again (DUP), then PUBREL.
    m.dup = true;
    mqtt_send(&mut publ, |o| m.write(o).map(drop).unwrap()).await;
    assert!(matches!(mqtt_next(&mut publ).await, v4::Packet::PubRec(r) if r.pkid == 7));
    mqtt_send(&mut publ, |o| {
        v4::PubRel::new(7).write(o).map(drop).unwrap()
    })
    .await;
    assert!(matches!(mqtt_next(&mut publ).await, v4::Packet::PubComp(c) if c.pkid == 7));
    // One more message as a marker of the end.
    let mut end = v4::Publish::new("q2/x", QoS::ExactlyOnce, b"end".to_vec());
    end.pkid = 8;
    mqtt_send(&mut publ, |o| end.write(o).map(drop).unwrap()).await;
    assert!(matches!(mqtt_next(&mut publ).await, v4::Packet::PubRec(_)));
    mqtt_send(&mut publ, |o| {
        v4::PubRel::new(8).write(o).map(drop).unwrap()
    })
    .await;
    assert!(matches!(mqtt_next(&mut publ).await, v4::Packet::PubComp(_)));

    let (mut sub, present) = mqtt_connect(&p, "sub-2", false).await;
    assert!(present);
    let mut got = Vec::new();
    while got.last().map(Vec::as_slice) != Some(b"end".as_slice()) {
        match mqtt_next(&mut sub).await {
            v4::Packet::Publish(m) => {
                assert_eq!(m.qos, QoS::ExactlyOnce);
                got.push(m.payload.to_vec());
                mqtt_send(&mut sub, |o| {
                    v4::PubRec::new(m.pkid).write(o).map(drop).unwrap()
                })
                .await;
            }
            v4::Packet::PubRel(r) => {
                mqtt_send(&mut sub, |o| {
                    v4::PubComp::new(r.pkid).write(o).map(drop).unwrap()
                })
                .await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        got,
        vec![b"once".to_vec(), b"end".to_vec()],
        "no loss, no duplicate"
    );
    stop(p, Stop::Term).await;
}

fn last_segment(root: &Path) -> std::path::PathBuf {
    let dir = root.join("data").join("messages");
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs.pop().expect("a segment file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_cut_off_and_a_damaged_record_skipped() {
    for damage in ["flip", "truncate"] {
        let root = tempfile::tempdir().unwrap();
        let ports = Ports::free();
        let p = JunctionProcess::start(root.path(), ports, "").await;
        let (_c, ch) = amqp(&p).await;
        declare(&ch, "q", true, FieldTable::default()).await;
        let bodies: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("msg-{i:03}-{}", "x".repeat(1000)).into_bytes())
            .collect();
        publish_confirmed(&ch, "q", &bodies, 2).await;
        drop(ch);
        stop(p, Stop::Term).await;
        // Damage message 90's record.
        let seg = last_segment(root.path());
        let mut data = std::fs::read(&seg).unwrap();
        let at = data
            .windows(8)
            .position(|w| w == b"msg-090-")
            .expect("message 90 is in the last segment");
        match damage {
            "flip" => data[at + 500] ^= 0x5a,
            _ => data.truncate(at + 300),
        }
        std::fs::write(&seg, &data).unwrap();
        let p = JunctionProcess::start(root.path(), ports, "").await;
        let log = p.log();
        let (_c, ch) = amqp(&p).await;
        let got: Vec<Vec<u8>> = drain(&ch, "q").await.into_iter().map(|m| m.0).collect();
        if damage == "flip" {
            // Valid records follow: only message 90 is lost, and a copy of it is kept.
            assert!(log.contains("damaged record skipped"), "{log}");
            assert!(!log.contains("damaged tail cut off"), "{log}");
            let mut expected = bodies.clone();
            expected.remove(90);
            assert_eq!(got, expected, "flip: every record but the damaged one");
            let copies = root.path().join("data").join("messages").join("damaged");
            assert_eq!(std::fs::read_dir(copies).unwrap().count(), 1);
        } else {
            assert!(log.contains("damaged tail cut off"), "{log}");
            assert!(log.contains("records_dropped=1"), "{log}");
            assert_eq!(got, bodies[..90].to_vec(), "truncate: everything before it");
        }
        stop(p, Stop::Term).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_loses_no_confirmed_message() {
    let root = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let mut next = 0u64;
    let mut rng_state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand_ms = || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        50 + rng_state % 400
    };
    for round in 0..5 {
        let p = JunctionProcess::start(root.path(), ports, "").await;
        let (conn, ch) = amqp(&p).await;
        declare(&ch, "crash", true, FieldTable::default()).await;
        // Publish with a window of 50 confirms until the kill, remembering what was confirmed.
        let first = next;
        let confirmed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
        let publisher = {
            let confirmed = confirmed.clone();
            let ch = ch.clone();
            tokio::spawn(async move {
                let mut seq = first;
                loop {
                    let mut window = Vec::new();
                    for _ in 0..50 {
                        let body = seq.to_be_bytes();
                        let Ok(pc) = ch
                            .basic_publish(
                                "",
                                "crash",
                                BasicPublishOptions::default(),
                                &body,
                                props(2),
                            )
                            .await
                        else {
                            return;
                        };
                        window.push((seq, pc));
                        seq += 1;
                    }
                    for (s, pc) in window {
                        match pc.await {
                            Ok(c) if c.is_ack() => confirmed.lock().unwrap().push(s),
                            _ => return,
                        }
                    }
                }
            })
        };
        // Wait until some messages are confirmed, then crash at a random moment.
        within(async {
            while confirmed.lock().unwrap().len() < 100 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(rand_ms())).await;
        p.kill9().await;
        let _ = within(publisher).await;
        drop(conn);
        let confirmed: Vec<u64> = confirmed.lock().unwrap().clone();
        next = confirmed.last().copied().unwrap_or(first) + 1_000_000;

        let p = JunctionProcess::start(root.path(), ports, "").await;
        let (_c, ch) = amqp(&p).await;
        let got = drain(&ch, "crash").await;
        let mut seen = HashSet::new();
        for (body, _, _) in &got {
            if body.as_slice() == b"fence" {
                continue;
            }
            let seq = u64::from_be_bytes(body.as_slice().try_into().expect("8-byte body"));
            assert!(
                seq >= first,
                "round {round}: message {seq} of an earlier round came back"
            );
            assert!(seen.insert(seq), "round {round}: message {seq} twice");
        }
        let missing: Vec<u64> = confirmed
            .iter()
            .filter(|s| !seen.contains(s))
            .copied()
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} confirmed messages lost, e.g. {:?} ({} confirmed, {} recovered)",
            missing.len(),
            &missing[..missing.len().min(5)],
            confirmed.len(),
            seen.len()
        );
        // The acks of the drain are made durable by the next confirmed write.
        publish_confirmed(&ch, "crash", &[b"fence".to_vec()], 2).await;
        assert!(p.log().contains("storage recovered"));
        p.kill9().await;
    }
}
