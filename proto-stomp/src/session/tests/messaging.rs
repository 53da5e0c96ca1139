//! SEND, SUBSCRIBE, ACK/NACK, receipts, transactions, destinations.

use super::*;

fn body(f: &Frame) -> String {
    String::from_utf8_lossy(&f.body).into_owned()
}

#[test]
fn a_queue_subscriber_gets_what_is_sent() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.subscribe("s1", "/queue/work", "auto");
    c.send_to("/queue/work", "job");
    let m = c.one();
    assert_eq!(m.command, Command::Message);
    assert_eq!(m.header("subscription"), Some("s1"));
    assert_eq!(m.header("destination"), Some("/queue/work"));
    assert_eq!(body(&m), "job");
}

#[test]
fn a_topic_reaches_every_subscriber() {
    let b = broker();
    let mut a = Client::connected(&b);
    let mut z = Client::connected(&b);
    a.subscribe("a", "/topic/news", "auto");
    z.subscribe("z", "/topic/news", "auto");
    let mut p = Client::connected(&b);
    p.send_to("/topic/news", "flash");
    a.h.settle();
    z.h.settle();
    assert_eq!(body(&a.one()), "flash");
    assert_eq!(body(&z.one()), "flash");
}

#[test]
fn a_send_without_destination_is_an_error() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.send(Frame::new(Command::Send));
    let e = c.one();
    assert_eq!(e.command, Command::Error);
    assert!(c.h.is_closed());
}

#[test]
fn an_unknown_destination_kind_is_an_error() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.send_to("/nowhere/x", "lost");
    assert_eq!(c.one().command, Command::Error);
}

#[test]
fn a_receipt_answers_a_send() {
    let b = broker();
    let mut c = Client::connected(&b);
    let mut f = Frame::new(Command::Send)
        .with("destination", "/queue/q")
        .with("receipt", "r1");
    f.body = bytes::Bytes::from_static(b"x");
    c.send(f);
    let r = c.one();
    assert_eq!(
        (r.command, r.header("receipt-id")),
        (Command::Receipt, Some("r1"))
    );
}

#[test]
fn a_persistent_send_is_receipted_once_the_store_has_it() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.subscribe("s", "/queue/durable", "client");
    c.send(Frame::new(Command::Unsubscribe).with("id", "s"));
    c.h.hold_syncs();
    let mut f = Frame::new(Command::Send)
        .with("destination", "/queue/durable")
        .with("persistent", "true")
        .with("receipt", "stored");
    f.body = bytes::Bytes::from_static(b"keep");
    c.send(f);
    assert!(c.frames().is_empty(), "no receipt before the sync");
    while c.h.finish_sync() {}
    assert_eq!(c.one().header("receipt-id"), Some("stored"));
}

#[test]
fn client_ack_mode_holds_until_ack() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.subscribe("s", "/queue/q", "client-individual");
    c.send_to("/queue/q", "one");
    let m = c.one();
    let ack = m.header("ack").expect("ack header in 1.2").to_string();
    let q = b.vhost("/").unwrap().queue("q", None).unwrap();
    assert_eq!(q.unacked_count(), 1);
    c.send(Frame::new(Command::Ack).with("id", ack));
    c.frames();
    assert_eq!(q.unacked_count(), 0);
}

#[test]
fn nack_with_requeue_false_drops_and_requeue_redelivers() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.subscribe("s", "/queue/q", "client-individual");
    c.send_to("/queue/q", "one");
    let m = c.one();
    let id = m.header("ack").unwrap().to_string();
    c.send(Frame::new(Command::Nack).with("id", id));
    // RabbitMQ requeues on NACK unless `requeue: false`.
    let again = c.one();
    assert_eq!(body(&again), "one");
    let id = again.header("ack").unwrap().to_string();
    c.send(
        Frame::new(Command::Nack)
            .with("id", id)
            .with("requeue", "false"),
    );
    assert!(c.frames().is_empty());
    let q = b.vhost("/").unwrap().queue("q", None).unwrap();
    assert_eq!((q.message_count(), q.unacked_count()), (0, 0));
}

#[test]
fn acking_an_unknown_id_is_an_error() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.send(Frame::new(Command::Ack).with("id", "nope"));
    assert_eq!(c.one().command, Command::Error);
}

#[test]
fn a_duplicate_subscription_id_is_an_error() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.subscribe("s", "/queue/a", "auto");
    c.send(
        Frame::new(Command::Subscribe)
            .with("id", "s")
            .with("destination", "/queue/b"),
    );
    assert_eq!(c.one().command, Command::Error);
}

#[test]
fn unsubscribe_stops_deliveries() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.subscribe("s", "/queue/q", "auto");
    c.send(
        Frame::new(Command::Unsubscribe)
            .with("id", "s")
            .with("receipt", "u"),
    );
    assert_eq!(c.one().header("receipt-id"), Some("u"));
    c.send_to("/queue/q", "after");
    assert!(c.frames().is_empty());
}

#[test]
fn a_transaction_sends_on_commit_only() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.send(Frame::new(Command::Begin).with("transaction", "t"));
    let mut f = Frame::new(Command::Send)
        .with("destination", "/queue/tx")
        .with("transaction", "t");
    f.body = bytes::Bytes::from_static(b"later");
    c.send(f.clone());
    let vh = b.vhost("/").unwrap();
    assert!(vh.queue("tx", None).map_or(0, |q| q.message_count()) == 0);
    c.send(Frame::new(Command::Commit).with("transaction", "t"));
    assert_eq!(vh.queue("tx", None).unwrap().message_count(), 1);
    c.send(Frame::new(Command::Begin).with("transaction", "t2"));
    let mut g = f;
    g.headers.retain(|(k, _)| k != "transaction");
    c.send(g.with("transaction", "t2"));
    c.send(Frame::new(Command::Abort).with("transaction", "t2"));
    assert_eq!(vh.queue("tx", None).unwrap().message_count(), 1);
    assert!(c.frames().is_empty(), "no errors");
}

#[test]
fn a_send_in_an_unknown_transaction_is_an_error() {
    let b = broker();
    let mut c = Client::connected(&b);
    let f = Frame::new(Command::Send)
        .with("destination", "/queue/q")
        .with("transaction", "never");
    c.send(f);
    assert_eq!(c.one().command, Command::Error);
}

#[test]
fn deleting_a_subscribed_queue_ends_the_session_with_an_error() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.subscribe("s", "/queue/q", "auto");
    b.vhost("/")
        .unwrap()
        .delete_queue("q", None, false, false)
        .unwrap();
    c.h.settle();
    let e = c.one();
    assert_eq!(
        (e.command, e.header("message")),
        (Command::Error, Some("Subscription cancelled"))
    );
}

#[test]
fn an_exchange_destination_routes_with_its_key() {
    let b = broker();
    let mut c = Client::connected(&b);
    c.subscribe("s", "/exchange/amq.direct/k1", "auto");
    c.send_to("/exchange/amq.direct/k2", "not mine");
    c.send_to("/exchange/amq.direct/k1", "mine");
    let m = c.one();
    assert_eq!(body(&m), "mine");
}
