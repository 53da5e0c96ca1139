//! Consumers, prefetch, acks, gets, transactions, returns.

use super::*;

fn qos(c: &mut Client, n: u16) {
    c.send(
        1,
        Method::BasicQos {
            prefetch_size: 0,
            prefetch_count: n,
            global: false,
        },
    );
    assert_eq!(c.method(), (1, Method::BasicQosOk));
}

#[test]
fn a_consumer_gets_what_is_published() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.declare("q", false);
    let tag = c.consume("q", true);
    assert!(tag.starts_with("amq.ctag-"), "{tag}");
    c.publish(1, "", "q", Properties::default(), "hello");
    let got = deliveries(&c.frames());
    assert_eq!(got, vec![(1, false, Bytes::from_static(b"hello"))]);
}

#[test]
fn server_named_consumer_tags_are_distinct() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.declare("q", false);
    let a = c.consume("q", true);
    let b2 = c.consume("q", true);
    assert_ne!(a, b2);
}

#[test]
fn prefetch_holds_back_deliveries_until_acked() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.declare("q", false);
    qos(&mut c, 2);
    c.consume("q", false);
    for i in 0..5 {
        c.publish(1, "", "q", Properties::default(), &format!("m{i}"));
    }
    let first = deliveries(&c.frames());
    assert_eq!(first.len(), 2, "prefetch 2");
    c.send(
        1,
        Method::BasicAck {
            delivery_tag: 2,
            multiple: true,
        },
    );
    let next = deliveries(&c.frames());
    assert_eq!(
        next.iter().map(|d| d.0).collect::<Vec<_>>(),
        vec![3, 4],
        "two more after a multiple ack"
    );
}

#[test]
fn acking_an_unknown_tag_is_406() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.send(
        1,
        Method::BasicAck {
            delivery_tag: 99,
            multiple: false,
        },
    );
    let (_, m) = c.method();
    assert_eq!(close_code(&m), Some(406));
}

#[test]
fn a_nack_with_requeue_redelivers_marked_redelivered() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.declare("q", false);
    c.consume("q", false);
    c.publish(1, "", "q", Properties::default(), "again");
    assert_eq!(deliveries(&c.frames()).len(), 1);
    c.send(
        1,
        Method::BasicNack {
            delivery_tag: 1,
            multiple: false,
            requeue: true,
        },
    );
    let again = deliveries(&c.frames());
    assert_eq!(again, vec![(2, true, Bytes::from_static(b"again"))]);
}

#[test]
fn closing_a_channel_requeues_its_unacked_deliveries() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.declare("q", false);
    c.consume("q", false);
    c.publish(1, "", "q", Properties::default(), "back");
    c.frames();
    c.send(
        1,
        Method::ChannelClose {
            reply_code: 200,
            reply_text: String::new(),
            class_id: 0,
            method_id: 0,
        },
    );
    assert_eq!(c.method(), (1, Method::ChannelCloseOk));
    let q = b.vhost("/").unwrap().queue("q", None).unwrap();
    assert_eq!((q.message_count(), q.unacked_count()), (1, 0));
}

#[test]
fn basic_get_returns_a_message_then_empty() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.declare("q", false);
    c.publish(1, "", "q", Properties::default(), "one");
    let get = || Method::BasicGet {
        queue: "q".into(),
        no_ack: true,
    };
    c.send(1, get());
    let frames = c.frames();
    assert!(matches!(
        frames.first(),
        Some(Frame::Method {
            method: Method::BasicGetOk {
                message_count: 0,
                ..
            },
            ..
        })
    ));
    c.send(1, get());
    assert_eq!(c.method(), (1, Method::BasicGetEmpty));
}

#[test]
fn a_transaction_publishes_only_on_commit() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.declare("q", false);
    c.send(1, Method::TxSelect);
    assert_eq!(c.method(), (1, Method::TxSelectOk));
    c.publish(1, "", "q", Properties::default(), "later");
    let q = b.vhost("/").unwrap().queue("q", None).unwrap();
    assert_eq!(q.message_count(), 0, "held until commit");
    c.send(1, Method::TxCommit);
    assert_eq!(c.method(), (1, Method::TxCommitOk));
    assert_eq!(q.message_count(), 1);
    c.publish(1, "", "q", Properties::default(), "dropped");
    c.send(1, Method::TxRollback);
    assert_eq!(c.method(), (1, Method::TxRollbackOk));
    assert_eq!(q.message_count(), 1);
}

#[test]
fn a_mandatory_unroutable_publish_is_returned_with_312() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.publish_with(1, "amq.direct", "nobody", true, Properties::default(), "x");
    let methods = c.methods();
    assert!(
        matches!(
            methods.first(),
            Some((
                1,
                Method::BasicReturn {
                    reply_code: 312,
                    ..
                }
            ))
        ),
        "{methods:?}"
    );
}

#[test]
fn cancelling_a_consumer_answers_cancel_ok() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.declare("q", false);
    let tag = c.consume("q", true);
    c.send(
        1,
        Method::BasicCancel {
            consumer_tag: tag.clone(),
            no_wait: false,
        },
    );
    assert_eq!(c.method(), (1, Method::BasicCancelOk { consumer_tag: tag }));
    c.publish(1, "", "q", Properties::default(), "stays");
    assert!(deliveries(&c.frames()).is_empty());
}

#[test]
fn deleting_a_consumed_queue_cancels_the_consumer() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.declare("q", false);
    let tag = c.consume("q", true);
    b.vhost("/")
        .unwrap()
        .delete_queue("q", None, false, false)
        .unwrap();
    c.h.settle();
    assert_eq!(
        c.methods(),
        vec![(
            1,
            Method::BasicCancel {
                consumer_tag: tag,
                no_wait: true
            }
        )]
    );
}
