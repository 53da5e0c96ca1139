//! Frame encoding.

use super::{Frame, Version};
use junction_core::runtime::WriteBuf;

fn escape_into(out: &mut bytes::BytesMut, s: &str, v: Version) {
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b':' => out.extend_from_slice(b"\\c"),
            b'\r' if v == Version::V1_2 => out.extend_from_slice(b"\\r"),
            _ => out.extend_from_slice(&[b]),
        }
    }
}

/// Appends a frame; the body is handed over without a copy when large.
pub fn encode(frame: &Frame, version: Version, out: &mut WriteBuf) {
    let escapes = frame.command.escapes(version);
    let buf = out.buf();
    buf.extend_from_slice(frame.command.as_str().as_bytes());
    buf.extend_from_slice(b"\n");
    for (k, v) in &frame.headers {
        if escapes {
            escape_into(buf, k, version);
            buf.extend_from_slice(b":");
            escape_into(buf, v, version);
        } else {
            // Unescaped forms cannot carry a newline: it would end the header.
            buf.extend_from_slice(k.replace('\n', " ").as_bytes());
            buf.extend_from_slice(b":");
            buf.extend_from_slice(v.replace('\n', " ").as_bytes());
        }
        buf.extend_from_slice(b"\n");
    }
    buf.extend_from_slice(b"\n");
    out.put_bytes(&frame.body);
    out.buf().extend_from_slice(b"\0");
}
