//! Publisher confirms: held until the store syncs, in order, coalesced.

use super::*;

fn confirming(b: &Arc<Broker>) -> Client {
    let mut c = Client::with_channel(b);
    c.send(1, Method::ConfirmSelect { no_wait: false });
    assert_eq!(c.method(), (1, Method::ConfirmSelectOk));
    c
}

#[test]
fn transient_publishes_are_confirmed_at_once_in_one_multiple_ack() {
    let b = broker();
    let mut c = confirming(&b);
    c.declare("q", false);
    for i in 0..3 {
        c.publish(1, "", "q", Properties::default(), &format!("{i}"));
    }
    let acks = c.methods();
    let last = acks.last().cloned();
    assert!(
        matches!(
            last,
            Some((
                1,
                Method::BasicAck {
                    delivery_tag: 3,
                    ..
                }
            ))
        ),
        "{acks:?}"
    );
}

#[test]
fn persistent_publishes_are_confirmed_only_after_the_sync() {
    let b = broker();
    let mut c = confirming(&b);
    c.declare("d", true);
    c.h.hold_syncs();
    c.publish(1, "", "d", persistent(), "a");
    c.publish(1, "", "d", persistent(), "b");
    assert!(c.frames().is_empty(), "no confirm before the store synced");
    // The first publish started a sync; the second waits for the next one (one at a time,
    // as the driver runs them).
    assert!(c.h.finish_sync());
    let ack = |tag| {
        (
            1,
            Method::BasicAck {
                delivery_tag: tag,
                multiple: false,
            },
        )
    };
    assert_eq!(c.methods(), vec![ack(1)]);
    assert!(c.h.sync_pending(), "a sync for the second is under way");
    assert!(c.h.finish_sync());
    assert_eq!(c.methods(), vec![ack(2)]);
    assert!(!c.h.finish_sync(), "nothing left to sync");
}

#[test]
fn a_transient_confirm_keeps_its_place_behind_held_ones() {
    let b = broker();
    let mut c = confirming(&b);
    c.declare("d", true);
    c.declare("t", false);
    c.h.hold_syncs();
    c.publish(1, "", "d", persistent(), "stored");
    c.publish(1, "", "t", Properties::default(), "transient");
    assert!(
        c.frames().is_empty(),
        "the transient confirm waits behind the stored one"
    );
    while c.h.finish_sync() {}
    let tags: Vec<u64> = c
        .methods()
        .into_iter()
        .filter_map(|(_, m)| match m {
            Method::BasicAck { delivery_tag, .. } => Some(delivery_tag),
            _ => None,
        })
        .collect();
    assert_eq!(tags, vec![1, 2], "in publish order");
}

#[test]
fn a_publish_rejected_by_a_full_queue_is_nacked() {
    let b = broker();
    let mut c = confirming(&b);
    let mut args = FieldTable::new();
    args.insert("x-max-length", junction_core::FieldValue::I64(1));
    args.insert(
        "x-overflow",
        junction_core::FieldValue::string("reject-publish"),
    );
    c.send(
        1,
        Method::QueueDeclare {
            queue: "small".into(),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            no_wait: false,
            arguments: args,
        },
    );
    c.frames();
    c.publish(1, "", "small", Properties::default(), "fits");
    c.publish(1, "", "small", Properties::default(), "does not");
    let methods = c.methods();
    assert!(
        methods.iter().any(|(_, m)| matches!(
            m,
            Method::BasicNack {
                delivery_tag: 2,
                ..
            }
        )),
        "{methods:?}"
    );
}
