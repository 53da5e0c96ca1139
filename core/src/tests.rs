//! Behaviour tests of the routing core: what each queue holds and hands out, in what order.

use crate::clock::Clock;
use crate::consumer::{sink, ConsumerSpec, Credit, DeliveryReceiver, SinkEvent};
use crate::exchange::{Binding, Destination, ExchangeDef, ExchangeKind};
use crate::message::{Message, Properties};
use crate::queue::QueueDef;
use crate::storage::{MemoryMessageStore, MemoryMetadataStore};
use crate::value::{FieldTable, FieldValue};
use crate::vhost::VHost;
use crate::{Broker, BrokerOptions, Delivery};
use bytes::Bytes;
use std::sync::Arc;

const CONN: u64 = 1;

fn broker() -> Arc<Broker> {
    Broker::new(BrokerOptions {
        clock: Arc::new(Clock::manual()),
        ..BrokerOptions::default()
    })
    .unwrap()
}

fn vhost(b: &Broker) -> Arc<VHost> {
    b.vhost("/").unwrap()
}

fn args(entries: &[(&str, FieldValue)]) -> FieldTable {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn declare(v: &VHost, name: &str, a: FieldTable) {
    let mut def = QueueDef::new(name);
    def.arguments = a;
    v.declare_queue(def, false, CONN).unwrap();
}

fn msg(body: &str) -> Arc<Message> {
    msg_with(body, Properties::default())
}

fn msg_with(body: &str, props: Properties) -> Arc<Message> {
    Message::new("", "", props, Bytes::from(body.to_string()))
}

fn publish(v: &VHost, queue: &str, body: &str) {
    let m = Message::new(
        "",
        queue,
        Properties::default(),
        Bytes::from(body.to_string()),
    );
    assert_eq!(v.publish("", m).unwrap().queues, 1);
}

struct TestConsumer {
    rx: DeliveryReceiver,
    key: u64,
}

fn consume(v: &VHost, queue: &str, key: u64, prefetch: u32, no_ack: bool) -> TestConsumer {
    let (tx, rx) = sink(64);
    v.queue(queue, Some(CONN))
        .unwrap()
        .add_consumer(ConsumerSpec {
            key,
            tag: format!("ctag-{key}"),
            connection: CONN,
            channel: 0,
            no_ack,
            exclusive: false,
            priority: 0,
            credit: Some(Credit::new(prefetch)),
            shared_credit: None,
            sink: tx,
        })
        .unwrap();
    TestConsumer { rx, key }
}

impl TestConsumer {
    fn drain(&mut self) -> Vec<Delivery> {
        let mut out = Vec::new();
        while let Some(ev) = self.rx.try_recv() {
            match ev {
                SinkEvent::Deliver(d) => {
                    assert_eq!(d.consumer, self.key);
                    out.push(d)
                }
                SinkEvent::Cancelled { .. } => panic!("unexpected cancel"),
            }
        }
        out
    }
}

fn bodies(ds: &[Delivery]) -> Vec<String> {
    ds.iter()
        .map(|d| String::from_utf8(d.message.body.to_vec()).unwrap())
        .collect()
}

fn get_bodies(v: &VHost, queue: &str) -> Vec<String> {
    let q = v.queue(queue, None).unwrap();
    std::iter::from_fn(|| q.get(true))
        .map(|f| String::from_utf8(f.message.body.to_vec()).unwrap())
        .collect()
}

fn bind(v: &VHost, ex: &str, queue: &str, key: &str) {
    v.bind(
        Binding {
            source: ex.into(),
            destination: Destination::Queue(queue.into()),
            routing_key: key.into(),
            arguments: FieldTable::new(),
        },
        None,
    )
    .unwrap();
}

#[test]
fn fifo_and_round_robin() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "q", FieldTable::new());
    let mut a = consume(&v, "q", 1, 0, true);
    let mut c = consume(&v, "q", 2, 0, true);
    for i in 0..6 {
        publish(&v, "q", &i.to_string());
    }
    assert_eq!(bodies(&a.drain()), vec!["0", "2", "4"]);
    assert_eq!(bodies(&c.drain()), vec!["1", "3", "5"]);
}

