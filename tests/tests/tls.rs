//! TLS on every listener, end to end over real sockets: lapin over AMQPS, rumqttc over MQTTS,
//! STOMP over TLS, STOMP over secure WebSocket and the management API over HTTPS, with a test
//! PKI made by rcgen. Refused handshakes (expired or foreign client certificates, TLS 1.1,
//! bytes that are not TLS, a client that never speaks) are counted and harm nobody; a reload
//! swaps the certificate for new connections while open ones carry on; certificate login
//! takes the user from the client certificate.

use junction_core::refusals::Refusal;
use junction_gateway::config::{TlsConfig, Verify};
use junction_tests::certificates::TestPki;
use junction_tests::tls_client::{client_config, connect, server_common_name, MODERN, TLS12_ONLY};
use junction_tests::{within, TestBroker, TIMEOUT};
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

fn tls_settings(pki: &TestPki, verify: Verify) -> TlsConfig {
    TlsConfig {
        cert_file: pki.path("server.pem"),
        key_file: pki.path("server.key"),
        ca_file: Some(pki.path("ca.pem")),
        verify,
        cert_login: verify != Verify::None,
        cert_login_from: Default::default(),
        cert_login_san_type: Default::default(),
    }
}

async fn tls_broker(pki: &TestPki, verify: Verify) -> TestBroker {
    let settings = tls_settings(pki, verify);
    let b = TestBroker::start_with(move |c| c.tls = Some(settings)).await;
    b.gateway()
        .broker()
        .put_user(junction_core::auth::new_user(
            "cert-user",
            "unused-password",
            vec![],
            vec!["/".into()],
        ))
        .expect("user");
    b
}

/// Writes one STOMP CONNECT with `headers` and returns the first frame's text.
async fn stomp_connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    headers: &str,
) -> std::io::Result<String> {
    let mut frame = String::from("CONNECT\naccept-version:1.2\nhost:/\n");
    for h in headers.lines() {
        frame.push_str(h);
        frame.push('\n');
    }
    frame.push_str("\n\0");
    s.write_all(frame.as_bytes()).await?;
    read_frame(s).await
}

