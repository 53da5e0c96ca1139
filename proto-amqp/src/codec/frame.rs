//! Frames: the protocol header, method, content header, body and heartbeat frames.

use super::error::CodecError;
use super::methods::{decode_method, encode_method, Method};
use super::properties::{decode_content_header, encode_content_header, ContentHeader};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use junction_core::runtime::WriteBuf;
use junction_core::Properties;

/// `AMQP\0\0\9\1`: what a 0-9-1 client sends first, and what the server answers a wrong header with.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
/// The octet that ends every frame.
pub const FRAME_END: u8 = 0xCE;
/// Frame type of a method frame.
pub const FRAME_METHOD: u8 = 1;
/// Frame type of a content header frame.
pub const FRAME_HEADER: u8 = 2;
/// Frame type of a content body frame.
pub const FRAME_BODY: u8 = 3;
/// Frame type of a heart-beat frame.
pub const FRAME_HEARTBEAT: u8 = 8;
/// Frame header (7) + frame end (1).
pub const FRAME_OVERHEAD: u32 = 8;

/// What the decoder enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest frame accepted, overhead included.
    pub frame_max: u32,
    /// Nesting depth of tables and arrays.
    pub table_depth: usize,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A method frame.
    Method {
        /// The channel.
        channel: u16,
        /// The method.
        method: Method,
    },
    /// A content header frame.
    Header {
        /// The channel.
        channel: u16,
        /// The content header.
        header: ContentHeader,
    },
    /// A body frame's payload, split from the read buffer without copying.
    Body {
        /// The channel.
        channel: u16,
        /// The bytes of this piece of the body.
        payload: Bytes,
    },
    /// A heart-beat frame.
    Heartbeat,
}

/// Checks the 8-byte protocol header. `Ok(None)` = need more bytes.
pub fn decode_protocol_header(buf: &mut BytesMut) -> Result<Option<()>, CodecError> {
    let n = buf.len().min(8);
    if buf[..n] != PROTOCOL_HEADER[..n] {
        return Err(CodecError::BadProtocolHeader);
    }
    if n < 8 {
        return Ok(None);
    }
    buf.advance(8);
    Ok(Some(()))
}

/// Decodes one frame; `Ok(None)` = need more bytes. A frame is checked against the limits before
/// any room is reserved for it.
pub fn decode(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, CodecError> {
    if buf.len() < 7 {
        return Ok(None);
    }
    let kind = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]);
    if u64::from(size) + u64::from(FRAME_OVERHEAD) > u64::from(limits.frame_max) {
        return Err(CodecError::Frame(format!(
            "frame size {size} exceeds frame_max {}",
            limits.frame_max
        )));
    }
    if !matches!(
        kind,
        FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
    ) {
        return Err(CodecError::Frame(format!("unknown frame type {kind}")));
    }
    let total = 7 + size as usize + 1;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    if buf[total - 1] != FRAME_END {
        return Err(CodecError::Frame(format!(
            "frame end is {:#04x}, expected 0xce",
            buf[total - 1]
        )));
    }
    let mut frame = buf.split_to(total);
    frame.advance(7);
    frame.truncate(size as usize);
    let payload = frame.freeze();
    Ok(Some(match kind {
        FRAME_METHOD => {
            if payload.len() < 4 {
                return Err(CodecError::Frame("method frame too short".into()));
            }
            let class_id = u16::from_be_bytes([payload[0], payload[1]]);
            let method_id = u16::from_be_bytes([payload[2], payload[3]]);
            match decode_method(class_id, method_id, &payload[4..], limits.table_depth) {
                None => {
                    return Err(CodecError::UnknownMethod {
                        class_id,
                        method_id,
                    })
                }
                Some(Err(_)) => {
                    return Err(CodecError::Syntax {
                        text: format!("malformed arguments for method {class_id}/{method_id}"),
                        class_id,
                        method_id,
                    })
                }
                Some(Ok((_, method))) => Frame::Method { channel, method },
            }
        }
        FRAME_HEADER => match decode_content_header(&payload, limits.table_depth) {
            Ok((_, header)) => Frame::Header { channel, header },
            Err(_) => return Err(CodecError::Frame("malformed content header".into())),
        },
        FRAME_BODY => Frame::Body { channel, payload },
        _ => Frame::Heartbeat,
    }))
}

fn begin(out: &mut BytesMut, kind: u8, channel: u16) -> usize {
    out.put_u8(kind);
    out.put_u16(channel);
    let at = out.len();
    out.put_u32(0);
    at
}

fn end(out: &mut BytesMut, at: usize) {
    let size = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&size.to_be_bytes());
    out.put_u8(FRAME_END);
}

/// Appends a method frame.
pub fn encode_method_frame(channel: u16, method: &Method, out: &mut BytesMut) {
    let at = begin(out, FRAME_METHOD, channel);
    encode_method(method, out);
    end(out, at);
}

/// Appends a heart-beat frame.
pub fn encode_heartbeat(out: &mut BytesMut) {
    out.extend_from_slice(&[FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);
}

/// Appends a content header and the body, split into frames of at most `frame_max`.
pub fn encode_content(
    channel: u16,
    class_id: u16,
    properties: &Properties,
    body: &Bytes,
    frame_max: u32,
    out: &mut WriteBuf,
) {
    let buf = out.buf();
    let at = begin(buf, FRAME_HEADER, channel);
    encode_content_header(class_id, body.len() as u64, properties, buf);
    end(buf, at);
    let max = (frame_max.max(4096) - FRAME_OVERHEAD) as usize;
    let mut offset = 0;
    while offset < body.len() {
        let n = (body.len() - offset).min(max);
        let buf = out.buf();
        buf.put_u8(FRAME_BODY);
        buf.put_u16(channel);
        buf.put_u32(n as u32);
        out.put_bytes(&body.slice(offset..offset + n));
        out.buf().put_u8(FRAME_END);
        offset += n;
    }
}
