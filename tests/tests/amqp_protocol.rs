//! Protocol details seen on the wire: AMQPLAIN, channel.flow, recover, nack with multiple,
//! exchange.delete if-unused, server-initiated close on shutdown.

use bytes::{BufMut, Bytes, BytesMut};
use junction_amqp::codec::{Frame, Method};
use junction_tests::raw_amqp::RawClient;
use junction_tests::{within, TestBroker};
use std::time::Duration;

fn amqplain(user: &str, pass: &str) -> Bytes {
    // AMQPLAIN: a field table body without its length prefix.
    let mut b = BytesMut::new();
    for (k, v) in [("LOGIN", user), ("PASSWORD", pass)] {
        b.put_u8(k.len() as u8);
        b.put_slice(k.as_bytes());
        b.put_u8(b'S');
        b.put_u32(v.len() as u32);
        b.put_slice(v.as_bytes());
    }
    b.freeze()
}

async fn expect(c: &mut RawClient) -> (u16, Method) {
    within(c.recv_method()).await.expect("a method")
}

async fn publish(c: &mut RawClient, ch: u16, queue: &str, body: &'static [u8]) {
    c.publish(ch, "", queue, body).await;
}

fn declare(queue: &str) -> Method {
    Method::QueueDeclare {
        queue: queue.into(),
        passive: false,
        durable: false,
        exclusive: false,
        auto_delete: false,
        no_wait: false,
        arguments: Default::default(),
    }
}

/// Reads one delivery: basic.deliver, header, body. Returns (tag, redelivered, body).
async fn delivery(c: &mut RawClient) -> (u64, bool, Bytes) {
    let (_, m) = expect(c).await;
    let Method::BasicDeliver {
        delivery_tag,
        redelivered,
        ..
    } = m
    else {
        panic!("expected basic.deliver, got {m:?}");
    };
    let Some(Frame::Header { header, .. }) = within(c.recv()).await else {
        panic!("header")
    };
    let mut body = BytesMut::new();
    while (body.len() as u64) < header.body_size {
        let Some(Frame::Body { payload, .. }) = within(c.recv()).await else {
            panic!("body")
        };
        body.extend_from_slice(&payload);
    }
    (delivery_tag, redelivered, body.freeze())
}

async fn no_frame_for(c: &mut RawClient, d: Duration) {
    if let Ok(f) = tokio::time::timeout(d, c.recv()).await {
        panic!("unexpected frame {f:?}");
    }
}

#[tokio::test]
async fn amqplain_login_works_and_bad_password_is_refused() {
    let b = TestBroker::start().await;
    let addr = b.addrs.amqp.unwrap();
    let mut c = within(RawClient::connect_with(
        addr,
        0,
        "AMQPLAIN",
        amqplain("guest", "guest"),
    ))
    .await;
    c.open_channel(1).await;
    // A wrong password gets connection.close 403 right after start-ok.
    let refused = within(RawClient::try_connect_with(
        addr,
        0,
        "AMQPLAIN",
        amqplain("guest", "bad"),
    ))
    .await
    .err()
    .expect("refused");
    assert!(
        matches!(
            refused,
            Method::ConnectionClose {
                reply_code: 403,
                ..
            }
        ),
        "{refused:?}"
    );
    b.stop().await;
}

