//! Channels and the errors that close them (or the connection), queues and exchanges.

use super::*;

#[test]
fn reopening_an_open_channel_is_a_connection_error() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.send(1, Method::ChannelOpen);
    let (ch, m) = c.method();
    assert_eq!((ch, close_code(&m)), (0, Some(504)));
}

#[test]
fn a_method_on_an_unopened_channel_is_a_connection_error() {
    let b = broker();
    let mut c = Client::open(&b, 0);
    c.send(7, declare("q", false));
    let (ch, m) = c.method();
    assert_eq!((ch, close_code(&m)), (0, Some(504)));
}

#[test]
fn a_channel_beyond_channel_max_is_refused() {
    let b = broker();
    let mut c = Client::open(&b, 0);
    c.send(5000, Method::ChannelOpen);
    let (_, m) = c.method();
    assert!(matches!(close_code(&m), Some(504 | 530)), "{m:?}");
}

#[test]
fn an_inequivalent_redeclaration_closes_only_its_channel() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.declare("q", true);
    c.send(1, declare("q", false));
    let (ch, m) = c.method();
    assert_eq!((ch, close_code(&m)), (1, Some(406)));
    c.send(1, Method::ChannelCloseOk);
    c.send(2, Method::ChannelOpen);
    assert_eq!(c.method(), (2, Method::ChannelOpenOk));
}

#[test]
fn a_passive_declare_of_a_missing_queue_is_404() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    let Method::QueueDeclare { arguments, .. } = declare("gone", false) else {
        unreachable!()
    };
    c.send(
        1,
        Method::QueueDeclare {
            queue: "gone".into(),
            passive: true,
            durable: false,
            exclusive: false,
            auto_delete: false,
            no_wait: false,
            arguments,
        },
    );
    let (_, m) = c.method();
    assert_eq!(close_code(&m), Some(404));
}

#[test]
fn an_exclusive_queue_is_locked_to_its_connection() {
    let b = broker();
    let mut owner = Client::with_channel(&b);
    owner.send(
        1,
        Method::QueueDeclare {
            queue: "mine".into(),
            passive: false,
            durable: false,
            exclusive: true,
            auto_delete: false,
            no_wait: false,
            arguments: FieldTable::new(),
        },
    );
    owner.frames();
    let mut other = Client::with_channel(&b);
    other.send(
        1,
        Method::BasicGet {
            queue: "mine".into(),
            no_ack: true,
        },
    );
    let (_, m) = other.method();
    assert_eq!(close_code(&m), Some(405));
}

#[test]
fn a_server_named_queue_gets_amq_gen() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.send(1, declare("", false));
    let (_, m) = c.method();
    let Method::QueueDeclareOk { queue, .. } = m else {
        panic!("{m:?}")
    };
    assert!(
        queue.starts_with("amq.gen-") && queue.len() == 30,
        "{queue}"
    );
}

#[test]
fn publishing_to_a_missing_exchange_is_404() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.publish(1, "nope", "k", Properties::default(), "x");
    let (_, m) = c.method();
    assert_eq!(close_code(&m), Some(404));
}

#[test]
fn a_reserved_exchange_name_is_refused_with_403() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.send(
        1,
        Method::ExchangeDeclare {
            exchange: "amq.mine".into(),
            kind: "direct".into(),
            passive: false,
            durable: true,
            auto_delete: false,
            internal: false,
            no_wait: false,
            arguments: FieldTable::new(),
        },
    );
    let (_, m) = c.method();
    assert_eq!(close_code(&m), Some(403));
}

#[test]
fn an_unknown_exchange_type_is_a_connection_error() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.send(
        1,
        Method::ExchangeDeclare {
            exchange: "x".into(),
            kind: "bogus".into(),
            passive: false,
            durable: true,
            auto_delete: false,
            internal: false,
            no_wait: false,
            arguments: FieldTable::new(),
        },
    );
    let (ch, m) = c.method();
    assert_eq!((ch, close_code(&m)), (0, Some(503)));
}

#[test]
fn a_durable_declare_is_answered_once_the_store_has_it_and_nothing_overtakes_it() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.h.hold_syncs();
    c.send_all(&[
        (1, declare("d", true)),
        (
            1,
            Method::BasicConsume {
                queue: "d".into(),
                consumer_tag: "t".into(),
                no_local: false,
                no_ack: true,
                exclusive: false,
                no_wait: false,
                arguments: FieldTable::new(),
            },
        ),
    ]);
    assert!(c.frames().is_empty(), "declare-ok waits for the store");
    assert!(c.h.sync_pending());
    assert!(
        c.h.unread() > 0,
        "the consume waits unread behind the declaration"
    );
    assert!(c.h.finish_sync());
    let methods = c.methods();
    assert!(
        matches!(
            methods.as_slice(),
            [
                (1, Method::QueueDeclareOk { .. }),
                (1, Method::BasicConsumeOk { .. })
            ]
        ),
        "{methods:?}"
    );
}

#[test]
fn a_transient_declare_is_answered_at_once() {
    let b = broker();
    let mut c = Client::with_channel(&b);
    c.h.hold_syncs();
    c.send(1, declare("t", false));
    assert!(matches!(c.method(), (1, Method::QueueDeclareOk { .. })));
    assert!(!c.h.sync_pending());
}