/// Reads up to the end of one STOMP frame (its NUL), or until EOF.
async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match s.read(&mut byte).await? {
            0 => break,
            _ if byte[0] == 0 => break,
            _ => out.push(byte[0]),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A STOMP-over-TLS login that must fail: the handshake, or the first read after it (TLS 1.3
/// reports a refused client certificate after the client thinks the handshake is done).
async fn stomp_login_fails(addr: SocketAddr, config: std::sync::Arc<rustls::ClientConfig>) {
    let outcome = within(async {
        let mut s = connect(addr, config).await?;
        stomp_connect(&mut s, "login:guest\npasscode:guest").await
    })
    .await;
    match outcome {
        Err(_) => {}
        Ok(text) => assert!(
            !text.starts_with("CONNECTED"),
            "a refused handshake must not log in: {text}"
        ),
    }
}

#[tokio::test]
async fn every_listener_speaks_tls_and_plain_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::write(dir.path(), "first-server");
    let b = tls_broker(&pki, Verify::Peer).await;
    let a = b.addrs.clone();
    let trust = client_config(&pki, "ca.pem", None, MODERN, &[]);

    // AMQPS with lapin, verifying the server against the test CA.
    let amqps = a.amqps.expect("AMQPS listener");
    let uri = format!("amqps://guest:guest@localhost:{}/%2f", amqps.port());
    let tls = lapin::tcp::OwnedTLSConfig {
        identity: None,
        cert_chain: Some(pki.pem("ca.pem")),
    };
    let conn = within(lapin::Connection::connect_with_config(
        &uri,
        lapin::ConnectionProperties::default(),
        tls,
    ))
    .await
    .expect("lapin over AMQPS");
    let ch = within(conn.create_channel()).await.unwrap();
    within(ch.queue_declare(
        "tls-q",
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    within(ch.basic_publish(
        "",
        "tls-q",
        BasicPublishOptions::default(),
        b"over tls",
        Default::default(),
    ))
    .await
    .unwrap();
    let got = within(async {
        loop {
            if let Some(m) = ch
                .basic_get("tls-q", BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(got.delivery.data, b"over tls");
    let listed = b.gateway().broker().connection_list();
    let tls_info = listed
        .iter()
        .find_map(|(_, c)| c.tls.clone())
        .expect("the AMQPS connection is listed with its TLS session");
    assert!(["TLSv1.3", "TLSv1.2"].contains(&tls_info.protocol));
    assert!(!tls_info.cipher.is_empty());

    // MQTTS with rumqttc on the same trust.
    let mqtts = a.mqtts.expect("MQTTS listener");
    let mut opts = rumqttc::MqttOptions::new("tls-device", "localhost", mqtts.port());
    opts.set_credentials("guest", "guest");
    opts.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(trust.clone()),
    ));
    let (client, mut events) = rumqttc::AsyncClient::new(opts, 10);
    client
        .subscribe("tls/+", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    client
        .publish("tls/1", rumqttc::QoS::AtLeastOnce, false, "hello")
        .await
        .unwrap();
    let payload = within(async {
        loop {
            match events.poll().await.expect("mqtts event loop") {
                rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => return p.payload,
                _ => continue,
            }
        }
    })
    .await;
    assert_eq!(&payload[..], b"hello");

    // STOMP over TLS.
    let mut s = within(connect(a.stomps.expect("STOMPS listener"), trust.clone()))
        .await
        .unwrap();
    assert_eq!(server_common_name(&s).as_deref(), Some("first-server"));
    let reply = within(stomp_connect(&mut s, "login:guest\npasscode:guest"))
        .await
        .unwrap();
    assert!(reply.starts_with("CONNECTED"), "{reply}");

    // STOMP over secure WebSocket.
    let wss = a.stomp_wss.expect("STOMP WSS listener");
    let tls = within(connect(wss, trust.clone())).await.unwrap();
    let url = format!("wss://localhost:{}/ws", wss.port());
    let (mut ws, _) = within(tokio_tungstenite::client_async(url, tls))
        .await
        .expect("upgrade over TLS");
    use futures::{SinkExt, StreamExt};
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        "CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\n\n\0",
    ))
    .await
    .unwrap();
    let msg = within(ws.next()).await.unwrap().unwrap();
    assert!(msg.to_text().unwrap().starts_with("CONNECTED"), "{msg:?}");
    // MQTT over secure WebSocket: the handshake completes on its listener.
    within(connect(
        a.mqtt_wss.expect("MQTT WSS listener"),
        trust.clone(),
    ))
    .await
    .expect("TLS on the MQTT WSS listener");

    // The management API over HTTPS, with ALPN http/1.1.
    let https = a.management_tls.expect("HTTPS listener");
    let http_trust = client_config(&pki, "ca.pem", None, MODERN, &[b"http/1.1"]);
    let mut h = within(connect(https, http_trust)).await.unwrap();
    assert_eq!(h.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    h.write_all(
        b"GET /api/overview HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    within(h.read_to_end(&mut response)).await.ok();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("amqp/ssl"),
        "listeners list the TLS ones: {response}"
    );

    // The plain listeners are still there.
    let (_plain, _ch) = junction_tests::amqp_channel(&b.amqp_uri()).await;
    b.stop().await;
}

#[tokio::test]
async fn refused_handshakes_are_counted_and_harm_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::write(dir.path(), "first-server");
    let b = tls_broker(&pki, Verify::Peer).await;
    let stomps = b.addrs.stomps.unwrap();
    let refusals = || b.gateway().broker().refusals().get(Refusal::TlsHandshake);

    // A connection that is up before the hostile ones, and must stay up.
    let trust = client_config(&pki, "ca.pem", None, MODERN, &[]);
    let mut healthy = within(connect(stomps, trust.clone())).await.unwrap();
    let reply = within(stomp_connect(&mut healthy, "login:guest\npasscode:guest"))
        .await
        .unwrap();
    assert!(reply.starts_with("CONNECTED"));

    // Expired, and signed by a CA the broker does not trust.
    stomp_login_fails(
        stomps,
        client_config(&pki, "ca.pem", Some("expired"), MODERN, &[]),
    )
    .await;
    stomp_login_fails(
        stomps,
        client_config(&pki, "ca.pem", Some("rogue"), MODERN, &[]),
    )
    .await;
    // A client that does not trust the server's CA gives up itself (not counted by the broker,
    // which only sees the alert).
    let distrust = client_config(&pki, "rogue-ca.pem", None, MODERN, &[]);
    assert!(within(connect(stomps, distrust)).await.is_err());

    // TLS 1.1: a ClientHello offering only TLS 1.1 gets an alert and a close.
    let mut raw = within(TcpStream::connect(stomps)).await.unwrap();
    raw.write_all(&tls11_client_hello()).await.unwrap();
    let mut answer = Vec::new();
    within(raw.read_to_end(&mut answer)).await.ok();
    assert_eq!(answer.first(), Some(&0x15), "an alert record: {answer:?}");

    // Bytes that are not TLS at all.
    let mut raw = within(TcpStream::connect(b.addrs.amqps.unwrap()))
        .await
        .unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    within(raw.read_to_end(&mut answer)).await.ok();
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP"),
        "{answer:?}"
    );

    // TLS 1.2 alone is accepted.
    let mut old = within(connect(
        stomps,
        client_config(&pki, "ca.pem", None, TLS12_ONLY, &[]),
    ))
    .await
    .expect("TLS 1.2");
    let reply = within(stomp_connect(&mut old, "login:guest\npasscode:guest"))
        .await
        .unwrap();
    assert!(reply.starts_with("CONNECTED"));
    let protocols: Vec<&str> = b
        .gateway()
        .broker()
        .connection_list()
        .iter()
        .filter_map(|(_, c)| c.tls.as_ref().map(|t| t.protocol))
        .collect();
    assert!(protocols.contains(&"TLSv1.2"), "{protocols:?}");

    junction_tests::eventually(|| refusals() >= 4).await;
    // The first connection never noticed.
    healthy
        .write_all(b"SEND\ndestination:/queue/tls-alive\nreceipt:r1\n\nstill here\0")
        .await
        .unwrap();
    let receipt = within(read_frame(&mut healthy)).await.unwrap();
    assert!(receipt.starts_with("RECEIPT"), "{receipt}");
    b.stop().await;
}

/// A ClientHello that offers TLS 1.1 only (no supported_versions extension).
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0x00, 0x02, 0x00, 0x2f]); // TLS_RSA_WITH_AES_128_CBC_SHA
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00, (body.len() >> 8) as u8, body.len() as u8];
    handshake.extend_from_slice(&body);
    let mut record = vec![
        0x16,
        0x03,
        0x02,
        (handshake.len() >> 8) as u8,
        handshake.len() as u8,
    ];
    record.extend_from_slice(&handshake);
    record
}

