//! The "MUST close" rules of MQTT 3.1.1 §1–4 that a decoder can see, one packet each: every
//! one decodes to an error (the session then closes the connection without an answer). Rules
//! that need the session's state (a second CONNECT, a first packet other than CONNECT, the
//! keep-alive) are tested on the session.

use super::*;

const MAX: usize = 64 * 1024;

/// A CONNECT, level 4, keep-alive 60, with `flags` and `payload` after the variable header.
fn connect(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 60];
    body.extend_from_slice(payload);
    let mut out = vec![0x10, body.len() as u8];
    out.extend(body);
    out
}

/// A length-prefixed string.
fn s(text: &[u8]) -> Vec<u8> {
    let mut out = vec![0, text.len() as u8];
    out.extend_from_slice(text);
    out
}

fn first(bytes: &[u8], level: Option<Level>) -> Result<Option<Inbound>, CodecError> {
    decode(&mut BytesMut::from(bytes), level, MAX)
}

/// After a valid CONNECT: the result of decoding `packet`.
fn after_connect(packet: &[u8]) -> Result<Option<Inbound>, CodecError> {
    first(packet, Some(Level::V4))
}

#[test]
fn connect_flags_that_break_the_spec_are_errors() {
    let id = s(b"c1");
    let will = [s(b"t"), s(b"m")].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // [MQTT-3.1.2-3] the reserved flag must be 0.
        ("reserved flag", connect(0x03, &id)),
        // [MQTT-3.1.2-14] will QoS must not be 3.
        (
            "will QoS 3",
            connect(0x1E, &[id.clone(), will.clone()].concat()),
        ),
        // [MQTT-3.1.2-13] no will: will QoS must be 0.
        ("will QoS without will", connect(0x0A, &id)),
        // [MQTT-3.1.2-15] no will: will retain must be 0.
        ("will retain without will", connect(0x22, &id)),
        // [MQTT-3.1.2-22] no user name: no password.
        (
            "password without user name",
            connect(0x42, &[id.clone(), s(b"pw")].concat()),
        ),
        // [MQTT-1.5.3-1] strings are well-formed UTF-8.
        ("client id not UTF-8", connect(0x02, &s(&[0xC3, 0x28]))),
        // [MQTT-1.5.3-2] strings hold no U+0000.
        ("client id with U+0000", connect(0x02, &s(b"a\0b"))),
    ];
    let accepted: Vec<&str> = cases
        .iter()
        .filter(|(_, bytes)| first(bytes, None).is_ok())
        .map(|(what, _)| *what)
        .collect();
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
    // The same CONNECT with valid flags decodes, as does 5.0's password without a user name.
    assert!(matches!(
        first(&connect(0x02, &id), None),
        Ok(Some(Inbound::Connect(_)))
    ));
    let mut v5 = vec![0, 4, b'M', b'Q', b'T', b'T', 5, 0x42, 0, 60, 0];
    v5.extend([id.clone(), s(b"pw")].concat());
    let mut packet = vec![0x10, v5.len() as u8];
    packet.extend(v5);
    assert!(
        matches!(first(&packet, None), Ok(Some(Inbound::Connect(_)))),
        "{:?}",
        first(&packet, None)
    );
}

#[test]
fn valid_v5_subscriptions_still_decode() {
    // Subscription Identifier 7 after a user property; No Local, Retain As Published, QoS 1.
    let ok = [
        0x82, 16, 0, 1, 9, 0x26, 0, 1, b'k', 0, 1, b'v', 0x0B, 7, 0, 1, b'a', 0x0D,
    ];
    assert!(
        matches!(
            after_v5_connect(&ok),
            Ok(Some(Inbound::Subscribe { id: Some(7), .. }))
        ),
        "{:?}",
        after_v5_connect(&ok)
    );
}

#[test]
fn valid_subscription_options_still_decode() {
    // QoS 0, 1 and 2 in one SUBSCRIBE.
    let ok = [0x82, 14, 0, 1, 0, 1, b'a', 0, 0, 1, b'b', 1, 0, 1, b'c', 2];
    assert!(matches!(
        after_connect(&ok),
        Ok(Some(Inbound::Subscribe { .. }))
    ));
}