#[test]
fn prefetch_limits_unacked_and_ack_releases_credit() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "q", FieldTable::new());
    for i in 0..5 {
        publish(&v, "q", &i.to_string());
    }
    let mut a = consume(&v, "q", 1, 2, false);
    let first = a.drain();
    assert_eq!(bodies(&first), vec!["0", "1"]);
    let q = v.queue("q", None).unwrap();
    assert_eq!(q.message_count(), 3);
    assert_eq!(q.unacked_count(), 2);
    assert!(q.ack(&[first[0].id]).is_empty());
    assert_eq!(bodies(&a.drain()), vec!["2"]);
    // Acking an unknown or already-acked id is reported.
    assert_eq!(q.ack(&[first[0].id]), vec![first[0].id]);
}

#[test]
fn requeue_returns_to_original_position_marked_redelivered() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "q", FieldTable::new());
    for i in 0..4 {
        publish(&v, "q", &i.to_string());
    }
    let mut a = consume(&v, "q", 1, 2, false);
    let got = a.drain();
    assert_eq!(bodies(&got), vec!["0", "1"]);
    let q = v.queue("q", None).unwrap();
    q.cancel_consumer(1, CONN);
    // Reject "1" then "0" with requeue: both go back in front, in their original order.
    q.reject(&[got[1].id], true);
    q.reject(&[got[0].id], true);
    let all: Vec<(String, bool)> = std::iter::from_fn(|| q.get(true))
        .map(|f| {
            (
                String::from_utf8(f.message.body.to_vec()).unwrap(),
                f.redelivered,
            )
        })
        .collect();
    assert_eq!(
        all,
        vec![
            ("0".into(), true),
            ("1".into(), true),
            ("2".into(), false),
            ("3".into(), false)
        ]
    );
}

#[test]
fn requeue_consumer_on_disconnect_goes_to_other_consumer() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "work", FieldTable::new());
    let mut a = consume(&v, "work", 1, 1, false);
    let mut c = consume(&v, "work", 2, 1, false);
    publish(&v, "work", "job1");
    publish(&v, "work", "job2");
    publish(&v, "work", "job3");
    assert_eq!(bodies(&a.drain()), vec!["job1"]);
    let c_got = c.drain();
    assert_eq!(bodies(&c_got), vec!["job2"]);
    let q = v.queue("work", None).unwrap();
    // Consumer 1 dies mid-work.
    q.cancel_consumer(1, CONN);
    q.requeue_consumer(1);
    q.ack(&[c_got[0].id]);
    let next = c.drain();
    assert_eq!(bodies(&next), vec!["job1"]);
    assert!(next[0].redelivered);
}

#[test]
fn basic_get_reports_remaining_and_purge_counts() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "q", FieldTable::new());
    for i in 0..3 {
        publish(&v, "q", &i.to_string());
    }
    let q = v.queue("q", None).unwrap();
    let f = q.get(false).unwrap();
    assert_eq!(f.remaining, 2);
    assert!(f.id > 0);
    assert_eq!(v.purge_queue("q", None).unwrap(), 2);
    assert!(q.get(true).is_none());
    assert_eq!(q.unacked_count(), 1);
}

#[test]
fn delete_if_unused_if_empty_and_cancel_notification() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "q", FieldTable::new());
    publish(&v, "q", "x");
    let (tx, mut rx) = sink(8);
    v.queue("q", None)
        .unwrap()
        .add_consumer(ConsumerSpec {
            key: 9,
            tag: "t".into(),
            connection: CONN,
            channel: 0,
            no_ack: false,
            exclusive: false,
            priority: 0,
            credit: Some(Credit::new(1)),
            shared_credit: None,
            sink: tx,
        })
        .unwrap();
    assert!(matches!(rx.try_recv(), Some(SinkEvent::Deliver(_))));
    assert_eq!(
        v.delete_queue("q", None, true, false).unwrap_err().name(),
        "PRECONDITION_FAILED"
    );
    publish(&v, "q", "y");
    assert_eq!(
        v.delete_queue("q", None, false, true).unwrap_err().name(),
        "PRECONDITION_FAILED"
    );
    assert_eq!(v.delete_queue("q", None, false, false).unwrap().messages, 1);
    assert!(matches!(
        rx.try_recv(),
        Some(SinkEvent::Cancelled { consumer: 9 })
    ));
    assert_eq!(v.queue("q", None).unwrap_err().name(), "NOT_FOUND");
}

