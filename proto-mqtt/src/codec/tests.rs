//! Packet fixtures, the gaps filled around mqttbytes, and random/mutated input.

use super::*;
use proptest::prelude::*;

const MAX: usize = 64 * 1024;

fn v4_connect() -> Vec<u8> {
    // CONNECT, "MQTT" level 4, clean session, keep-alive 60, client id "c1".
    vec![
        0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 2, b'c', b'1',
    ]
}

fn decode_all(bytes: &[u8], level: Option<Level>) -> Vec<Result<Inbound, CodecError>> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    let mut level = level;
    loop {
        match decode(&mut buf, level, MAX) {
            Ok(Some(p)) => {
                if let Inbound::Connect(c) = &p {
                    level = Some(c.level);
                }
                out.push(Ok(p))
            }
            Ok(None) => break,
            Err(e) => {
                out.push(Err(e));
                break;
            }
        }
    }
    out
}

#[test]
fn spec_connect_fixture() {
    let got = decode_all(&v4_connect(), None);
    let Ok(Inbound::Connect(c)) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(c.level, Level::V4);
    assert_eq!(c.client_id, "c1");
    assert!(c.clean_start);
    assert_eq!(c.keep_alive, 60);
}

#[test]
fn partial_packets_wait() {
    let full = v4_connect();
    for cut in 0..full.len() {
        let mut buf = BytesMut::from(&full[..cut]);
        assert_eq!(decode(&mut buf, None, MAX), Ok(None), "cut {cut}");
    }
}

#[test]
fn first_packet_must_be_connect_and_levels_are_checked() {
    let mut buf = BytesMut::from(&[0xC0u8, 0][..]);
    assert!(matches!(
        decode(&mut buf, None, MAX),
        Err(CodecError::Protocol(_))
    ));
    // Level 6 does not exist; level 3 is accepted only as MQTT 3.1 (see below).
    let mut v6 = vec![0x10, 14, 0, 4];
    v6.extend_from_slice(b"MQTT");
    v6.extend_from_slice(&[6, 0x02, 0, 60, 0, 2, b'c', b'1']);
    assert_eq!(
        decode(&mut BytesMut::from(&v6[..]), None, MAX),
        Err(CodecError::UnsupportedLevel(6))
    );
}

#[test]
fn v5_short_disconnect_and_auth() {
    let mut buf = BytesMut::from(&[0xE0u8, 0x00, 0xF0, 0x00][..]);
    assert_eq!(
        decode(&mut buf, Some(Level::V5), MAX),
        Ok(Some(Inbound::Disconnect {
            reason: 0,
            session_expiry: None
        }))
    );
    assert_eq!(
        decode(&mut buf, Some(Level::V5), MAX),
        Ok(Some(Inbound::Auth))
    );
    let mut buf = BytesMut::from(&[0xF0u8, 0x00][..]);
    assert!(decode(&mut buf, Some(Level::V4), MAX).is_err());
}

#[test]
fn oversized_packets_are_refused_from_the_header() {
    // PUBLISH announcing 2 MB with only the fixed header present.
    let mut buf = BytesMut::from(&[0x30u8, 0x80, 0x80, 0x80, 0x01][..]);
    assert_eq!(
        decode(&mut buf, Some(Level::V4), MAX),
        Err(CodecError::TooLarge(2_097_157))
    );
    let mut buf = BytesMut::from(&[0x30u8, 0xff, 0xff, 0xff, 0xff, 0x01][..]);
    assert!(matches!(
        decode(&mut buf, Some(Level::V4), MAX),
        Err(CodecError::Malformed(_))
    ));
}

#[test]
fn outbound_packets_decode_as_mqttbytes_reads_them() {
    let p = Publish {
        dup: true,
        qos: 2,
        retain: true,
        topic: "a/b".into(),
        pkid: 7,
        props: PubProps {
            content_type: Some("text/plain".into()),
            user_properties: vec![("k".into(), "v".into())],
            correlation_data: Some(Bytes::from_static(b"c")),
            ..Default::default()
        },
        payload: Bytes::from_static(b"hi"),
    };
    let out = encoded(Level::V5, &p, None).unwrap();
    let back = decode_all(&out, Some(Level::V5));
    assert_eq!(back, vec![Ok(Inbound::Publish(p))]);
    let mut out = BytesMut::new();
    disconnect(
        Level::V5,
        ReasonCode::SessionTakenOver,
        "session taken over",
        &mut out,
    );
    assert_eq!(out[0], 0xE0);
    assert_eq!(out[2], 0x8E);
}

