//! The content header: class, body size and basic properties with their presence flags.

use super::types::{field_table, put_short_string, put_table, short_string, Res};
use bytes::{BufMut, BytesMut};
use junction_core::Properties;
use nom::number::complete::{be_u16, be_u64, be_u8};

const CONTENT_TYPE: u16 = 1 << 15;
const CONTENT_ENCODING: u16 = 1 << 14;
const HEADERS: u16 = 1 << 13;
const DELIVERY_MODE: u16 = 1 << 12;
const PRIORITY: u16 = 1 << 11;
const CORRELATION_ID: u16 = 1 << 10;
const REPLY_TO: u16 = 1 << 9;
const EXPIRATION: u16 = 1 << 8;
const MESSAGE_ID: u16 = 1 << 7;
const TIMESTAMP: u16 = 1 << 6;
const TYPE: u16 = 1 << 5;
const USER_ID: u16 = 1 << 4;
const APP_ID: u16 = 1 << 3;
const CLUSTER_ID: u16 = 1 << 2;

/// A decoded content header.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentHeader {
    /// The class the content belongs to (60, basic).
    pub class_id: u16,
    /// The body's total size.
    pub body_size: u64,
    /// The content's properties.
    pub properties: Properties,
}

fn opt<'a, T>(
    i: &'a [u8],
    flags: u16,
    bit: u16,
    p: impl Fn(&'a [u8]) -> Res<'a, T>,
) -> Res<'a, Option<T>> {
    if flags & bit != 0 {
        let (i, v) = p(i)?;
        Ok((i, Some(v)))
    } else {
        Ok((i, None))
    }
}

/// Parses a content header frame's payload.
pub fn decode_content_header(i: &[u8], depth: usize) -> Res<'_, ContentHeader> {
    let (i, class_id) = be_u16(i)?;
    let (i, _weight) = be_u16(i)?;
    let (i, body_size) = be_u64(i)?;
    let (mut i, flags) = be_u16(i)?;
    // Further flag words (bit 0 = continuation) carry no property 0-9-1 defines.
    let mut more = flags & 1 != 0;
    while more {
        let (rest, f) = be_u16(i)?;
        more = f & 1 != 0;
        i = rest;
    }
    let (i, content_type) = opt(i, flags, CONTENT_TYPE, short_string)?;
    let (i, content_encoding) = opt(i, flags, CONTENT_ENCODING, short_string)?;
    let (i, headers) = opt(i, flags, HEADERS, |i| field_table(i, depth))?;
    let (i, delivery_mode) = opt(i, flags, DELIVERY_MODE, be_u8)?;
    let (i, priority) = opt(i, flags, PRIORITY, be_u8)?;
    let (i, correlation_id) = opt(i, flags, CORRELATION_ID, short_string)?;
    let (i, reply_to) = opt(i, flags, REPLY_TO, short_string)?;
    let (i, expiration) = opt(i, flags, EXPIRATION, short_string)?;
    let (i, message_id) = opt(i, flags, MESSAGE_ID, short_string)?;
    let (i, timestamp) = opt(i, flags, TIMESTAMP, be_u64)?;
    let (i, kind) = opt(i, flags, TYPE, short_string)?;
    let (i, user_id) = opt(i, flags, USER_ID, short_string)?;
    let (i, app_id) = opt(i, flags, APP_ID, short_string)?;
    let (i, cluster_id) = opt(i, flags, CLUSTER_ID, short_string)?;
    Ok((
        i,
        ContentHeader {
            class_id,
            body_size,
            properties: Properties {
                content_type,
                content_encoding,
                headers,
                delivery_mode,
                priority,
                correlation_id,
                reply_to,
                expiration,
                message_id,
                timestamp,
                kind,
                user_id,
                app_id,
                cluster_id,
            },
        },
    ))
}