#[test]
fn exclusive_queue_belongs_to_its_connection() {
    let b = broker();
    let v = vhost(&b);
    let mut def = QueueDef::new("mine");
    def.exclusive = true;
    v.declare_queue(def.clone(), false, 7).unwrap();
    assert_eq!(
        v.declare_queue(def, false, 8).unwrap_err().name(),
        "RESOURCE_LOCKED"
    );
    assert_eq!(
        v.queue("mine", Some(8)).unwrap_err().name(),
        "RESOURCE_LOCKED"
    );
    assert!(v.queue("mine", Some(7)).is_ok());
    v.connection_closed(7);
    assert_eq!(v.queue("mine", None).unwrap_err().name(), "NOT_FOUND");
}

#[test]
fn exclusive_consumer_refuses_others() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "q", FieldTable::new());
    let q = v.queue("q", None).unwrap();
    let (tx, _rx) = sink(8);
    let spec = ConsumerSpec {
        key: 1,
        tag: "a".into(),
        connection: CONN,
        channel: 0,
        no_ack: true,
        exclusive: true,
        priority: 0,
        credit: None,
        shared_credit: None,
        sink: tx,
    };
    q.add_consumer(spec.clone()).unwrap();
    let mut other = spec;
    other.key = 2;
    other.exclusive = false;
    assert_eq!(q.add_consumer(other).unwrap_err().name(), "ACCESS_REFUSED");
}

#[test]
fn auto_delete_after_last_consumer() {
    let b = broker();
    let v = vhost(&b);
    let mut def = QueueDef::new("ad");
    def.auto_delete = true;
    v.declare_queue(def, false, CONN).unwrap();
    let _a = consume(&v, "ad", 1, 0, true);
    let _c = consume(&v, "ad", 2, 0, true);
    let q = v.queue("ad", None).unwrap();
    q.cancel_consumer(1, CONN);
    assert!(v.queue("ad", None).is_ok());
    q.cancel_consumer(2, CONN);
    assert_eq!(v.queue("ad", None).unwrap_err().name(), "NOT_FOUND");
}

#[test]
fn server_named_and_redeclare_rules() {
    let b = broker();
    let v = vhost(&b);
    let d = v.declare_queue(QueueDef::new(""), false, CONN).unwrap();
    assert!(d.name.starts_with("amq.gen-"));
    assert_eq!(d.name.len(), "amq.gen-".len() + 22);
    declare(&v, "q", FieldTable::new());
    let mut other = QueueDef::new("q");
    other.durable = true;
    assert_eq!(
        v.declare_queue(other, false, CONN).unwrap_err().name(),
        "PRECONDITION_FAILED"
    );
    assert_eq!(
        v.declare_queue(QueueDef::new("nope"), true, CONN)
            .unwrap_err()
            .name(),
        "NOT_FOUND"
    );
    assert_eq!(
        v.declare_queue(QueueDef::new("amq.mine"), false, CONN)
            .unwrap_err()
            .name(),
        "ACCESS_REFUSED"
    );
}

#[test]
fn queue_ttl_and_message_expiration() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "ttl", args(&[("x-message-ttl", FieldValue::I32(1000))]));
    declare(&v, "plain", FieldTable::new());
    publish(&v, "ttl", "old");
    b.clock().advance(600);
    publish(&v, "ttl", "new");
    let short = Properties {
        expiration: Some("100".into()),
        ..Default::default()
    };
    let m = Message::new("", "plain", short, Bytes::from_static(b"short"));
    v.publish("", m).unwrap();
    publish(&v, "plain", "forever");
    b.clock().advance(500);
    b.sweep();
    assert_eq!(get_bodies(&v, "ttl"), vec!["new"]);
    assert_eq!(get_bodies(&v, "plain"), vec!["forever"]);
}

