//! Server packets out, for either version: CONNACK, PUBLISH (large bodies not copied), the
//! acknowledgements, SUBACK, UNSUBACK, PINGRESP, DISCONNECT.

use super::*;

/// What CONNACK carries beyond the code.
#[derive(Debug, Clone, Default)]
pub struct ConnAckInfo {
    /// The server had a session for the client.
    pub session_present: bool,
    /// The client id the server chose (v5, for an empty one).
    pub assigned_client_id: Option<String>,
    /// A text for the client (v5).
    pub reason_string: Option<String>,
    /// How many QoS 1/2 PUBLISHes the server takes at once (v5).
    pub receive_maximum: Option<u16>,
    /// The highest topic alias the server accepts (v5).
    pub topic_alias_max: Option<u16>,
    /// The largest packet the server accepts (v5).
    pub max_packet_size: Option<u32>,
    /// The session expiry the server grants (v5).
    pub session_expiry: Option<u32>,
}

/// Appends a CONNACK. `code` is the v5 reason code; 3.1.1 gets its nearest return code.
pub fn connack(level: Level, code: ReasonCode, info: &ConnAckInfo, out: &mut BytesMut) {
    let code = code.code();
    match level {
        Level::V4 => {
            let rc = match code {
                0 => v4::ConnectReturnCode::Success,
                0x84 => v4::ConnectReturnCode::RefusedProtocolVersion,
                0x85 => v4::ConnectReturnCode::BadClientId,
                0x86 => v4::ConnectReturnCode::BadUserNamePassword,
                0x87 => v4::ConnectReturnCode::NotAuthorized,
                _ => v4::ConnectReturnCode::ServiceUnavailable,
            };
            let _ = v4::ConnAck::new(rc, info.session_present && code == 0).write(out);
        }
        Level::V5 => {
            let rc = v5_connack_code(code);
            let mut p = v5::ConnAckProperties::new();
            p.assigned_client_identifier = info.assigned_client_id.clone();
            p.reason_string = info.reason_string.clone();
            p.receive_max = info.receive_maximum;
            p.topic_alias_max = info.topic_alias_max;
            p.max_packet_size = info.max_packet_size;
            p.session_expiry_interval = info.session_expiry;
            p.retain_available = Some(1);
            p.wildcard_subscription_available = Some(1);
            p.subscription_identifiers_available = Some(1);
            p.shared_subscription_available = Some(1);
            let mut ack = v5::ConnAck::new(rc, info.session_present && code == 0);
            ack.properties = Some(p);
            let _ = ack.write(out);
        }
    }
}

pub(super) fn v5_connack_code(code: u8) -> v5::ConnectReturnCode {
    use v5::ConnectReturnCode::*;
    match code {
        0 => Success,
        0x81 => MalformedPacket,
        0x82 => ProtocolError,
        0x84 => UnsupportedProtocolVersion,
        0x85 => ClientIdentifierNotValid,
        0x86 => BadUserNamePassword,
        0x87 => NotAuthorized,
        0x88 => ServerUnavailable,
        0x8C => BadAuthenticationMethod,
        0x95 => PacketTooLarge,
        _ => UnspecifiedError,
    }
}

/// A 3.1.1 CONNACK refusing an unsupported protocol level (also used for 3.1 clients).
pub fn connack_refused_level(out: &mut BytesMut) {
    let _ = v4::ConnAck::new(v4::ConnectReturnCode::RefusedProtocolVersion, false).write(out);
}

/// The largest remaining length a fixed header can carry (MQTT 3.1.1 §2.2.3).
pub(super) const MAX_REMAINING: usize = 268_435_455;

/// Bytes the remaining length `n` takes: 7 bits each.
pub(super) fn remaining_length_bytes(n: usize) -> usize {
    (1..4).find(|&k| n < 1 << (7 * k)).unwrap_or(4)
}

/// Appends the remaining length `n` (at most [`MAX_REMAINING`]), 7 bits a byte, low first.
pub(super) fn put_remaining_length(b: &mut BytesMut, mut n: usize) {
    while n >= 128 {
        b.put_u8((n % 128) as u8 | 0x80);
        n /= 128;
    }
    b.put_u8(n as u8);
}

