//! Policies applied to live queues and exchanges: at once to what exists, to what is declared
//! later, and lifted when deleted.

use crate::clock::Clock;
use crate::exchange::{Binding, Destination, ExchangeDef, ExchangeKind};
use crate::message::{Message, Properties};
use crate::policy::{ApplyTo, Policy};
use crate::queue::QueueDef;
use crate::value::{FieldTable, FieldValue};
use crate::vhost::VHost;
use crate::{Broker, BrokerOptions};
use bytes::Bytes;
use std::sync::Arc;

fn vhost() -> (Arc<Broker>, Arc<VHost>) {
    let b = Broker::new(BrokerOptions {
        clock: Arc::new(Clock::manual()),
        ..BrokerOptions::default()
    })
    .unwrap();
    let v = b.vhost("/").unwrap();
    (b, v)
}

fn policy(name: &str, pattern: &str, apply_to: ApplyTo, def: &[(&str, FieldValue)]) -> Policy {
    Policy {
        vhost: "/".into(),
        name: name.into(),
        pattern: pattern.into(),
        apply_to,
        priority: 0,
        definition: def
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn declare(v: &VHost, name: &str, args: &[(&str, FieldValue)]) {
    let mut def = QueueDef::new(name);
    def.arguments = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    v.declare_queue(def, false, 1).unwrap();
}

fn publish(v: &VHost, exchange: &str, key: &str, body: &str) {
    let m = Message::new(
        exchange,
        key,
        Properties::default(),
        Bytes::from(body.to_string()),
    );
    v.publish(exchange, m).unwrap();
}

fn bodies(v: &VHost, queue: &str) -> Vec<String> {
    let q = v.queue(queue, None).unwrap();
    std::iter::from_fn(|| q.get(true))
        .map(|f| String::from_utf8(f.message.body.to_vec()).unwrap())
        .collect()
}

#[test]
fn a_length_limit_trims_existing_queues_at_once_and_is_lifted_on_delete() {
    let (_b, v) = vhost();
    declare(&v, "pol.a", &[]);
    for i in 1..=5 {
        publish(&v, "", "pol.a", &i.to_string());
    }
    v.put_policy(policy(
        "cap",
        "^pol\\.",
        ApplyTo::Queues,
        &[("max-length", FieldValue::I64(2))],
    ))
    .unwrap();
    let q = v.queue("pol.a", None).unwrap();
    assert_eq!(q.policy().unwrap().name, "cap");
    assert_eq!(q.message_count(), 2);
    assert_eq!(
        bodies(&v, "pol.a"),
        ["4", "5"],
        "drop-head keeps the newest"
    );
    v.delete_policy("cap").unwrap();
    assert!(q.policy().is_none());
    for i in 1..=3 {
        publish(&v, "", "pol.a", &i.to_string());
    }
    assert_eq!(q.message_count(), 3);
}

#[test]
fn a_later_queue_gets_the_policy_and_its_own_lower_limit_wins() {
    let (_b, v) = vhost();
    v.put_policy(policy(
        "cap",
        "^capped",
        ApplyTo::Queues,
        &[("max-length", FieldValue::I64(3))],
    ))
    .unwrap();
    declare(&v, "capped-own", &[("x-max-length", FieldValue::I64(1))]);
    declare(&v, "capped", &[]);
    declare(&v, "free", &[]);
    for q in ["capped-own", "capped", "free"] {
        for i in 0..5 {
            publish(&v, "", q, &i.to_string());
        }
    }
    let count = |q: &str| v.queue(q, None).unwrap().message_count();
    assert_eq!(
        (count("capped-own"), count("capped"), count("free")),
        (1, 3, 5)
    );
}

#[test]
fn a_policy_dead_letter_exchange_and_alternate_exchange_take_effect() {
    let (_b, v) = vhost();
    declare(&v, "work", &[]);
    declare(&v, "dead", &[]);
    declare(&v, "lost", &[]);
    v.declare_exchange(ExchangeDef::new("dlx", ExchangeKind::Fanout), false)
        .unwrap();
    v.declare_exchange(ExchangeDef::new("ae", ExchangeKind::Fanout), false)
        .unwrap();
    v.declare_exchange(ExchangeDef::new("orders", ExchangeKind::Direct), false)
        .unwrap();
    for (ex, q) in [("dlx", "dead"), ("ae", "lost")] {
        v.bind(
            Binding {
                source: ex.into(),
                destination: Destination::Queue(q.into()),
                routing_key: String::new(),
                arguments: FieldTable::new(),
            },
            None,
        )
        .unwrap();
    }
    v.put_policy(policy(
        "dl",
        "^work$",
        ApplyTo::Queues,
        &[("dead-letter-exchange", FieldValue::string("dlx"))],
    ))
    .unwrap();
    v.put_policy(policy(
        "ae",
        "^orders$",
        ApplyTo::Exchanges,
        &[("alternate-exchange", FieldValue::string("ae"))],
    ))
    .unwrap();
    publish(&v, "", "work", "rejected");
    let work = v.queue("work", None).unwrap();
    let f = work.get(false).unwrap();
    work.reject(&[f.id], false);
    assert_eq!(bodies(&v, "dead"), ["rejected"]);
    publish(&v, "orders", "nowhere", "unroutable");
    assert_eq!(bodies(&v, "lost"), ["unroutable"]);
    assert!(
        v.queue("dead", None).unwrap().policy().is_none(),
        "^work$ only"
    );
}

#[test]
fn an_invalid_policy_changes_nothing() {
    let (_b, v) = vhost();
    let bad = policy(
        "bad",
        "(",
        ApplyTo::Queues,
        &[("max-length", FieldValue::I64(1))],
    );
    assert_eq!(v.put_policy(bad).unwrap_err().name(), "PRECONDITION_FAILED");
    assert!(v.policies().is_empty());
    assert_eq!(v.delete_policy("bad").unwrap_err().name(), "NOT_FOUND");
}