#[test]
fn zero_ttl_delivers_only_at_once() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "q", args(&[("x-message-ttl", FieldValue::I32(0))]));
    publish(&v, "q", "nobody home");
    assert_eq!(v.queue("q", None).unwrap().message_count(), 0);
    let mut a = consume(&v, "q", 1, 0, true);
    publish(&v, "q", "caught");
    assert_eq!(bodies(&a.drain()), vec!["caught"]);
}

#[test]
fn queue_expires_when_unused() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "gone", args(&[("x-expires", FieldValue::I32(1000))]));
    b.clock().advance(999);
    b.sweep();
    assert!(v.queue("gone", None).is_ok());
    b.clock().advance(1);
    b.sweep();
    assert_eq!(v.queue("gone", None).unwrap_err().name(), "NOT_FOUND");
}

fn death(m: &Message) -> FieldTable {
    let h = m.properties.headers.as_ref().expect("headers");
    match h.get("x-death") {
        Some(FieldValue::Array(a)) => match &a[0] {
            FieldValue::Table(t) => t.clone(),
            other => panic!("x-death entry {other:?}"),
        },
        other => panic!("x-death {other:?}"),
    }
}

#[test]
fn dead_letter_on_reject_with_x_death() {
    let b = broker();
    let v = vhost(&b);
    v.declare_exchange(ExchangeDef::new("dlx", ExchangeKind::Fanout), false)
        .unwrap();
    declare(&v, "dead", FieldTable::new());
    bind(&v, "dlx", "dead", "");
    declare(
        &v,
        "work",
        args(&[
            ("x-dead-letter-exchange", FieldValue::string("dlx")),
            ("x-dead-letter-routing-key", FieldValue::string("failed")),
        ]),
    );
    publish(&v, "work", "bad");
    let q = v.queue("work", None).unwrap();
    let f = q.get(false).unwrap();
    q.reject(&[f.id], false);
    let dq = v.queue("dead", None).unwrap();
    let got = dq.get(true).unwrap().message;
    assert_eq!(&got.body[..], b"bad");
    assert_eq!(got.routing_key, "failed");
    let d = death(&got);
    assert_eq!(d.get_i64("count"), Some(1));
    assert_eq!(d.get_str("reason"), Some("rejected"));
    assert_eq!(d.get_str("queue"), Some("work"));
    assert_eq!(d.get_str("exchange"), Some(""));
    assert_eq!(
        d.get("routing-keys"),
        Some(&FieldValue::Array(vec![FieldValue::string("work")]))
    );
    assert!(matches!(d.get("time"), Some(FieldValue::Timestamp(t)) if *t > 1_600_000_000));
    assert_eq!(
        got.properties
            .headers
            .as_ref()
            .unwrap()
            .get_str("x-first-death-reason"),
        Some("rejected")
    );
}

#[test]
fn dead_letter_on_expiry_counts_repeat_deaths_and_breaks_cycles() {
    let b = broker();
    let v = vhost(&b);
    // "retry" expires messages back into "work" through the default exchange; "work" rejects
    // them into "retry". Each round increments the count of the same x-death entries.
    declare(
        &v,
        "retry",
        args(&[
            ("x-message-ttl", FieldValue::I32(10)),
            ("x-dead-letter-exchange", FieldValue::string("")),
            ("x-dead-letter-routing-key", FieldValue::string("work")),
        ]),
    );
    declare(
        &v,
        "work",
        args(&[
            ("x-dead-letter-exchange", FieldValue::string("")),
            ("x-dead-letter-routing-key", FieldValue::string("retry")),
        ]),
    );
    publish(&v, "work", "job");
    let work = v.queue("work", None).unwrap();
    for round in 1..=2 {
        let f = work.get(false).unwrap();
        work.reject(&[f.id], false);
        b.clock().advance(11);
        b.sweep();
        let m = &work.get(false).unwrap();
        let deaths = match m
            .message
            .properties
            .headers
            .as_ref()
            .unwrap()
            .get("x-death")
        {
            Some(FieldValue::Array(a)) => a.clone(),
            _ => panic!(),
        };
        assert_eq!(deaths.len(), 2);
        let newest = match &deaths[0] {
            FieldValue::Table(t) => t.clone(),
            _ => panic!(),
        };
        assert_eq!(newest.get_str("reason"), Some("expired"));
        assert_eq!(newest.get_str("queue"), Some("retry"));
        assert_eq!(newest.get_i64("count"), Some(round));
        work.reject(&[m.id], true);
    }
    // A purely automatic cycle (expiry back into the same queue) is dropped.
    declare(
        &v,
        "loop",
        args(&[
            ("x-message-ttl", FieldValue::I32(5)),
            ("x-dead-letter-exchange", FieldValue::string("")),
        ]),
    );
    publish(&v, "loop", "spin");
    b.clock().advance(6);
    b.sweep();
    assert_eq!(v.queue("loop", None).unwrap().message_count(), 0);
}

