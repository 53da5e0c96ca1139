//! STOMP over real sockets: negotiation, destinations, acks, transactions, receipts, errors.

use junction_stomp::codec::{Command, Frame};
use junction_tests::raw_stomp::{frame, StompClient};
use junction_tests::{within, TestBroker};
use std::time::Duration;

fn send(dest: &str, body: &[u8], extra: &[(&str, &str)]) -> Frame {
    let mut h = vec![("destination", dest)];
    h.extend_from_slice(extra);
    frame(Command::Send, &h, body)
}

async fn message(c: &mut StompClient) -> Frame {
    let f = within(c.recv()).await.expect("a MESSAGE");
    assert_eq!(f.command, Command::Message, "{f:?}");
    f
}

async fn error(c: &mut StompClient) -> Frame {
    let f = within(c.recv()).await.expect("an ERROR");
    assert_eq!(f.command, Command::Error, "{f:?}");
    assert!(f.header("message").is_some());
    assert!(
        within(c.recv()).await.is_none(),
        "connection closed after ERROR"
    );
    f
}

#[tokio::test]
async fn version_negotiation_login_and_default_user() {
    let b = TestBroker::start().await;
    let a = b.addrs.stomp.unwrap();
    let (_c, ok) = within(StompClient::connect_with(
        a,
        &[
            ("accept-version", "1.0,1.1,1.2"),
            ("host", "/"),
            ("login", "guest"),
            ("passcode", "guest"),
        ],
    ))
    .await;
    assert_eq!(ok.command, Command::Connected);
    assert_eq!(ok.header("version"), Some("1.2"));
    assert!(ok.header("server").unwrap().starts_with("Junction/"));
    assert!(ok.header("session").is_some());
    let (_c, ok) = within(StompClient::connect_with(a, &[("accept-version", "1.1")])).await;
    assert_eq!(
        ok.header("version"),
        Some("1.1"),
        "default user guest when no login is sent"
    );
    let (_c, ok) = within(StompClient::connect_with(a, &[])).await;
    assert_eq!(ok.header("version"), Some("1.0"));
    let (mut c, bad) = within(StompClient::connect_with(
        a,
        &[("accept-version", "2.0,3.1")],
    ))
    .await;
    assert_eq!(bad.command, Command::Error);
    assert_eq!(bad.header("version"), Some("1.0,1.1,1.2"));
    assert!(within(c.recv()).await.is_none());
    let (mut c, bad) = within(StompClient::connect_with(
        a,
        &[
            ("accept-version", "1.2"),
            ("login", "guest"),
            ("passcode", "wrong"),
        ],
    ))
    .await;
    assert_eq!(bad.command, Command::Error);
    assert!(within(c.recv()).await.is_none());
    // The STOMP command works like CONNECT.
    let mut c = StompClient::open(a).await;
    c.send(&frame(
        Command::Stomp,
        &[("accept-version", "1.2"), ("host", "/")],
        b"",
    ))
    .await;
    assert_eq!(within(c.recv()).await.unwrap().command, Command::Connected);
    b.stop().await;
}

