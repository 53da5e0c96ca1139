//! Client packets in: the fixed header checked before anything is buffered, the version
//! picked from CONNECT, and every version's packets mapped to [`Inbound`].

use super::*;

/// The fixed header: (packet type, header length, remaining length), or `None` if incomplete.
pub(super) fn fixed_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, CodecError> {
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
pub(super) fn connect_level(buf: &[u8], header_len: usize) -> Option<u8> {
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
    if kind == 1 {
        check_connect_flags(&buf[header_len..header_len + remaining])?;
        if level == Level::V5 {
            super::properties::check_connect(&buf[header_len..header_len + remaining])?;
        }
    }
    if kind == 3 && level == Level::V5 {
        super::properties::check_publish(buf[0] & 0x0f, &buf[header_len..header_len + remaining])?;
    }
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
    if kind == 8 {
        let body = &buf[header_len..header_len + remaining];
        match level {
            Level::V4 => check_v4_subscription_options(body)?,
            Level::V5 => check_v5_subscription(body)?,
        }
    }
    let max = max_packet;
    let packet = match level {
        Level::V4 => from_v4(v4::read(buf, max).map_err(map_err)?)?,
        Level::V5 => from_v5(v5::read(buf, max).map_err(map_err)?)?,
    };
    if let Some(field) = holds_nul(&packet) {
        return Err(CodecError::Malformed(format!("{field} contains U+0000")));
    }
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

/// CONNECT's flags byte (3.1.1 §3.1.2.3): the reserved bit must be 0 [MQTT-3.1.2-3]; in 3.1.1
/// a password needs a user name [MQTT-3.1.2-22] (5.0 allows one alone). `body` is the
/// variable header and payload.
pub(super) fn check_connect_flags(body: &[u8]) -> Result<(), CodecError> {
    let Some(name_len) = body
        .get(..2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
    else {
        return Err(CodecError::Malformed("truncated CONNECT".into()));
    };
    let (Some(&level), Some(&flags)) = (body.get(2 + name_len), body.get(3 + name_len)) else {
        return Err(CodecError::Malformed("truncated CONNECT".into()));
    };
    if flags & 0x01 != 0 {
        return Err(CodecError::Malformed(
            "CONNECT's reserved flag is set".into(),
        ));
    }
    if level != 5 && flags & 0xC0 == 0x40 {
        return Err(CodecError::Malformed(
            "CONNECT has a password but no user name".into(),
        ));
    }
    Ok(())
}

/// A 3.1.1 SUBSCRIBE's requested-QoS bytes: the upper six bits are reserved
/// [MQTT-3-8.3-4]. `body` is the packet id and the filters, each followed by its byte.
pub(super) fn check_v4_subscription_options(body: &[u8]) -> Result<(), CodecError> {
    check_options(
        body.get(2..).unwrap_or_default(),
        0xFC,
        "requested QoS byte",
    )
}

/// A 5.0 SUBSCRIBE: its properties (no repeats, no Subscription Identifier of 0), and bits 6
/// and 7 of each options byte, which are reserved [MQTT-3.8.3-5]. `body` is the packet id, the
/// properties and the filters.
pub(super) fn check_v5_subscription(body: &[u8]) -> Result<(), CodecError> {
    let Some(after_id) = body.get(2..) else {
        return Ok(()); // mqttbytes reports the truncation
    };
    let filters = super::properties::check_unique(after_id)?;
    check_options(filters, 0xC0, "options byte")
}

/// Each filter's byte after it (`filters`: length-prefixed filters, each followed by one byte)
/// must have none of the `reserved` bits set; what does not parse is left to mqttbytes.
fn check_options(mut filters: &[u8], reserved: u8, what: &str) -> Result<(), CodecError> {
    while filters.len() >= 2 {
        let len = u16::from_be_bytes([filters[0], filters[1]]) as usize;
        let Some(&options) = filters.get(2 + len) else {
            break;
        };
        if options & reserved != 0 {
            return Err(CodecError::Malformed(format!(
                "SUBSCRIBE's {what} {options:#04x} has reserved bits set"
            )));
        }
        filters = &filters[3 + len..];
    }
    Ok(())
}

/// The first string field of `p` holding U+0000, which MQTT strings must not [MQTT-1.5.3-2].
fn holds_nul(p: &Inbound) -> Option<&'static str> {
    let nul = |s: &str| s.contains('\0');
    match p {
        Inbound::Connect(c) => {
            if nul(&c.client_id) {
                Some("the client id")
            } else if c.login.as_ref().is_some_and(|(u, _)| nul(u)) {
                Some("the user name")
            } else if c.will.as_ref().is_some_and(|w| nul(&w.topic)) {
                Some("the will topic")
            } else {
                None
            }
        }
        Inbound::Publish(m) if nul(&m.topic) => Some("the topic name"),
        Inbound::Subscribe { filters, .. } if filters.iter().any(|f| nul(&f.filter)) => {
            Some("a topic filter")
        }
        Inbound::Unsubscribe { filters, .. } if filters.iter().any(|f| nul(f)) => {
            Some("a topic filter")
        }
        _ => None,
    }
}

/// The protocol name of MQTT 3.1, with its length prefix.
pub(super) const MQISDP: &[u8] = b"\x00\x06MQIsdp";

/// The fixed-header flags each packet type must carry (§2.2.2 of 3.1.1 and 5.0): reserved bits
/// that are wrong close the connection. PUBLISH carries DUP/QoS/RETAIN; QoS 3 is malformed.
pub(super) fn check_flags(kind: u8, flags: u8) -> Result<(), CodecError> {
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
pub(super) fn check_subscription_packet(kind: u8, body: &[u8]) -> Result<(), CodecError> {
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
pub(super) fn decode_v31_connect(
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

pub(super) fn from_v4(p: v4::Packet) -> Result<Inbound, CodecError> {
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

pub(super) fn pub_props(p: Option<v5::PublishProperties>) -> PubProps {
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

pub(super) fn from_v5(p: v5::Packet) -> Result<Inbound, CodecError> {
    Ok(match p {
        v5::Packet::Connect(c) => {
            let props = c.properties;
            // 5.0 §3.1.2.11: a Receive Maximum or Maximum Packet Size of 0 is a protocol error.
            if let Some(p) = &props {
                if p.receive_maximum == Some(0) {
                    return Err(CodecError::Protocol("Receive Maximum of 0".into()));
                }
                if p.max_packet_size == Some(0) {
                    return Err(CodecError::Protocol("Maximum Packet Size of 0".into()));
                }
            }
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
                    .unwrap_or(u16::MAX),
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