#[test]
fn per_message_expiry_dead_letters_with_original_expiration() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "dead", FieldTable::new());
    declare(
        &v,
        "q",
        args(&[
            ("x-dead-letter-exchange", FieldValue::string("")),
            ("x-dead-letter-routing-key", FieldValue::string("dead")),
        ]),
    );
    let props = Properties {
        expiration: Some("50".into()),
        ..Default::default()
    };
    v.publish("", Message::new("", "q", props, Bytes::from_static(b"e")))
        .unwrap();
    b.clock().advance(50);
    b.sweep();
    let got = v.queue("dead", None).unwrap().get(true).unwrap().message;
    assert_eq!(got.properties.expiration, None);
    let d = death(&got);
    assert_eq!(d.get_str("reason"), Some("expired"));
    assert_eq!(d.get_str("original-expiration"), Some("50"));
}

#[test]
fn max_length_drop_head_dead_letters_oldest() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "dead", FieldTable::new());
    declare(
        &v,
        "q",
        args(&[
            ("x-max-length", FieldValue::I32(2)),
            ("x-dead-letter-exchange", FieldValue::string("")),
            ("x-dead-letter-routing-key", FieldValue::string("dead")),
        ]),
    );
    for i in 0..4 {
        publish(&v, "q", &i.to_string());
    }
    assert_eq!(get_bodies(&v, "q"), vec!["2", "3"]);
    let dead = v.queue("dead", None).unwrap();
    let f = dead.get(true).unwrap();
    assert_eq!(&f.message.body[..], b"0");
    assert_eq!(death(&f.message).get_str("reason"), Some("maxlen"));
    assert_eq!(&dead.get(true).unwrap().message.body[..], b"1");
}

#[test]
fn max_length_reject_publish_and_bytes() {
    let b = broker();
    let v = vhost(&b);
    declare(
        &v,
        "q",
        args(&[
            ("x-max-length", FieldValue::I32(1)),
            ("x-overflow", FieldValue::string("reject-publish")),
        ]),
    );
    assert_eq!(v.publish("", msg_to("q", "a")).unwrap().queues, 1);
    let r = v.publish("", msg_to("q", "b")).unwrap();
    assert_eq!((r.queues, r.rejected), (0, 1));
    assert!(!r.unroutable());
    assert_eq!(get_bodies(&v, "q"), vec!["a"]);

    declare(
        &v,
        "bytes",
        args(&[("x-max-length-bytes", FieldValue::I32(5))]),
    );
    publish(&v, "bytes", "abc");
    publish(&v, "bytes", "de");
    publish(&v, "bytes", "f");
    assert_eq!(get_bodies(&v, "bytes"), vec!["de", "f"]);
}

fn msg_to(queue: &str, body: &str) -> Arc<Message> {
    Message::new(
        "",
        queue,
        Properties::default(),
        Bytes::from(body.to_string()),
    )
}

#[test]
fn priority_queue_serves_highest_first() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "p", args(&[("x-max-priority", FieldValue::U8(5))]));
    for (body, prio) in [
        ("low", 1u8),
        ("high", 5),
        ("mid", 3),
        ("over", 200),
        ("none", 0),
    ] {
        let props = Properties {
            priority: Some(prio),
            ..Default::default()
        };
        v.publish("", Message::new("", "p", props, Bytes::from(body)))
            .unwrap();
    }
    assert_eq!(
        get_bodies(&v, "p"),
        vec!["high", "over", "mid", "low", "none"]
    );
}