#[tokio::test]
async fn flow_recover_and_nack_multiple() {
    let b = TestBroker::start().await;
    let mut c = within(RawClient::connect(b.addrs.amqp.unwrap(), 0)).await;
    c.open_channel(1).await;
    c.send_method(1, &declare("q")).await;
    assert!(matches!(
        expect(&mut c).await.1,
        Method::QueueDeclareOk { .. }
    ));
    c.send_method(1, &Method::ChannelFlow { active: false })
        .await;
    assert_eq!(
        expect(&mut c).await.1,
        Method::ChannelFlowOk { active: false }
    );
    c.send_method(
        1,
        &Method::BasicConsume {
            queue: "q".into(),
            consumer_tag: "t".into(),
            no_local: false,
            no_ack: false,
            exclusive: false,
            no_wait: false,
            arguments: Default::default(),
        },
    )
    .await;
    assert!(matches!(
        expect(&mut c).await.1,
        Method::BasicConsumeOk { .. }
    ));
    for body in [&b"a"[..], b"b", b"c"] {
        publish(&mut c, 1, "q", body).await;
    }
    // Paused by flow: nothing is delivered.
    no_frame_for(&mut c, Duration::from_millis(300)).await;
    c.send_method(1, &Method::ChannelFlow { active: true })
        .await;
    assert_eq!(
        expect(&mut c).await.1,
        Method::ChannelFlowOk { active: true }
    );
    let mut tags = Vec::new();
    for want in [&b"a"[..], b"b", b"c"] {
        let (tag, redelivered, body) = delivery(&mut c).await;
        assert_eq!((&body[..], redelivered), (want, false));
        tags.push(tag);
    }
    // basic.recover requeues all three; they come back redelivered, in order.
    c.send_method(1, &Method::BasicRecover { requeue: true })
        .await;
    let mut again = Vec::new();
    let mut got_ok = false;
    while again.len() < 3 || !got_ok {
        match within(c.recv()).await.unwrap() {
            Frame::Method {
                method: Method::BasicRecoverOk,
                ..
            } => got_ok = true,
            Frame::Method {
                method:
                    Method::BasicDeliver {
                        delivery_tag,
                        redelivered,
                        ..
                    },
                ..
            } => {
                assert!(redelivered);
                let Some(Frame::Header { .. }) = within(c.recv()).await else {
                    panic!()
                };
                let Some(Frame::Body { payload, .. }) = within(c.recv()).await else {
                    panic!()
                };
                again.push((delivery_tag, payload));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let bodies: Vec<&[u8]> = again.iter().map(|(_, b)| &b[..]).collect();
    assert_eq!(bodies, vec![&b"a"[..], b"b", b"c"]);
    // nack multiple up to the second, without requeue: both are gone; the third stays unacked.
    c.send_method(
        1,
        &Method::BasicNack {
            delivery_tag: again[1].0,
            multiple: true,
            requeue: false,
        },
    )
    .await;
    c.send_method(
        1,
        &Method::BasicCancel {
            consumer_tag: "t".into(),
            no_wait: false,
        },
    )
    .await;
    assert!(matches!(
        expect(&mut c).await.1,
        Method::BasicCancelOk { .. }
    ));
    c.send_method(
        1,
        &Method::BasicReject {
            delivery_tag: again[2].0,
            requeue: true,
        },
    )
    .await;
    c.send_method(
        1,
        &Method::BasicGet {
            queue: "q".into(),
            no_ack: true,
        },
    )
    .await;
    match expect(&mut c).await.1 {
        Method::BasicGetOk {
            message_count,
            redelivered,
            ..
        } => {
            assert_eq!(message_count, 0);
            assert!(redelivered);
        }
        other => panic!("expected get-ok, got {other:?}"),
    }
    b.stop().await;
}

#[tokio::test]
async fn exchange_delete_if_unused_and_invalid_type() {
    let b = TestBroker::start().await;
    let mut c = within(RawClient::connect(b.addrs.amqp.unwrap(), 0)).await;
    c.open_channel(1).await;
    c.send_method(
        1,
        &Method::ExchangeDeclare {
            exchange: "ex".into(),
            kind: "fanout".into(),
            passive: false,
            durable: false,
            auto_delete: false,
            internal: false,
            no_wait: false,
            arguments: Default::default(),
        },
    )
    .await;
    assert_eq!(expect(&mut c).await.1, Method::ExchangeDeclareOk);
    c.send_method(1, &declare("q")).await;
    expect(&mut c).await;
    c.send_method(
        1,
        &Method::QueueBind {
            queue: "q".into(),
            exchange: "ex".into(),
            routing_key: "".into(),
            no_wait: false,
            arguments: Default::default(),
        },
    )
    .await;
    assert_eq!(expect(&mut c).await.1, Method::QueueBindOk);
    c.send_method(
        1,
        &Method::ExchangeDelete {
            exchange: "ex".into(),
            if_unused: true,
            no_wait: false,
        },
    )
    .await;
    match expect(&mut c).await {
        (
            1,
            Method::ChannelClose {
                reply_code,
                class_id,
                method_id,
                ..
            },
        ) => {
            assert_eq!((reply_code, class_id, method_id), (406, 40, 20));
        }
        other => panic!("expected channel.close, got {other:?}"),
    }
    c.send_method(1, &Method::ChannelCloseOk).await;
    c.open_channel(2).await;
    c.send_method(
        2,
        &Method::ExchangeDelete {
            exchange: "ex".into(),
            if_unused: false,
            no_wait: false,
        },
    )
    .await;
    assert_eq!(expect(&mut c).await.1, Method::ExchangeDeleteOk);
    // An unknown exchange type is a connection error: 503 COMMAND_INVALID.
    c.send_method(
        2,
        &Method::ExchangeDeclare {
            exchange: "weird".into(),
            kind: "x-bogus".into(),
            passive: false,
            durable: false,
            auto_delete: false,
            internal: false,
            no_wait: false,
            arguments: Default::default(),
        },
    )
    .await;
    match expect(&mut c).await {
        (0, Method::ConnectionClose { reply_code, .. }) => assert_eq!(reply_code, 503),
        other => panic!("expected connection.close, got {other:?}"),
    }
    b.stop().await;
}

#[tokio::test]
async fn shutdown_sends_connection_forced_and_requeues() {
    let b = TestBroker::start().await;
    let mut c = within(RawClient::connect(b.addrs.amqp.unwrap(), 0)).await;
    c.open_channel(1).await;
    let stop = tokio::spawn(b.stop());
    match expect(&mut c).await {
        (
            0,
            Method::ConnectionClose {
                reply_code,
                reply_text,
                ..
            },
        ) => {
            assert_eq!(reply_code, 320);
            assert!(reply_text.starts_with("CONNECTION_FORCED"), "{reply_text}");
        }
        other => panic!("expected connection.close, got {other:?}"),
    }
    c.send_method(0, &Method::ConnectionCloseOk).await;
    within(stop).await.unwrap();
}

/// A burst of publishes confirmed together comes back as `multiple` acks (amqplib's suite
/// expects to see one), each tag confirmed exactly once and in order.
#[tokio::test]
async fn a_burst_of_confirms_is_acknowledged_with_multiple() {
    let b = TestBroker::start().await;
    let mut c = within(RawClient::connect(b.addrs.amqp.unwrap(), 0)).await;
    c.open_channel(1).await;
    c.send_method(1, &Method::ConfirmSelect { no_wait: false })
        .await;
    assert!(matches!(
        within(c.recv_method()).await,
        Some((1, Method::ConfirmSelectOk))
    ));
    // 50 publishes in one write, to a queue-less key (routed nowhere, still confirmed).
    let mut out = junction_core::runtime::WriteBuf::new();
    for _ in 0..50 {
        junction_amqp::codec::encode_method_frame(
            1,
            &Method::BasicPublish {
                exchange: "amq.direct".into(),
                routing_key: "nowhere".into(),
                mandatory: false,
                immediate: false,
            },
            out.buf(),
        );
        junction_amqp::codec::encode_content(
            1,
            60,
            &Default::default(),
            &Bytes::from_static(b"x"),
            131_072,
            &mut out,
        );
    }
    out.write_to(&mut c.stream).await.unwrap();
    let (mut confirmed, mut acks, mut multiples) = (0u64, 0, 0);
    while confirmed < 50 {
        match within(c.recv_method()).await {
            Some((
                1,
                Method::BasicAck {
                    delivery_tag,
                    multiple,
                },
            )) => {
                assert!(delivery_tag > confirmed, "in order, once each");
                assert!(
                    multiple || delivery_tag == confirmed + 1,
                    "a single ack is the next tag"
                );
                confirmed = delivery_tag;
                acks += 1;
                multiples += usize::from(multiple);
            }
            other => panic!("expected basic.ack, got {other:?}"),
        }
    }
    assert_eq!(confirmed, 50);
    assert!(
        multiples > 0 && acks < 50,
        "{acks} acks, {multiples} multiple"
    );
    b.stop().await;
}

/// The default any-address listeners take IPv6 too, as RabbitMQ's: a client that resolves
/// `localhost` to `::1` (Node does) is served, on every protocol.
#[tokio::test]
async fn any_address_listeners_serve_ipv6_clients_too() {
    let b = TestBroker::start_with(|c| {
        c.listeners.amqp.address = std::net::Ipv4Addr::UNSPECIFIED.into();
        c.listeners.mqtt.address = std::net::Ipv4Addr::UNSPECIFIED.into();
    })
    .await;
    let port = b.addrs.amqp.unwrap().port();
    for host in ["127.0.0.1", "[::1]"] {
        let uri = format!("amqp://guest:guest@{host}:{port}/%2f");
        let (_c, ch) = junction_tests::amqp_channel(&uri).await;
        within(ch.queue_declare("v6", Default::default(), Default::default()))
            .await
            .expect("declare");
    }
    let v6 = std::net::SocketAddr::new(
        std::net::Ipv6Addr::LOCALHOST.into(),
        b.addrs.mqtt.unwrap().port(),
    );
    let mut m = within(junction_tests::raw_mqtt::RawMqtt::open(v6)).await;
    within(m.connect_v4("over-v6", 0)).await;
    b.stop().await;
}
