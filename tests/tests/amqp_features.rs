//! AMQP features beyond the tutorials: confirms, returns, tx, get, purge, delete, qos,
//! consumer-cancel notification, TTL and dead-lettering, seen through lapin.

use futures::StreamExt;
use junction_tests::{amqp_channel, within, TestBroker};
use lapin::options::*;
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection};
use std::time::Duration;

async fn open(b: &TestBroker) -> (Connection, Channel) {
    amqp_channel(&b.amqp_uri()).await
}

async fn declare_with(ch: &Channel, name: &str, args: FieldTable) {
    within(ch.queue_declare(name, QueueDeclareOptions::default(), args))
        .await
        .expect("declare");
}

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert((*k).into(), v.clone());
    }
    t
}

async fn publish_confirmed(
    ch: &Channel,
    ex: &str,
    key: &str,
    body: &[u8],
    mandatory: bool,
) -> Confirmation {
    let pc = within(ch.basic_publish(
        ex,
        key,
        BasicPublishOptions {
            mandatory,
            ..Default::default()
        },
        body,
        BasicProperties::default().with_delivery_mode(2),
    ))
    .await
    .expect("publish");
    within(pc).await.expect("confirm")
}

#[tokio::test]
async fn confirms_ack_nack_and_mandatory_return() {
    let b = TestBroker::start().await;
    let (_c, ch) = open(&b).await;
    within(ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .unwrap();
    declare_with(&ch, "q", FieldTable::default()).await;
    assert!(matches!(
        publish_confirmed(&ch, "", "q", b"one", false).await,
        Confirmation::Ack(None)
    ));
    // Unroutable + mandatory: basic.return (312 NO_ROUTE) then ack.
    match publish_confirmed(&ch, "amq.direct", "nowhere", b"lost", true).await {
        Confirmation::Ack(Some(ret)) => {
            assert_eq!(ret.reply_code, 312);
            assert_eq!(ret.reply_text.as_str(), "NO_ROUTE");
            assert_eq!(ret.delivery.data, b"lost");
        }
        other => panic!("expected a returned message, got {other:?}"),
    }
    // A full reject-publish queue nacks.
    declare_with(
        &ch,
        "tiny",
        table(&[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-overflow", AMQPValue::LongString("reject-publish".into())),
        ]),
    )
    .await;
    assert!(matches!(
        publish_confirmed(&ch, "", "tiny", b"fits", false).await,
        Confirmation::Ack(_)
    ));
    assert!(matches!(
        publish_confirmed(&ch, "", "tiny", b"overflows", false).await,
        Confirmation::Nack(_)
    ));
    b.stop().await;
}

#[tokio::test]
async fn get_purge_and_delete_report_counts() {
    let b = TestBroker::start().await;
    let (_c, ch) = open(&b).await;
    declare_with(&ch, "q", FieldTable::default()).await;
    assert!(within(ch.basic_get("q", BasicGetOptions::default()))
        .await
        .unwrap()
        .is_none());
    for i in 0..5u8 {
        within(ch.basic_publish(
            "",
            "q",
            BasicPublishOptions::default(),
            &[i],
            BasicProperties::default(),
        ))
        .await
        .unwrap();
    }
    let m = within(ch.basic_get("q", BasicGetOptions { no_ack: false }))
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(m.delivery.data, vec![0]);
    assert_eq!(m.message_count, 4);
    within(m.delivery.ack(BasicAckOptions::default()))
        .await
        .unwrap();
    let declared = within(ch.queue_declare(
        "q",
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    assert_eq!(declared.message_count(), 4);
    assert_eq!(
        within(ch.queue_purge("q", QueuePurgeOptions::default()))
            .await
            .unwrap(),
        4
    );
    within(ch.basic_publish(
        "",
        "q",
        BasicPublishOptions::default(),
        b"x",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    let e = within(ch.queue_delete(
        "q",
        QueueDeleteOptions {
            if_empty: true,
            ..Default::default()
        },
    ))
    .await
    .unwrap_err();
    assert_eq!(reply_code(&e), Some(406), "{e:?}");
    let (_c2, ch2) = open(&b).await;
    assert_eq!(
        within(ch2.queue_delete("q", QueueDeleteOptions::default()))
            .await
            .unwrap(),
        1
    );
    b.stop().await;
}

/// The AMQP reply code of a protocol error.
fn reply_code(e: &lapin::Error) -> Option<u16> {
    match e {
        lapin::Error::ProtocolError(p) => Some(p.get_id()),
        _ => None,
    }
}

#[tokio::test]
async fn tx_commit_and_rollback() {
    let b = TestBroker::start().await;
    let (_c, ch) = open(&b).await;
    declare_with(&ch, "q", FieldTable::default()).await;
    within(ch.tx_select()).await.unwrap();
    within(ch.basic_publish(
        "",
        "q",
        BasicPublishOptions::default(),
        b"rolled back",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    within(ch.tx_rollback()).await.unwrap();
    within(ch.basic_publish(
        "",
        "q",
        BasicPublishOptions::default(),
        b"committed",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    let (_c2, observer) = open(&b).await;
    assert!(
        within(observer.basic_get("q", BasicGetOptions { no_ack: true }))
            .await
            .unwrap()
            .is_none()
    );
    within(ch.tx_commit()).await.unwrap();
    let m = within(observer.basic_get("q", BasicGetOptions { no_ack: true }))
        .await
        .unwrap()
        .expect("committed message");
    assert_eq!(m.delivery.data, b"committed");
    assert!(
        within(observer.basic_get("q", BasicGetOptions { no_ack: true }))
            .await
            .unwrap()
            .is_none()
    );
    b.stop().await;
}

#[tokio::test]
async fn consumer_is_cancelled_when_its_queue_is_deleted() {
    let b = TestBroker::start().await;
    let (_c, ch) = open(&b).await;
    declare_with(&ch, "doomed", FieldTable::default()).await;
    let mut consumer = within(ch.basic_consume(
        "doomed",
        "watcher",
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let (_c2, other) = open(&b).await;
    within(other.queue_delete("doomed", QueueDeleteOptions::default()))
        .await
        .unwrap();
    // lapin ends the consumer stream on basic.cancel from the server.
    assert!(within(consumer.next()).await.is_none());
    assert!(ch.status().connected(), "the channel stays open");
    b.stop().await;
}

#[tokio::test]
async fn nack_without_requeue_dead_letters_with_x_death() {
    let b = TestBroker::start().await;
    let (_c, ch) = open(&b).await;
    within(ch.exchange_declare(
        "dlx",
        lapin::ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    declare_with(&ch, "graveyard", FieldTable::default()).await;
    within(ch.queue_bind(
        "graveyard",
        "dlx",
        "",
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    declare_with(
        &ch,
        "work",
        table(&[(
            "x-dead-letter-exchange",
            AMQPValue::LongString("dlx".into()),
        )]),
    )
    .await;
    within(ch.basic_publish(
        "",
        "work",
        BasicPublishOptions::default(),
        b"poison",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    let m = within(ch.basic_get("work", BasicGetOptions::default()))
        .await
        .unwrap()
        .unwrap();
    within(m.delivery.nack(BasicNackOptions {
        requeue: false,
        multiple: false,
    }))
    .await
    .unwrap();
    let mut dead = within(ch.basic_consume(
        "graveyard",
        "",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let d = within(dead.next()).await.unwrap().unwrap();
    assert_eq!(d.data, b"poison");
    let headers = d.properties.headers().clone().expect("headers");
    let deaths = match headers.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a.as_slice().to_vec(),
        other => panic!("x-death: {other:?}"),
    };
    let AMQPValue::FieldTable(first) = &deaths[0] else {
        panic!()
    };
    let get = |k: &str| first.inner().get(k).cloned();
    assert_eq!(
        get("reason"),
        Some(AMQPValue::LongString("rejected".into()))
    );
    assert_eq!(get("queue"), Some(AMQPValue::LongString("work".into())));
    assert_eq!(get("count"), Some(AMQPValue::LongLongInt(1)));
    b.stop().await;
}

#[tokio::test]
async fn per_message_ttl_expires_before_delivery() {
    let b = TestBroker::start().await;
    let (_c, ch) = open(&b).await;
    declare_with(&ch, "q", FieldTable::default()).await;
    let short = BasicProperties::default().with_expiration(ShortString::from("50"));
    within(ch.basic_publish("", "q", BasicPublishOptions::default(), b"stale", short))
        .await
        .unwrap();
    within(ch.basic_publish(
        "",
        "q",
        BasicPublishOptions::default(),
        b"fresh",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await; // the TTL itself is the point here
    let m = within(ch.basic_get("q", BasicGetOptions { no_ack: true }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.delivery.data, b"fresh");
    b.stop().await;
}

#[tokio::test]
async fn global_qos_limits_the_whole_channel() {
    let b = TestBroker::start().await;
    let (_c, ch) = open(&b).await;
    declare_with(&ch, "a", FieldTable::default()).await;
    declare_with(&ch, "b", FieldTable::default()).await;
    for q in ["a", "b"] {
        for i in 0..3u8 {
            within(ch.basic_publish(
                "",
                q,
                BasicPublishOptions::default(),
                &[i],
                BasicProperties::default(),
            ))
            .await
            .unwrap();
        }
    }
    within(ch.basic_qos(2, BasicQosOptions { global: true }))
        .await
        .unwrap();
    let mut ca = within(ch.basic_consume(
        "a",
        "ca",
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let mut cb = within(ch.basic_consume(
        "b",
        "cb",
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let mut held = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(400);
    loop {
        tokio::select! {
            Some(Ok(d)) = ca.next() => held.push(d),
            Some(Ok(d)) = cb.next() => held.push(d),
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    assert_eq!(held.len(), 2, "two unacked across both consumers");
    within(held[0].ack(BasicAckOptions::default()))
        .await
        .unwrap();
    let more = tokio::select! {
        Some(Ok(d)) = ca.next() => d,
        Some(Ok(d)) = cb.next() => d,
        _ = tokio::time::sleep(Duration::from_secs(5)) => panic!("credit was not returned"),
    };
    assert!(!more.data.is_empty());
    b.stop().await;
}

#[tokio::test]
async fn exchange_to_exchange_binding_and_alternate_exchange() {
    let b = TestBroker::start().await;
    let (_c, ch) = open(&b).await;
    within(ch.exchange_declare(
        "leaves",
        lapin::ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    within(ch.exchange_declare(
        "root",
        lapin::ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        table(&[("alternate-exchange", AMQPValue::LongString("leaves".into()))]),
    ))
    .await
    .unwrap();
    within(ch.exchange_declare(
        "metrics",
        lapin::ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    within(ch.exchange_bind(
        "metrics",
        "root",
        "metrics.#",
        ExchangeBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    declare_with(&ch, "m", FieldTable::default()).await;
    declare_with(&ch, "unrouted", FieldTable::default()).await;
    within(ch.queue_bind(
        "m",
        "metrics",
        "",
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    within(ch.queue_bind(
        "unrouted",
        "leaves",
        "",
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    within(ch.basic_publish(
        "root",
        "metrics.cpu",
        BasicPublishOptions::default(),
        b"cpu",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    within(ch.basic_publish(
        "root",
        "logs.x",
        BasicPublishOptions::default(),
        b"stray",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    let get = |q: &'static str| {
        let ch = ch.clone();
        async move {
            within(ch.basic_get(q, BasicGetOptions { no_ack: true }))
                .await
                .unwrap()
                .map(|m| m.delivery.data)
        }
    };
    assert_eq!(get("m").await, Some(b"cpu".to_vec()));
    assert_eq!(get("unrouted").await, Some(b"stray".to_vec()));
    assert_eq!(get("m").await, None);
    b.stop().await;
}

/// `x-single-active-consumer`: only the first consumer receives; when it cancels, the next
/// takes over, in order, and when that one's connection dies, the third.
#[tokio::test]
async fn a_single_active_consumer_receives_until_it_goes() {
    let b = TestBroker::start().await;
    let (_c, ch) = open(&b).await;
    within(ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .unwrap();
    declare_with(
        &ch,
        "sac",
        table(&[("x-single-active-consumer", AMQPValue::Boolean(true))]),
    )
    .await;
    let consume = |ch: Channel, tag: &'static str| async move {
        within(ch.basic_consume(
            "sac",
            tag,
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        ))
        .await
        .unwrap()
    };
    let (_c1, ch1) = open(&b).await;
    let (c2, ch2) = open(&b).await;
    let (_c3, ch3) = open(&b).await;
    let mut first = consume(ch1.clone(), "first").await;
    let mut second = consume(ch2, "second").await;
    let mut third = consume(ch3, "third").await;
    let publish = |from: u32| {
        let ch = ch.clone();
        async move {
            for i in from..from + 5 {
                publish_confirmed(&ch, "", "sac", format!("{i}").as_bytes(), false).await;
            }
        }
    };
    publish(0).await;
    for i in 0..5 {
        assert_eq!(take(&mut first).await, i.to_string());
    }
    within(ch1.basic_cancel("first", BasicCancelOptions::default()))
        .await
        .unwrap();
    publish(5).await;
    for i in 5..10 {
        assert_eq!(take(&mut second).await, i.to_string());
    }
    // The second consumer's connection goes: the third takes over.
    within(c2.close(200, "bye")).await.unwrap();
    publish(10).await;
    for i in 10..15 {
        assert_eq!(take(&mut third).await, i.to_string());
    }
    // Nothing reached the inactive ones meanwhile.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), first.next())
            .await
            .map_or(true, |d| d.is_none())
    );
    // A non-boolean value is a 406, as in RabbitMQ.
    let err = within(ch.queue_declare(
        "sac-bad",
        QueueDeclareOptions::default(),
        table(&[(
            "x-single-active-consumer",
            AMQPValue::LongString("yes".into()),
        )]),
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("PRECONDITION_FAILED"), "{err}");
    b.stop().await;
}

async fn take(c: &mut lapin::Consumer) -> String {
    let d = within(c.next()).await.expect("open").expect("delivery");
    String::from_utf8(d.data).unwrap()
}