#[test]
fn routed_reports_unroutable_and_alternate_exchange_catches() {
    let b = broker();
    let v = vhost(&b);
    v.declare_exchange(ExchangeDef::new("ae", ExchangeKind::Fanout), false)
        .unwrap();
    declare(&v, "unrouted", FieldTable::new());
    bind(&v, "ae", "unrouted", "");
    let mut main = ExchangeDef::new("main", ExchangeKind::Direct);
    main.arguments
        .insert("alternate-exchange", FieldValue::string("ae"));
    v.declare_exchange(main, false).unwrap();
    declare(&v, "orders", FieldTable::new());
    bind(&v, "main", "orders", "order");
    let r = v.publish("main", msg("x").with_key("order")).unwrap();
    assert_eq!(r.queues, 1);
    let r = v.publish("main", msg("stray").with_key("other")).unwrap();
    assert_eq!(r.queues, 1);
    assert_eq!(get_bodies(&v, "unrouted"), vec!["stray"]);
    let r = v.publish("amq.direct", msg("lost").with_key("x")).unwrap();
    assert!(r.unroutable());
    assert_eq!(v.publish("nope", msg("x")).unwrap_err().name(), "NOT_FOUND");
}

trait WithKey {
    fn with_key(self, k: &str) -> Arc<Message>;
}

impl WithKey for Arc<Message> {
    fn with_key(self, k: &str) -> Arc<Message> {
        let mut m = (*self).clone();
        m.routing_key = k.into();
        Arc::new(m)
    }
}

#[test]
fn exchange_to_exchange_and_topic_fanout_dedupes() {
    let b = broker();
    let v = vhost(&b);
    v.declare_exchange(ExchangeDef::new("src", ExchangeKind::Topic), false)
        .unwrap();
    v.declare_exchange(ExchangeDef::new("dst", ExchangeKind::Fanout), false)
        .unwrap();
    v.bind(
        Binding {
            source: "src".into(),
            destination: Destination::Exchange("dst".into()),
            routing_key: "sensors.#".into(),
            arguments: FieldTable::new(),
        },
        None,
    )
    .unwrap();
    declare(&v, "all", FieldTable::new());
    declare(&v, "temps", FieldTable::new());
    bind(&v, "dst", "all", "");
    bind(&v, "src", "temps", "sensors.*.temp");
    bind(&v, "src", "temps", "#.temp");
    let r = v
        .publish("src", msg("21").with_key("sensors.kitchen.temp"))
        .unwrap();
    assert_eq!(r.queues, 2, "each queue gets one copy");
    assert_eq!(get_bodies(&v, "all"), vec!["21"]);
    assert_eq!(get_bodies(&v, "temps"), vec!["21"]);
    // Unbinding the e2e binding stops the flow.
    v.unbind(
        &Binding {
            source: "src".into(),
            destination: Destination::Exchange("dst".into()),
            routing_key: "sensors.#".into(),
            arguments: FieldTable::new(),
        },
        None,
    )
    .unwrap();
    v.publish("src", msg("22").with_key("sensors.kitchen.temp"))
        .unwrap();
    assert!(get_bodies(&v, "all").is_empty());
}

#[test]
fn internal_and_reserved_exchanges() {
    let b = broker();
    let v = vhost(&b);
    let mut def = ExchangeDef::new("hidden", ExchangeKind::Fanout);
    def.internal = true;
    v.declare_exchange(def, false).unwrap();
    assert_eq!(
        v.publish("hidden", msg("x")).unwrap_err().name(),
        "ACCESS_REFUSED"
    );
    assert_eq!(
        v.declare_exchange(ExchangeDef::new("amq.custom", ExchangeKind::Direct), false)
            .unwrap_err()
            .name(),
        "ACCESS_REFUSED"
    );
    assert_eq!(
        v.delete_exchange("amq.topic", false).unwrap_err().name(),
        "ACCESS_REFUSED"
    );
    assert_eq!(
        v.declare_exchange(ExchangeDef::new("amq.topic", ExchangeKind::Direct), false)
            .unwrap_err()
            .name(),
        "PRECONDITION_FAILED"
    );
    declare(&v, "q", FieldTable::new());
    let e = v
        .bind(
            Binding {
                source: "".into(),
                destination: Destination::Queue("q".into()),
                routing_key: "q".into(),
                arguments: FieldTable::new(),
            },
            None,
        )
        .unwrap_err();
    assert_eq!(e.name(), "ACCESS_REFUSED");
}

