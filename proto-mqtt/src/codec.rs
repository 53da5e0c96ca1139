//! MQTT 3.1.1 and 5.0 packets, version-neutral, on top of mqttbytes; no I/O.
//!
//! mqttbytes decodes and encodes the packets; this module picks the version from CONNECT, fills
//! the gaps (AUTH, a v5 DISCONNECT with no reason code, protocol level 3) and hands the session
//! one packet type whatever the version.

use bytes::{BufMut, Bytes, BytesMut};
use junction_core::runtime::WriteBuf;
use mqttbytes::{v4, v5, QoS};
use thiserror::Error;

/// Protocol level chosen by CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    V4,
    V5,
}

/// MQTT 5 publish properties (empty for 3.1.1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PubProps {
    pub payload_format: Option<u8>,
    pub expiry: Option<u32>,
    pub topic_alias: Option<u16>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<(String, String)>,
    pub subscription_ids: Vec<usize>,
    pub content_type: Option<String>,
}

/// A will message from CONNECT.
#[derive(Debug, Clone, PartialEq)]
pub struct Will {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// Seconds to wait before publishing it (v5 will delay interval).
    pub delay: u32,
    pub props: PubProps,
}

/// What CONNECT asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectInfo {
    pub level: Level,
    pub client_id: String,
    pub clean_start: bool,
    pub keep_alive: u16,
    pub login: Option<(String, String)>,
    pub will: Option<Will>,
    /// v5 session expiry interval (3.1.1: 0 for clean sessions, forever otherwise).
    pub session_expiry: u32,
    pub receive_maximum: u16,
    pub max_packet_size: Option<u32>,
    pub topic_alias_max: u16,
    pub auth_method: Option<String>,
    /// MQTT 3.1 (`MQIsdp`, level 3), decoded as 3.1.1: its CONNACK has no Session Present.
    pub legacy_31: bool,
}

/// A PUBLISH in either direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub dup: bool,
    pub qos: u8,
    pub retain: bool,
    pub topic: String,
    pub pkid: u16,
    pub props: PubProps,
    pub payload: Bytes,
}

/// One filter of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FilterReq {
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 0 send retained, 1 only for a new subscription, 2 never.
    pub retain_handling: u8,
}

/// A packet from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Connect(Box<ConnectInfo>),
    Publish(Publish),
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    Subscribe {
        pkid: u16,
        filters: Vec<FilterReq>,
        id: Option<usize>,
    },
    Unsubscribe {
        pkid: u16,
        filters: Vec<String>,
    },
    PingReq,
    Disconnect {
        reason: u8,
        session_expiry: Option<u32>,
    },
    /// MQTT 5 AUTH (enhanced authentication), which Junction does not offer.
    Auth,
}

/// Why bytes could not be taken as a packet; each maps to a v5 reason code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    #[error("malformed packet: {0}")]
    Malformed(String),
    #[error("packet of {0} bytes exceeds the maximum packet size")]
    TooLarge(usize),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("unsupported protocol level {0}")]
    UnsupportedLevel(u8),
}

impl CodecError {
    /// The MQTT 5 reason code for a DISCONNECT (or CONNACK) about this error.
    pub fn reason_code(&self) -> u8 {
        match self {
            CodecError::Malformed(_) => 0x81,
            CodecError::TooLarge(_) => 0x95,
            CodecError::Protocol(_) => 0x82,
            CodecError::UnsupportedLevel(_) => 0x84,
        }
    }
}

fn qos_u8(q: QoS) -> u8 {
    q as u8
}

fn qos_of(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn map_err(e: mqttbytes::Error) -> CodecError {
    match e {
        mqttbytes::Error::PayloadSizeLimitExceeded(n) => CodecError::TooLarge(n),
        mqttbytes::Error::UnexpectedConnect => CodecError::Protocol("second CONNECT".into()),
        other => CodecError::Malformed(format!("{other:?}")),
    }
}

/// The fixed header: (packet type, header length, remaining length), or `None` if incomplete.
fn fixed_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, CodecError> {
    let Some(&b1) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        len |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((b1 >> 4, 2 + i, len)));
        }
    }
    Err(CodecError::Malformed(
        "remaining length longer than 4 bytes".into(),
    ))
}

/// The protocol level a CONNECT packet declares (byte after the protocol name).
fn connect_level(buf: &[u8], header_len: usize) -> Option<u8> {
    let name_len = u16::from_be_bytes([*buf.get(header_len)?, *buf.get(header_len + 1)?]) as usize;
    buf.get(header_len + 2 + name_len).copied()
}