/// The bytes `publish` writes, or `None` if it refused (too large for `max`).
fn encoded(level: Level, p: &Publish, max: Option<u32>) -> Option<Vec<u8>> {
    let mut out = WriteBuf::new();
    publish(level, p, max, &mut out).then(|| out.to_vec())
}

#[test]
fn v4_publish_header_is_what_mqttbytes_writes() {
    for (qos, dup, retain, topic, size) in [
        (0, false, false, "t", 0),
        (1, true, false, "a/b/c", 127),
        (1, false, true, "sensors/ü/temp", 128),
        (2, true, true, "x", 16_384),
        (1, false, false, "big/body", 2_100_000),
    ] {
        let payload = Bytes::from(vec![0x5A; size]);
        let p = Publish {
            dup,
            qos,
            retain,
            topic: topic.into(),
            pkid: if qos > 0 { 513 } else { 0 },
            props: PubProps::default(),
            payload: payload.clone(),
        };
        let mut theirs = v4::Publish::from_bytes(topic, qos_of(qos), payload);
        theirs.dup = dup;
        theirs.retain = retain;
        theirs.pkid = p.pkid;
        let mut want = BytesMut::new();
        theirs.write(&mut want).unwrap();
        let ours = encoded(Level::V4, &p, None).unwrap();
        assert!(ours == want[..], "qos {qos} size {size}");
        assert_eq!(encoded(Level::V4, &p, Some(want.len() as u32)), Some(ours));
        assert_eq!(encoded(Level::V4, &p, Some(want.len() as u32 - 1)), None);
    }
}

fn valid_stream() -> Vec<u8> {
    let mut v = v4_connect();
    let out = encoded(
        Level::V4,
        &Publish {
            dup: false,
            qos: 1,
            retain: false,
            topic: "t/1".into(),
            pkid: 1,
            props: PubProps::default(),
            payload: Bytes::from_static(b"payload"),
        },
        None,
    )
    .unwrap();
    v.extend_from_slice(&out);
    // SUBSCRIBE pkid 2 "a/+" QoS 1; UNSUBSCRIBE; PINGREQ; DISCONNECT.
    v.extend_from_slice(&[0x82, 8, 0, 2, 0, 3, b'a', b'/', b'+', 1]);
    v.extend_from_slice(&[0xA2, 7, 0, 3, 0, 3, b'a', b'/', b'+']);
    v.extend_from_slice(&[0xC0, 0, 0xE0, 0]);
    v
}

#[test]
fn valid_stream_decodes() {
    let got = decode_all(&valid_stream(), None);
    assert_eq!(got.len(), 6, "{got:?}");
    assert!(got.iter().all(Result::is_ok));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), v5 in any::<bool>()) {
        let level = if v5 { Level::V5 } else { Level::V4 };
        decode_all(&bytes, None);
        decode_all(&bytes, Some(level));
    }

    #[test]
    fn mutated_packets_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), v5 in any::<bool>()) {
        let mut bytes = valid_stream();
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        let level = if v5 { Level::V5 } else { Level::V4 };
        decode_all(&bytes, None);
        decode_all(&bytes[v4_connect().len()..], Some(level));
    }
}

fn v4_open(extra: &[u8]) -> Vec<Result<Inbound, CodecError>> {
    let mut bytes = v4_connect();
    bytes.extend_from_slice(extra);
    decode_all(&bytes, None)
}