/// Writes a content header payload.
pub fn encode_content_header(class_id: u16, body_size: u64, p: &Properties, out: &mut BytesMut) {
    out.put_u16(class_id);
    out.put_u16(0);
    out.put_u64(body_size);
    let mut flags = 0u16;
    let mut set = |present: bool, bit: u16| {
        if present {
            flags |= bit
        }
    };
    set(p.content_type.is_some(), CONTENT_TYPE);
    set(p.content_encoding.is_some(), CONTENT_ENCODING);
    set(p.headers.is_some(), HEADERS);
    set(p.delivery_mode.is_some(), DELIVERY_MODE);
    set(p.priority.is_some(), PRIORITY);
    set(p.correlation_id.is_some(), CORRELATION_ID);
    set(p.reply_to.is_some(), REPLY_TO);
    set(p.expiration.is_some(), EXPIRATION);
    set(p.message_id.is_some(), MESSAGE_ID);
    set(p.timestamp.is_some(), TIMESTAMP);
    set(p.kind.is_some(), TYPE);
    set(p.user_id.is_some(), USER_ID);
    set(p.app_id.is_some(), APP_ID);
    set(p.cluster_id.is_some(), CLUSTER_ID);
    out.put_u16(flags);
    let s = |out: &mut BytesMut, v: &Option<String>| {
        if let Some(v) = v {
            put_short_string(out, v)
        }
    };
    s(out, &p.content_type);
    s(out, &p.content_encoding);
    if let Some(h) = &p.headers {
        put_table(out, h);
    }
    if let Some(d) = p.delivery_mode {
        out.put_u8(d);
    }
    if let Some(pr) = p.priority {
        out.put_u8(pr);
    }
    s(out, &p.correlation_id);
    s(out, &p.reply_to);
    s(out, &p.expiration);
    s(out, &p.message_id);
    if let Some(t) = p.timestamp {
        out.put_u64(t);
    }
    s(out, &p.kind);
    s(out, &p.user_id);
    s(out, &p.app_id);
    s(out, &p.cluster_id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use junction_core::{FieldTable, FieldValue};

    #[test]
    fn fixture_delivery_mode_and_content_type() {
        // class 60, weight 0, size 5, flags content-type|delivery-mode, "text/plain", 2.
        let mut bytes = vec![0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0x90, 0x00, 10];
        bytes.extend_from_slice(b"text/plain");
        bytes.push(2);
        let (rest, h) = decode_content_header(&bytes, 4).unwrap();
        assert!(rest.is_empty());
        assert_eq!(h.class_id, 60);
        assert_eq!(h.body_size, 5);
        assert_eq!(h.properties.content_type.as_deref(), Some("text/plain"));
        assert_eq!(h.properties.delivery_mode, Some(2));
        let mut out = BytesMut::new();
        encode_content_header(60, 5, &h.properties, &mut out);
        assert_eq!(&out[..], &bytes[..]);
    }

    #[test]
    fn all_properties_round_trip() {
        let mut headers = FieldTable::new();
        headers.insert("k", FieldValue::string("v"));
        let p = Properties {
            content_type: Some("application/json".into()),
            content_encoding: Some("gzip".into()),
            headers: Some(headers),
            delivery_mode: Some(2),
            priority: Some(7),
            correlation_id: Some("c-1".into()),
            reply_to: Some("amq.rabbitmq.reply-to".into()),
            expiration: Some("60000".into()),
            message_id: Some("m-1".into()),
            timestamp: Some(1_700_000_000),
            kind: Some("order".into()),
            user_id: Some("guest".into()),
            app_id: Some("shop".into()),
            cluster_id: Some("c".into()),
        };
        let mut out = BytesMut::new();
        encode_content_header(60, 1 << 33, &p, &mut out);
        let (rest, h) = decode_content_header(&out, 4).unwrap();
        assert!(rest.is_empty());
        assert_eq!(h.body_size, 1 << 33);
        assert_eq!(h.properties, p);
    }
}
