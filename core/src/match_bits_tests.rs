//! Match bits: a consumer learns which of its queue's bindings routed a message
//! ([`crate::exchange::MATCH_BIT`]), through exchange-to-exchange bindings and requeues too.

use crate::clock::Clock;
use crate::consumer::{sink, ConsumerSpec, Credit, DeliveryReceiver, SinkEvent};
use crate::exchange::{Binding, Destination, ExchangeDef, ExchangeKind, MATCH_BIT};
use crate::message::{Message, Properties};
use crate::queue::QueueDef;
use crate::value::{FieldTable, FieldValue};
use crate::vhost::VHost;
use crate::{Broker, BrokerOptions, Delivery};
use bytes::Bytes;
use std::sync::Arc;

fn binding(source: &str, dest: Destination, key: &str, bit: Option<i64>) -> Binding {
    let mut arguments = FieldTable::new();
    if let Some(b) = bit {
        arguments.insert(MATCH_BIT, FieldValue::I64(b));
    }
    Binding {
        source: source.into(),
        destination: dest,
        routing_key: key.into(),
        arguments,
    }
}

fn setup() -> (Arc<Broker>, Arc<VHost>, DeliveryReceiver) {
    let b = Broker::new(BrokerOptions {
        clock: Arc::new(Clock::manual()),
        ..BrokerOptions::default()
    })
    .unwrap();
    let v = b.vhost("/").unwrap();
    v.declare_queue(QueueDef::new("q"), false, 1).unwrap();
    let (tx, rx) = sink(64);
    v.queue("q", Some(1))
        .unwrap()
        .add_consumer(ConsumerSpec {
            key: 7,
            tag: "c".into(),
            connection: 1,
            channel: 0,
            no_ack: false,
            exclusive: false,
            priority: 0,
            credit: Some(Credit::new(100)),
            shared_credit: None,
            sink: tx,
        })
        .unwrap();
    (b, v, rx)
}

fn publish(v: &VHost, exchange: &str, key: &str) {
    let m = Message::new(
        exchange,
        key,
        Properties::default(),
        Bytes::from_static(b"m"),
    );
    v.publish(exchange, m).unwrap();
}

fn next(rx: &mut DeliveryReceiver) -> Delivery {
    match rx.try_recv() {
        Some(SinkEvent::Deliver(d)) => d,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

#[test]
fn a_delivery_carries_the_bits_of_every_binding_that_matched() {
    let (_b, v, mut rx) = setup();
    let q = || Destination::Queue("q".into());
    v.bind(binding("amq.topic", q(), "a.*", Some(0)), None)
        .unwrap();
    v.bind(binding("amq.topic", q(), "a.b", Some(3)), None)
        .unwrap();
    v.bind(binding("amq.topic", q(), "z.#", None), None)
        .unwrap();
    publish(&v, "amq.topic", "a.b");
    assert_eq!(next(&mut rx).matched, 0b1001);
    publish(&v, "amq.topic", "a.c");
    assert_eq!(next(&mut rx).matched, 0b1);
    publish(&v, "amq.topic", "z.y");
    assert_eq!(next(&mut rx).matched, 0);
    // One delivery per message whatever the number of bindings that matched.
    assert!(rx.try_recv().is_none());
    v.unbind(&binding("amq.topic", q(), "a.b", Some(3)), None)
        .unwrap();
    publish(&v, "amq.topic", "a.b");
    assert_eq!(next(&mut rx).matched, 0b1);
}

#[test]
fn bits_come_from_the_queue_side_binding_and_survive_a_requeue() {
    let (_b, v, mut rx) = setup();
    v.declare_exchange(ExchangeDef::new("mid", ExchangeKind::Fanout), false)
        .unwrap();
    v.bind(
        binding(
            "amq.topic",
            Destination::Exchange("mid".into()),
            "#",
            Some(9),
        ),
        None,
    )
    .unwrap();
    v.bind(
        binding("mid", Destination::Queue("q".into()), "", Some(5)),
        None,
    )
    .unwrap();
    publish(&v, "amq.topic", "any.key");
    let d = next(&mut rx);
    assert_eq!(d.matched, 1 << 5);
    d.queue.reject(&[d.id], true);
    let again = next(&mut rx);
    assert!(again.redelivered);
    assert_eq!(again.matched, 1 << 5);
}

#[test]
fn an_out_of_range_bit_marks_nothing() {
    let (_b, v, mut rx) = setup();
    v.bind(
        binding("amq.direct", Destination::Queue("q".into()), "k", Some(32)),
        None,
    )
    .unwrap();
    publish(&v, "amq.direct", "k");
    assert_eq!(next(&mut rx).matched, 0);
}