/// Decodes one packet; `Ok(None)` = need more bytes. `level` is `None` until CONNECT. A packet
/// over `max_packet` bytes is refused from its fixed header, before it is buffered.
pub fn decode(
    buf: &mut BytesMut,
    level: Option<Level>,
    max_packet: usize,
) -> Result<Option<Inbound>, CodecError> {
    let Some((kind, header_len, remaining)) = fixed_header(buf)? else {
        return Ok(None);
    };
    if header_len + remaining > max_packet {
        return Err(CodecError::TooLarge(header_len + remaining));
    }
    if buf.len() < header_len + remaining {
        buf.reserve(header_len + remaining - buf.len());
        return Ok(None);
    }
    let level = match level {
        Some(l) => l,
        None => {
            if kind != 1 {
                return Err(CodecError::Protocol(
                    "the first packet must be CONNECT".into(),
                ));
            }
            match connect_level(buf, header_len) {
                Some(4) => Level::V4,
                Some(5) => Level::V5,
                Some(3) if buf.get(header_len..header_len + 8) == Some(MQISDP) => {
                    return decode_v31_connect(buf, header_len, remaining, max_packet);
                }
                Some(other) => {
                    let _ = buf.split_to(header_len + remaining);
                    return Err(CodecError::UnsupportedLevel(other));
                }
                None => return Err(CodecError::Malformed("truncated CONNECT".into())),
            }
        }
    };
    check_flags(kind, buf[0] & 0x0f)?;
    // Packets mqttbytes does not decode.
    if kind == 15 || kind == 0 {
        let _ = buf.split_to(header_len + remaining);
        return match (kind, level) {
            (15, Level::V5) => Ok(Some(Inbound::Auth)),
            _ => Err(CodecError::Malformed(format!("invalid packet type {kind}"))),
        };
    }
    if kind == 14 && remaining == 0 {
        let _ = buf.split_to(header_len);
        return Ok(Some(Inbound::Disconnect {
            reason: 0,
            session_expiry: None,
        }));
    }
    if matches!(kind, 8 | 10) {
        check_subscription_packet(kind, &buf[header_len..header_len + remaining])?;
    }
    let max = max_packet;
    let packet = match level {
        Level::V4 => from_v4(v4::read(buf, max).map_err(map_err)?)?,
        Level::V5 => from_v5(v5::read(buf, max).map_err(map_err)?)?,
    };
    match &packet {
        Inbound::Subscribe { filters, .. } if filters.is_empty() => Err(CodecError::Protocol(
            "SUBSCRIBE with no topic filter".into(),
        )),
        Inbound::Unsubscribe { filters, .. } if filters.is_empty() => Err(CodecError::Protocol(
            "UNSUBSCRIBE with no topic filter".into(),
        )),
        _ => Ok(Some(packet)),
    }
}

/// The protocol name of MQTT 3.1, with its length prefix.
const MQISDP: &[u8] = b"\x00\x06MQIsdp";

/// The fixed-header flags each packet type must carry (§2.2.2 of 3.1.1 and 5.0): reserved bits
/// that are wrong close the connection. PUBLISH carries DUP/QoS/RETAIN; QoS 3 is malformed.
fn check_flags(kind: u8, flags: u8) -> Result<(), CodecError> {
    let ok = match kind {
        3 => flags & 0b0110 != 0b0110,
        6 | 8 | 10 => flags == 0b0010,
        _ => flags == 0,
    };
    if ok {
        Ok(())
    } else {
        Err(CodecError::Malformed(format!(
            "invalid fixed-header flags {flags:#06b} for packet type {kind}"
        )))
    }
}

/// SUBSCRIBE and UNSUBSCRIBE need a non-zero packet id (§2.2.1) and at least one topic filter
/// (3.1.1 §3.8.3-3, §3.10.3-2; 5.0: a protocol error). `body` is the variable header and payload.
fn check_subscription_packet(kind: u8, body: &[u8]) -> Result<(), CodecError> {
    let name = if kind == 8 {
        "SUBSCRIBE"
    } else {
        "UNSUBSCRIBE"
    };
    let Some(id) = body.get(..2) else {
        return Err(CodecError::Malformed(format!("{name} without a packet id")));
    };
    if id == [0, 0] {
        return Err(CodecError::Protocol(format!("{name} with packet id 0")));
    }
    // A packet that ends with the id has no filter (and, in 5.0, no properties either); one
    // whose filter list is empty after the properties is refused once decoded.
    if body.len() == 2 {
        return Err(CodecError::Protocol(format!("{name} with no topic filter")));
    }
    Ok(())
}

