//! The RabbitMQ tutorial programs, run with lapin against a real Junction.

use futures::StreamExt;
use junction_tests::{within, TestBroker};
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use std::time::Duration;

async fn connect(b: &TestBroker) -> Connection {
    within(Connection::connect(
        &b.amqp_uri(),
        ConnectionProperties::default(),
    ))
    .await
    .expect("connect")
}

async fn channel(c: &Connection) -> Channel {
    within(c.create_channel()).await.expect("channel")
}

async fn declare(ch: &Channel, name: &str, durable: bool) -> String {
    within(ch.queue_declare(
        name,
        QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect("queue.declare")
    .name()
    .to_string()
}

async fn publish(ch: &Channel, ex: &str, key: &str, body: &[u8], props: BasicProperties) {
    within(ch.basic_publish(ex, key, BasicPublishOptions::default(), body, props))
        .await
        .expect("publish");
}

async fn consume(ch: &Channel, q: &str, no_ack: bool) -> Consumer {
    within(ch.basic_consume(
        q,
        "",
        BasicConsumeOptions {
            no_ack,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect("consume")
}

async fn next_body(c: &mut Consumer) -> Vec<u8> {
    let d = within(c.next())
        .await
        .expect("stream open")
        .expect("delivery");
    d.data
}

/// Bodies that arrive within a short window (for asserting that nothing else comes).
async fn drain_quietly(c: &mut Consumer) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_millis(300), c.next()).await {
        out.push(d.data);
    }
    out
}

#[tokio::test]
async fn hello_world_ten_thousand_in_order_once() {
    let b = TestBroker::start().await;
    let producer = connect(&b).await;
    let pch = channel(&producer).await;
    declare(&pch, "hello", false).await;
    for i in 0..10_000u32 {
        publish(
            &pch,
            "",
            "hello",
            &i.to_be_bytes(),
            BasicProperties::default(),
        )
        .await;
    }
    within(producer.close(200, "bye")).await.unwrap();

    let consumer = connect(&b).await;
    let cch = channel(&consumer).await;
    declare(&cch, "hello", false).await;
    let mut c = consume(&cch, "hello", false).await;
    for i in 0..10_000u32 {
        let d = within(c.next()).await.unwrap().unwrap();
        assert_eq!(d.data, i.to_be_bytes(), "message {i} in order");
        assert!(!d.redelivered);
        within(d.ack(BasicAckOptions::default())).await.unwrap();
    }
    assert!(
        drain_quietly(&mut c).await.is_empty(),
        "each message exactly once"
    );
    b.stop().await;
}

#[tokio::test]
async fn work_queues_prefetch_one_and_redelivery_to_survivor() {
    let b = TestBroker::start().await;
    let conn_a = connect(&b).await;
    let conn_b = connect(&b).await;
    let ch_a = channel(&conn_a).await;
    let ch_b = channel(&conn_b).await;
    declare(&ch_a, "tasks", true).await;
    declare(&ch_b, "tasks", true).await;
    within(ch_a.basic_qos(1, BasicQosOptions::default()))
        .await
        .unwrap();
    within(ch_b.basic_qos(1, BasicQosOptions::default()))
        .await
        .unwrap();
    let mut slow = consume(&ch_a, "tasks", false).await;
    let pub_conn = connect(&b).await;
    let pch = channel(&pub_conn).await;
    for i in 0..6u8 {
        let props = BasicProperties::default().with_delivery_mode(2);
        publish(&pch, "", "tasks", &[i], props).await;
    }
    // The slow consumer holds one unacked message and is sent nothing more.
    let first = within(slow.next()).await.unwrap().unwrap();
    assert_eq!(first.data, vec![0]);
    assert!(
        drain_quietly(&mut slow).await.is_empty(),
        "prefetch 1 respected"
    );
    // The fast consumer takes the rest while the slow one sits on its message.
    let mut fast = consume(&ch_b, "tasks", false).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        let d = within(fast.next()).await.unwrap().unwrap();
        got.push(d.data[0]);
        within(d.ack(BasicAckOptions::default())).await.unwrap();
    }
    assert_eq!(got, vec![1, 2, 3, 4, 5]);
    // The slow worker dies mid-task: its message goes to the survivor, marked redelivered.
    drop(first);
    within(conn_a.close(200, "worker crashed")).await.unwrap();
    let d = within(fast.next()).await.unwrap().unwrap();
    assert_eq!(d.data, vec![0]);
    assert!(d.redelivered);
    within(d.ack(BasicAckOptions::default())).await.unwrap();
    b.stop().await;
}

async fn exchange(ch: &Channel, name: &str, kind: ExchangeKind) {
    within(ch.exchange_declare(
        name,
        kind,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("exchange.declare");
}

async fn bind(ch: &Channel, q: &str, ex: &str, key: &str, args: FieldTable) {
    within(ch.queue_bind(q, ex, key, QueueBindOptions::default(), args))
        .await
        .expect("queue.bind");
}

#[tokio::test]
async fn publish_subscribe_with_fanout() {
    let b = TestBroker::start().await;
    let conn = connect(&b).await;
    let ch = channel(&conn).await;
    exchange(&ch, "logs", ExchangeKind::Fanout).await;
    let mut subs = Vec::new();
    for _ in 0..3 {
        let q = within(ch.queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ))
        .await
        .unwrap();
        assert!(q.name().as_str().starts_with("amq.gen-"));
        bind(&ch, q.name().as_str(), "logs", "", FieldTable::default()).await;
        subs.push(consume(&ch, q.name().as_str(), true).await);
    }
    publish(
        &ch,
        "logs",
        "ignored",
        b"hello all",
        BasicProperties::default(),
    )
    .await;
    for s in &mut subs {
        assert_eq!(next_body(s).await, b"hello all");
    }
    b.stop().await;
}

#[tokio::test]
async fn routing_by_severity_with_direct() {
    let b = TestBroker::start().await;
    let conn = connect(&b).await;
    let ch = channel(&conn).await;
    exchange(&ch, "direct_logs", ExchangeKind::Direct).await;
    declare(&ch, "errors_only", false).await;
    declare(&ch, "everything", false).await;
    bind(
        &ch,
        "errors_only",
        "direct_logs",
        "error",
        FieldTable::default(),
    )
    .await;
    for sev in ["info", "warning", "error"] {
        bind(&ch, "everything", "direct_logs", sev, FieldTable::default()).await;
    }
    for sev in ["info", "error", "warning", "debug"] {
        publish(
            &ch,
            "direct_logs",
            sev,
            sev.as_bytes(),
            BasicProperties::default(),
        )
        .await;
    }
    let mut e = consume(&ch, "errors_only", true).await;
    let mut all = consume(&ch, "everything", true).await;
    assert_eq!(drain_quietly(&mut e).await, vec![b"error".to_vec()]);
    assert_eq!(
        drain_quietly(&mut all).await,
        vec![b"info".to_vec(), b"error".to_vec(), b"warning".to_vec()]
    );
    b.stop().await;
}

#[tokio::test]
async fn topics_with_star_and_hash() {
    let b = TestBroker::start().await;
    let conn = connect(&b).await;
    let ch = channel(&conn).await;
    exchange(&ch, "topic_logs", ExchangeKind::Topic).await;
    declare(&ch, "q1", false).await;
    declare(&ch, "q2", false).await;
    bind(&ch, "q1", "topic_logs", "*.orange.*", FieldTable::default()).await;
    bind(&ch, "q2", "topic_logs", "*.*.rabbit", FieldTable::default()).await;
    bind(&ch, "q2", "topic_logs", "lazy.#", FieldTable::default()).await;
    for key in [
        "quick.orange.rabbit",
        "lazy.orange.elephant",
        "quick.orange.fox",
        "lazy.brown.fox",
        "lazy.pink.rabbit",
        "quick.brown.fox",
        "orange",
        "quick.orange.male.rabbit",
        "lazy.orange.male.rabbit",
    ] {
        publish(
            &ch,
            "topic_logs",
            key,
            key.as_bytes(),
            BasicProperties::default(),
        )
        .await;
    }
    let mut c1 = consume(&ch, "q1", true).await;
    let mut c2 = consume(&ch, "q2", true).await;
    let s = |v: Vec<Vec<u8>>| -> Vec<String> {
        v.into_iter()
            .map(|b| String::from_utf8(b).unwrap())
            .collect()
    };
    assert_eq!(
        s(drain_quietly(&mut c1).await),
        vec![
            "quick.orange.rabbit",
            "lazy.orange.elephant",
            "quick.orange.fox"
        ]
    );
    assert_eq!(
        s(drain_quietly(&mut c2).await),
        vec![
            "quick.orange.rabbit",
            "lazy.orange.elephant",
            "lazy.brown.fox",
            "lazy.pink.rabbit",
            "lazy.orange.male.rabbit"
        ]
    );
    b.stop().await;
}

#[tokio::test]
async fn headers_exchange_all_and_any() {
    let b = TestBroker::start().await;
    let conn = connect(&b).await;
    let ch = channel(&conn).await;
    declare(&ch, "pdf_reports", false).await;
    declare(&ch, "any_match", false).await;
    let mut all = FieldTable::default();
    all.insert("x-match".into(), AMQPValue::LongString("all".into()));
    all.insert("format".into(), AMQPValue::LongString("pdf".into()));
    all.insert("type".into(), AMQPValue::LongString("report".into()));
    bind(&ch, "pdf_reports", "amq.headers", "", all).await;
    let mut any = FieldTable::default();
    any.insert("x-match".into(), AMQPValue::LongString("any".into()));
    any.insert("format".into(), AMQPValue::LongString("zip".into()));
    any.insert("type".into(), AMQPValue::LongString("report".into()));
    bind(&ch, "any_match", "amq.headers", "", any).await;
    let headers = |fmt: &str, ty: &str| {
        let mut h = FieldTable::default();
        h.insert("format".into(), AMQPValue::LongString(fmt.into()));
        h.insert("type".into(), AMQPValue::LongString(ty.into()));
        BasicProperties::default().with_headers(h)
    };
    publish(
        &ch,
        "amq.headers",
        "",
        b"pdf report",
        headers("pdf", "report"),
    )
    .await;
    publish(&ch, "amq.headers", "", b"zip log", headers("zip", "log")).await;
    publish(&ch, "amq.headers", "", b"pdf log", headers("pdf", "log")).await;
    let mut a = consume(&ch, "pdf_reports", true).await;
    let mut y = consume(&ch, "any_match", true).await;
    assert_eq!(drain_quietly(&mut a).await, vec![b"pdf report".to_vec()]);
    assert_eq!(
        drain_quietly(&mut y).await,
        vec![b"pdf report".to_vec(), b"zip log".to_vec()]
    );
    b.stop().await;
}

#[tokio::test]
async fn rpc_with_reply_queue_and_correlation_id() {
    let b = TestBroker::start().await;
    let server_conn = connect(&b).await;
    let sch = channel(&server_conn).await;
    declare(&sch, "rpc_queue", false).await;
    let mut requests = consume(&sch, "rpc_queue", false).await;
    let server = tokio::spawn(async move {
        for _ in 0..3 {
            let d = within(requests.next()).await.unwrap().unwrap();
            let n: u64 = String::from_utf8(d.data.clone()).unwrap().parse().unwrap();
            let reply_to = d.properties.reply_to().clone().unwrap();
            let corr = d.properties.correlation_id().clone().unwrap();
            let answer = (n * n).to_string();
            within(sch.basic_publish(
                "",
                reply_to.as_str(),
                BasicPublishOptions::default(),
                answer.as_bytes(),
                BasicProperties::default().with_correlation_id(corr),
            ))
            .await
            .unwrap();
            within(d.ack(BasicAckOptions::default())).await.unwrap();
        }
    });
    let client_conn = connect(&b).await;
    let cch = channel(&client_conn).await;
    let callback = within(cch.queue_declare(
        "",
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let mut replies = consume(&cch, callback.name().as_str(), true).await;
    for n in [3u64, 7, 12] {
        let corr = format!("req-{n}");
        let props = BasicProperties::default()
            .with_reply_to(callback.name().clone())
            .with_correlation_id(corr.clone().into());
        publish(&cch, "", "rpc_queue", n.to_string().as_bytes(), props).await;
        let d = within(replies.next()).await.unwrap().unwrap();
        assert_eq!(
            d.properties.correlation_id().as_ref().unwrap().as_str(),
            corr
        );
        assert_eq!(String::from_utf8(d.data).unwrap(), (n * n).to_string());
    }
    within(server).await.unwrap();
    b.stop().await;
}

#[tokio::test]
async fn rpc_with_direct_reply_to() {
    let b = TestBroker::start().await;
    let server_conn = connect(&b).await;
    let sch = channel(&server_conn).await;
    declare(&sch, "rpc", false).await;
    let mut requests = consume(&sch, "rpc", true).await;
    let server = tokio::spawn(async move {
        let d = within(requests.next()).await.unwrap().unwrap();
        let reply_to = d.properties.reply_to().clone().unwrap();
        assert!(
            reply_to.as_str().starts_with("amq.rabbitmq.reply-to."),
            "{reply_to:?}"
        );
        within(
            sch.basic_publish(
                "",
                reply_to.as_str(),
                BasicPublishOptions::default(),
                b"pong",
                BasicProperties::default()
                    .with_correlation_id(d.properties.correlation_id().clone().unwrap()),
            ),
        )
        .await
        .unwrap();
    });
    let client_conn = connect(&b).await;
    let cch = channel(&client_conn).await;
    let mut replies = consume(&cch, "amq.rabbitmq.reply-to", true).await;
    let props = BasicProperties::default()
        .with_reply_to("amq.rabbitmq.reply-to".into())
        .with_correlation_id("c1".into());
    publish(&cch, "", "rpc", b"ping", props).await;
    let d = within(replies.next()).await.unwrap().unwrap();
    assert_eq!(d.data, b"pong");
    assert_eq!(
        d.properties.correlation_id().as_ref().unwrap().as_str(),
        "c1"
    );
    within(server).await.unwrap();
    b.stop().await;
}
