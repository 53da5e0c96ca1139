//! The hand-over between connections: a connection whose input woke an idle one lets it
//! begin its turn before writing its own replies.

use crate::consumer::{
    noting_woken, sink, DeliveryReceiver, DeliverySink, Notices, Offer, Received, SinkEvent, Woken,
};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};
use std::time::Duration;
use tokio::sync::mpsc;

fn cancel(tx: &DeliverySink, consumer: u64) {
    assert!(matches!(
        tx.offer(SinkEvent::Cancelled { consumer }),
        Offer::Sent
    ));
}

/// Polls `rx.recv_many` once, as a connection waiting in its loop does.
fn wait_once(rx: &mut DeliveryReceiver) {
    let mut buf = Vec::new();
    let fut = pin!(rx.recv_many(&mut buf, 8));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(fut.poll(&mut cx).is_pending());
}

/// The receiver waits; a connection's input then wakes it with an event.
fn wake_idle(tx: &DeliverySink, rx: &mut DeliveryReceiver, consumer: u64) -> Woken {
    wait_once(rx);
    noting_woken(|| cancel(tx, consumer)).expect("the idle receiver was noted")
}

async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("timed out")
}

#[tokio::test]
async fn the_woken_connection_begins_its_turn_first() {
    let (tx, mut subscriber) = sink(8);
    let (_own_tx, publisher) = sink(8);
    let (order_tx, mut order) = mpsc::unbounded_channel();
    let sub_order = order_tx.clone();
    let sub = tokio::spawn(async move {
        let mut buf = Vec::new();
        let n = subscriber.recv_many(&mut buf, 8).await;
        let _ = sub_order.send("subscriber");
        n
    });
    // Until the subscriber waits, a push would not find it idle.
    within(async {
        while !tx.receiver_waiting() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let woken = noting_woken(|| cancel(&tx, 1)).expect("the idle subscriber was noted");
    within(publisher.after_turn(woken)).await;
    let _ = order_tx.send("publisher");
    assert_eq!(within(sub).await.unwrap().events, 1);
    assert_eq!(order.recv().await, Some("subscriber"));
    assert_eq!(order.recv().await, Some("publisher"));
}

#[test]
fn only_a_receiver_woken_from_waiting_is_noted() {
    let (tx, mut rx) = sink(8);
    // Not waiting at all.
    assert!(noting_woken(|| cancel(&tx, 1)).is_none());
    assert!(rx.try_recv().is_some());
    // Registered while waiting, but its turn began another way (e.g. its socket was readable):
    // the registration left behind is not an idle receiver.
    wait_once(&mut rx);
    rx.begin_turn();
    assert!(noting_woken(|| cancel(&tx, 2)).is_none());
    assert!(rx.try_recv().is_some());
    // Waiting, woken outside a connection's input: nothing is left for the next one.
    wait_once(&mut rx);
    cancel(&tx, 3);
    assert!(noting_woken(|| {}).is_none());
    assert!(rx.try_recv().is_some());
    // Waiting, woken by a connection's input: noted.
    wait_once(&mut rx);
    assert!(noting_woken(|| cancel(&tx, 4)).is_some());
}

#[tokio::test]
async fn after_turn_does_not_wait_when_there_is_nothing_to_wait_for() {
    let (tx, mut rx) = sink(8);
    let (_other_tx, other) = sink(8);
    // Its own receiver.
    let woken = wake_idle(&tx, &mut rx, 1);
    within(rx.after_turn(woken)).await;
    // The woken receiver already took its events.
    let (tx, mut rx) = sink(8);
    let woken = wake_idle(&tx, &mut rx, 1);
    assert!(rx.try_recv().is_some());
    within(other.after_turn(woken)).await;
    // The woken receiver began its turn.
    let woken = wake_idle(&tx, &mut rx, 2);
    rx.begin_turn();
    within(other.after_turn(woken)).await;
    assert!(rx.try_recv().is_some());
    // The woken receiver is gone.
    let woken = wake_idle(&tx, &mut rx, 3);
    drop(rx);
    within(other.after_turn(woken)).await;
}

#[tokio::test]
async fn a_receiver_dropped_during_the_wait_releases_it() {
    let (tx, mut rx) = sink(8);
    let (_other_tx, other) = sink(8);
    let woken = wake_idle(&tx, &mut rx, 1);
    let waiter = tokio::spawn(async move { other.after_turn(woken).await });
    within(async {
        while !tx.turn_awaited() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    drop(rx);
    within(waiter).await.unwrap();
}

#[tokio::test]
async fn notices_wake_the_receiver_and_do_not_keep_the_sink_open() {
    let (tx, mut rx) = sink(8);
    let notifier = tx.notifier();
    wait_once(&mut rx);
    notifier.notify(Notices::ALARM_CHANGED);
    notifier.notify(Notices::SHUTDOWN);
    let mut buf = Vec::new();
    let got = within(rx.recv_many(&mut buf, 8)).await;
    assert_eq!(
        got,
        Received {
            events: 0,
            notices: Notices {
                shutdown: true,
                alarm_changed: true,
                close: false,
            },
            closed: false
        }
    );
    // Taken once: an event now comes alone.
    cancel(&tx, 1);
    let got = within(rx.recv_many(&mut buf, 8)).await;
    assert_eq!(
        (got.events, got.notices, got.closed),
        (1, Notices::default(), false)
    );
    // The notifier is not a sender: with the last sender gone the sink is closed.
    drop(tx);
    assert!(within(rx.recv_many(&mut buf, 8)).await.closed);
    drop(rx);
    // Telling a connection that is gone does nothing.
    notifier.notify(Notices::SHUTDOWN);
}