#[test]
fn auto_delete_exchange_goes_with_last_binding() {
    let b = broker();
    let v = vhost(&b);
    let mut def = ExchangeDef::new("tmp", ExchangeKind::Fanout);
    def.auto_delete = true;
    v.declare_exchange(def, false).unwrap();
    declare(&v, "q", FieldTable::new());
    bind(&v, "tmp", "q", "");
    v.delete_queue("q", None, false, false).unwrap();
    assert_eq!(v.exchange("tmp").unwrap_err().name(), "NOT_FOUND");
}

#[test]
fn exchange_delete_if_unused() {
    let b = broker();
    let v = vhost(&b);
    v.declare_exchange(ExchangeDef::new("e", ExchangeKind::Direct), false)
        .unwrap();
    declare(&v, "q", FieldTable::new());
    bind(&v, "e", "q", "k");
    assert_eq!(
        v.delete_exchange("e", true).unwrap_err().name(),
        "PRECONDITION_FAILED"
    );
    v.delete_exchange("e", false).unwrap();
    assert_eq!(v.exchange("e").unwrap_err().name(), "NOT_FOUND");
}

#[test]
fn full_sink_applies_back_pressure_then_resumes() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "q", FieldTable::new());
    let (tx, mut rx) = sink(2);
    v.queue("q", None)
        .unwrap()
        .add_consumer(ConsumerSpec {
            key: 1,
            tag: "t".into(),
            connection: CONN,
            channel: 0,
            no_ack: true,
            exclusive: false,
            priority: 0,
            credit: None,
            shared_credit: None,
            sink: tx,
        })
        .unwrap();
    for i in 0..5 {
        publish(&v, "q", &i.to_string());
    }
    let q = v.queue("q", None).unwrap();
    assert_eq!(q.message_count(), 3, "only two fit in the sink");
    let mut got = Vec::new();
    while got.len() < 5 {
        while let Some(SinkEvent::Deliver(d)) = rx.try_recv() {
            got.push(String::from_utf8(d.message.body.to_vec()).unwrap());
        }
        rx.wake_queues();
    }
    assert_eq!(got, vec!["0", "1", "2", "3", "4"]);
}

#[test]
fn consumer_priority_is_honoured() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "q", FieldTable::new());
    let q = v.queue("q", None).unwrap();
    let mut rxs = Vec::new();
    for (key, prio) in [(1u64, 0), (2, 10)] {
        let (tx, rx) = sink(8);
        q.add_consumer(ConsumerSpec {
            key,
            tag: key.to_string(),
            connection: CONN,
            channel: 0,
            no_ack: false,
            exclusive: false,
            priority: prio,
            credit: Some(Credit::new(1)),
            shared_credit: None,
            sink: tx,
        })
        .unwrap();
        rxs.push(rx);
    }
    publish(&v, "q", "first");
    publish(&v, "q", "second");
    let got = |rx: &mut DeliveryReceiver| match rx.try_recv() {
        Some(SinkEvent::Deliver(d)) => Some(String::from_utf8(d.message.body.to_vec()).unwrap()),
        _ => None,
    };
    assert_eq!(got(&mut rxs[1]).as_deref(), Some("first"));
    assert_eq!(got(&mut rxs[0]).as_deref(), Some("second"));
}