#[tokio::test]
async fn heart_beats_both_ways_and_silent_client_dropped() {
    let b = TestBroker::start().await;
    let (mut c, ok) = within(StompClient::connect_with(
        b.addrs.stomp.unwrap(),
        &[("accept-version", "1.2"), ("heart-beat", "500,200")],
    ))
    .await;
    assert_eq!(ok.header("heart-beat"), Some("200,500"));
    let started = tokio::time::Instant::now();
    assert!(within(c.recv()).await.is_none(), "dropped for silence");
    let waited = started.elapsed();
    assert!(
        c.heartbeats >= 3,
        "server heart-beats seen: {}",
        c.heartbeats
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    b.stop().await;
}

#[tokio::test]
async fn queue_destination_with_headers_and_nul_body() {
    let b = TestBroker::start().await;
    let (mut c, _) = within(StompClient::connect(b.addrs.stomp.unwrap())).await;
    c.subscribe("s1", "/queue/orders", &[]).await;
    let body = b"a\0b\0\xff";
    c.send_with_receipt(
        send(
            "/queue/orders",
            body,
            &[
                ("content-type", "application/octet-stream"),
                ("content-length", "5"),
                ("x-tenant", "acme"),
                ("persistent", "true"),
                ("priority", "3"),
                ("correlation-id", "c-9"),
            ],
        ),
        "r1",
    )
    .await;
    let m = message(&mut c).await;
    assert_eq!(&m.body[..], body);
    assert_eq!(m.header("subscription"), Some("s1"));
    assert_eq!(m.header("destination"), Some("/queue/orders"));
    assert_eq!(m.header("content-type"), Some("application/octet-stream"));
    assert_eq!(m.header("x-tenant"), Some("acme"));
    assert_eq!(m.header("persistent"), Some("true"));
    assert_eq!(m.header("priority"), Some("3"));
    assert_eq!(m.header("correlation-id"), Some("c-9"));
    assert_eq!(m.header("redelivered"), Some("false"));
    assert!(m.header("message-id").is_some());
    assert!(m.header("ack").is_none(), "auto ack mode has no ack header");
    b.stop().await;
}

#[tokio::test]
async fn topic_fans_out_and_exchange_destinations_route() {
    let b = TestBroker::start().await;
    let a = b.addrs.stomp.unwrap();
    let (mut s1, _) = within(StompClient::connect(a)).await;
    let (mut s2, _) = within(StompClient::connect(a)).await;
    s1.subscribe("t", "/topic/sensors.*.temp", &[]).await;
    s2.subscribe("t", "/topic/sensors.#", &[]).await;
    let (mut p, _) = within(StompClient::connect(a)).await;
    p.send_with_receipt(send("/topic/sensors.kitchen.temp", b"21", &[]), "r")
        .await;
    for s in [&mut s1, &mut s2] {
        let m = message(s).await;
        assert_eq!(&m.body[..], b"21");
        assert_eq!(m.header("destination"), Some("/topic/sensors.kitchen.temp"));
    }
    s1.subscribe("d", "/exchange/amq.direct/alerts", &[]).await;
    p.send_with_receipt(send("/exchange/amq.direct/alerts", b"fire", &[]), "r2")
        .await;
    p.send_with_receipt(send("/exchange/amq.direct/other", b"nope", &[]), "r3")
        .await;
    let m = message(&mut s1).await;
    assert_eq!(
        (&m.body[..], m.header("subscription")),
        (&b"fire"[..], Some("d"))
    );
    s1.expect_silence(Duration::from_millis(200)).await;
    s2.expect_silence(Duration::from_millis(100)).await;
    b.stop().await;
}

#[tokio::test]
async fn amq_queue_needs_an_existing_queue() {
    let b = TestBroker::start().await;
    let (mut c, _) = within(StompClient::connect(b.addrs.stomp.unwrap())).await;
    c.send(&frame(
        Command::Subscribe,
        &[("id", "x"), ("destination", "/amq/queue/absent")],
        b"",
    ))
    .await;
    let e = error(&mut c).await;
    assert_eq!(e.header("message"), Some("not_found"));
    assert!(String::from_utf8_lossy(&e.body).contains("absent"));
    b.stop().await;
}

#[tokio::test]
async fn client_ack_is_cumulative_and_individual_is_not() {
    let b = TestBroker::start().await;
    let a = b.addrs.stomp.unwrap();
    let (mut c, _) = within(StompClient::connect(a)).await;
    for i in 0..3 {
        c.send_with_receipt(
            send("/queue/cum", format!("m{i}").as_bytes(), &[]),
            &format!("p{i}"),
        )
        .await;
        c.send_with_receipt(
            send("/queue/ind", format!("m{i}").as_bytes(), &[]),
            &format!("q{i}"),
        )
        .await;
    }
    c.subscribe("cum", "/queue/cum", &[("ack", "client")]).await;
    let ms: Vec<Frame> = vec![
        message(&mut c).await,
        message(&mut c).await,
        message(&mut c).await,
    ];
    // ACK of the second covers the first too.
    c.send_with_receipt(
        frame(Command::Ack, &[("id", ms[1].header("ack").unwrap())], b""),
        "a1",
    )
    .await;
    c.subscribe("ind", "/queue/ind", &[("ack", "client-individual")])
        .await;
    let is: Vec<Frame> = vec![
        message(&mut c).await,
        message(&mut c).await,
        message(&mut c).await,
    ];
    c.send_with_receipt(
        frame(Command::Ack, &[("id", is[1].header("ack").unwrap())], b""),
        "a2",
    )
    .await;
    // Disconnect: unacked messages return to their queues.
    c.send_with_receipt(frame(Command::Disconnect, &[], b""), "bye")
        .await;
    let (mut d, _) = within(StompClient::connect(a)).await;
    d.subscribe("c2", "/queue/cum", &[]).await;
    let m = message(&mut d).await;
    assert_eq!(
        (&m.body[..], m.header("redelivered")),
        (&b"m2"[..], Some("true"))
    );
    d.subscribe("i2", "/queue/ind", &[]).await;
    let got = [message(&mut d).await, message(&mut d).await];
    let bodies: Vec<&[u8]> = got.iter().map(|f| &f.body[..]).collect();
    assert_eq!(bodies, vec![&b"m0"[..], b"m2"]);
    d.expect_silence(Duration::from_millis(200)).await;
    b.stop().await;
}

#[tokio::test]
async fn nack_requeues_or_dead_letters() {
    let b = TestBroker::start().await;
    let (mut c, _) = within(StompClient::connect(b.addrs.stomp.unwrap())).await;
    c.subscribe("dead", "/queue/graveyard", &[]).await;
    c.subscribe(
        "w",
        "/queue/work",
        &[
            ("ack", "client-individual"),
            ("x-dead-letter-exchange", ""),
            ("x-dead-letter-routing-key", "graveyard"),
        ],
    )
    .await;
    c.send_with_receipt(send("/queue/work", b"job", &[]), "s")
        .await;
    let m = message(&mut c).await;
    c.send(&frame(
        Command::Nack,
        &[("id", m.header("ack").unwrap())],
        b"",
    ))
    .await;
    let again = message(&mut c).await;
    assert_eq!(
        (&again.body[..], again.header("redelivered")),
        (&b"job"[..], Some("true"))
    );
    c.send(&frame(
        Command::Nack,
        &[("id", again.header("ack").unwrap()), ("requeue", "false")],
        b"",
    ))
    .await;
    let dead = message(&mut c).await;
    assert_eq!(dead.header("subscription"), Some("dead"));
    let x_death = dead.header("x-death").expect("x-death reaches STOMP");
    assert!(
        x_death.contains("\"reason\":\"rejected\"") && x_death.contains("\"queue\":\"work\""),
        "{x_death}"
    );
    b.stop().await;
}

#[tokio::test]
async fn transactions_cover_send_and_ack() {
    let b = TestBroker::start().await;
    let (mut c, _) = within(StompClient::connect(b.addrs.stomp.unwrap())).await;
    c.subscribe("s", "/queue/tx", &[("ack", "client-individual")])
        .await;
    c.send(&frame(Command::Begin, &[("transaction", "t1")], b""))
        .await;
    c.send(&send("/queue/tx", b"aborted", &[("transaction", "t1")]))
        .await;
    c.send_with_receipt(frame(Command::Abort, &[("transaction", "t1")], b""), "ab")
        .await;
    c.expect_silence(Duration::from_millis(200)).await;
    c.send(&frame(Command::Begin, &[("transaction", "t2")], b""))
        .await;
    c.send(&send("/queue/tx", b"committed", &[("transaction", "t2")]))
        .await;
    c.expect_silence(Duration::from_millis(100)).await;
    c.send_with_receipt(frame(Command::Commit, &[("transaction", "t2")], b""), "co")
        .await;
    let m = message(&mut c).await;
    assert_eq!(&m.body[..], b"committed");
    // An ACK inside an aborted transaction never happened: the message comes back on reconnect.
    c.send(&frame(Command::Begin, &[("transaction", "t3")], b""))
        .await;
    c.send(&frame(
        Command::Ack,
        &[("id", m.header("ack").unwrap()), ("transaction", "t3")],
        b"",
    ))
    .await;
    c.send_with_receipt(frame(Command::Abort, &[("transaction", "t3")], b""), "ab3")
        .await;
    c.send(&frame(Command::Commit, &[("transaction", "nope")], b""))
        .await;
    let e = error(&mut c).await;
    assert_eq!(e.header("message"), Some("Bad transaction"));
    let (mut d, _) = within(StompClient::connect(b.addrs.stomp.unwrap())).await;
    d.subscribe("s", "/queue/tx", &[]).await;
    assert_eq!(&message(&mut d).await.body[..], b"committed");
    b.stop().await;
}

#[tokio::test]
async fn temp_queue_request_reply() {
    let b = TestBroker::start().await;
    let a = b.addrs.stomp.unwrap();
    let (mut server, _) = within(StompClient::connect(a)).await;
    server.subscribe("req", "/queue/rpc", &[]).await;
    let (mut client, _) = within(StompClient::connect(a)).await;
    client
        .send(&send(
            "/queue/rpc",
            b"2+2",
            &[
                ("reply-to", "/temp-queue/answers"),
                ("correlation-id", "q1"),
            ],
        ))
        .await;
    let req = message(&mut server).await;
    let reply_to = req.header("reply-to").unwrap().to_string();
    assert!(reply_to.starts_with("/reply-queue/amq.gen-"), "{reply_to}");
    server
        .send(&send(&reply_to, b"4", &[("correlation-id", "q1")]))
        .await;
    let answer = message(&mut client).await;
    assert_eq!(&answer.body[..], b"4");
    assert_eq!(answer.header("subscription"), Some("/temp-queue/answers"));
    assert_eq!(answer.header("destination"), Some("/temp-queue/answers"));
    assert_eq!(answer.header("correlation-id"), Some("q1"));
    b.stop().await;
}

#[tokio::test]
async fn durable_topic_subscription_keeps_messages_while_away() {
    let b = TestBroker::start().await;
    let a = b.addrs.stomp.unwrap();
    let (mut c, _) = within(StompClient::connect(a)).await;
    c.subscribe(
        "news",
        "/topic/news",
        &[("durable", "true"), ("auto-delete", "false")],
    )
    .await;
    c.send_with_receipt(frame(Command::Disconnect, &[], b""), "bye")
        .await;
    let (mut p, _) = within(StompClient::connect(a)).await;
    p.send_with_receipt(send("/topic/news", b"while you were away", &[]), "r")
        .await;
    let (mut c, _) = within(StompClient::connect(a)).await;
    c.subscribe(
        "news",
        "/topic/news",
        &[("durable", "true"), ("auto-delete", "false")],
    )
    .await;
    assert_eq!(&message(&mut c).await.body[..], b"while you were away");
    // UNSUBSCRIBE with durable:true removes the subscription's queue.
    c.send_with_receipt(
        frame(
            Command::Unsubscribe,
            &[("id", "news"), ("durable", "true")],
            b"",
        ),
        "u",
    )
    .await;
    let vh = b.gateway().broker().vhost("/").unwrap();
    assert!(vh.queue("stomp-subscription-news", None).is_err());
    b.stop().await;
}

#[tokio::test]
async fn prefetch_count_limits_unacked_messages() {
    let b = TestBroker::start().await;
    let (mut c, _) = within(StompClient::connect(b.addrs.stomp.unwrap())).await;
    for i in 0..5 {
        c.send_with_receipt(
            send("/queue/pf", format!("{i}").as_bytes(), &[]),
            &format!("r{i}"),
        )
        .await;
    }
    c.subscribe(
        "s",
        "/queue/pf",
        &[("ack", "client-individual"), ("prefetch-count", "2")],
    )
    .await;
    let first = [message(&mut c).await, message(&mut c).await];
    c.expect_silence(Duration::from_millis(300)).await;
    c.send(&frame(
        Command::Ack,
        &[("id", first[0].header("ack").unwrap())],
        b"",
    ))
    .await;
    assert_eq!(&message(&mut c).await.body[..], b"2");
    b.stop().await;
}

#[tokio::test]
async fn errors_name_the_problem_and_close() {
    let b = TestBroker::start().await;
    let a = b.addrs.stomp.unwrap();
    let cases: Vec<(Frame, &str)> = vec![
        (send("/nowhere/x", b"", &[]), "Bad destination"),
        (
            frame(Command::Send, &[], b""),
            "Missing 'destination' header",
        ),
        (
            frame(Command::Subscribe, &[("destination", "/queue/a")], b""),
            "Missing 'id' header",
        ),
        (
            frame(Command::Unsubscribe, &[("id", "ghost")], b""),
            "Bad subscription",
        ),
        (frame(Command::Ack, &[("id", "77")], b""), "Bad ack id"),
        (frame(Command::Connect, &[], b""), "already connected"),
        (send("/exchange/missing/k", b"", &[]), "not_found"),
    ];
    for (f, message_header) in cases {
        let (mut c, _) = within(StompClient::connect(a)).await;
        c.send(&f).await;
        let e = error(&mut c).await;
        assert_eq!(e.header("message"), Some(message_header), "{f:?} -> {e:?}");
        assert!(!e.body.is_empty());
    }
    // A frame before CONNECT, and a malformed frame.
    let mut c = StompClient::open(a).await;
    c.send(&send("/queue/a", b"x", &[])).await;
    error(&mut c).await;
    let (mut c, _) = within(StompClient::connect(a)).await;
    c.send_raw(b"SEND\ndestination:/queue/a\nbad\\escape:x\\q\n\n\0")
        .await;
    assert_eq!(
        error(&mut c).await.header("message"),
        Some("malformed frame")
    );
    b.stop().await;
}

#[tokio::test]
async fn oversized_headers_get_an_error_frame() {
    let b = TestBroker::start().await;
    let (mut c, _) = within(StompClient::connect(b.addrs.stomp.unwrap())).await;
    let many: String = (0..2000).map(|i| format!("h{i}:v\n")).collect();
    c.send_raw(format!("SEND\ndestination:/queue/a\n{many}\n\0").as_bytes())
        .await;
    let e = error(&mut c).await;
    assert!(
        String::from_utf8_lossy(&e.body).contains("too many headers"),
        "{e:?}"
    );
    b.stop().await;
}

#[tokio::test]
async fn default_user_can_be_turned_off() {
    let b = TestBroker::start_with(|c| c.stomp.default_user.clear()).await;
    let (mut c, reply) = within(StompClient::connect_with(
        b.addrs.stomp.unwrap(),
        &[("accept-version", "1.2")],
    ))
    .await;
    assert_eq!(reply.command, Command::Error);
    assert!(within(c.recv()).await.is_none());
    b.stop().await;
}

/// NACK with `requeue:false` on a queue without a dead-letter exchange drops the message.
#[tokio::test]
async fn nack_without_requeue_and_without_dlx_drops_the_message() {
    let b = TestBroker::start().await;
    let (mut c, _) = within(StompClient::connect(b.addrs.stomp.unwrap())).await;
    c.subscribe("s", "/queue/nodlx", &[("ack", "client-individual")])
        .await;
    c.send_with_receipt(send("/queue/nodlx", b"poison", &[]), "r")
        .await;
    let m = message(&mut c).await;
    c.send_with_receipt(
        frame(
            Command::Nack,
            &[("id", m.header("ack").unwrap()), ("requeue", "false")],
            b"",
        ),
        "n",
    )
    .await;
    c.expect_silence(Duration::from_millis(200)).await;
    let q = b
        .gateway()
        .broker()
        .vhost("/")
        .unwrap()
        .queue("nodlx", None)
        .unwrap();
    assert_eq!((q.message_count(), q.unacked_count()), (0, 0));
    b.stop().await;
}

/// A queue that `/queue/x` created has RabbitMQ's STOMP properties (durable, not exclusive,
/// not auto-delete, no arguments): an AMQP client declaring it the same way is not refused.
#[tokio::test]
async fn queues_made_by_stomp_match_an_amqp_declare_with_rabbitmqs_defaults() {
    let b = TestBroker::start().await;
    let (mut c, _) = within(StompClient::connect(b.addrs.stomp.unwrap())).await;
    c.send_with_receipt(send("/queue/by-send", b"x", &[]), "r")
        .await;
    c.subscribe("s", "/queue/by-subscribe", &[]).await;
    let (_conn, ch) = junction_tests::amqp_channel(&b.amqp_uri()).await;
    for q in ["by-send", "by-subscribe"] {
        within(ch.queue_declare(
            q,
            lapin::options::QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            Default::default(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    b.stop().await;
}

/// `host` names the vhost, as in RabbitMQ: one that does not exist is refused.
#[tokio::test]
async fn an_unknown_vhost_in_host_is_refused() {
    let b = TestBroker::start().await;
    let (mut c, reply) = within(StompClient::connect_with(
        b.addrs.stomp.unwrap(),
        &[("accept-version", "1.2"), ("host", "localhost")],
    ))
    .await;
    assert_eq!(reply.command, Command::Error, "{reply:?}");
    assert_eq!(reply.header("message"), Some("Bad CONNECT"));
    assert_eq!(
        std::str::from_utf8(&reply.body).unwrap(),
        "Virtual host 'localhost' access denied"
    );
    assert!(within(c.recv()).await.is_none());
    b.stop().await;
}

/// A SEND inside a transaction is receipted when it is taken (as RabbitMQ does); COMMIT's
/// receipt comes once what it routed is durable, and only then are the messages delivered.
#[tokio::test]
async fn transactional_sends_are_receipted_when_taken() {
    let b = TestBroker::start().await;
    let (mut c, _) = within(StompClient::connect(b.addrs.stomp.unwrap())).await;
    c.subscribe("s", "/queue/txr", &[]).await;
    c.send(&frame(Command::Begin, &[("transaction", "t")], b""))
        .await;
    c.send_with_receipt(
        send(
            "/queue/txr",
            b"in tx",
            &[("transaction", "t"), ("persistent", "true")],
        ),
        "s1",
    )
    .await;
    c.expect_silence(Duration::from_millis(100)).await;
    c.send_with_receipt(frame(Command::Commit, &[("transaction", "t")], b""), "c")
        .await;
    assert_eq!(&message(&mut c).await.body[..], b"in tx");
    b.stop().await;
}
