//! The handshake, heart-beats, closes and frame-level errors.

use super::*;
use crate::codec::encode_heartbeat;

#[test]
fn handshake_goes_start_tune_open() {
    let b = broker();
    let mut c = Client::open(&b, 0);
    assert!(!c.h.is_closed());
    c.send(1, Method::ChannelOpen);
    assert_eq!(c.method(), (1, Method::ChannelOpenOk));
}

#[test]
fn start_offers_plain_and_amqplain() {
    let b = broker();
    let mut c = Client::new(&b);
    let (_, start) = c.method();
    let Method::ConnectionStart { mechanisms, .. } = start else {
        panic!("expected connection.start")
    };
    let m = String::from_utf8_lossy(&mechanisms).to_string();
    assert!(m.contains("PLAIN") && m.contains("AMQPLAIN"), "{m}");
}

#[test]
fn wrong_password_is_refused_with_403() {
    let b = broker();
    let mut c = Client::new(&b);
    c.frames();
    c.start_ok("PLAIN", plain("guest", "wrong"));
    let (ch, m) = c.method();
    assert_eq!((ch, close_code(&m)), (0, Some(403)));
}

#[test]
fn unknown_mechanism_is_refused() {
    let b = broker();
    let mut c = Client::new(&b);
    c.frames();
    c.start_ok("KERBEROS", Bytes::new());
    let (_, m) = c.method();
    assert_eq!(close_code(&m), Some(403));
}

#[test]
fn opening_a_missing_vhost_is_refused() {
    let b = broker();
    let mut c = Client::new(&b);
    c.frames();
    c.start_ok("PLAIN", plain("guest", "guest"));
    c.frames();
    c.send(
        0,
        Method::ConnectionTuneOk {
            channel_max: 0,
            frame_max: 131_072,
            heartbeat: 0,
        },
    );
    c.send(
        0,
        Method::ConnectionOpen {
            virtual_host: "nowhere".into(),
        },
    );
    let (_, m) = c.method();
    assert!(matches!(close_code(&m), Some(402..=530)), "{m:?}");
}

#[test]
fn a_frame_before_the_handshake_ends_is_refused() {
    let b = broker();
    let mut c = Client::new(&b);
    c.frames();
    c.send(1, Method::ChannelOpen);
    let (_, m) = c.method();
    assert!(close_code(&m).is_some(), "{m:?}");
}

#[test]
fn heart_beats_go_out_at_half_the_interval() {
    let b = broker();
    let mut c = Client::open(&b, 10);
    c.h.advance(4_000);
    assert!(c.frames().is_empty(), "nothing before half the interval");
    c.h.advance(1_500);
    assert!(matches!(c.frames().as_slice(), [Frame::Heartbeat]));
}

#[test]
fn a_silent_peer_is_dropped_after_two_intervals() {
    let b = broker();
    let mut c = Client::open(&b, 10);
    c.h.advance(19_000);
    assert!(!c.h.is_closed());
    c.h.advance(1_500);
    assert!(c.h.is_closed(), "closed after two missed intervals");
}

#[test]
fn heart_beats_from_the_peer_keep_it_alive() {
    let b = broker();
    let mut c = Client::open(&b, 10);
    for _ in 0..10 {
        c.h.advance(8_000);
        let mut hb = BytesMut::new();
        encode_heartbeat(&mut hb);
        c.feed(&hb);
    }
    assert!(!c.h.is_closed(), "80 s of heart-beats every 8 s");
}

#[test]
fn connection_close_is_answered_with_close_ok() {
    let b = broker();
    let mut c = Client::open(&b, 0);
    c.send(
        0,
        Method::ConnectionClose {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        },
    );
    assert_eq!(c.method(), (0, Method::ConnectionCloseOk));
    assert!(c.h.is_closed());
}

#[test]
fn shutdown_closes_with_320_and_waits_for_close_ok() {
    let b = broker();
    let mut c = Client::open(&b, 0);
    junction_core::runtime::driver::Session::shutdown(&mut c.h.session, 0);
    let (_, m) = c.method();
    assert_eq!(close_code(&m), Some(320));
    assert!(!c.h.is_closed(), "waits for close-ok");
    c.send(0, Method::ConnectionCloseOk);
    assert!(c.h.is_closed());
}

#[test]
fn an_unanswered_server_close_gives_up_after_its_deadline() {
    let b = broker();
    let mut c = Client::open(&b, 0);
    junction_core::runtime::driver::Session::shutdown(&mut c.h.session, 0);
    c.frames();
    c.h.advance(60_000);
    assert!(c.h.is_closed());
}

#[test]
fn an_oversized_frame_closes_with_frame_error() {
    let b = broker();
    let mut c = Client::open(&b, 0);
    // A body frame announcing 10 MB on a connection tuned to 128 KiB.
    let mut f = BytesMut::new();
    f.extend_from_slice(&[3, 0, 1]);
    f.extend_from_slice(&(10_000_000u32).to_be_bytes());
    c.feed(&f);
    let (_, m) = c.method();
    assert_eq!(close_code(&m), Some(501));
}

#[test]
fn a_body_without_a_publish_is_an_unexpected_frame() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    let mut f = BytesMut::new();
    f.extend_from_slice(&[3, 0, 1, 0, 0, 0, 2, b'h', b'i', 0xCE]);
    c.feed(&f);
    let (_, m) = c.method();
    assert_eq!(close_code(&m), Some(505));
}