#[test]
fn shared_credit_spans_consumers() {
    let b = broker();
    let v = vhost(&b);
    declare(&v, "a", FieldTable::new());
    declare(&v, "b", FieldTable::new());
    let shared = Credit::new(1);
    let (tx, mut rx) = sink(8);
    for (key, q) in [(1u64, "a"), (2, "b")] {
        v.queue(q, None)
            .unwrap()
            .add_consumer(ConsumerSpec {
                key,
                tag: q.into(),
                connection: CONN,
                channel: 0,
                no_ack: false,
                exclusive: false,
                priority: 0,
                credit: None,
                shared_credit: Some(shared.clone()),
                sink: tx.clone(),
            })
            .unwrap();
    }
    publish(&v, "a", "1");
    publish(&v, "b", "2");
    let mut n = 0;
    while let Some(SinkEvent::Deliver(_)) = rx.try_recv() {
        n += 1;
    }
    assert_eq!(n, 1);
    assert_eq!(shared.in_flight(), 1);
}

#[test]
fn durable_entities_and_persistent_messages_recover_from_stores() {
    let meta = Arc::new(MemoryMetadataStore::default());
    let messages = Arc::new(MemoryMessageStore::default());
    let opts = BrokerOptions {
        meta: meta.clone(),
        messages: messages.clone(),
        ..BrokerOptions::default()
    };
    {
        let b = Broker::new(opts.clone()).unwrap();
        let v = vhost(&b);
        let mut ex = ExchangeDef::new("orders", ExchangeKind::Topic);
        ex.durable = true;
        v.declare_exchange(ex, false).unwrap();
        let mut q = QueueDef::new("durable");
        q.durable = true;
        v.declare_queue(q, false, CONN).unwrap();
        declare(&v, "transient", FieldTable::new());
        bind(&v, "orders", "durable", "order.*");
        let persistent = Properties {
            delivery_mode: Some(2),
            ..Default::default()
        };
        for body in ["p1", "p2", "p3"] {
            let m = Message::new("orders", "order.new", persistent.clone(), Bytes::from(body));
            v.publish("orders", m).unwrap();
        }
        let m = Message::new(
            "orders",
            "order.new",
            Properties::default(),
            Bytes::from("t"),
        );
        v.publish("orders", m).unwrap();
        let dq = v.queue("durable", None).unwrap();
        let f = dq.get(false).unwrap();
        dq.ack(&[f.id]);
    }
    let b = Broker::new(opts).unwrap();
    let v = vhost(&b);
    assert!(v.queue("transient", None).is_err());
    assert_eq!(get_bodies(&v, "durable"), vec!["p2", "p3"]);
    let r = v
        .publish("orders", msg("again").with_key("order.x"))
        .unwrap();
    assert_eq!(r.queues, 1, "binding recovered");
    assert!(b.auth().get("guest").is_some());
}

#[test]
fn only_persistent_messages_in_durable_queues_are_stored() {
    let b = broker();
    let v = vhost(&b);
    let mut q = QueueDef::new("durable");
    q.durable = true;
    v.declare_queue(q, false, CONN).unwrap();
    declare(&v, "transient", FieldTable::new());
    let persistent = Properties {
        delivery_mode: Some(2),
        ..Properties::default()
    };
    let to = |queue: &str, props: Properties| Message::new("", queue, props, Bytes::from("m"));
    let r = v.publish("", to("durable", persistent.clone())).unwrap();
    assert_eq!((r.queues, r.stored), (1, 1));
    let r = v.publish("", to("durable", Properties::default())).unwrap();
    assert_eq!((r.queues, r.stored), (1, 0));
    let r = v.publish("", to("transient", persistent)).unwrap();
    assert_eq!((r.queues, r.stored), (1, 0));
}

#[test]
fn connection_ids_carry_their_node() {
    let b = Broker::new(BrokerOptions {
        node: 3,
        ..BrokerOptions::default()
    })
    .unwrap();
    let (a, c) = (b.next_connection_id(), b.next_connection_id());
    assert_ne!(a, c);
    assert_eq!(crate::connection_id::node_of(a), 3);
    assert_eq!(crate::connection_id::node_of(c), 3);
    // A single node's ids are the plain count.
    let single = Broker::in_memory();
    assert_eq!(single.next_connection_id(), 1);
}
