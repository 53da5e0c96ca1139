//! Bad input and refused operations get RabbitMQ's reply codes, and harm nothing else.

use bytes::BytesMut;
use junction_amqp::codec::{self, Frame, Method};
use junction_tests::raw_amqp::RawClient;
use junction_tests::{amqp_channel, within, TestBroker};
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::time::Duration;

async fn open(b: &TestBroker) -> (Connection, Channel) {
    amqp_channel(&b.amqp_uri()).await
}

fn code(e: &lapin::Error) -> u16 {
    match e {
        lapin::Error::ProtocolError(p) => p.get_id(),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn channel_errors_close_only_their_channel() {
    let b = TestBroker::start().await;
    let (conn, ch) = open(&b).await;
    // 404: publish to a missing exchange. The close is asynchronous: lapin reports it on the
    // next call, or, when the close arrived first, refuses that call on a closing channel.
    // (publish_to_missing_exchange_closes_the_channel checks the reply code on the wire.)
    within(ch.basic_publish(
        "no-such-exchange",
        "k",
        BasicPublishOptions::default(),
        b"x",
        BasicProperties::default(),
    ))
    .await
    .ok();
    match within(ch.queue_declare(
        "after",
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    {
        Err(lapin::Error::ProtocolError(p)) => assert_eq!(p.get_id(), 404, "{p:?}"),
        Err(lapin::Error::InvalidChannelState(_)) => {}
        other => panic!("expected the channel closed, got {other:?}"),
    }
    // The connection and its other channels carry on.
    let ch2 = within(conn.create_channel()).await.unwrap();
    // 404: passive declare of a missing queue.
    let e = within(ch2.queue_declare(
        "ghost",
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .unwrap_err();
    assert_eq!(code(&e), 404);
    let ch3 = within(conn.create_channel()).await.unwrap();
    within(ch3.queue_declare("q", QueueDeclareOptions::default(), FieldTable::default()))
        .await
        .unwrap();
    // 406: redeclare with other settings.
    let e = within(ch3.queue_declare(
        "q",
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .unwrap_err();
    assert_eq!(code(&e), 406);
    let ch4 = within(conn.create_channel()).await.unwrap();
    // 406: ack of an unknown delivery tag.
    within(ch4.basic_ack(42, BasicAckOptions::default()))
        .await
        .ok();
    let e = within(ch4.queue_declare("q", QueueDeclareOptions::default(), FieldTable::default()))
        .await
        .unwrap_err();
    assert_eq!(code(&e), 406);
    // 403: declaring a reserved name; 406 on a bad x-argument.
    let ch5 = within(conn.create_channel()).await.unwrap();
    let e = within(ch5.exchange_declare(
        "amq.mine",
        lapin::ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap_err();
    assert_eq!(code(&e), 403);
    let ch6 = within(conn.create_channel()).await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-message-ttl".into(), AMQPValue::LongString("soon".into()));
    let e = within(ch6.queue_declare("bad-args", QueueDeclareOptions::default(), args))
        .await
        .unwrap_err();
    assert_eq!(code(&e), 406);
    assert!(
        conn.status().connected(),
        "channel errors leave the connection open"
    );
    let ok = within(conn.create_channel()).await.unwrap();
    within(ok.queue_declare(
        "still-fine",
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    b.stop().await;
}

#[tokio::test]
async fn double_ack_is_precondition_failed() {
    let b = TestBroker::start().await;
    let (_c, ch) = open(&b).await;
    within(ch.queue_declare("q", QueueDeclareOptions::default(), FieldTable::default()))
        .await
        .unwrap();
    within(ch.basic_publish(
        "",
        "q",
        BasicPublishOptions::default(),
        b"x",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    let m = within(ch.basic_get("q", BasicGetOptions::default()))
        .await
        .unwrap()
        .unwrap();
    let tag = m.delivery.delivery_tag;
    within(ch.basic_ack(tag, BasicAckOptions::default()))
        .await
        .unwrap();
    within(ch.basic_ack(tag, BasicAckOptions::default()))
        .await
        .ok();
    let e = within(ch.queue_declare("q", QueueDeclareOptions::default(), FieldTable::default()))
        .await
        .unwrap_err();
    assert_eq!(code(&e), 406);
    b.stop().await;
}

#[tokio::test]
async fn exclusive_queue_of_another_connection_is_locked() {
    let b = TestBroker::start().await;
    let (_c1, ch1) = open(&b).await;
    within(ch1.queue_declare(
        "mine",
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let (_c2, ch2) = open(&b).await;
    let e = within(ch2.basic_consume(
        "mine",
        "",
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap_err();
    assert_eq!(code(&e), 405);
    b.stop().await;
}

#[tokio::test]
async fn bad_credentials_and_unknown_vhost_are_refused() {
    let b = TestBroker::start().await;
    let e = within(Connection::connect(
        &b.amqp_uri_for("guest", "wrong", "%2f"),
        ConnectionProperties::default(),
    ))
    .await
    .unwrap_err();
    assert!(
        format!("{e:?}").contains("ACCESS_REFUSED") || format!("{e:?}").contains("403"),
        "{e:?}"
    );
    let e = within(Connection::connect(
        &b.amqp_uri_for("guest", "guest", "nowhere"),
        ConnectionProperties::default(),
    ))
    .await
    .unwrap_err();
    assert!(
        format!("{e:?}").contains("530") || format!("{e:?}").contains("NOT_ALLOWED"),
        "{e:?}"
    );
    b.stop().await;
}

/// Sends `bytes` on a fresh raw connection and returns the connection.close it gets.
async fn close_after(b: &TestBroker, bytes: &[u8]) -> (u16, String, u16, u16) {
    let mut c = within(RawClient::connect(b.addrs.amqp.unwrap(), 0)).await;
    c.send_raw(bytes).await;
    loop {
        match within(c.recv_method()).await {
            Some((
                0,
                Method::ConnectionClose {
                    reply_code,
                    reply_text,
                    class_id,
                    method_id,
                },
            )) => {
                c.send_method(0, &Method::ConnectionCloseOk).await;
                return (reply_code, reply_text, class_id, method_id);
            }
            Some(_) => continue,
            None => panic!("socket closed without connection.close"),
        }
    }
}

fn method(channel: u16, m: &Method) -> Vec<u8> {
    let mut out = BytesMut::new();
    codec::encode_method_frame(channel, m, &mut out);
    out.to_vec()
}

#[tokio::test]
async fn malformed_frames_close_the_connection_with_the_right_code() {
    let b = TestBroker::start().await;
    // 504: a method on a channel that was never opened.
    let (c, ..) = close_after(
        &b,
        &method(
            5,
            &Method::QueueDeclare {
                queue: "q".into(),
                passive: false,
                durable: false,
                exclusive: false,
                auto_delete: false,
                no_wait: false,
                arguments: Default::default(),
            },
        ),
    )
    .await;
    assert_eq!(c, 504);
    // 501: bad frame end.
    let mut bad_end = method(0, &Method::ConnectionUpdateSecretOk);
    *bad_end.last_mut().unwrap() = 0x00;
    assert_eq!(close_after(&b, &bad_end).await.0, 501);
    // 501: unknown frame type.
    assert_eq!(close_after(&b, &[9, 0, 1, 0, 0, 0, 0, 0xCE]).await.0, 501);
    // 501: a frame larger than frame_max, refused from its header alone.
    assert_eq!(
        close_after(&b, &[1, 0, 1, 0x7f, 0xff, 0xff, 0xff]).await.0,
        501
    );
    // 540: an unknown method.
    assert_eq!(
        close_after(&b, &[1, 0, 0, 0, 0, 0, 4, 0, 99, 0, 1, 0xCE])
            .await
            .0,
        540
    );
    // 502: a known method with truncated arguments (basic.qos with one byte).
    let (c, _, class, meth) = close_after(&b, &[1, 0, 0, 0, 0, 0, 5, 0, 60, 0, 10, 1, 0xCE]).await;
    assert_eq!((c, class, meth), (502, 60, 10));
    // 505: a content header with no basic.publish before it.
    let mut open = method(1, &Method::ChannelOpen);
    open.extend_from_slice(&[
        2, 0, 1, 0, 0, 0, 14, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xCE,
    ]);
    assert_eq!(close_after(&b, &open).await.0, 505);
    // 540: basic.publish with immediate=true, as RabbitMQ.
    let mut imm = method(1, &Method::ChannelOpen);
    imm.extend(method(
        1,
        &Method::BasicPublish {
            exchange: "".into(),
            routing_key: "q".into(),
            mandatory: false,
            immediate: true,
        },
    ));
    assert_eq!(close_after(&b, &imm).await.0, 540);
    b.stop().await;
}

#[tokio::test]
async fn huge_declared_body_is_refused_without_allocating() {
    let b = TestBroker::start().await;
    let mut c = within(RawClient::connect(b.addrs.amqp.unwrap(), 0)).await;
    c.open_channel(1).await;
    c.send_method(
        1,
        &Method::BasicPublish {
            exchange: "".into(),
            routing_key: "q".into(),
            mandatory: false,
            immediate: false,
        },
    )
    .await;
    // A content header announcing a 2^60-byte body.
    let mut header = BytesMut::new();
    let mut payload = BytesMut::new();
    codec::properties_payload(1u64 << 60, &Default::default(), &mut payload);
    header.extend_from_slice(&[2, 0, 1]);
    header.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    header.extend_from_slice(&payload);
    header.extend_from_slice(&[0xCE]);
    c.send_raw(&header).await;
    match within(c.recv_method()).await {
        Some((1, Method::ChannelClose { reply_code, .. })) => assert_eq!(reply_code, 406),
        other => panic!("expected channel.close 406, got {other:?}"),
    }
    b.stop().await;
}

#[tokio::test]
async fn publish_to_missing_exchange_closes_the_channel() {
    let b = TestBroker::start().await;
    let mut c = within(RawClient::connect(b.addrs.amqp.unwrap(), 0)).await;
    c.open_channel(1).await;
    c.publish(1, "no-such-exchange", "k", b"x").await;
    match within(c.recv_method()).await {
        Some((
            1,
            Method::ChannelClose {
                reply_code,
                class_id,
                method_id,
                ..
            },
        )) => assert_eq!((reply_code, class_id, method_id), (404, 60, 40)),
        other => panic!("expected channel.close 404, got {other:?}"),
    }
    c.send_method(1, &Method::ChannelCloseOk).await;
    // The connection carries on.
    c.open_channel(2).await;
    b.stop().await;
}

#[tokio::test]
async fn wrong_protocol_header_gets_ours_back() {
    let b = TestBroker::start().await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = within(tokio::net::TcpStream::connect(b.addrs.amqp.unwrap()))
        .await
        .unwrap();
    within(s.write_all(b"AMQP\x01\x01\x00\x0a")).await.unwrap();
    let mut got = Vec::new();
    within(s.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got, codec::PROTOCOL_HEADER);
    b.stop().await;
}

#[tokio::test]
async fn heartbeats_are_sent_and_a_silent_client_is_dropped() {
    let b = TestBroker::start().await;
    let mut c = within(RawClient::connect(b.addrs.amqp.unwrap(), 1)).await;
    let started = tokio::time::Instant::now();
    let mut heartbeats = 0;
    loop {
        match within(c.recv()).await {
            Some(Frame::Heartbeat) => heartbeats += 1,
            Some(other) => panic!("unexpected {other:?}"),
            None => break,
        }
    }
    let waited = started.elapsed();
    assert!(heartbeats >= 2, "server sent {heartbeats} heartbeats");
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "dropped after {waited:?}"
    );
    b.stop().await;
}

#[tokio::test]
async fn a_broken_connection_does_not_disturb_others() {
    let b = TestBroker::start().await;
    let (_c, ch) = open(&b).await;
    within(ch.queue_declare(
        "steady",
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    for _ in 0..3 {
        close_after(&b, &[1, 0, 0, 0, 0, 0, 4, 0, 99, 0, 1, 0xCE]).await;
    }
    within(ch.basic_publish(
        "",
        "steady",
        BasicPublishOptions::default(),
        b"ok",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    let m = within(ch.basic_get("steady", BasicGetOptions { no_ack: true }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.delivery.data, b"ok");
    b.stop().await;
}
