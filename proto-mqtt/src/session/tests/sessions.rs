//! Persistent sessions: resume, queued messages, redelivery, takeover, acks held for the store.

use super::*;

#[test]
fn a_persistent_session_keeps_subscriptions_and_queues_messages_while_away() {
    let b = broker();
    let mut c = Client::connected(&b, "keeper", false);
    c.subscribe(1, "jobs", QoS::AtLeastOnce);
    let _ = c.drop_connection();
    let mut p = Client::connected(&b, "pub", true);
    p.publish("jobs", QoS::AtLeastOnce, 1, false, "while away");
    let mut back = Client::new(&b);
    let ack = back.connect(connect("keeper", false, 0));
    assert!(ack.session_present, "the session was resumed");
    back.h.settle();
    let got = back.publishes();
    assert_eq!(got.len(), 1);
    assert_eq!(payload(&got[0]), "while away");
}

#[test]
fn a_clean_session_forgets_what_was_there() {
    let b = broker();
    let mut c = Client::connected(&b, "forgetful", false);
    c.subscribe(1, "jobs", QoS::AtLeastOnce);
    let _ = c.drop_connection();
    let mut again = Client::new(&b);
    let ack = again.connect(connect("forgetful", true, 0));
    assert!(!ack.session_present);
    let mut p = Client::connected(&b, "pub", true);
    p.publish("jobs", QoS::AtLeastOnce, 1, false, "nobody");
    again.h.settle();
    assert!(again.publishes().is_empty());
}

#[test]
fn unacked_qos1_deliveries_are_resent_with_dup_on_resume() {
    let b = broker();
    let mut c = Client::connected(&b, "slow", false);
    c.subscribe(1, "work", QoS::AtLeastOnce);
    let mut p = Client::connected(&b, "pub", true);
    p.publish("work", QoS::AtLeastOnce, 1, false, "unacked");
    c.h.settle();
    assert_eq!(c.publishes().len(), 1);
    let _ = c.drop_connection();
    let mut back = Client::new(&b);
    back.connect(connect("slow", false, 0));
    back.h.settle();
    let got = back.publishes();
    assert_eq!(got.len(), 1);
    assert!(got[0].dup, "a redelivery is marked DUP");
}

#[test]
fn a_second_connection_with_the_same_id_takes_over() {
    let b = broker();
    let mut first = Client::connected(&b, "same", true);
    let _second = Client::connected(&b, "same", true);
    let signalled = first
        .h
        .session
        .takeover_signal()
        .is_some_and(|t| t.is_signalled());
    assert!(signalled, "the first connection was told");
    first.h.session.taken_over();
    assert!(first.h.is_closed());
}

#[test]
fn the_suback_of_a_durable_subscription_waits_for_the_store() {
    let b = broker();
    let mut c = Client::connected(&b, "durable-sub", false);
    c.h.hold_syncs();
    let mut s = v4::Subscribe::new("d/#", QoS::AtLeastOnce);
    s.pkid = 3;
    c.send_v4(|out| s.write(out));
    assert!(c.packets().is_empty(), "SUBACK held");
    while c.h.finish_sync() {}
    assert!(matches!(c.packets().as_slice(), [Packet::SubAck(a)] if a.pkid == 3));
}

#[test]
fn a_qos1_publish_into_a_persistent_session_is_acked_after_the_sync() {
    let b = broker();
    let mut sub = Client::connected(&b, "stored-sub", false);
    sub.subscribe(1, "s", QoS::AtLeastOnce);
    let mut p = Client::connected(&b, "pub", true);
    p.h.hold_syncs();
    p.publish("s", QoS::AtLeastOnce, 9, false, "keep");
    assert!(p.packets().is_empty(), "PUBACK waits for the message store");
    while p.h.finish_sync() {}
    assert!(matches!(p.packets().as_slice(), [Packet::PubAck(a)] if a.pkid == 9));
}

/// An MQTT 5 client: CONNECT (clean start, no login restrictions beyond guest), then raw
/// v5 packets in and out.
fn v5_client(b: &(Arc<Broker>, Arc<Registry>), id: &str) -> Client {
    use mqttbytes::v5;
    let mut c = Client::new(b);
    let mut p = v5::Connect::new(id);
    p.login = Some(v5::Login::new("guest", "guest"));
    let mut out = BytesMut::new();
    p.write(&mut out).expect("encodes");
    c.h.feed(&out);
    let mut inbox = BytesMut::from(&c.h.take_output()[..]);
    assert!(matches!(
        v5::read(&mut inbox, 1 << 20),
        Ok(v5::Packet::ConnAck(_))
    ));
    c
}

fn v5_packets(c: &mut Client) -> Vec<mqttbytes::v5::Packet> {
    let mut inbox = BytesMut::from(&c.h.take_output()[..]);
    let mut out = Vec::new();
    while let Ok(p) = mqttbytes::v5::read(&mut inbox, 1 << 20) {
        out.push(p);
    }
    out
}

fn v5_publish(c: &mut Client, topic: &str, retain: bool, expiry: Option<u32>, body: &str) {
    use mqttbytes::v5;
    let mut p = v5::Publish::new(topic, QoS::AtMostOnce, body.as_bytes().to_vec());
    p.retain = retain;
    p.properties = Some(v5::PublishProperties {
        payload_format_indicator: None,
        message_expiry_interval: expiry,
        topic_alias: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
        subscription_identifiers: Vec::new(),
        content_type: None,
    });
    let mut out = BytesMut::new();
    p.write(&mut out).expect("encodes");
    c.h.feed(&out);
}

fn v5_subscribe(c: &mut Client, filter: &str) -> Vec<mqttbytes::v5::Packet> {
    use mqttbytes::v5;
    let mut s = v5::Subscribe::new(filter, QoS::AtMostOnce);
    s.pkid = 1;
    let mut out = BytesMut::new();
    s.write(&mut out).expect("encodes");
    c.h.feed(&out);
    v5_packets(c)
}

fn retained_payloads(packets: &[mqttbytes::v5::Packet]) -> Vec<(Bytes, Option<u32>)> {
    packets
        .iter()
        .filter_map(|p| match p {
            mqttbytes::v5::Packet::Publish(p) => Some((
                p.payload.clone(),
                p.properties
                    .as_ref()
                    .and_then(|x| x.message_expiry_interval),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn a_retained_message_expires_on_the_broker_clock() {
    let b = broker();
    let mut p = v5_client(&b, "pub5");
    v5_publish(&mut p, "r/short", true, Some(10), "stale");
    v5_publish(&mut p, "r/long", true, Some(3600), "fresh");
    b.0.clock().advance(11_000);
    let mut s = v5_client(&b, "sub5");
    let got = retained_payloads(&v5_subscribe(&mut s, "r/#"));
    assert_eq!(got.len(), 1, "the 10 s message expired 11 s on: {got:?}");
    assert_eq!(got[0].0, "fresh");
    // The remaining interval is forwarded: 3600 less the 11 s (the publish's second counted
    // as over).
    assert!(matches!(got[0].1, Some(3588..=3589)), "{:?}", got[0].1);
}

#[test]
fn a_retained_message_without_expiry_stays() {
    let b = broker();
    let mut p = Client::connected(&b, "pub", true);
    p.publish("r/t", QoS::AtMostOnce, 0, true, "kept");
    b.0.clock().advance(3_600_000);
    let mut late = Client::connected(&b, "late", true);
    late.subscribe(1, "r/t", QoS::AtMostOnce);
    assert_eq!(late.publishes().len(), 1, "no expiry set: kept an hour on");
}