/// Decodes an MQTT 3.1 CONNECT (`MQIsdp`, level 3) as the 3.1.1 CONNECT it differs from only by
/// name and level, as Mosquitto and RabbitMQ accept it.
fn decode_v31_connect(
    buf: &mut BytesMut,
    header_len: usize,
    remaining: usize,
    max_packet: usize,
) -> Result<Option<Inbound>, CodecError> {
    let packet = buf.split_to(header_len + remaining);
    let rest = &packet[header_len + MQISDP.len() + 1..];
    let mut body = Vec::with_capacity(remaining);
    body.extend_from_slice(b"\x00\x04MQTT\x04");
    body.extend_from_slice(rest);
    let mut rewritten = BytesMut::with_capacity(body.len() + 5);
    rewritten.extend_from_slice(&[packet[0]]);
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        rewritten.extend_from_slice(&[b]);
        if len == 0 {
            break;
        }
    }
    rewritten.extend_from_slice(&body);
    match from_v4(v4::read(&mut rewritten, max_packet).map_err(map_err)?)? {
        Inbound::Connect(mut c) => {
            c.legacy_31 = true;
            Ok(Some(Inbound::Connect(c)))
        }
        _ => Err(CodecError::Malformed("not a CONNECT".into())),
    }
}

fn from_v4(p: v4::Packet) -> Result<Inbound, CodecError> {
    Ok(match p {
        v4::Packet::Connect(c) => Inbound::Connect(Box::new(ConnectInfo {
            level: Level::V4,
            client_id: c.client_id,
            clean_start: c.clean_session,
            keep_alive: c.keep_alive,
            login: c.login.map(|l| (l.username, l.password)),
            will: c.last_will.map(|w| Will {
                topic: w.topic,
                payload: w.message,
                qos: qos_u8(w.qos),
                retain: w.retain,
                delay: 0,
                props: PubProps::default(),
            }),
            session_expiry: if c.clean_session { 0 } else { u32::MAX },
            receive_maximum: u16::MAX,
            max_packet_size: None,
            topic_alias_max: 0,
            auth_method: None,
            legacy_31: false,
        })),
        v4::Packet::Publish(p) => Inbound::Publish(Publish {
            dup: p.dup,
            qos: qos_u8(p.qos),
            retain: p.retain,
            topic: p.topic,
            pkid: p.pkid,
            props: PubProps::default(),
            payload: p.payload,
        }),
        v4::Packet::PubAck(a) => Inbound::PubAck(a.pkid),
        v4::Packet::PubRec(a) => Inbound::PubRec(a.pkid),
        v4::Packet::PubRel(a) => Inbound::PubRel(a.pkid),
        v4::Packet::PubComp(a) => Inbound::PubComp(a.pkid),
        v4::Packet::Subscribe(s) => Inbound::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| FilterReq {
                    filter: f.path,
                    qos: qos_u8(f.qos),
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: 0,
                })
                .collect(),
            id: None,
        },
        v4::Packet::Unsubscribe(u) => Inbound::Unsubscribe {
            pkid: u.pkid,
            filters: u.topics,
        },
        v4::Packet::PingReq => Inbound::PingReq,
        v4::Packet::Disconnect => Inbound::Disconnect {
            reason: 0,
            session_expiry: None,
        },
        other => {
            return Err(CodecError::Protocol(format!(
                "unexpected packet from a client: {other:?}"
            )))
        }
    })
}

fn pub_props(p: Option<v5::PublishProperties>) -> PubProps {
    let Some(p) = p else {
        return PubProps::default();
    };
    PubProps {
        payload_format: p.payload_format_indicator,
        expiry: p.message_expiry_interval,
        topic_alias: p.topic_alias,
        response_topic: p.response_topic,
        correlation_data: p.correlation_data,
        user_properties: p.user_properties,
        subscription_ids: p.subscription_identifiers,
        content_type: p.content_type,
    }
}