#[tokio::test]
async fn a_client_that_never_speaks_tls_is_dropped_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::write(dir.path(), "first-server");
    let settings = tls_settings(&pki, Verify::None);
    let b = TestBroker::start_with(move |c| {
        c.tls = Some(settings);
        c.limits.handshake_timeout = 300;
    })
    .await;
    let mut silent = within(TcpStream::connect(b.addrs.mqtts.unwrap()))
        .await
        .unwrap();
    let mut stalled = within(TcpStream::connect(b.addrs.amqps.unwrap()))
        .await
        .unwrap();
    // Half a record header, then nothing.
    stalled.write_all(&[0x16, 0x03]).await.unwrap();
    for s in [&mut silent, &mut stalled] {
        let mut buf = [0u8; 16];
        let n = within(s.read(&mut buf)).await.unwrap_or(0);
        assert_eq!(n, 0, "dropped without an answer");
    }
    let refusals = b.gateway().broker().refusals();
    assert_eq!(refusals.get(Refusal::HandshakeTimeout), 2);
    assert!(TIMEOUT > Duration::from_millis(300));
    b.stop().await;
}

#[tokio::test]
async fn require_refuses_clients_without_a_certificate_and_cert_login_names_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::write(dir.path(), "first-server");
    let b = tls_broker(&pki, Verify::Require).await;
    let stomps = b.addrs.stomps.unwrap();
    stomp_login_fails(stomps, client_config(&pki, "ca.pem", None, MODERN, &[])).await;

    // STOMP without login or passcode logs in as the certificate's CN.
    let with_cert = client_config(&pki, "ca.pem", Some("client"), MODERN, &[]);
    let mut s = within(connect(stomps, with_cert.clone())).await.unwrap();
    let reply = within(stomp_connect(&mut s, "")).await.unwrap();
    assert!(reply.starts_with("CONNECTED"), "{reply}");
    // Explicit credentials still win over the certificate (and are checked).
    let mut s2 = within(connect(stomps, with_cert.clone())).await.unwrap();
    let reply = within(stomp_connect(&mut s2, "login:guest\npasscode:wrong"))
        .await
        .unwrap();
    assert!(reply.starts_with("ERROR"), "{reply}");

    // MQTT without credentials: CONNACK accepted, logged in as cert-user.
    let mut opts =
        rumqttc::MqttOptions::new("cert-device", "localhost", b.addrs.mqtts.unwrap().port());
    opts.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(with_cert),
    ));
    let (_client, mut events) = rumqttc::AsyncClient::new(opts, 10);
    let connack = within(async {
        loop {
            if let rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(c)) =
                events.poll().await.expect("mqtts")
            {
                return c;
            }
        }
    })
    .await;
    assert_eq!(connack.code, rumqttc::ConnectReturnCode::Success);
    let users: Vec<(String, Option<String>)> = b
        .gateway()
        .broker()
        .connection_list()
        .into_iter()
        .map(|(_, c)| (c.user, c.tls.and_then(|t| t.peer_subject.clone())))
        .collect();
    let cert_logins = users.iter().filter(|(u, _)| u == "cert-user").count();
    assert_eq!(cert_logins, 2, "{users:?}");
    assert!(
        users.iter().all(|(_, subject)| subject
            .as_deref()
            .is_some_and(|s| s.contains("CN=cert-user"))),
        "{users:?}"
    );
    b.stop().await;
}

