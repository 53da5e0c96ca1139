//! The message log's record format (no I/O).
//!
//! ```text
//! record  = length:u32 crc:u32 kind:u8 queue:u64 seq:u64 payload
//! length  = bytes after the crc field (kind .. end of payload)
//! crc     = CRC-32 (IEEE) of those same bytes
//! payload = for Publish: flags:u8 [enqueued_at:u64] meta_len:u32 meta body
//!           (meta = postcard of the envelope; enqueued_at = Unix ms, present when flag 2 is set)
//!           otherwise empty
//! ```
//! All integers little-endian. A segment file starts with [`SEGMENT_MAGIC`].

use crate::message::{Message, Properties};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The first bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"JNCSEG01";
/// length + crc.
pub const FRAME_HEADER: usize = 8;
/// kind + queue + seq.
const RECORD_HEAD: usize = 17;
/// A record longer than this is treated as damage (bodies are bounded far below it).
pub const MAX_RECORD: usize = 1 << 30;

const FLAG_REDELIVERED: u8 = 1;
const FLAG_ENQUEUED_AT: u8 = 2;

/// What a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A persistent message entered a durable queue.
    Publish = 1,
    /// It left the queue.
    Ack = 2,
    /// It was handed to a consumer (comes back redelivered after a restart).
    Delivered = 3,
    /// The queue was deleted: every earlier record of it is dead.
    DropQueue = 4,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Publish,
            2 => Kind::Ack,
            3 => Kind::Delivered,
            4 => Kind::DropQueue,
            _ => return None,
        })
    }
}

/// A record read back from a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// What the record says.
    pub kind: Kind,
    /// The queue it is about.
    pub queue: u64,
    /// The message's position in the queue.
    pub seq: u64,
    /// The rest of the record (a Publish record's message).
    pub payload: &'a [u8],
}