/// Appends a PUBLISH unless the whole packet would exceed `max_packet` (the client's Maximum
/// Packet Size); returns whether it was written. A 3.1.1 body is not copied when large: the
/// header is encoded here (§3.3) and the body follows as its own chunk.
pub fn publish(level: Level, p: &Publish, max_packet: Option<u32>, out: &mut WriteBuf) -> bool {
    let fits = |len: usize| max_packet.is_none_or(|max| len <= max as usize);
    match level {
        Level::V4 => {
            let remaining = 2 + p.topic.len() + if p.qos > 0 { 2 } else { 0 } + p.payload.len();
            if remaining > MAX_REMAINING
                || p.topic.len() > usize::from(u16::MAX)
                || !fits(1 + remaining_length_bytes(remaining) + remaining)
            {
                return false;
            }
            let b = out.buf();
            b.put_u8(0x30 | u8::from(p.dup) << 3 | p.qos << 1 | u8::from(p.retain));
            put_remaining_length(b, remaining);
            b.put_u16(p.topic.len() as u16);
            b.extend_from_slice(p.topic.as_bytes());
            if p.qos > 0 {
                b.put_u16(p.pkid);
            }
            out.put_bytes(&p.payload);
            true
        }
        Level::V5 => {
            let mut m = v5::Publish::from_bytes(&p.topic, qos_of(p.qos), p.payload.clone());
            m.dup = p.dup;
            m.retain = p.retain;
            m.pkid = p.pkid;
            let pp = &p.props;
            if *pp != PubProps::default() {
                m.properties = Some(v5::PublishProperties {
                    payload_format_indicator: pp.payload_format,
                    message_expiry_interval: pp.expiry,
                    topic_alias: pp.topic_alias,
                    response_topic: pp.response_topic.clone(),
                    correlation_data: pp.correlation_data.clone(),
                    user_properties: pp.user_properties.clone(),
                    subscription_identifiers: pp.subscription_ids.clone(),
                    content_type: pp.content_type.clone(),
                });
            }
            let b = out.buf();
            let start = b.len();
            match m.write(b) {
                Ok(n) if fits(n) => true,
                _ => {
                    b.truncate(start);
                    false
                }
            }
        }
    }
}

/// Which acknowledgement of the QoS 1/2 flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// QoS 1: received.
    PubAck,
    /// QoS 2, step 1: received.
    PubRec,
    /// QoS 2, step 2: release.
    PubRel,
    /// QoS 2, step 3: complete.
    PubComp,
}

/// Appends PUBACK/PUBREC/PUBREL/PUBCOMP with a v5 reason code (dropped for 3.1.1).
pub fn ack(level: Level, kind: Ack, pkid: u16, reason: ReasonCode, out: &mut BytesMut) {
    let reason = reason.code();
    match level {
        Level::V4 => {
            let _ = match kind {
                Ack::PubAck => v4::PubAck::new(pkid).write(out),
                Ack::PubRec => v4::PubRec::new(pkid).write(out),
                Ack::PubRel => v4::PubRel::new(pkid).write(out),
                Ack::PubComp => v4::PubComp::new(pkid).write(out),
            };
        }
        Level::V5 => {
            // Reason 0 with no properties is written in the short form by mqttbytes.
            let _ = match kind {
                Ack::PubAck => {
                    let mut a = v5::PubAck::new(pkid);
                    a.reason = match reason {
                        0x10 => v5::PubAckReason::NoMatchingSubscribers,
                        0x87 => v5::PubAckReason::NotAuthorized,
                        0x90 => v5::PubAckReason::TopicNameInvalid,
                        0x91 => v5::PubAckReason::PacketIdentifierInUse,
                        0x97 => v5::PubAckReason::QuotaExceeded,
                        0x80 => v5::PubAckReason::UnspecifiedError,
                        _ => v5::PubAckReason::Success,
                    };
                    a.write(out)
                }
                Ack::PubRec => {
                    let mut a = v5::PubRec::new(pkid);
                    a.reason = match reason {
                        0x10 => v5::PubRecReason::NoMatchingSubscribers,
                        0x87 => v5::PubRecReason::NotAuthorized,
                        0x90 => v5::PubRecReason::TopicNameInvalid,
                        0x97 => v5::PubRecReason::QuotaExceeded,
                        0x80 => v5::PubRecReason::UnspecifiedError,
                        _ => v5::PubRecReason::Success,
                    };
                    a.write(out)
                }
                Ack::PubRel => {
                    let mut a = v5::PubRel::new(pkid);
                    if reason == 0x92 {
                        a.reason = v5::PubRelReason::PacketIdentifierNotFound;
                    }
                    a.write(out)
                }
                Ack::PubComp => {
                    let mut a = v5::PubComp::new(pkid);
                    if reason == 0x92 {
                        a.reason = v5::PubCompReason::PacketIdentifierNotFound;
                    }
                    a.write(out)
                }
            };
        }
    }
}

