//! Frame decoding.

use super::{CodecError, Command, Decoded, Frame, Limits, Version};
use bytes::{Buf, BytesMut};
use nom::bytes::complete::{tag, take_till};
use nom::IResult;

/// Splits "name:value" (the first colon separates; later colons belong to the value).
fn header_line(line: &[u8]) -> IResult<&[u8], (&[u8], &[u8])> {
    let (rest, name) = take_till(|c| c == b':')(line)?;
    let (value, _) = tag(&b":"[..])(rest)?;
    Ok((&[][..], (name, value)))
}

fn unescape(raw: &[u8], v: Version) -> Result<String, CodecError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(&b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        out.push(match it.next() {
            Some(b'n') => b'\n',
            Some(b'c') => b':',
            Some(b'\\') => b'\\',
            Some(b'r') if v == Version::V1_2 => b'\r',
            _ => return Err(CodecError::BadEscape),
        });
    }
    String::from_utf8(out).map_err(|_| CodecError::NotUtf8)
}

fn text(raw: &[u8]) -> Result<String, CodecError> {
    String::from_utf8(raw.to_vec()).map_err(|_| CodecError::NotUtf8)
}

/// Strips a trailing CR (lines may end with CRLF).
fn line_end(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Decodes one frame (or a run of heart-beat EOLs). `Ok(None)` = need more bytes; the buffered
/// partial frame is bounded by the limits before more is awaited.
pub fn decode(
    buf: &mut BytesMut,
    limits: &Limits,
    version: Version,
) -> Result<Option<Decoded>, CodecError> {
    // EOLs between frames are heart-beats.
    let eols = buf
        .iter()
        .take_while(|&&b| b == b'\n' || b == b'\r')
        .count();
    if eols > 0 {
        // A lone CR may be the start of a CRLF: keep it until its LF arrives.
        let keep = usize::from(buf[eols - 1] == b'\r');
        if eols - keep > 0 {
            buf.advance(eols - keep);
            return Ok(Some(Decoded::HeartBeat));
        }
        if buf.len() == eols {
            return Ok(None);
        }
    }
    let max_head = (limits.max_headers + 1) * (limits.max_header_length + 2) + 2;
    // Command and header lines, up to the empty line.
    let mut pos = 0;
    let mut lines: Vec<&[u8]> = Vec::new();
    let head_end = loop {
        let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
            if pos == 0 && !Command::may_start(buf) {
                let shown = String::from_utf8_lossy(&buf[..buf.len().min(32)]).into_owned();
                return Err(CodecError::UnknownCommand(shown));
            }
            if buf.len() - pos > limits.max_header_length {
                return Err(CodecError::HeaderTooLong(limits.max_header_length));
            }
            if buf.len() > max_head {
                return Err(CodecError::TooManyHeaders(limits.max_headers));
            }
            return Ok(None);
        };
        let line = line_end(&buf[pos..pos + nl]);
        if line.len() > limits.max_header_length {
            return Err(CodecError::HeaderTooLong(limits.max_header_length));
        }
        pos += nl + 1;
        if line.is_empty() {
            break pos;
        }
        if lines.len() > limits.max_headers {
            return Err(CodecError::TooManyHeaders(limits.max_headers));
        }
        lines.push(line);
    };
    let Some((cmd, header_lines)) = lines.split_first() else {
        return Err(CodecError::UnknownCommand(String::new()));
    };
    let command = Command::parse(cmd)
        .ok_or_else(|| CodecError::UnknownCommand(String::from_utf8_lossy(cmd).into_owned()))?;
    let escapes = command.escapes(version);
    let mut headers = Vec::with_capacity(header_lines.len());
    for line in header_lines {
        let (_, (name, value)) = header_line(line).map_err(|_| CodecError::MalformedHeader)?;
        let (name, value) = if escapes {
            (unescape(name, version)?, unescape(value, version)?)
        } else {
            (text(name)?, text(value)?)
        };
        headers.push((name, value));
    }
    let content_length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| CodecError::BadContentLength)
        })
        .transpose()?;
    let body_len = match content_length {
        Some(n) => {
            if n > limits.max_body {
                return Err(CodecError::BodyTooLarge(limits.max_body));
            }
            if buf.len() < head_end + n + 1 {
                buf.reserve(head_end + n + 1 - buf.len());
                return Ok(None);
            }
            if buf[head_end + n] != 0 {
                return Err(CodecError::MissingNul);
            }
            n
        }
        None => match buf[head_end..].iter().position(|&b| b == 0) {
            Some(n) => n,
            None => {
                if buf.len() - head_end > limits.max_body {
                    return Err(CodecError::BodyTooLarge(limits.max_body));
                }
                return Ok(None);
            }
        },
    };
    buf.advance(head_end);
    let body = buf.split_to(body_len).freeze();
    buf.advance(1);
    Ok(Some(Decoded::Frame(Frame {
        command,
        headers,
        body,
    })))
}
