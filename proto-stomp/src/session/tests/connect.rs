//! CONNECT, versions, logins, vhosts, heart-beats, errors that end the session.

use super::*;

#[test]
fn connect_answers_connected_with_the_highest_common_version() {
    let b = broker();
    let mut c = Client::new(&b);
    c.send(
        Frame::new(Command::Connect)
            .with("accept-version", "1.0,1.1,1.2")
            .with("login", "guest")
            .with("passcode", "guest"),
    );
    let f = c.one();
    assert_eq!(f.command, Command::Connected);
    assert_eq!(f.header("version"), Some("1.2"));
    assert!(f.header("session").is_some());
}

#[test]
fn the_stomp_command_connects_too() {
    let b = broker();
    let mut c = Client::new(&b);
    let mut f = connect("0,0");
    f.command = Command::Stomp;
    c.send(f);
    assert_eq!(c.one().command, Command::Connected);
}

#[test]
fn no_common_version_is_an_error() {
    let b = broker();
    let mut c = Client::new(&b);
    c.send(
        Frame::new(Command::Connect)
            .with("accept-version", "2.0")
            .with("login", "guest")
            .with("passcode", "guest"),
    );
    let f = c.one();
    assert_eq!(f.command, Command::Error);
    assert!(c.h.is_closed());
}

#[test]
fn a_wrong_passcode_is_refused_and_closes() {
    let b = broker();
    let mut c = Client::new(&b);
    let mut f = connect("0,0");
    f.headers.retain(|(k, _)| k != "passcode");
    c.send(f.with("passcode", "nope"));
    let e = c.one();
    assert_eq!(
        (e.command, e.header("message")),
        (Command::Error, Some("Bad CONNECT"))
    );
    assert!(c.h.is_closed());
}

#[test]
fn no_login_uses_the_default_user_when_configured() {
    let b = broker();
    let login = DefaultLogin {
        login: "guest".into(),
        passcode: "guest".into(),
    };
    let mut c = Client::with_default_login(&b, Some(login));
    c.send(Frame::new(Command::Connect).with("accept-version", "1.2"));
    assert_eq!(c.one().command, Command::Connected);
    let mut refused = Client::new(&b);
    refused.send(Frame::new(Command::Connect).with("accept-version", "1.2"));
    assert_eq!(refused.one().command, Command::Error);
}

#[test]
fn an_unknown_host_is_refused_never_mapped() {
    let b = broker();
    let mut c = Client::new(&b);
    let mut f = connect("0,0");
    f.headers.retain(|(k, _)| k != "host");
    c.send(f.with("host", "elsewhere"));
    let e = c.one();
    assert_eq!(e.command, Command::Error);
    assert!(String::from_utf8_lossy(&e.body).contains("elsewhere"));
}

#[test]
fn a_frame_before_connect_is_an_error() {
    let b = broker();
    let mut c = Client::new(&b);
    c.send_to("/queue/q", "early");
    assert_eq!(c.one().command, Command::Error);
    assert!(c.h.is_closed());
}

#[test]
fn a_second_connect_is_an_error() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.send(connect("0,0"));
    assert_eq!(c.one().command, Command::Error);
}

#[test]
fn heart_beats_are_negotiated_and_sent() {
    let b = broker();
    let mut c = Client::new(&b);
    // The client sends every 0 ms (never) and wants one every 1000 ms.
    c.send(connect("0,1000"));
    let f = c.one();
    assert_eq!(f.header("heart-beat"), Some("1000,0"));
    c.h.advance(3_500);
    assert_eq!(c.h.take_output(), b"\n\n\n", "one EOL a second");
    assert!(!c.h.is_closed(), "the client promised nothing");
}

#[test]
fn a_client_that_stops_beating_is_dropped() {
    let b = broker();
    let mut c = Client::new(&b);
    c.send(connect("1000,0"));
    c.frames();
    c.h.advance(1_500);
    c.h.feed(b"\n");
    c.h.advance(1_900);
    assert!(!c.h.is_closed(), "a beat 1.5 s in keeps it for two periods");
    c.h.advance(200);
    assert!(c.h.is_closed(), "silent for two periods");
}

#[test]
fn disconnect_with_a_receipt_answers_it_and_closes() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.send(Frame::new(Command::Disconnect).with("receipt", "bye"));
    let r = c.one();
    assert_eq!(
        (r.command, r.header("receipt-id")),
        (Command::Receipt, Some("bye"))
    );
    assert!(c.h.is_closed());
}

#[test]
fn garbage_is_refused_at_once() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.h.feed(b"HELLO\n\n\0");
    let e = c.one();
    assert_eq!(e.command, Command::Error);
    assert!(c.h.is_closed());
}

#[test]
fn shutdown_sends_an_error_and_closes() {
    let b = broker();
    let mut c = Client::connected(&b);
    junction_core::runtime::driver::Session::shutdown(&mut c.h.session, 0);
    let e = c.one();
    assert_eq!(
        (e.command, e.header("message")),
        (Command::Error, Some("Server shutdown"))
    );
    assert!(c.h.is_closed());
}
