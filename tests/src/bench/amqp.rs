//! AMQP 0-9-1 loads (lapin).

use super::pacer::Pacer;
use super::record::{epoch, payload, Outcome, Seen};
use super::{unique, IDLE};
use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use std::collections::VecDeque;

async fn channel(uri: &str) -> anyhow::Result<(Connection, Channel)> {
    let c = Connection::connect(uri, ConnectionProperties::default()).await?;
    let ch = c.create_channel().await?;
    Ok((c, ch))
}

async fn declare(ch: &Channel, name: &str, durable: bool) -> anyhow::Result<()> {
    ch.queue_declare(
        name,
        QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    Ok(())
}

/// Consumes until `expect` deliveries or [`IDLE`] without one; acks every 50th with
/// `multiple` when `manual`.
async fn drain(mut c: Consumer, expect: u64, manual: bool) -> Seen {
    let mut seen = Seen::default();
    while seen.received < expect {
        let Ok(Some(Ok(d))) = tokio::time::timeout(IDLE, c.next()).await else {
            break;
        };
        seen.note(&d.data);
        if manual && (seen.received % 50 == 0 || seen.received == expect) {
            let _ = d.ack(BasicAckOptions { multiple: true }).await;
        }
    }
    seen
}

async fn consumer(
    ch: &Channel,
    queue: &str,
    manual: bool,
    prefetch: u16,
) -> anyhow::Result<Consumer> {
    if manual {
        ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    }
    Ok(ch
        .basic_consume(
            queue,
            "",
            BasicConsumeOptions {
                no_ack: !manual,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?)
}

/// How a producer publishes.
#[derive(Debug, Clone, Copy)]
pub struct Publish {
    /// Body bytes.
    pub size: usize,
    /// Delivery mode 2.
    pub persistent: bool,
    /// Outstanding confirms allowed (0 = no confirms).
    pub confirm_window: usize,
    /// Messages per second (0 = as fast as possible).
    pub rate: u64,
}

async fn produce(
    ch: &Channel,
    exchange: &str,
    key: &str,
    n: u64,
    p: Publish,
) -> anyhow::Result<()> {
    if p.confirm_window > 0 {
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
    }
    let props = BasicProperties::default().with_delivery_mode(if p.persistent { 2 } else { 1 });
    let mut pending = VecDeque::new();
    let pacer = (p.rate > 0).then(|| Pacer::new(p.rate, n));
    for seq in 0..n {
        if let Some(t) = &pacer {
            t.tick().await;
        }
        let pc = ch
            .basic_publish(
                exchange,
                key,
                BasicPublishOptions::default(),
                &payload(seq, p.size),
                props.clone(),
            )
            .await?;
        if p.confirm_window > 0 {
            pending.push_back(pc);
            if pending.len() >= p.confirm_window {
                if let Some(oldest) = pending.pop_front() {
                    oldest.await?;
                }
            }
        }
    }
    for pc in pending {
        pc.await?;
    }
    Ok(())
}

/// 1 producer → 1 queue → 1 consumer. Persistent runs use a durable queue, publisher confirms
/// and manual acks (prefetch 200, multiple-ack every 50).
pub async fn one_to_one(uri: &str, n: u64, p: Publish) -> anyhow::Result<Outcome> {
    let (_cc, cch) = channel(uri).await?;
    let (_pc, pch) = channel(uri).await?;
    let q = unique("bench-q");
    declare(&cch, &q, p.persistent).await?;
    let manual = p.persistent;
    let c = consumer(&cch, &q, manual, 200).await?;
    let start = epoch().elapsed();
    let sink = tokio::spawn(drain(c, n, manual));
    produce(&pch, "", &q, n, p).await?;
    let seen = sink.await?;
    let secs = (epoch().elapsed() - start).as_secs_f64();
    let _ = cch.queue_delete(&q, QueueDeleteOptions::default()).await;
    Ok(Outcome::from(&[seen], n, secs))
}

/// 1 producer → fanout exchange → `queues` queues, one consumer each (auto-ack, transient).
pub async fn fanout(uri: &str, n: u64, queues: usize, p: Publish) -> anyhow::Result<Outcome> {
    let (_pc, pch) = channel(uri).await?;
    let x = unique("bench-fanout");
    pch.exchange_declare(
        &x,
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let mut conns = Vec::new();
    let mut sinks = Vec::new();
    for i in 0..queues {
        let (c, ch) = channel(uri).await?;
        let q = format!("{x}-{i}");
        declare(&ch, &q, false).await?;
        ch.queue_bind(
            &q,
            &x,
            "",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        let cons = consumer(&ch, &q, false, 0).await?;
        sinks.push(tokio::spawn(drain(cons, n, false)));
        conns.push((c, ch, q));
    }
    let start = epoch().elapsed();
    produce(&pch, &x, "", n, p).await?;
    let mut seen = Vec::new();
    for s in sinks {
        seen.push(s.await?);
    }
    let secs = (epoch().elapsed() - start).as_secs_f64();
    for (_, ch, q) in &conns {
        let _ = ch.queue_delete(q, QueueDeleteOptions::default()).await;
    }
    let _ = pch
        .exchange_delete(&x, ExchangeDeleteOptions::default())
        .await;
    Ok(Outcome::from(&seen, n, secs))
}

/// An AMQP consumer of `amq.topic` messages with `key` (for the cross-protocol scenario).
pub async fn topic_sink(
    uri: &str,
    key: &str,
    expect: u64,
) -> anyhow::Result<(Connection, tokio::task::JoinHandle<Seen>)> {
    let (c, ch) = channel(uri).await?;
    let q = unique("bench-cross");
    ch.queue_declare(
        &q,
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(
        &q,
        "amq.topic",
        key,
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let cons = consumer(&ch, &q, false, 0).await?;
    Ok((c, tokio::spawn(drain(cons, expect, false))))
}