#[test]
fn reserved_flags_empty_subscriptions_and_packet_id_zero_close_the_connection() {
    // SUBSCRIBE with flags 0000 instead of 0010 (3.1.1 §3.8.1-1).
    let bad_flags = [0x80u8, 8, 0, 1, 0, 3, b'a', b'/', b'b', 0];
    assert!(matches!(
        v4_open(&bad_flags)[1],
        Err(CodecError::Malformed(_))
    ));
    // UNSUBSCRIBE and PUBREL likewise; PINGREQ with a flag set; PUBLISH with QoS 3.
    for bad in [
        &[0xA0u8, 5, 0, 1, 0, 1, b'a'][..],
        &[0x60, 2, 0, 1],
        &[0xC1, 0],
        &[0x36, 5, 0, 1, b'a', 0, 1],
    ] {
        let got = v4_open(bad);
        assert!(
            matches!(got[1], Err(CodecError::Malformed(_))),
            "{bad:?}: {got:?}"
        );
    }
    // SUBSCRIBE / UNSUBSCRIBE with no filter (3.1.1 §3.8.3-3, §3.10.3-2).
    for empty in [&[0x82u8, 2, 0, 1][..], &[0xA2, 2, 0, 1]] {
        let got = v4_open(empty);
        assert!(
            matches!(got[1], Err(CodecError::Protocol(_))),
            "{empty:?}: {got:?}"
        );
    }
    // Packet id 0 (§2.3.1).
    for zero in [
        &[0x82u8, 6, 0, 0, 0, 1, b'a', 0][..],
        &[0xA2, 5, 0, 0, 0, 1, b'a'],
    ] {
        let got = v4_open(zero);
        assert!(
            matches!(got[1], Err(CodecError::Protocol(_))),
            "{zero:?}: {got:?}"
        );
    }
    // v5: a SUBSCRIBE with properties but no filter is a protocol error (DISCONNECT 0x82).
    let e = CodecError::Protocol(String::new());
    assert_eq!(e.reason_code(), ReasonCode::ProtocolError);
    assert_eq!(
        CodecError::Malformed(String::new()).reason_code(),
        ReasonCode::MalformedPacket
    );
    // Valid ones still decode.
    let ok = v4_open(&[0x82u8, 6, 0, 1, 0, 1, b'a', 0]);
    assert!(
        matches!(ok[1], Ok(Inbound::Subscribe { pkid: 1, .. })),
        "{ok:?}"
    );
}

#[test]
fn mqtt_3_1_connect_is_decoded_as_3_1_1() {
    // CONNECT, "MQIsdp" level 3, clean session, keep-alive 30, client id "old-device".
    let mut bytes = vec![
        0x10u8, 0, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0, 30,
    ];
    bytes.extend_from_slice(&[0, 10]);
    bytes.extend_from_slice(b"old-device");
    bytes[1] = (bytes.len() - 2) as u8;
    let got = decode_all(&bytes, None);
    let Ok(Inbound::Connect(c)) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(c.level, Level::V4);
    assert!(c.legacy_31);
    assert_eq!(c.client_id, "old-device");
    assert_eq!(c.keep_alive, 30);
    // Level 3 under another name is still refused.
    let mut other = bytes.clone();
    other[4..10].copy_from_slice(b"MQIsdq");
    assert!(matches!(
        decode_all(&other, None)[0],
        Err(CodecError::UnsupportedLevel(3))
    ));
}

#[test]
fn v5_acks_with_reason_0_and_no_properties_take_the_short_form() {
    // MQTT 5 §3.4.2.1: the reason code and property length may be omitted when the reason is
    // 0x00 and there are no properties; clients and the interop suite expect the short form.
    for (kind, first) in [
        (Ack::PubAck, 0x40u8),
        (Ack::PubRec, 0x50),
        (Ack::PubRel, 0x62),
        (Ack::PubComp, 0x70),
    ] {
        let mut out = BytesMut::new();
        ack(Level::V5, kind, 7, ReasonCode::Success, &mut out);
        assert_eq!(&out[..], &[first, 2, 0, 7], "{kind:?}");
    }
    // A non-zero reason is written out.
    let mut out = BytesMut::new();
    ack(
        Level::V5,
        Ack::PubAck,
        7,
        ReasonCode::NoMatchingSubscribers,
        &mut out,
    );
    assert_eq!(&out[..4], &[0x40, 3, 0, 7]);
    assert_eq!(out[4], 0x10);
}
