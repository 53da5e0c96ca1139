//! QoS 0/1/2 both ways, subscriptions, retained messages, wills.

use super::*;

#[test]
fn a_qos0_publish_reaches_a_subscriber() {
    let b = broker();
    let mut sub = Client::connected(&b, "sub", true);
    assert_eq!(
        sub.subscribe(1, "sensors/+/temp", QoS::AtMostOnce),
        vec![v4::SubscribeReasonCode::Success(QoS::AtMostOnce)]
    );
    let mut publisher = Client::connected(&b, "pub", true);
    publisher.publish("sensors/k1/temp", QoS::AtMostOnce, 0, false, "21.5");
    assert!(publisher.packets().is_empty(), "QoS 0 has no ack");
    sub.h.settle();
    let got = sub.publishes();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].topic, "sensors/k1/temp");
    assert_eq!(payload(&got[0]), "21.5");
}

#[test]
fn a_qos1_publish_is_acked_and_delivered_at_the_granted_qos() {
    let b = broker();
    let mut sub = Client::connected(&b, "sub", true);
    sub.subscribe(1, "a/b", QoS::AtLeastOnce);
    let mut p = Client::connected(&b, "pub", true);
    p.publish("a/b", QoS::AtLeastOnce, 7, false, "m");
    assert!(matches!(p.packets().as_slice(), [Packet::PubAck(a)] if a.pkid == 7));
    sub.h.settle();
    let got = sub.publishes();
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
    assert_ne!(got[0].pkid, 0);
}

#[test]
fn delivery_qos_is_the_lower_of_publish_and_subscription() {
    let b = broker();
    let mut sub = Client::connected(&b, "sub", true);
    sub.subscribe(1, "x", QoS::AtMostOnce);
    let mut p = Client::connected(&b, "pub", true);
    p.publish("x", QoS::AtLeastOnce, 1, false, "m");
    sub.h.settle();
    assert_eq!(sub.publishes()[0].qos, QoS::AtMostOnce);
}

#[test]
fn qos2_inbound_goes_pubrec_pubrel_pubcomp_and_is_delivered_once() {
    let b = broker();
    let mut sub = Client::connected(&b, "sub", true);
    sub.subscribe(1, "q2", QoS::AtMostOnce);
    let mut p = Client::connected(&b, "pub", true);
    p.publish("q2", QoS::ExactlyOnce, 5, false, "once");
    assert!(matches!(p.packets().as_slice(), [Packet::PubRec(r)] if r.pkid == 5));
    // A resend of the same packet id before PUBREL is not a second message.
    let mut dup = v4::Publish::new("q2", QoS::ExactlyOnce, b"once".to_vec());
    dup.pkid = 5;
    dup.dup = true;
    p.send_v4(|out| dup.write(out));
    assert!(matches!(p.packets().as_slice(), [Packet::PubRec(r)] if r.pkid == 5));
    p.send_v4(|out| v4::PubRel::new(5).write(out));
    assert!(matches!(p.packets().as_slice(), [Packet::PubComp(c)] if c.pkid == 5));
    sub.h.settle();
    assert_eq!(sub.publishes().len(), 1, "delivered exactly once");
}

#[test]
fn qos2_outbound_completes_with_pubrel() {
    let b = broker();
    let mut sub = Client::connected(&b, "sub", true);
    sub.subscribe(1, "q2", QoS::ExactlyOnce);
    let mut p = Client::connected(&b, "pub", true);
    p.publish("q2", QoS::ExactlyOnce, 1, false, "m");
    p.send_v4(|out| v4::PubRel::new(1).write(out));
    sub.h.settle();
    let got = sub.publishes();
    assert_eq!(got[0].qos, QoS::ExactlyOnce);
    let pkid = got[0].pkid;
    sub.send_v4(|out| v4::PubRec::new(pkid).write(out));
    assert!(matches!(sub.packets().as_slice(), [Packet::PubRel(r)] if r.pkid == pkid));
    sub.send_v4(|out| v4::PubComp::new(pkid).write(out));
    assert!(sub.packets().is_empty());
}

#[test]
fn unsubscribe_is_acked_and_stops_deliveries() {
    let b = broker();
    let mut sub = Client::connected(&b, "sub", true);
    sub.subscribe(1, "t", QoS::AtMostOnce);
    let mut u = v4::Unsubscribe::new("t");
    u.pkid = 2;
    sub.send_v4(|out| u.write(out));
    assert!(matches!(sub.packets().as_slice(), [Packet::UnsubAck(a)] if a.pkid == 2));
    let mut p = Client::connected(&b, "pub", true);
    p.publish("t", QoS::AtMostOnce, 0, false, "after");
    sub.h.settle();
    assert!(sub.publishes().is_empty());
}

#[test]
fn a_retained_message_goes_to_later_subscribers_and_an_empty_one_clears_it() {
    let b = broker();
    let mut p = Client::connected(&b, "pub", true);
    p.publish("status/door", QoS::AtLeastOnce, 1, true, "open");
    p.packets();
    let mut late = Client::connected(&b, "late", true);
    late.subscribe(1, "status/#", QoS::AtLeastOnce);
    let got = late.publishes();
    assert_eq!(got.len(), 1);
    assert!(got[0].retain, "sent with the retain flag");
    assert_eq!(payload(&got[0]), "open");
    p.publish("status/door", QoS::AtLeastOnce, 2, true, "");
    p.packets();
    let mut later = Client::connected(&b, "later", true);
    later.subscribe(1, "status/#", QoS::AtLeastOnce);
    assert!(
        later.publishes().is_empty(),
        "cleared by an empty retained publish"
    );
}

#[test]
fn the_will_is_published_when_the_connection_drops() {
    let b = broker();
    let mut watcher = Client::connected(&b, "watcher", true);
    watcher.subscribe(1, "wills/#", QoS::AtMostOnce);
    let mut c = Client::new(&b);
    let mut p = connect("dying", true, 0);
    p.last_will = Some(v4::LastWill::new(
        "wills/dying",
        "gone",
        QoS::AtMostOnce,
        false,
    ));
    c.connect(p);
    let will = c.drop_connection().expect("a will is due");
    assert_eq!(will.delay, 0);
    will.publish();
    watcher.h.settle();
    let got = watcher.publishes();
    assert_eq!(got.len(), 1);
    assert_eq!(payload(&got[0]), "gone");
}

#[test]
fn a_client_does_not_get_its_own_message_back_only_if_v5_no_local() {
    // 3.1.1 has no no-local: a client subscribed to its own topic gets its publish.
    let b = broker();
    let mut c = Client::connected(&b, "echo", true);
    c.subscribe(1, "me", QoS::AtMostOnce);
    c.publish("me", QoS::AtMostOnce, 0, false, "hi");
    assert_eq!(c.publishes().len(), 1);
}
