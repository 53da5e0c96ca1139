//! Round trips for every method class, spec byte fixtures, and decoding of random and mutated
//! frames: an error or a frame, never a panic, never a buffer grown past the frame limit.

use super::*;
use bytes::{Bytes, BytesMut};
use junction_core::runtime::WriteBuf;
use junction_core::{FieldTable, FieldValue, Properties};
use proptest::prelude::*;

const LIMITS: Limits = Limits {
    frame_max: 131_072,
    table_depth: 8,
};

fn args() -> FieldTable {
    let mut t = FieldTable::new();
    t.insert("x-message-ttl", FieldValue::I32(60_000));
    t.insert("x-dead-letter-exchange", FieldValue::string("dlx"));
    t
}

/// One instance of every method, with non-default values where it has arguments.
pub(crate) fn all_methods() -> Vec<Method> {
    use Method::*;
    vec![
        ConnectionStart {
            version_major: 0,
            version_minor: 9,
            server_properties: args(),
            mechanisms: Bytes::from_static(b"PLAIN AMQPLAIN"),
            locales: Bytes::from_static(b"en_US"),
        },
        ConnectionStartOk {
            client_properties: args(),
            mechanism: "PLAIN".into(),
            response: Bytes::from_static(b"\0guest\0guest"),
            locale: "en_US".into(),
        },
        ConnectionSecure {
            challenge: Bytes::from_static(b"c"),
        },
        ConnectionSecureOk {
            response: Bytes::from_static(b"r"),
        },
        ConnectionTune {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 60,
        },
        ConnectionTuneOk {
            channel_max: 10,
            frame_max: 4096,
            heartbeat: 0,
        },
        ConnectionOpen {
            virtual_host: "/".into(),
        },
        ConnectionOpenOk,
        ConnectionClose {
            reply_code: 320,
            reply_text: "CONNECTION_FORCED".into(),
            class_id: 0,
            method_id: 0,
        },
        ConnectionCloseOk,
        ConnectionBlocked {
            reason: "low on disk".into(),
        },
        ConnectionUnblocked,
        ConnectionUpdateSecret {
            new_secret: Bytes::from_static(b"s"),
            reason: "r".into(),
        },
        ConnectionUpdateSecretOk,
        ChannelOpen,
        ChannelOpenOk,
        ChannelFlow { active: false },
        ChannelFlowOk { active: true },
        ChannelClose {
            reply_code: 404,
            reply_text: "NOT_FOUND".into(),
            class_id: 50,
            method_id: 10,
        },
        ChannelCloseOk,
        ExchangeDeclare {
            exchange: "logs".into(),
            kind: "topic".into(),
            passive: false,
            durable: true,
            auto_delete: true,
            internal: false,
            no_wait: true,
            arguments: args(),
        },
        ExchangeDeclareOk,
        ExchangeDelete {
            exchange: "logs".into(),
            if_unused: true,
            no_wait: false,
        },
        ExchangeDeleteOk,
        ExchangeBind {
            destination: "d".into(),
            source: "s".into(),
            routing_key: "k.#".into(),
            no_wait: false,
            arguments: args(),
        },
        ExchangeBindOk,
        ExchangeUnbind {
            destination: "d".into(),
            source: "s".into(),
            routing_key: "k.#".into(),
            no_wait: true,
            arguments: FieldTable::new(),
        },
        ExchangeUnbindOk,
        QueueDeclare {
            queue: "tasks".into(),
            passive: false,
            durable: true,
            exclusive: false,
            auto_delete: false,
            no_wait: false,
            arguments: args(),
        },
        QueueDeclareOk {
            queue: "amq.gen-x".into(),
            message_count: 7,
            consumer_count: 2,
        },
        QueueBind {
            queue: "q".into(),
            exchange: "e".into(),
            routing_key: "k".into(),
            no_wait: false,
            arguments: args(),
        },
        QueueBindOk,
        QueuePurge {
            queue: "q".into(),
            no_wait: true,
        },
        QueuePurgeOk { message_count: 3 },
        QueueDelete {
            queue: "q".into(),
            if_unused: true,
            if_empty: false,
            no_wait: true,
        },
        QueueDeleteOk { message_count: 9 },
        QueueUnbind {
            queue: "q".into(),
            exchange: "e".into(),
            routing_key: "k".into(),
            arguments: args(),
        },
        QueueUnbindOk,
        BasicQos {
            prefetch_size: 0,
            prefetch_count: 200,
            global: true,
        },
        BasicQosOk,
        BasicConsume {
            queue: "q".into(),
            consumer_tag: "ctag".into(),
            no_local: false,
            no_ack: true,
            exclusive: true,
            no_wait: false,
            arguments: args(),
        },
        BasicConsumeOk {
            consumer_tag: "ctag".into(),
        },
        BasicCancel {
            consumer_tag: "ctag".into(),
            no_wait: true,
        },
        BasicCancelOk {
            consumer_tag: "ctag".into(),
        },
        BasicPublish {
            exchange: "e".into(),
            routing_key: "k".into(),
            mandatory: true,
            immediate: false,
        },
        BasicReturn {
            reply_code: 312,
            reply_text: "NO_ROUTE".into(),
            exchange: "e".into(),
            routing_key: "k".into(),
        },
        BasicDeliver {
            consumer_tag: "c".into(),
            delivery_tag: u64::MAX,
            redelivered: true,
            exchange: "e".into(),
            routing_key: "k".into(),
        },
        BasicGet {
            queue: "q".into(),
            no_ack: true,
        },
        BasicGetOk {
            delivery_tag: 5,
            redelivered: false,
            exchange: "".into(),
            routing_key: "q".into(),
            message_count: 1,
        },
        BasicGetEmpty,
        BasicAck {
            delivery_tag: 12,
            multiple: true,
        },
        BasicReject {
            delivery_tag: 13,
            requeue: true,
        },
        BasicRecoverAsync { requeue: true },
        BasicRecover { requeue: true },
        BasicRecoverOk,
        BasicNack {
            delivery_tag: 14,
            multiple: true,
            requeue: false,
        },
        ConfirmSelect { no_wait: false },
        ConfirmSelectOk,
        TxSelect,
        TxSelectOk,
        TxCommit,
        TxCommitOk,
        TxRollback,
        TxRollbackOk,
    ]
}

