//! CONNECT and its refusals, keep-alive, protocol violations that close the connection.

use super::*;

#[test]
fn connect_is_accepted_without_a_session_present() {
    let b = broker();
    let mut c = Client::new(&b);
    let ack = c.connect(connect("dev-1", true, 0));
    assert_eq!(ack.code, v4::ConnectReturnCode::Success);
    assert!(!ack.session_present);
}

#[test]
fn a_wrong_password_gets_return_code_4_and_a_close() {
    let b = broker();
    let mut c = Client::new(&b);
    let mut p = connect("dev", true, 0);
    p.login = Some(v4::Login::new("guest", "wrong"));
    let ack = c.connect(p);
    assert_eq!(ack.code, v4::ConnectReturnCode::BadUserNamePassword);
    assert!(c.h.is_closed());
}

#[test]
fn an_empty_client_id_needs_a_clean_session() {
    let b = broker();
    let mut c = Client::new(&b);
    let ack = c.connect(connect("", false, 0));
    assert_eq!(ack.code, v4::ConnectReturnCode::BadClientId);
    let mut ok = Client::new(&b);
    assert_eq!(
        ok.connect(connect("", true, 0)).code,
        v4::ConnectReturnCode::Success
    );
}

#[test]
fn a_vhost_that_does_not_exist_is_not_authorized() {
    let b = broker();
    let mut c = Client::new(&b);
    let mut p = connect("dev", true, 0);
    p.login = Some(v4::Login::new("nowhere:guest", "guest"));
    let ack = c.connect(p);
    assert_eq!(ack.code, v4::ConnectReturnCode::NotAuthorized);
}

#[test]
fn a_first_packet_other_than_connect_closes() {
    let b = broker();
    let mut c = Client::new(&b);
    c.send_v4(|out| v4::PingReq.write(out));
    assert!(c.h.is_closed());
    assert!(c.packets().is_empty());
}

#[test]
fn a_second_connect_closes() {
    let b = broker();
    let mut c = Client::connected(&b, "twice", true);
    let p = connect("twice", true, 0);
    c.send_v4(|out| p.write(out));
    assert!(c.h.is_closed());
}

#[test]
fn ping_is_answered_and_keeps_the_client_alive() {
    let b = broker();
    let mut c = Client::new(&b);
    c.connect(connect("pinger", true, 10));
    for _ in 0..5 {
        c.h.advance(9_000);
        c.send_v4(|out| v4::PingReq.write(out));
        assert!(matches!(c.packets().as_slice(), [Packet::PingResp]));
    }
    assert!(!c.h.is_closed(), "45 s alive on a 10 s keep-alive");
}

#[test]
fn a_silent_client_is_dropped_after_one_and_a_half_keep_alives() {
    let b = broker();
    let mut c = Client::new(&b);
    c.connect(connect("quiet", true, 10));
    c.h.advance(14_000);
    assert!(!c.h.is_closed());
    c.h.advance(1_500);
    assert!(c.h.is_closed());
}

#[test]
fn publishing_to_a_wildcard_topic_closes() {
    let b = broker();
    let mut c = Client::connected(&b, "bad-pub", true);
    c.publish("a/+/b", QoS::AtMostOnce, 0, false, "x");
    assert!(c.h.is_closed());
}

#[test]
fn an_invalid_filter_is_refused_in_the_suback() {
    let b = broker();
    let mut c = Client::connected(&b, "bad-sub", true);
    let codes = c.subscribe(1, "a/#/b", QoS::AtLeastOnce);
    assert_eq!(codes, vec![v4::SubscribeReasonCode::Failure]);
    assert!(!c.h.is_closed());
}

#[test]
fn reserved_subscribe_flags_close() {
    let b = broker();
    let mut c = Client::connected(&b, "flags", true);
    // SUBSCRIBE must have flags 0b0010; 0b0000 is malformed.
    c.h.feed(&[0x80, 6, 0, 1, 0, 1, b'a', 0]);
    assert!(c.h.is_closed());
}

#[test]
fn disconnect_closes_without_a_will() {
    let b = broker();
    let mut c = Client::new(&b);
    let mut p = connect("willing", true, 0);
    p.last_will = Some(v4::LastWill::new("wills", "gone", QoS::AtMostOnce, false));
    c.connect(p);
    c.send_v4(|out| v4::Disconnect.write(out));
    assert!(c.h.is_closed());
    assert!(
        c.drop_connection().is_none(),
        "a clean disconnect drops the will"
    );
}