/// Appends a SUBACK; `codes` are granted QoS (0–2) or failure codes (≥ 0x80).
pub fn suback(level: Level, pkid: u16, codes: &[u8], out: &mut BytesMut) {
    match level {
        Level::V4 => {
            let rc = codes
                .iter()
                .map(|&c| match c {
                    0..=2 => v4::SubscribeReasonCode::Success(qos_of(c)),
                    _ => v4::SubscribeReasonCode::Failure,
                })
                .collect();
            let _ = v4::SubAck::new(pkid, rc).write(out);
        }
        Level::V5 => {
            use v5::SubscribeReasonCode as R;
            let rc = codes
                .iter()
                .map(|&c| match c {
                    0 => R::QoS0,
                    1 => R::QoS1,
                    2 => R::QoS2,
                    0x87 => R::NotAuthorized,
                    0x8F => R::TopicFilterInvalid,
                    0x91 => R::PkidInUse,
                    0x97 => R::QuotaExceeded,
                    0x9E => R::SharedSubscriptionsNotSupported,
                    0xA2 => R::WildcardSubscriptionsNotSupported,
                    0x83 => R::ImplementationSpecific,
                    _ => R::Unspecified,
                })
                .collect();
            let _ = v5::SubAck::new(pkid, rc).write(out);
        }
    }
}

/// Appends an UNSUBACK (v5 with one reason per filter: 0 success, 0x11 none existed).
pub fn unsuback(level: Level, pkid: u16, existed: &[bool], out: &mut BytesMut) {
    match level {
        Level::V4 => {
            let _ = v4::UnsubAck::new(pkid).write(out);
        }
        Level::V5 => {
            let mut u = v5::UnsubAck::new(pkid);
            u.reasons = existed
                .iter()
                .map(|&e| {
                    if e {
                        v5::UnsubAckReason::Success
                    } else {
                        v5::UnsubAckReason::NoSubscriptionExisted
                    }
                })
                .collect();
            let _ = u.write(out);
        }
    }
}

/// Appends a PINGRESP.
pub fn pingresp(out: &mut BytesMut) {
    out.extend_from_slice(&[0xD0, 0x00]);
}

/// Appends a v5 DISCONNECT with a reason code and reason string (3.1.1 has none: nothing).
pub fn disconnect(level: Level, reason: ReasonCode, reason_string: &str, out: &mut BytesMut) {
    let reason = reason.code();
    if level != Level::V5 {
        return;
    }
    // Encoded by hand: mqttbytes only encodes the reason codes it lists.
    let mut props = BytesMut::new();
    if !reason_string.is_empty() {
        let s = &reason_string.as_bytes()[..reason_string.len().min(1024)];
        props.extend_from_slice(&[0x1F]);
        props.extend_from_slice(&(s.len() as u16).to_be_bytes());
        props.extend_from_slice(s);
    }
    let mut body = vec![reason];
    write_varint(props.len(), &mut body);
    body.extend_from_slice(&props);
    out.extend_from_slice(&[0xE0]);
    let mut len = Vec::new();
    write_varint(body.len(), &mut len);
    out.extend_from_slice(&len);
    out.extend_from_slice(&body);
}

pub(super) fn write_varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}
