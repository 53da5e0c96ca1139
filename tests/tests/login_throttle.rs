//! The failed-login delay and the connection rate per peer address, end to end: past the burst, new connections
//! from the guessing address are held (or closed when their turn is too far off) before a
//! byte is read, on every protocol, while other addresses are served as usual.

use junction_core::refusals::Refusal;
use junction_tests::{within, TestBroker};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn wrong_password(b: &TestBroker) {
    let uri = b.amqp_uri_for("guest", "not-the-password", "%2f");
    let r = within(lapin::Connection::connect(
        &uri,
        lapin::ConnectionProperties::default(),
    ))
    .await;
    assert!(r.is_err(), "a wrong password is refused");
}

/// A STOMP CONNECT as guest from `source`; the first bytes of the answer ("" when closed).
async fn stomp_from(source: &str, to: SocketAddr) -> String {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut s = within(socket.connect(to)).await.unwrap();
    s.write_all(b"CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\n\n\0")
        .await
        .unwrap();
    let mut buf = vec![0u8; 64];
    let n = within(s.read(&mut buf)).await.unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_guessing_address_is_shut_out_and_others_are_not() {
    let b = TestBroker::start_with(|c| {
        c.limits.failed_login_delay = 60_000;
        c.limits.failed_login_burst = 2;
    })
    .await;
    // The burst: two wrong passwords answered at wire speed.
    wrong_password(&b).await;
    wrong_password(&b).await;
    // The next connection from 127.0.0.1 would wait a minute: closed before it is read, on
    // every protocol, even with the right password.
    let right = within(lapin::Connection::connect(
        &b.amqp_uri(),
        lapin::ConnectionProperties::default(),
    ))
    .await;
    assert!(right.is_err(), "held out while the address is in debt");
    assert_eq!(stomp_from("127.0.0.1", b.addrs.stomp.unwrap()).await, "");
    let mut mqtt = within(TcpStream::connect(b.addrs.mqtt.unwrap()))
        .await
        .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(within(mqtt.read(&mut buf)).await.unwrap_or(0), 0);
    let refusals = b.gateway().broker().refusals();
    assert_eq!(refusals.get(Refusal::LoginThrottled), 3);
    // Another address (127.0.0.2 is loopback too, so guest may use it) is served.
    let answer = stomp_from("127.0.0.2", b.addrs.stomp.unwrap()).await;
    assert!(answer.starts_with("CONNECTED"), "{answer}");
    b.stop().await;
}

#[tokio::test]
async fn a_held_connection_logs_in_when_its_turn_comes() {
    let b = TestBroker::start_with(|c| {
        c.limits.failed_login_delay = 300;
        c.limits.failed_login_burst = 1;
    })
    .await;
    wrong_password(&b).await;
    wrong_password(&b).await;
    // Held for its turn (well inside the handshake deadline), then served.
    let (_conn, ch) = junction_tests::amqp_channel(&b.amqp_uri()).await;
    assert!(ch.status().connected());
    assert_eq!(
        b.gateway().broker().refusals().get(Refusal::LoginThrottled),
        0
    );
    b.stop().await;
}

#[tokio::test]
async fn zero_delay_turns_the_throttle_off() {
    let b = TestBroker::start_with(|c| {
        c.limits.failed_login_delay = 0;
        c.limits.failed_login_burst = 0;
    })
    .await;
    for _ in 0..5 {
        wrong_password(&b).await;
    }
    let (_conn, ch) = junction_tests::amqp_channel(&b.amqp_uri()).await;
    assert!(ch.status().connected());
    b.stop().await;
}

#[tokio::test]
async fn an_address_opening_connections_too_fast_is_refused_at_accept() {
    // One a second with a burst of three: the fourth connection within the second is
    // closed before it is read, on any listener, and other addresses are served.
    let b = TestBroker::start_with(|c| {
        c.limits.connection_rate_per_peer = 1;
        c.limits.connection_rate_burst = 3;
    })
    .await;
    let stomp = b.addrs.stomp.unwrap();
    for _ in 0..3 {
        let answer = stomp_from("127.0.0.1", stomp).await;
        assert!(answer.starts_with("CONNECTED"), "{answer}");
    }
    let mut mqtt = within(TcpStream::connect(b.addrs.mqtt.unwrap()))
        .await
        .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(within(mqtt.read(&mut buf)).await.unwrap_or(0), 0, "closed");
    let answer = stomp_from("127.0.0.2", stomp).await;
    assert!(answer.starts_with("CONNECTED"), "{answer}");
    let refusals = b.gateway().broker().refusals();
    assert_eq!(refusals.get(Refusal::ConnectionRate), 1);
    b.stop().await;
}