/// The result of reading one record from the front of a buffer.
#[derive(Debug, PartialEq)]
pub enum Read<'a> {
    /// A whole, valid record and its total size on disk.
    Ok(Record<'a>, usize),
    /// The buffer ends inside a record (a torn write, if at the end of a file).
    Torn,
    /// The record is damaged (bad CRC, impossible length or kind). `skip` is its claimed
    /// size when that stays inside the buffer, to count what follows.
    Corrupt {
        /// Bytes to skip to what follows, when known.
        skip: Option<usize>,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    exchange: &'a str,
    routing_key: &'a str,
    properties: std::borrow::Cow<'a, Properties>,
}

fn put_frame(out: &mut Vec<u8>, kind: Kind, queue: u64, seq: u64, payload: &[&[u8]]) {
    let len = RECORD_HEAD + payload.iter().map(|p| p.len()).sum::<usize>();
    let start = out.len();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(kind as u8);
    out.extend_from_slice(&queue.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    for p in payload {
        out.extend_from_slice(p);
    }
    let crc = crc32fast::hash(&out[start + FRAME_HEADER..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The fields of a Publish record besides queue and seq.
#[derive(Debug, Clone, Copy)]
pub struct PublishHead {
    /// It was handed to a consumer before.
    pub redelivered: bool,
    /// When the message entered its queue (Unix ms), so TTLs keep counting across restarts.
    pub enqueued_at: u64,
}

/// Appends a Publish record.
pub fn put_publish(out: &mut Vec<u8>, queue: u64, seq: u64, head: PublishHead, msg: &Message) {
    let meta = postcard::to_stdvec(&Envelope {
        exchange: &msg.exchange,
        routing_key: &msg.routing_key,
        properties: std::borrow::Cow::Borrowed(&*msg.properties),
    })
    .unwrap_or_default();
    let flags = [FLAG_ENQUEUED_AT
        | if head.redelivered {
            FLAG_REDELIVERED
        } else {
            0
        }];
    let enqueued_at = head.enqueued_at.to_le_bytes();
    let meta_len = (meta.len() as u32).to_le_bytes();
    put_frame(
        out,
        Kind::Publish,
        queue,
        seq,
        &[&flags, &enqueued_at, &meta_len, &meta, &msg.body],
    );
}

/// Appends a record without payload (Ack, Delivered, DropQueue).
pub fn put_mark(out: &mut Vec<u8>, kind: Kind, queue: u64, seq: u64) {
    put_frame(out, kind, queue, seq, &[]);
}

/// Reads the record at the front of `buf`.
pub fn read(buf: &[u8]) -> Read<'_> {
    if buf.len() < FRAME_HEADER {
        return Read::Torn;
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if !(RECORD_HEAD..=MAX_RECORD).contains(&len) {
        return Read::Corrupt { skip: None };
    }
    let total = FRAME_HEADER + len;
    if buf.len() < total {
        return Read::Torn;
    }
    let body = &buf[FRAME_HEADER..total];
    let kind = Kind::from_u8(body[0]);
    match kind {
        Some(kind) if crc32fast::hash(body) == crc => {
            let queue = u64::from_le_bytes(body[1..9].try_into().unwrap_or_default());
            let seq = u64::from_le_bytes(body[9..17].try_into().unwrap_or_default());
            Read::Ok(
                Record {
                    kind,
                    queue,
                    seq,
                    payload: &body[RECORD_HEAD..],
                },
                total,
            )
        }
        _ => Read::Corrupt { skip: Some(total) },
    }
}

/// What recovery keeps of a Publish record: enough to queue the message without its body.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishMeta {
    /// It was handed to a consumer before.
    pub redelivered: bool,
    /// Unix ms; None in records written before the field existed.
    pub enqueued_at: Option<u64>,
    /// Its priority.
    pub priority: Option<u8>,
    /// The message's own TTL (its `expiration` property), in ms.
    pub ttl_ms: Option<u64>,
    /// Body bytes.
    pub body_size: usize,
}

/// A Publish payload split into its parts.
struct Parts<'a> {
    flags: u8,
    enqueued_at: Option<u64>,
    envelope: Envelope<'a>,
    body: &'a [u8],
}

fn split_publish(payload: &[u8]) -> Option<Parts<'_>> {
    let flags = *payload.first()?;
    let mut at = 1;
    let enqueued_at = if flags & FLAG_ENQUEUED_AT != 0 {
        at += 8;
        Some(u64::from_le_bytes(payload.get(1..9)?.try_into().ok()?))
    } else {
        None
    };
    let meta_len = u32::from_le_bytes(payload.get(at..at + 4)?.try_into().ok()?) as usize;
    at += 4;
    let meta = payload.get(at..at.checked_add(meta_len)?)?;
    let envelope = postcard::from_bytes(meta).ok()?;
    Some(Parts {
        flags,
        enqueued_at,
        envelope,
        body: &payload[at + meta_len..],
    })
}

impl Parts<'_> {
    fn meta(&self) -> PublishMeta {
        PublishMeta {
            redelivered: self.flags & FLAG_REDELIVERED != 0,
            enqueued_at: self.enqueued_at,
            priority: self.envelope.properties.priority,
            ttl_ms: self.envelope.properties.ttl_ms(),
            body_size: self.body.len(),
        }
    }
}

/// Decodes a Publish payload: its fields and the message (body copied out).
pub fn decode_publish(payload: &[u8]) -> Option<(PublishMeta, Message)> {
    let p = split_publish(payload)?;
    let meta = p.meta();
    Some((
        meta,
        Message {
            exchange: p.envelope.exchange.to_string(),
            routing_key: p.envelope.routing_key.to_string(),
            properties: Arc::new(p.envelope.properties.into_owned()),
            body: Bytes::copy_from_slice(p.body),
        },
    ))
}

/// Decodes what a queue needs of a Publish payload to hold the message without its body.
pub fn decode_publish_meta(payload: &[u8]) -> Option<PublishMeta> {
    split_publish(payload).map(|p| p.meta())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{FieldTable, FieldValue};

    fn sample() -> Message {
        let mut headers = FieldTable::new();
        headers.insert("n", FieldValue::I32(-7));
        headers.insert(
            "x-death",
            FieldValue::Array(vec![FieldValue::Table(FieldTable::new())]),
        );
        Message {
            exchange: "amq.topic".into(),
            routing_key: "a.b".into(),
            properties: Arc::new(Properties {
                delivery_mode: Some(2),
                headers: Some(headers),
                correlation_id: Some("c".into()),
                ..Properties::default()
            }),
            body: Bytes::from_static(b"\0\xff body"),
        }
    }

    #[test]
    fn publish_round_trips() {
        let mut out = Vec::new();
        let head = PublishHead {
            redelivered: true,
            enqueued_at: 1_700_000_000_123,
        };
        put_publish(&mut out, 9, 42, head, &sample());
        put_mark(&mut out, Kind::Ack, 9, 42);
        let Read::Ok(r, n) = read(&out) else {
            panic!("first record unreadable")
        };
        assert_eq!((r.kind, r.queue, r.seq), (Kind::Publish, 9, 42));
        let (meta, m) = decode_publish(r.payload).expect("publish decodes");
        assert_eq!(m, sample());
        assert_eq!(decode_publish_meta(r.payload), Some(meta.clone()));
        assert_eq!(meta.enqueued_at, Some(1_700_000_000_123));
        assert_eq!(meta.body_size, sample().body.len());
        assert!(meta.redelivered);
        let Read::Ok(r2, n2) = read(&out[n..]) else {
            panic!("second record unreadable")
        };
        assert_eq!((r2.kind, r2.queue, r2.seq), (Kind::Ack, 9, 42));
        assert_eq!(n + n2, out.len());
    }

    #[test]
    fn records_without_an_enqueue_time_still_decode() {
        let mut out = Vec::new();
        let head = PublishHead {
            redelivered: false,
            enqueued_at: 0,
        };
        put_publish(&mut out, 3, 4, head, &sample());
        // The layout before enqueued_at existed: flags without bit 2, no timestamp.
        let Read::Ok(r, _) = read(&out) else {
            panic!("unreadable")
        };
        let mut old = vec![0u8];
        old.extend_from_slice(&r.payload[9..]);
        let (meta, m) = decode_publish(&old).expect("old layout decodes");
        assert_eq!((meta.enqueued_at, m), (None, sample()));
    }

    #[test]
    fn torn_and_corrupt_records_are_told_apart() {
        let mut out = Vec::new();
        let head = PublishHead {
            redelivered: false,
            enqueued_at: 5,
        };
        put_publish(&mut out, 1, 1, head, &sample());
        for cut in 0..out.len() {
            assert_eq!(read(&out[..cut]), Read::Torn, "cut at {cut}");
        }
        for i in FRAME_HEADER..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x40;
            assert_eq!(
                read(&bad),
                Read::Corrupt {
                    skip: Some(out.len())
                },
                "flip at {i}"
            );
        }
        let mut huge = out.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read(&huge), Read::Corrupt { skip: None });
    }
}
