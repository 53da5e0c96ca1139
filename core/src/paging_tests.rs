//! Durable queues deeper than their memory window: bodies wait in the message log and are read
//! back, in order, as consumers near them; across restarts too.

use crate::clock::{unix_ms, Clock};
use crate::consumer::{sink, ConsumerSpec, Credit, SinkEvent};
use crate::message::{Message, Properties};
use crate::queue::QueueDef;
use crate::storage::{MemoryWindow, MessageStore};
use crate::store::{DataDir, LogOptions};
use crate::value::{FieldTable, FieldValue};
use crate::{Broker, BrokerOptions, VHost};
use bytes::Bytes;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const CONN: u64 = 1;
const WINDOW: usize = 10;

fn open(dir: &Path, clock: Arc<Clock>) -> (DataDir, Arc<Broker>) {
    let data = DataDir::open(
        dir,
        LogOptions {
            commit_window: Duration::from_micros(200),
            memory_window: MemoryWindow {
                messages: WINDOW,
                bytes: 1 << 20,
            },
            ..LogOptions::default()
        },
    )
    .expect("data directory opens");
    let broker = Broker::new(BrokerOptions {
        meta: data.meta.clone(),
        messages: data.messages.clone(),
        clock,
        ..BrokerOptions::default()
    })
    .expect("broker recovers");
    (data, broker)
}

fn durable_queue(v: &VHost, name: &str, args: FieldTable) {
    let mut def = QueueDef::new(name);
    def.durable = true;
    def.arguments = args;
    v.declare_queue(def, false, CONN).unwrap();
}

fn persistent(queue: &str, body: String, expiration: Option<&str>) -> Arc<Message> {
    let props = Properties {
        delivery_mode: Some(2),
        expiration: expiration.map(str::to_string),
        ..Properties::default()
    };
    Message::new("", queue, props, Bytes::from(body))
}

fn publish_n(v: &VHost, queue: &str, range: std::ops::Range<usize>) {
    for i in range {
        let r = v
            .publish("", persistent(queue, format!("m{i}"), None))
            .unwrap();
        assert_eq!(r.queues, 1);
    }
}

/// Takes every ready message with basic.get (acked), returning bodies and redelivered flags.
fn drain(v: &VHost, queue: &str) -> Vec<(String, bool)> {
    let q = v.queue(queue, None).unwrap();
    let mut out = Vec::new();
    while let Some(f) = q.get(false) {
        out.push((
            String::from_utf8(f.message.body.to_vec()).unwrap(),
            f.redelivered,
        ));
        assert!(q.ack(&[f.id]).is_empty());
    }
    out
}

fn expected(range: std::ops::Range<usize>, redelivered: bool) -> Vec<(String, bool)> {
    range.map(|i| (format!("m{i}"), redelivered)).collect()
}

async fn synced(data: &DataDir) {
    tokio::time::timeout(Duration::from_secs(10), data.messages.sync())
        .await
        .expect("sync in time")
        .expect("sync succeeds");
}

#[tokio::test]
async fn messages_beyond_the_window_are_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (data, b) = open(dir.path(), Arc::new(Clock::system()));
    let v = b.vhost("/").unwrap();
    durable_queue(&v, "deep", FieldTable::new());
    publish_n(&v, "deep", 0..500);
    let q = v.queue("deep", None).unwrap();
    assert_eq!(q.message_count(), 500);
    assert_eq!(q.paged_out_count(), 500 - WINDOW);
    // Some are read back from the store's pending batch, the rest from disk once written.
    let first = drain(&v, "deep");
    assert_eq!(first, expected(0..500, false));
    publish_n(&v, "deep", 500..1000);
    synced(&data).await;
    // A consumer with a prefetch window takes them as the queue reads them back.
    let (tx, mut rx) = sink(1024);
    q.add_consumer(ConsumerSpec {
        key: 9,
        tag: "c".into(),
        connection: CONN,
        channel: 0,
        no_ack: false,
        exclusive: false,
        priority: 0,
        credit: Some(Credit::new(64)),
        shared_credit: None,
        sink: tx,
    })
    .unwrap();
    let mut got = Vec::new();
    while got.len() < 500 {
        let Some(SinkEvent::Deliver(d)) = rx.try_recv() else {
            panic!("delivery {} missing", got.len());
        };
        got.push(String::from_utf8(d.message.body.to_vec()).unwrap());
        q.ack(&[d.id]);
    }
    let want: Vec<String> = (500..1000).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
    assert_eq!(q.message_count(), 0);
    assert!(rx.try_recv().is_none());
    drop(b);
    data.close();
}

#[tokio::test]
async fn a_restart_keeps_bodies_on_disk_until_needed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (data, b) = open(dir.path(), Arc::new(Clock::system()));
        let v = b.vhost("/").unwrap();
        durable_queue(&v, "deep", FieldTable::new());
        publish_n(&v, "deep", 0..300);
        // Three are handed out and requeued: they come back marked redelivered.
        let q = v.queue("deep", None).unwrap();
        let ids: Vec<u64> = (0..3).map(|_| q.get(false).unwrap().id).collect();
        q.reject(&ids, true);
        synced(&data).await;
        data.close();
    }
    let (data, b) = open(dir.path(), Arc::new(Clock::system()));
    assert_eq!(data.recovery.live_messages, 300);
    let v = b.vhost("/").unwrap();
    let q = v.queue("deep", None).unwrap();
    assert_eq!(q.message_count(), 300);
    assert_eq!(q.paged_out_count(), 300, "recovery reads no bodies");
    let mut want = expected(0..3, true);
    want.extend(expected(3..300, false));
    assert_eq!(drain(&v, "deep"), want);
    data.close();
}

