//! The memory-ceiling scenarios: a broker under a publisher it cannot keep up with must hold its
//! resident memory near its high watermark, slow the publisher down, and lose nothing it
//! acknowledged. Two shapes: an AMQP consumer that acks slowly, and an MQTT QoS 0 subscriber
//! that stops reading its socket.

use super::amqp::Publish;
use super::amqp_wire::{Delivery, Wire};
use super::record::{epoch, payload, Seen};
use super::{rss_bytes, unique, IDLE};
use bytes::BytesMut;
use junction_amqp::codec::{encode_method_frame, Method};
use junction_core::FieldTable;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// What a ceiling run measured.
#[derive(Debug, Clone, Default)]
pub struct Ceiling {
    /// Messages the publisher got out during the run (all confirmed, for AMQP).
    pub published: u64,
    /// Seconds the publisher ran.
    pub seconds: f64,
    /// The broker's resident memory before the run, and its highest during it.
    pub rss_before: u64,
    /// See `rss_before`.
    pub rss_peak: u64,
    /// AMQP: confirmed messages the consumer never received.
    pub lost: u64,
    /// MQTT: messages the subscriber that kept reading received.
    pub delivered: u64,
}

/// Samples a process's resident memory every 20 ms on a task and keeps the highest.
struct PeakWatch {
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakWatch {
    fn start(pid: u32) -> PeakWatch {
        let peak = Arc::new(AtomicU64::new(rss_bytes(pid).unwrap_or(0)));
        let p = peak.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tick.tick().await;
                if let Some(rss) = rss_bytes(pid) {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
            }
        });
        PeakWatch { peak, task }
    }

    fn stop(self) -> u64 {
        self.task.abort();
        self.peak.load(Ordering::Relaxed)
    }
}

/// AMQP: one publisher with confirms (window 200) publishes transient `size`-byte messages as
/// fast as the broker lets it for `run`, into a queue whose one consumer (prefetch 1) acks a
/// message a millisecond; then the consumer drains at full speed and every confirmed message
/// is checked off.
pub async fn slow_consumer(
    uri: &str,
    run: Duration,
    size: usize,
    pid: u32,
) -> anyhow::Result<Ceiling> {
    let mut admin = Wire::connect(uri).await?;
    let q = unique("bench-slow");
    admin.declare_queue(&q, false, false).await?;
    let (total_tx, total_rx) = watch::channel(None);
    let deadline = tokio::time::Instant::now() + run;
    let consumer = Wire::connect(uri).await?;
    let sink = consume_slowly(consumer, &q, deadline, total_rx).await?;
    let rss_before = rss_bytes(pid).unwrap_or(0);
    let watch = PeakWatch::start(pid);
    let start = epoch().elapsed();
    let p = Publish {
        size,
        persistent: false,
        confirm_window: 200,
        rate: 0,
    };
    let published = Wire::connect(uri)
        .await?
        .produce_until("", &q, u64::MAX, Some(deadline), p)
        .await?;
    let seconds = (epoch().elapsed() - start).as_secs_f64();
    total_tx.send(Some(published))?;
    let seen = sink.await?;
    let rss_peak = watch.stop();
    admin.delete_queue(&q).await?;
    let (lost, _) = seen.check(published);
    Ok(Ceiling {
        published,
        seconds,
        rss_before,
        rss_peak,
        lost,
        delivered: seen.received,
    })
}

/// Consumes `queue` with prefetch 1, acking one message a millisecond until `deadline`; then
/// acks in batches until it has as many as `total` says were published, or [`IDLE`] without one.
async fn consume_slowly(
    mut c: Wire,
    queue: &str,
    deadline: tokio::time::Instant,
    total: watch::Receiver<Option<u64>>,
) -> anyhow::Result<tokio::task::JoinHandle<Seen>> {
    let qos = |prefetch_count| Method::BasicQos {
        prefetch_size: 0,
        prefetch_count,
        global: false,
    };
    c.call(qos(1), |m| matches!(m, Method::BasicQosOk)).await?;
    let consume = |consumer_tag: &str| Method::BasicConsume {
        queue: queue.into(),
        consumer_tag: consumer_tag.into(),
        no_local: false,
        no_ack: false,
        exclusive: false,
        no_wait: false,
        arguments: FieldTable::new(),
    };
    c.call(consume("slow"), |m| {
        matches!(m, Method::BasicConsumeOk { .. })
    })
    .await?;
    // A new prefetch applies to consumers started after it, so the drain is a second consumer.
    let mut drain = BytesMut::new();
    let cancel = Method::BasicCancel {
        consumer_tag: "slow".into(),
        no_wait: false,
    };
    for m in [cancel, qos(1000), consume("drain")] {
        encode_method_frame(1, &m, &mut drain);
    }
    Ok(tokio::spawn(async move {
        let mut seen = Seen::default();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let mut delivery = Delivery::default();
        let mut out = BytesMut::new();
        let mut fast = false;
        loop {
            if total.borrow().is_some_and(|n| seen.received >= n) {
                break;
            }
            if !fast && tokio::time::Instant::now() >= deadline {
                // Full speed from here: a wide prefetch and acks in batches.
                fast = true;
                if c.wr.write_all(&drain).await.is_err() {
                    break;
                }
            }
            let f = tokio::select! {
                f = tokio::time::timeout(IDLE, c.reader.frame()) => match f {
                    Ok(Ok(f)) => f,
                    _ => break,
                },
                _ = tokio::time::sleep_until(deadline), if !fast => continue,
            };
            if !delivery.take(f) {
                continue;
            }
            seen.note(&delivery.body);
            if !fast {
                tick.tick().await;
            }
            if !fast || seen.received.is_multiple_of(100) || c.reader.buf.len() < 64 {
                let ack = Method::BasicAck {
                    delivery_tag: delivery.tag,
                    multiple: true,
                };
                encode_method_frame(1, &ack, &mut out);
                if c.wr.write_all(&out).await.is_err() {
                    break;
                }
                out.clear();
            }
        }
        seen
    }))
}

