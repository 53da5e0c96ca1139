//! What the management API reads from the core: statistics counters (each thing that happens
//! counts once; a delivery a full sink refused does not) and routing previews.

use crate::consumer::{sink, ConsumerSpec, Credit, DeliveryReceiver, SinkEvent};
use crate::queue::QueueDef;
use crate::vhost::VHost;
use crate::{Broker, Delivery, Message, Properties};
use bytes::Bytes;
use std::sync::Arc;

const CONN: u64 = 1;

fn setup() -> (Arc<Broker>, Arc<VHost>) {
    let b = Broker::in_memory();
    let v = b.vhost("/").unwrap();
    v.declare_queue(QueueDef::new("q"), false, CONN).unwrap();
    (b, v)
}

fn publish(v: &VHost, body: &str) {
    let m = Message::new(
        "",
        "q",
        Properties::default(),
        Bytes::from(body.to_string()),
    );
    assert_eq!(v.publish("", m).unwrap().queues, 1);
}

fn spec(
    key: u64,
    no_ack: bool,
    credit: Option<Arc<Credit>>,
    tx: crate::DeliverySink,
) -> ConsumerSpec {
    ConsumerSpec {
        key,
        tag: format!("t{key}"),
        connection: CONN,
        channel: 0,
        no_ack,
        exclusive: false,
        priority: 0,
        credit,
        shared_credit: None,
        sink: tx,
    }
}

fn drain(rx: &mut DeliveryReceiver) -> Vec<Delivery> {
    let mut out = Vec::new();
    while let Some(SinkEvent::Deliver(d)) = rx.try_recv() {
        out.push(d);
    }
    out
}

#[test]
fn queue_counters_count_what_happened_once() {
    let (_b, v) = setup();
    for i in 0..4 {
        publish(&v, &i.to_string());
    }
    let q = v.queue("q", None).unwrap();
    let got = q.get(false).unwrap();
    assert!(q.get(true).is_some());
    q.reject(&[got.id], true);
    let (tx, mut rx) = sink(64);
    q.add_consumer(spec(1, false, Some(Credit::new(0)), tx))
        .unwrap();
    let ds = drain(&mut rx);
    assert_eq!(ds.len(), 3);
    assert!(ds[0].redelivered);
    q.ack(&ds.iter().map(|d| d.id).collect::<Vec<_>>());
    let s = q.snapshot();
    assert_eq!((s.ready, s.unacked, s.consumers), (0, 0, 1));
    let n = s.counters;
    assert_eq!(
        (n.publish, n.get, n.get_no_ack, n.deliver, n.deliver_no_ack),
        (4, 1, 1, 3, 0)
    );
    assert_eq!(
        (n.redeliver, n.ack),
        (1, 3),
        "the requeued one is a redelivery"
    );
}

#[test]
fn deliveries_a_full_sink_bounces_are_not_counted() {
    let (_b, v) = setup();
    let (tx, _rx) = sink(2);
    v.queue("q", None)
        .unwrap()
        .add_consumer(spec(9, true, None, tx))
        .unwrap();
    for i in 0..10 {
        publish(&v, &i.to_string());
    }
    let s = v.queue("q", None).unwrap().snapshot();
    assert_eq!(s.counters.publish, 10);
    assert_eq!(
        s.counters.deliver_no_ack as usize,
        10 - s.ready,
        "only what the sink took counts as delivered"
    );
    assert!(s.ready > 0, "the sink of 2 refused some");
}

#[test]
fn an_exchange_counts_what_came_in_and_the_copies_that_went_out() {
    let (_b, v) = setup();
    publish(&v, "a");
    let lost = Message::new("", "nowhere", Properties::default(), Bytes::from("b"));
    assert_eq!(v.publish("", lost).unwrap().queues, 0);
    let c = v.exchange("").unwrap().counters();
    assert_eq!((c.publish_in, c.publish_out), (2, 1));
}

#[test]
fn would_route_names_the_queues_without_publishing() {
    let (_b, v) = setup();
    v.declare_queue(QueueDef::new("other"), false, CONN)
        .unwrap();
    v.bind(
        crate::Binding {
            source: "amq.topic".into(),
            destination: crate::Destination::Queue("q".into()),
            routing_key: "a.*".into(),
            arguments: crate::FieldTable::new(),
        },
        None,
    )
    .unwrap();
    assert_eq!(v.would_route("amq.topic", "a.b", None).unwrap(), vec!["q"]);
    assert!(v.would_route("amq.topic", "b", None).unwrap().is_empty());
    assert_eq!(v.would_route("", "other", None).unwrap(), vec!["other"]);
    assert!(v.would_route("missing", "k", None).is_err());
    let q = v.queue("q", None).unwrap().snapshot();
    assert_eq!(
        (q.ready, q.counters.publish),
        (0, 0),
        "nothing was published"
    );
    assert_eq!(v.exchange("amq.topic").unwrap().counters().publish_in, 0);
}