#[tokio::test]
async fn a_reload_swaps_the_certificate_for_new_connections_only() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestPki::write(&dir.path().join("first"), "first-server");
    let second = TestPki::write(&dir.path().join("second"), "second-server");
    let b = tls_broker(&first, Verify::None).await;
    let stomps = b.addrs.stomps.unwrap();
    let trust_first = client_config(&first, "ca.pem", None, MODERN, &[]);
    let trust_second = client_config(&second, "ca.pem", None, MODERN, &[]);

    let mut open = within(connect(stomps, trust_first.clone())).await.unwrap();
    assert_eq!(server_common_name(&open).as_deref(), Some("first-server"));
    let reply = within(stomp_connect(&mut open, "login:guest\npasscode:guest"))
        .await
        .unwrap();
    assert!(reply.starts_with("CONNECTED"));

    for f in ["server.pem", "server.key"] {
        std::fs::copy(second.path(f), first.path(f)).unwrap();
    }
    assert!(b.gateway().reload_certificates().expect("reloaded"));
    let fresh = within(connect(stomps, trust_second.clone())).await.unwrap();
    assert_eq!(server_common_name(&fresh).as_deref(), Some("second-server"));
    assert!(within(connect(stomps, trust_first)).await.is_err());

    // A bad key file: the reload fails and the certificate in force stays.
    std::fs::write(first.path("server.key"), "not a key").unwrap();
    let e = b.gateway().reload_certificates().unwrap_err();
    assert!(e.to_string().contains("key_file"), "{e}");
    within(connect(stomps, trust_second))
        .await
        .expect("old certificate still served");

    // The connection opened before the reload carries on.
    open.write_all(b"SEND\ndestination:/queue/tls-reload\nreceipt:r1\n\nafter reload\0")
        .await
        .unwrap();
    let receipt = within(read_frame(&mut open)).await.unwrap();
    assert!(receipt.starts_with("RECEIPT"), "{receipt}");
    b.stop().await;
}

#[tokio::test]
async fn tls_files_that_do_not_load_stop_the_start_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::write(dir.path(), "first-server");
    std::fs::write(pki.path("empty.pem"), "").unwrap();
    let cfg = junction_gateway::config::Config {
        data_dir: dir.path().join("data"),
        tls: Some(TlsConfig {
            cert_file: pki.path("empty.pem"),
            ..tls_settings(&pki, Verify::None)
        }),
        ..Default::default()
    };
    let e = within(junction_gateway::Gateway::start(cfg))
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("tls.cert_file"), "{e}");
}