fn mqtt_connect(client_id: &str) -> anyhow::Result<BytesMut> {
    let mut connect = mqttbytes::v4::Connect::new(client_id);
    connect.keep_alive = 0;
    connect.login = Some(mqttbytes::v4::Login::new("guest", "guest"));
    let mut out = BytesMut::new();
    connect
        .write(&mut out)
        .map_err(|e| anyhow::anyhow!("encoding CONNECT: {e:?}"))?;
    Ok(out)
}

/// MQTT: a QoS 0 subscriber connects, subscribes and never reads again, beside one that keeps
/// reading; one publisher sends QoS 0 `size`-byte messages to their topic as fast as the
/// broker reads them for `run`.
pub async fn stalled_subscriber(
    addr: SocketAddr,
    run: Duration,
    size: usize,
    pid: u32,
) -> anyhow::Result<Ceiling> {
    let topic = unique("bench/stalled").replace('-', "_");
    let mut stalled = crate::raw_mqtt::RawMqtt::open(addr).await;
    stalled.send(&mqtt_connect(&unique("stalled"))?).await;
    anyhow::ensure!(
        matches!(
            stalled.recv_v4().await,
            Some(mqttbytes::v4::Packet::ConnAck(_))
        ),
        "no CONNACK for the stalled subscriber"
    );
    stalled.subscribe_v4(&topic).await;
    let mut reader = crate::raw_mqtt::RawMqtt::open(addr).await;
    reader.send(&mqtt_connect(&unique("reader"))?).await;
    anyhow::ensure!(
        matches!(
            reader.recv_v4().await,
            Some(mqttbytes::v4::Packet::ConnAck(_))
        ),
        "no CONNACK for the reading subscriber"
    );
    reader.subscribe_v4(&topic).await;
    // The reading subscriber only counts bytes: every message has the same encoded size.
    let encoded = {
        let mut one = BytesMut::new();
        mqttbytes::v4::Publish::new(&topic, mqttbytes::QoS::AtMostOnce, payload(0, size))
            .write(&mut one)
            .map_err(|e| anyhow::anyhow!("encoding PUBLISH: {e:?}"))?;
        one.len() as u64
    };
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished = done.clone();
    let counting = tokio::spawn(async move {
        let (mut bytes, mut quiet) = (0u64, Duration::ZERO);
        let mut buf = vec![0u8; 256 * 1024];
        // Until the publisher is done and then a second passes with nothing, or IDLE in all.
        while quiet < IDLE {
            let step = Duration::from_secs(1);
            match tokio::time::timeout(step, reader.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => {
                    bytes += n as u64;
                    quiet = Duration::ZERO;
                }
                Err(_) if finished.load(Ordering::Relaxed) => break,
                Err(_) => quiet += step,
            }
        }
        bytes / encoded
    });
    let mut publisher = tokio::net::TcpStream::connect(addr).await?;
    publisher
        .write_all(&mqtt_connect(&unique("flood"))?)
        .await?;
    let mut ack = [0u8; 4];
    tokio::time::timeout(IDLE, publisher.read_exact(&mut ack)).await??;
    anyhow::ensure!(ack[0] == 0x20 && ack[3] == 0, "publisher refused: {ack:?}");
    let rss_before = rss_bytes(pid).unwrap_or(0);
    let watch = PeakWatch::start(pid);
    let start = epoch().elapsed();
    let deadline = tokio::time::Instant::now() + run;
    let mut published = 0u64;
    let mut batch = BytesMut::new();
    while tokio::time::Instant::now() < deadline {
        batch.clear();
        for _ in 0..64 {
            mqttbytes::v4::Publish::new(
                &topic,
                mqttbytes::QoS::AtMostOnce,
                payload(published, size),
            )
            .write(&mut batch)
            .map_err(|e| anyhow::anyhow!("encoding PUBLISH: {e:?}"))?;
            published += 1;
        }
        // A broker that stops reading holds the publisher here: bounded by the deadline.
        match tokio::time::timeout_at(deadline, publisher.write_all(&batch)).await {
            Ok(r) => r?,
            Err(_) => break,
        }
    }
    let seconds = (epoch().elapsed() - start).as_secs_f64();
    let rss_peak = watch.stop();
    drop(publisher);
    drop(stalled);
    done.store(true, Ordering::Relaxed);
    let delivered = counting.await?;
    Ok(Ceiling {
        published,
        seconds,
        rss_before,
        rss_peak,
        lost: 0,
        delivered,
    })
}
