//! Frames from the STOMP 1.2 specification, escaping, NUL bodies, limits, and random input.

use super::*;
use bytes::{Bytes, BytesMut};
use junction_core::runtime::WriteBuf;
use proptest::prelude::*;
use std::future::Future;

const LIMITS: Limits = Limits {
    max_headers: 16,
    max_header_length: 256,
    max_body: 4096,
};

fn one(bytes: &[u8], v: Version) -> Result<Option<Decoded>, CodecError> {
    let mut b = BytesMut::from(bytes);
    decode(&mut b, &LIMITS, v)
}

fn frame(bytes: &[u8], v: Version) -> Frame {
    match one(bytes, v) {
        Ok(Some(Decoded::Frame(f))) => f,
        other => panic!("expected a frame, got {other:?}"),
    }
}

fn encoded(f: &Frame, v: Version) -> Vec<u8> {
    let mut wb = WriteBuf::new();
    encode(f, v, &mut wb);
    let mut out = Vec::new();
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    {
        let mut fut = std::pin::pin!(wb.write_to(&mut out));
        while fut.as_mut().poll(&mut cx).is_pending() {}
    }
    out
}

#[test]
fn spec_connect_and_send() {
    let f = frame(
        b"CONNECT\naccept-version:1.2\nhost:stomp.github.org\n\n\0",
        Version::V1_2,
    );
    assert_eq!(f.command, Command::Connect);
    assert_eq!(f.header("accept-version"), Some("1.2"));
    assert_eq!(f.header("host"), Some("stomp.github.org"));
    let f = frame(
        b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\0",
        Version::V1_2,
    );
    assert_eq!(f.command, Command::Send);
    assert_eq!(&f.body[..], b"hello queue a");
}

#[test]
fn escapes_in_1_2_and_none_in_connect() {
    let f = frame(b"SEND\na\\cb:c\\\\d\\ne\\rf\n\n\0", Version::V1_2);
    assert_eq!(f.headers[0], ("a:b".to_string(), "c\\d\ne\rf".to_string()));
    // \r is not an escape in 1.1.
    assert_eq!(
        one(b"SEND\nk:a\\rb\n\n\0", Version::V1_1),
        Err(CodecError::BadEscape)
    );
    assert_eq!(
        one(b"SEND\nk:a\\tb\n\n\0", Version::V1_2),
        Err(CodecError::BadEscape)
    );
    // 1.0 and CONNECT take backslashes literally.
    let f = frame(b"SEND\nk:a\\tb\n\n\0", Version::V1_0);
    assert_eq!(f.header("k"), Some("a\\tb"));
    let f = frame(b"CONNECT\npasscode:p\\w\n\n\0", Version::V1_2);
    assert_eq!(f.header("passcode"), Some("p\\w"));
    // Encoding escapes back.
    let out = encoded(
        &Frame::new(Command::Message).with("x", "a:b\nc"),
        Version::V1_2,
    );
    assert_eq!(out, b"MESSAGE\nx:a\\cb\\nc\n\n\0");
}

#[test]
fn repeated_headers_first_wins_and_values_keep_colons() {
    let f = frame(
        b"SEND\nfoo:World\nfoo:Hello\ntime:12:30\n\n\0",
        Version::V1_2,
    );
    assert_eq!(f.header("foo"), Some("World"));
    assert_eq!(f.header("time"), Some("12:30"));
}

#[test]
fn content_length_bodies_may_hold_nul() {
    let f = frame(b"SEND\ncontent-length:5\n\na\0b\0c\0", Version::V1_2);
    assert_eq!(&f.body[..], b"a\0b\0c");
    assert_eq!(
        one(b"SEND\ncontent-length:2\n\nabc\0", Version::V1_2),
        Err(CodecError::MissingNul)
    );
    assert_eq!(
        one(b"SEND\ncontent-length:x\n\n\0", Version::V1_2),
        Err(CodecError::BadContentLength)
    );
    let out = encoded(
        &Frame {
            command: Command::Message,
            headers: vec![("content-length".into(), "3".into())],
            body: Bytes::from_static(b"\0\x01\0"),
        },
        Version::V1_2,
    );
    assert_eq!(
        frame(&out, Version::V1_2).body,
        Bytes::from_static(b"\0\x01\0")
    );
}

