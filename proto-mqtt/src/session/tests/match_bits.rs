//! Deliveries name the subscriptions they came for by their bindings' match bits.

use super::*;
use crate::codec::FilterReq;
use crate::registry::Subscription;
use junction_core::{Destination, MATCH_BIT};

/// The match bits on the bindings of `queue` to amq.topic, by binding key.
fn binding_bits(b: &(Arc<Broker>, Arc<Registry>), queue: &str) -> Vec<(String, Option<i64>)> {
    let topic = b.0.vhost("/").unwrap().exchange("amq.topic").unwrap();
    let mut out: Vec<_> = topic
        .bindings_to(&Destination::Queue(queue.into()))
        .into_iter()
        .map(|b| (b.routing_key.clone(), b.arguments.get_i64(MATCH_BIT)))
        .collect();
    out.sort();
    out
}

fn bits(c: &Client) -> Vec<Option<u8>> {
    c.h.session
        .session
        .subscriptions
        .iter()
        .map(|s| s.bit)
        .collect()
}

#[test]
fn overlapping_subscriptions_get_their_own_bits_and_the_highest_qos_wins() {
    let b = broker();
    let mut c = Client::connected(&b, "overlap", false);
    c.subscribe(1, "a/+", QoS::AtMostOnce);
    c.subscribe(2, "a/b", QoS::AtLeastOnce);
    assert_eq!(
        binding_bits(&b, "mqtt-subscription-overlap"),
        vec![("a.*".into(), Some(0)), ("a.b".into(), Some(1))]
    );
    let mut p = Client::connected(&b, "pub", true);
    p.publish("a/b", QoS::AtLeastOnce, 1, false, "both");
    p.publish("a/c", QoS::AtLeastOnce, 2, false, "one");
    c.h.settle();
    let got = c.publishes();
    assert_eq!(got.len(), 2, "one PUBLISH per message: {got:?}");
    assert_eq!(
        (payload(&got[0]), got[0].qos),
        ("both".into(), QoS::AtLeastOnce)
    );
    assert_eq!(
        (payload(&got[1]), got[1].qos),
        ("one".into(), QoS::AtMostOnce)
    );
}

#[test]
fn a_resumed_session_reads_its_bits_back_from_its_bindings() {
    let b = broker();
    let mut c = Client::connected(&b, "resumer", false);
    c.subscribe(1, "x/#", QoS::AtLeastOnce);
    c.subscribe(2, "x/y", QoS::AtMostOnce);
    c.subscribe(3, "z", QoS::AtMostOnce);
    let mut u = v4::Unsubscribe::new("x/y");
    u.pkid = 4;
    c.send_v4(|out| u.write(out));
    let before = bits(&c);
    assert_eq!(before, vec![Some(0), Some(2)]);
    let _ = c.drop_connection();
    let mut back = Client::new(&b);
    assert!(back.connect(connect("resumer", false, 0)).session_present);
    assert_eq!(bits(&back), before);
    // A new subscription takes a bit no live one holds.
    back.subscribe(5, "w", QoS::AtMostOnce);
    assert_eq!(bits(&back), vec![Some(0), Some(2), Some(3)]);
}

#[test]
fn past_thirty_two_filters_deliveries_are_matched_by_topic() {
    let b = broker();
    let mut c = Client::connected(&b, "many", true);
    for i in 0..33u16 {
        c.subscribe(i + 1, &format!("t/{i}"), QoS::AtMostOnce);
    }
    let given = bits(&c);
    assert_eq!(given.iter().flatten().count(), 32);
    assert_eq!(given[32], None);
    let mut p = Client::connected(&b, "pub", true);
    p.publish("t/32", QoS::AtMostOnce, 0, false, "last");
    p.publish("t/0", QoS::AtMostOnce, 0, false, "first");
    c.h.settle();
    let got: Vec<Bytes> = c.publishes().iter().map(payload).collect();
    assert_eq!(got, vec![Bytes::from("last"), Bytes::from("first")]);
}

#[test]
fn bits_are_trusted_when_present_and_the_topic_decides_when_not() {
    let s = Subscription {
        req: FilterReq {
            filter: "a/b".into(),
            qos: 1,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
        },
        id: None,
        group: None,
        bit: Some(2),
    };
    assert!(Session::came_for(&s, 0b100, "not/matching"));
    assert!(!Session::came_for(&s, 0b001, "a/b"));
    assert!(Session::came_for(&s, 0, "a/b"));
    assert!(!Session::came_for(&s, 0, "a/c"));
    // A `$` topic reaches a wildcard filter's binding (AMQP `#` matches it) but not the filter.
    let all = Subscription {
        req: FilterReq {
            filter: "#".into(),
            ..s.req.clone()
        },
        ..s
    };
    assert!(!Session::came_for(&all, 0b100, "$SYS/broker/load"));
    assert!(Session::came_for(&all, 0b100, "sys/broker/load"));
}