#[test]
fn packets_after_connect_that_break_the_spec_are_errors() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // [MQTT-3.8.3-4] SUBSCRIBE: the requested QoS byte's upper bits are reserved.
        (
            "subscribe QoS reserved bits",
            vec![0x82, 6, 0, 1, 0, 1, b'a', 0x04],
        ),
        // [MQTT-3.8.3-4] requested QoS 3.
        ("subscribe QoS 3", vec![0x82, 6, 0, 1, 0, 1, b'a', 3]),
        // [MQTT-1.5.3-1] a topic that is not UTF-8.
        (
            "publish topic not UTF-8",
            vec![0x30, 5, 0, 2, 0xC3, 0x28, b'x'],
        ),
        // [MQTT-1.5.3-2] a topic with U+0000.
        (
            "publish topic with U+0000",
            vec![0x30, 5, 0, 2, b'a', 0, b'x'],
        ),
        // [MQTT-3.14.1-1] DISCONNECT's reserved flags.
        ("disconnect flags", vec![0xE1, 0]),
        // [MQTT-3.12.1] PINGREQ's reserved flags (2.2.2-2).
        ("pingreq flags", vec![0xC2, 0]),
        // [MQTT-2.2.2-2] PUBACK's reserved flags.
        ("puback flags", vec![0x41, 2, 0, 1]),
        // [MQTT-1.5.3-2] a filter with U+0000.
        (
            "subscribe filter with U+0000",
            vec![0x82, 7, 0, 1, 0, 2, b'a', 0, 1],
        ),
    ];
    let accepted: Vec<&str> = cases
        .iter()
        .filter(|(_, bytes)| after_connect(bytes).is_ok())
        .map(|(what, _)| *what)
        .collect();
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
}

/// After a valid MQTT 5 CONNECT: the result of decoding `packet`.
fn after_v5_connect(packet: &[u8]) -> Result<Option<Inbound>, CodecError> {
    first(packet, Some(Level::V5))
}

/// A v5 CONNECT with `props` as its properties, client id "c1".
fn v5_connect(props: &[u8]) -> Vec<u8> {
    let mut body = vec![
        0,
        4,
        b'M',
        b'Q',
        b'T',
        b'T',
        5,
        0x02,
        0,
        60,
        props.len() as u8,
    ];
    body.extend_from_slice(props);
    body.extend(s(b"c1"));
    let mut out = vec![0x10, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn mqtt5_rules_a_decoder_can_see_are_errors() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // §3.1.2.11.3: Receive Maximum 0 is a protocol error.
        ("receive maximum 0", v5_connect(&[0x21, 0, 0])),
        // §3.1.2.11.4: Maximum Packet Size 0 is a protocol error.
        ("maximum packet size 0", v5_connect(&[0x27, 0, 0, 0, 0])),
        // §3.1.2.11.2: a property given twice is a protocol error.
        (
            "session expiry twice",
            v5_connect(&[0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2]),
        ),
    ];
    let accepted: Vec<&str> = cases
        .iter()
        .filter(|(_, bytes)| first(bytes, None).is_ok())
        .map(|(what, _)| *what)
        .collect();
    assert!(accepted.is_empty(), "CONNECT accepted: {accepted:?}");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // SUBSCRIBE options: bits 6 and 7 are reserved [MQTT-3.8.3-5].
        (
            "options reserved bits",
            vec![0x82, 7, 0, 1, 0, 0, 1, b'a', 0x40],
        ),
        // Retain Handling 3 is a protocol error.
        (
            "retain handling 3",
            vec![0x82, 7, 0, 1, 0, 0, 1, b'a', 0x30],
        ),
        // Subscription Identifier 0 is a protocol error, after a user property too.
        (
            "subscription id 0",
            vec![0x82, 9, 0, 1, 2, 0x0B, 0, 0, 1, b'a', 0],
        ),
        (
            "subscription id 0 after a user property",
            vec![
                0x82, 16, 0, 1, 9, 0x26, 0, 1, b'k', 0, 1, b'v', 0x0B, 0, 0, 1, b'a', 0,
            ],
        ),
        // QoS 3 requested.
        ("requested QoS 3", vec![0x82, 7, 0, 1, 0, 0, 1, b'a', 3]),
        // §3.3.2.3: a PUBLISH property given twice (Message Expiry Interval).
        (
            "publish property twice",
            vec![0x30, 14, 0, 1, b't', 10, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2],
        ),
    ];
    let accepted: Vec<&str> = cases
        .iter()
        .filter(|(_, bytes)| after_v5_connect(bytes).is_ok())
        .map(|(what, _)| *what)
        .collect();
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
}

#[test]
fn a_zero_subscription_identifier_is_a_protocol_error_wherever_it_stands() {
    for bad in [
        &[0x82u8, 9, 0, 1, 2, 0x0B, 0, 0, 1, b'a', 0][..],
        &[
            0x82, 16, 0, 1, 9, 0x26, 0, 1, b'k', 0, 1, b'v', 0x0B, 0, 0, 1, b'a', 0,
        ],
    ] {
        let got = after_v5_connect(bad);
        assert!(
            matches!(got, Err(CodecError::Protocol(_))),
            "{bad:?}: {got:?}"
        );
    }
}