#[tokio::test]
async fn ttl_keeps_counting_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let published_at;
    {
        let (data, b) = open(dir.path(), Arc::new(Clock::system()));
        let v = b.vhost("/").unwrap();
        durable_queue(&v, "ttl", FieldTable::new());
        published_at = unix_ms();
        v.publish("", persistent("ttl", "short".into(), Some("300")))
            .unwrap();
        v.publish("", persistent("ttl", "long".into(), Some("600000")))
            .unwrap();
        synced(&data).await;
        data.close();
    }
    // The short TTL runs out while the broker is down.
    for _ in 0..100 {
        if unix_ms() > published_at + 300 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (data, b) = open(dir.path(), Arc::new(Clock::system()));
    let v = b.vhost("/").unwrap();
    let q = v.queue("ttl", None).unwrap();
    q.expire();
    assert_eq!(drain(&v, "ttl"), vec![("long".to_string(), false)]);
    data.close();
}

#[tokio::test]
async fn paged_out_messages_are_dead_lettered_with_their_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(Clock::manual());
    let (data, b) = open(dir.path(), clock.clone());
    let v = b.vhost("/").unwrap();
    durable_queue(&v, "dlq", FieldTable::new());
    let args: FieldTable = [
        ("x-message-ttl".to_string(), FieldValue::I32(1000)),
        (
            "x-dead-letter-exchange".to_string(),
            FieldValue::LongString("".into()),
        ),
        (
            "x-dead-letter-routing-key".to_string(),
            FieldValue::LongString("dlq".into()),
        ),
    ]
    .into_iter()
    .collect();
    durable_queue(&v, "src", args);
    publish_n(&v, "src", 0..50);
    synced(&data).await;
    let src = v.queue("src", None).unwrap();
    assert_eq!(src.paged_out_count(), 50 - WINDOW);
    clock.advance(2000);
    src.expire();
    assert_eq!(src.message_count(), 0);
    assert_eq!(drain(&v, "dlq"), expected(0..50, false));
    data.close();
}

fn transient(queue: &str, body: String) -> Arc<Message> {
    Message::new("", queue, Properties::default(), Bytes::from(body))
}

/// While memory is short, transient messages of a deep queue are paged out too (under the
/// queue's transient id), read back in order, and forgotten by a restart, as transient
/// messages must be.
#[tokio::test]
async fn transient_messages_beyond_the_window_are_paged_and_not_recovered() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (data, b) = open(dir.path(), Arc::new(Clock::system()));
        let v = b.vhost("/").unwrap();
        // Without memory pressure transient messages stay in memory.
        v.declare_queue(QueueDef::new("roomy"), false, CONN)
            .unwrap();
        for i in 0..50 {
            v.publish("", transient("roomy", format!("m{i}"))).unwrap();
        }
        assert_eq!(v.queue("roomy", None).unwrap().paged_out_count(), 0);
        data.messages.set_transient_paging(true);
        // A non-durable queue: paged, read back in order.
        v.declare_queue(QueueDef::new("plain"), false, CONN)
            .unwrap();
        for i in 0..300 {
            v.publish("", transient("plain", format!("m{i}"))).unwrap();
        }
        let q = v.queue("plain", None).unwrap();
        assert_eq!(q.paged_out_count(), 300 - WINDOW);
        assert_eq!(drain(&v, "plain"), expected(0..300, false));
        // A durable queue with both kinds: persistent ones survive the restart, transient don't.
        durable_queue(&v, "mixed", FieldTable::new());
        for i in 0..200 {
            let m = if i % 2 == 0 {
                persistent("mixed", format!("m{i}"), None)
            } else {
                transient("mixed", format!("m{i}"))
            };
            v.publish("", m).unwrap();
        }
        let mixed = v.queue("mixed", None).unwrap();
        assert_eq!(mixed.message_count(), 200);
        assert!(mixed.paged_out_count() >= 180);
        // A purge forgets paged transient messages in the store as well.
        v.declare_queue(QueueDef::new("purged"), false, CONN)
            .unwrap();
        for i in 0..100 {
            v.publish("", transient("purged", format!("m{i}"))).unwrap();
        }
        assert_eq!(v.queue("purged", None).unwrap().purge(), 100);
        synced(&data).await;
        data.close();
    }
    let (data, b) = open(dir.path(), Arc::new(Clock::system()));
    let v = b.vhost("/").unwrap();
    let want: Vec<(String, bool)> = (0..200)
        .step_by(2)
        .map(|i| (format!("m{i}"), false))
        .collect();
    assert_eq!(drain(&v, "mixed"), want);
    data.close();
}