fn encode(channel: u16, m: &Method) -> BytesMut {
    let mut out = BytesMut::new();
    encode_method_frame(channel, m, &mut out);
    out
}

#[test]
fn every_method_round_trips() {
    for m in all_methods() {
        let mut buf = encode(3, &m);
        let frame = decode(&mut buf, &LIMITS).unwrap().unwrap();
        assert_eq!(
            frame,
            Frame::Method {
                channel: 3,
                method: m.clone()
            },
            "{m:?}"
        );
        assert!(buf.is_empty());
    }
}

#[test]
fn spec_fixtures() {
    // basic.ack(delivery-tag 1, multiple) on channel 1: class 60 method 80.
    let bytes = [
        1, 0, 1, 0, 0, 0, 13, 0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0xCE,
    ];
    assert_eq!(
        &encode(
            1,
            &Method::BasicAck {
                delivery_tag: 1,
                multiple: true
            }
        )[..],
        &bytes
    );
    // channel.open on channel 1 with the reserved empty shortstr.
    assert_eq!(
        &encode(1, &Method::ChannelOpen)[..],
        &[1, 0, 1, 0, 0, 0, 5, 0, 20, 0, 10, 0, 0xCE]
    );
    // queue.declare "q", durable, no arguments.
    let qd = Method::QueueDeclare {
        queue: "q".into(),
        passive: false,
        durable: true,
        exclusive: false,
        auto_delete: false,
        no_wait: false,
        arguments: FieldTable::new(),
    };
    assert_eq!(
        &encode(1, &qd)[..],
        &[1, 0, 1, 0, 0, 0, 13, 0, 50, 0, 10, 0, 0, 1, b'q', 0b10, 0, 0, 0, 0, 0xCE]
    );
    // basic.deliver: a bit between a longlong and a shortstr takes an octet of its own.
    let deliver = Method::BasicDeliver {
        consumer_tag: "t".into(),
        delivery_tag: 2,
        redelivered: true,
        exchange: "".into(),
        routing_key: "k".into(),
    };
    assert_eq!(
        &encode(1, &deliver)[..],
        &[
            1, 0, 1, 0, 0, 0, 18, 0, 60, 0, 60, 1, b't', 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 1, b'k',
            0xCE
        ]
    );
    // connection.open "/" with its reserved shortstr and bit.
    let open = Method::ConnectionOpen {
        virtual_host: "/".into(),
    };
    assert_eq!(
        &encode(0, &open)[..],
        &[1, 0, 0, 0, 0, 0, 8, 0, 10, 0, 40, 1, b'/', 0, 0, 0xCE]
    );
    // exchange.declare: five bits in one octet, least significant first.
    let xd = Method::ExchangeDeclare {
        exchange: "x".into(),
        kind: "topic".into(),
        passive: true,
        durable: false,
        auto_delete: true,
        internal: false,
        no_wait: true,
        arguments: FieldTable::new(),
    };
    let bytes = encode(1, &xd);
    assert_eq!(bytes[bytes.len() - 6], 0b10101, "{bytes:?}");
    // Every method's ids are its own.
    let mut ids: Vec<(u16, u16)> = all_methods().iter().map(Method::ids).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
    // Heartbeat.
    let mut hb = BytesMut::new();
    encode_heartbeat(&mut hb);
    assert_eq!(decode(&mut hb, &LIMITS).unwrap(), Some(Frame::Heartbeat));
}

