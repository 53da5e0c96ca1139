//! The memory alarm clears, and resident memory falls back, once the backlog that raised the
//! alarm is drained. Resident memory is what the alarm watches, and a drained queue used to keep
//! its ready list's buffer while the allocator kept the freed bodies: resident memory never fell,
//! and after one burst the publishers stayed blocked for good. The broker runs as a process of
//! its own, so only its memory is measured.

use futures::StreamExt;
use junction_amqp::codec::Method;
use junction_core::{FieldTable, FieldValue};
use junction_tests::bench::amqp::Publish;
use junction_tests::bench::amqp_wire::Wire;
use junction_tests::bench::rss_bytes;
use junction_tests::process::{JunctionProcess, Ports};
use junction_tests::raw_amqp::RawClient;
use junction_tests::{amqp_channel, within};
use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
use std::time::Duration;

const WATERMARK_MIB: u64 = 128;

/// Waits for `expected` among the methods `c` receives, for at most `limit`.
async fn await_method(c: &mut RawClient, limit: Duration, expected: fn(&Method) -> bool) -> bool {
    tokio::time::timeout(limit, async {
        loop {
            match c.recv_method().await {
                Some((_, m)) if expected(&m) => return true,
                Some(_) => continue,
                None => return false,
            }
        }
    })
    .await
    .unwrap_or(false)
}

#[tokio::test]
async fn the_memory_alarm_clears_and_memory_falls_after_the_backlog_drains() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[memory]\nhigh_watermark_mib = {WATERMARK_MIB}\n");
    let j = JunctionProcess::start(dir.path(), Ports::free(), &extra).await;
    let pid = j.pid();
    let (_c, ch) = amqp_channel(&j.amqp_uri()).await;
    within(ch.queue_declare(
        "backlog",
        QueueDeclareOptions::default(),
        Default::default(),
    ))
    .await
    .unwrap();
    let mut caps = FieldTable::new();
    caps.insert("connection.blocked", FieldValue::Bool(true));
    let mut props = FieldTable::new();
    props.insert("capabilities", FieldValue::Table(caps));
    let amqp = std::net::SocketAddr::from(([127, 0, 0, 1], j.ports.amqp));
    // A publishing connection is told when it is blocked (as RabbitMQ's are): one message.
    let mut watcher = within(RawClient::connect_announcing(amqp, props)).await;
    watcher.open_channel(1).await;
    watcher.publish(1, "", "nowhere", b"hello").await;
    let base = rss_bytes(pid).expect("resident memory");

    // 1 KiB transient messages, many per write, as fast as the broker reads them, until it
    // stops reading (bounded by a deadline).
    let uri = j.amqp_uri();
    let publisher = tokio::spawn(async move {
        let p = Publish {
            size: 1024,
            persistent: false,
            confirm_window: 0,
            rate: 0,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let wire = Wire::connect(&uri).await.expect("publisher connects");
        let _ = wire
            .produce_until("", "backlog", u64::MAX, Some(deadline), p)
            .await;
    });
    assert!(
        await_method(&mut watcher, Duration::from_secs(120), |m| matches!(
            m,
            Method::ConnectionBlocked { .. }
        ))
        .await,
        "the alarm never went off"
    );
    let peak = rss_bytes(pid).unwrap_or(0);
    publisher.abort();
    let _ = publisher.await;

    // Drained by a consumer, as a backlog usually is.
    let mut d = within(ch.basic_consume(
        "backlog",
        "drain",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
        Default::default(),
    ))
    .await
    .unwrap();
    let (_c2, probe) = amqp_channel(&j.amqp_uri()).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    loop {
        let q = within(probe.queue_declare("backlog", passive, Default::default()))
            .await
            .unwrap();
        if q.message_count() == 0 {
            break;
        }
        for _ in 0..10_000 {
            if tokio::time::timeout(Duration::from_millis(100), d.next())
                .await
                .is_err()
            {
                break;
            }
        }
    }
    assert!(
        await_method(&mut watcher, Duration::from_secs(30), |m| matches!(
            m,
            Method::ConnectionUnblocked
        ))
        .await,
        "the alarm stayed on after the drain: resident {} MiB, watermark {WATERMARK_MIB} MiB",
        rss_bytes(pid).unwrap_or(0) >> 20
    );
    // And memory goes back toward where it started: the drained queue's buffers and the freed
    // bodies are returned, not kept for a backlog that may never come again. (Before that,
    // resident memory stayed at the peak; here at least half of the growth must be given back,
    // which leaves room for what other tests running at the same time do to the allocator.)
    let near = base + (peak - base) / 2;
    let fell = tokio::time::timeout(Duration::from_secs(30), async {
        while rss_bytes(pid).unwrap_or(u64::MAX) >= near {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        fell.is_ok(),
        "resident memory stayed at {} MiB after the drain (started at {} MiB, peaked at {} MiB)",
        rss_bytes(pid).unwrap_or(0) >> 20,
        base >> 20,
        peak >> 20
    );
    j.terminate().await;
}