#[test]
fn crlf_lines_and_heartbeats_between_frames() {
    let mut b = BytesMut::from(&b"\r\n\nSEND\r\ndestination:/queue/a\r\n\r\nx\0\n"[..]);
    assert_eq!(
        decode(&mut b, &LIMITS, Version::V1_2),
        Ok(Some(Decoded::HeartBeat))
    );
    let Ok(Some(Decoded::Frame(f))) = decode(&mut b, &LIMITS, Version::V1_2) else {
        panic!()
    };
    assert_eq!(f.header("destination"), Some("/queue/a"));
    assert_eq!(&f.body[..], b"x");
    assert_eq!(
        decode(&mut b, &LIMITS, Version::V1_2),
        Ok(Some(Decoded::HeartBeat))
    );
    assert!(b.is_empty());
}

#[test]
fn partial_frames_wait_for_more() {
    let full = b"SEND\ndestination:/queue/a\ncontent-length:3\n\nabc\0";
    for cut in 1..full.len() {
        assert_eq!(one(&full[..cut], Version::V1_2), Ok(None), "cut at {cut}");
    }
}

#[test]
fn bytes_that_cannot_start_a_command_are_refused_at_once() {
    // No LF yet, but no command begins this way: an error, not a wait for 64 KiB.
    for junk in [
        &b"\x16\x03\x01\x02"[..],
        b"GET / HTTP/1.1",
        b"CONNECTX",
        b"sEND",
    ] {
        assert!(
            matches!(one(junk, Version::V1_2), Err(CodecError::UnknownCommand(_))),
            "{junk:?}"
        );
    }
    // Prefixes of real commands, with or without a CR, still wait.
    for part in [&b"C"[..], b"CONN", b"CONNECT\r", b"SUBSCRI", b"STOMP"] {
        assert_eq!(one(part, Version::V1_2), Ok(None), "{part:?}");
    }
}

#[test]
fn limits_are_enforced_before_buffering() {
    let many: String = (0..20).map(|i| format!("h{i}:v\n")).collect();
    let f = format!("SEND\n{many}\n\0");
    assert_eq!(
        one(f.as_bytes(), Version::V1_2),
        Err(CodecError::TooManyHeaders(16))
    );
    let long = format!("SEND\nk:{}\n\n\0", "x".repeat(300));
    assert_eq!(
        one(long.as_bytes(), Version::V1_2),
        Err(CodecError::HeaderTooLong(256))
    );
    // An unterminated header line longer than the limit is refused before its end arrives.
    let partial = format!("SEND\nk:{}", "x".repeat(300));
    assert_eq!(
        one(partial.as_bytes(), Version::V1_2),
        Err(CodecError::HeaderTooLong(256))
    );
    assert_eq!(
        one(b"SEND\ncontent-length:999999999\n\n", Version::V1_2),
        Err(CodecError::BodyTooLarge(4096))
    );
    let body = format!("SEND\n\n{}", "y".repeat(5000));
    assert_eq!(
        one(body.as_bytes(), Version::V1_2),
        Err(CodecError::BodyTooLarge(4096))
    );
    assert!(matches!(
        one(b"FLY\n\n\0", Version::V1_2),
        Err(CodecError::UnknownCommand(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut b = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = decode(&mut b, &LIMITS, Version::V1_2) {}
        prop_assert!(b.capacity() <= 2 * (bytes.len() + LIMITS.max_body + 1));
    }

    #[test]
    fn mutated_frames_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = b"SEND\ndestination:/queue/a\ncontent-length:5\nk:v\\c\n\nhello\0\nSUBSCRIBE\nid:1\ndestination:/topic/x\n\n\0".to_vec();
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        for v in [Version::V1_0, Version::V1_1, Version::V1_2] {
            let mut b = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = decode(&mut b, &LIMITS, v) {}
        }
    }

    #[test]
    fn encode_decode_round_trip(
        key in "[a-z\\-:\\\\\n\r]{1,12}",
        value in "[ -~\n\r:\\\\]{0,40}",
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let f = Frame {
            command: Command::Message,
            headers: vec![(key, value), ("content-length".into(), body.len().to_string())],
            body: Bytes::from(body),
        };
        let out = encoded(&f, Version::V1_2);
        prop_assert_eq!(frame(&out, Version::V1_2), f);
    }
}