#[test]
fn protocol_header_checks() {
    let mut b = BytesMut::from(&b"AMQP\x00\x00"[..]);
    assert_eq!(decode_protocol_header(&mut b), Ok(None));
    b.extend_from_slice(b"\x09\x01");
    assert_eq!(decode_protocol_header(&mut b), Ok(Some(())));
    let mut b = BytesMut::from(&b"GET / HTTP/1.1"[..]);
    assert_eq!(
        decode_protocol_header(&mut b),
        Err(CodecError::BadProtocolHeader)
    );
}

#[test]
fn content_is_split_by_frame_max_and_body_is_not_copied() {
    let body = Bytes::from(vec![0xAB; 10_000]);
    let mut wb = WriteBuf::new();
    let props = Properties {
        delivery_mode: Some(2),
        ..Default::default()
    };
    encode_content(7, 60, &props, &body, 4096, &mut wb);
    let mut raw = Vec::new();
    futures_lite_block_on(wb.write_to(&mut raw)).unwrap();
    let mut buf = BytesMut::from(&raw[..]);
    let Some(Frame::Header { channel: 7, header }) = decode(&mut buf, &LIMITS).unwrap() else {
        panic!("header first")
    };
    assert_eq!(header.body_size, 10_000);
    let mut total = 0;
    let mut frames = 0;
    while let Some(Frame::Body {
        channel: 7,
        payload,
    }) = decode(&mut buf, &LIMITS).unwrap()
    {
        assert!(payload.len() <= 4096 - 8);
        total += payload.len();
        frames += 1;
    }
    assert_eq!((total, frames), (10_000, 3));
}

/// Drives a future that never waits (writes into a Vec).
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// Decodes everything in `bytes` the way the server does; checks the buffer never grows past
/// one frame limit plus what was fed.
fn decode_all(bytes: &[u8]) {
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(_)) = decode(&mut buf, &LIMITS) {}
    assert!(buf.capacity() <= bytes.len().max(LIMITS.frame_max as usize + 8) * 2);
}

fn valid_frames() -> Vec<u8> {
    let mut out = Vec::new();
    for m in all_methods() {
        out.extend_from_slice(&encode(1, &m));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(
        kind in prop_oneof![Just(1u8), Just(2), Just(3), Just(8)],
        rest in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = vec![kind, 0, 1];
        bytes.extend_from_slice(&(rest.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&rest);
        bytes.push(0xCE);
        decode_all(&bytes);
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = valid_frames();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        decode_all(&bytes);
    }
}