fn from_v5(p: v5::Packet) -> Result<Inbound, CodecError> {
    Ok(match p {
        v5::Packet::Connect(c) => {
            let props = c.properties;
            let prop = |f: fn(&v5::ConnectProperties) -> Option<u32>| props.as_ref().and_then(f);
            Inbound::Connect(Box::new(ConnectInfo {
                level: Level::V5,
                client_id: c.client_id,
                clean_start: c.clean_session,
                keep_alive: c.keep_alive,
                login: c.login.map(|l| (l.username, l.password)),
                will: c.last_will.map(|w| {
                    let (delay, props) = match w.properties {
                        None => (0, PubProps::default()),
                        Some(wp) => (
                            wp.delay_interval.unwrap_or(0),
                            PubProps {
                                payload_format: wp.payload_format_indicator,
                                expiry: wp.message_expiry_interval,
                                topic_alias: None,
                                response_topic: wp.response_topic,
                                correlation_data: wp.correlation_data,
                                user_properties: wp.user_properties,
                                subscription_ids: Vec::new(),
                                content_type: wp.content_type,
                            },
                        ),
                    };
                    Will {
                        topic: w.topic,
                        payload: w.message,
                        qos: qos_u8(w.qos),
                        retain: w.retain,
                        delay,
                        props,
                    }
                }),
                session_expiry: prop(|p| p.session_expiry_interval).unwrap_or(0),
                receive_maximum: props
                    .as_ref()
                    .and_then(|p| p.receive_maximum)
                    .unwrap_or(u16::MAX)
                    .max(1),
                max_packet_size: prop(|p| p.max_packet_size),
                topic_alias_max: props.as_ref().and_then(|p| p.topic_alias_max).unwrap_or(0),
                auth_method: props.as_ref().and_then(|p| p.authentication_method.clone()),
                legacy_31: false,
            }))
        }
        v5::Packet::Publish(p) => Inbound::Publish(Publish {
            dup: p.dup,
            qos: qos_u8(p.qos),
            retain: p.retain,
            topic: p.topic,
            pkid: p.pkid,
            props: pub_props(p.properties),
            payload: p.payload,
        }),
        v5::Packet::PubAck(a) => Inbound::PubAck(a.pkid),
        v5::Packet::PubRec(a) => Inbound::PubRec(a.pkid),
        v5::Packet::PubRel(a) => Inbound::PubRel(a.pkid),
        v5::Packet::PubComp(a) => Inbound::PubComp(a.pkid),
        v5::Packet::Subscribe(s) => Inbound::Subscribe {
            pkid: s.pkid,
            id: s.properties.and_then(|p| p.id),
            filters: s
                .filters
                .into_iter()
                .map(|f| FilterReq {
                    filter: f.path,
                    qos: qos_u8(f.qos),
                    no_local: f.nolocal,
                    retain_as_published: f.preserve_retain,
                    retain_handling: match f.retain_forward_rule {
                        v5::RetainForwardRule::OnEverySubscribe => 0,
                        v5::RetainForwardRule::OnNewSubscribe => 1,
                        v5::RetainForwardRule::Never => 2,
                    },
                })
                .collect(),
        },
        v5::Packet::Unsubscribe(u) => Inbound::Unsubscribe {
            pkid: u.pkid,
            filters: u.filters,
        },
        v5::Packet::PingReq => Inbound::PingReq,
        v5::Packet::Disconnect(d) => Inbound::Disconnect {
            reason: d.reason_code as u8,
            session_expiry: d.properties.and_then(|p| p.session_expiry_interval),
        },
        other => {
            return Err(CodecError::Protocol(format!(
                "unexpected packet from a client: {other:?}"
            )))
        }
    })
}

/// What CONNACK carries beyond the code.
#[derive(Debug, Clone, Default)]
pub struct ConnAckInfo {
    pub session_present: bool,
    pub assigned_client_id: Option<String>,
    pub reason_string: Option<String>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_max: Option<u16>,
    pub max_packet_size: Option<u32>,
    pub session_expiry: Option<u32>,
}

/// Appends a CONNACK. `code` is the v5 reason code; 3.1.1 gets its nearest return code.
pub fn connack(level: Level, code: u8, info: &ConnAckInfo, out: &mut BytesMut) {
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

fn v5_connack_code(code: u8) -> v5::ConnectReturnCode {
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
const MAX_REMAINING: usize = 268_435_455;

/// Bytes the remaining length `n` takes: 7 bits each.
fn remaining_length_bytes(n: usize) -> usize {
    (1..4).find(|&k| n < 1 << (7 * k)).unwrap_or(4)
}

/// Appends the remaining length `n` (at most [`MAX_REMAINING`]), 7 bits a byte, low first.
fn put_remaining_length(b: &mut BytesMut, mut n: usize) {
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
    PubAck,
    PubRec,
    PubRel,
    PubComp,
}

/// Appends PUBACK/PUBREC/PUBREL/PUBCOMP with a v5 reason code (dropped for 3.1.1).
pub fn ack(level: Level, kind: Ack, pkid: u16, reason: u8, out: &mut BytesMut) {
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

pub fn pingresp(out: &mut BytesMut) {
    out.extend_from_slice(&[0xD0, 0x00]);
}

/// Appends a v5 DISCONNECT with a reason code and reason string (3.1.1 has none: nothing).
pub fn disconnect(level: Level, reason: u8, reason_string: &str, out: &mut BytesMut) {
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

fn write_varint(mut n: usize, out: &mut Vec<u8>) {
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

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
