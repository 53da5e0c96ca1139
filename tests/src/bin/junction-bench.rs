//! `junction-bench`: one load scenario against any AMQP/MQTT/STOMP broker, printed as one line
//! of `key=value` pairs (the settings first, then throughput, loss and latency).
//!
//! `junction-bench --scenario amqp-transient --amqp amqp://guest:guest@127.0.0.1:5672/%2f`

use clap::{Parser, ValueEnum};
use junction_tests::bench::record::{epoch, Outcome};
use junction_tests::bench::{amqp, amqp_wire, ceiling, mqtt, rss_bytes, stomp, unique};
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scenario {
    /// AMQP 1 producer → 1 queue → 1 consumer, transient, no confirms, auto-ack.
    AmqpTransient,
    /// The same, persistent on a durable queue, confirms (window 200), manual acks (prefetch 200).
    AmqpPersistent,
    /// AMQP 1 producer → fanout → 10 queues → 10 consumers.
    AmqpFanout,
    /// AMQP 1 → 1 at a fixed rate (`--rate`), for latency.
    AmqpLatency,
    /// MQTT QoS 0, 1 publisher → 100 subscribers.
    MqttQos0Fanout,
    /// MQTT QoS 1, 100 publisher/subscriber pairs.
    MqttQos1Pairs,
    /// MQTT QoS 1, one publisher at a fixed `--rate` → one subscriber (latency).
    MqttLatency,
    /// MQTT QoS 2, 100 publisher/subscriber pairs.
    MqttQos2Pairs,
    /// STOMP 1 producer → /queue/ → 1 subscriber.
    StompQueue,
    /// STOMP 1 producer → /topic/ → 10 subscribers.
    StompTopic,
    /// MQTT QoS 0 publish → an AMQP consumer and a STOMP subscriber.
    Cross,
    /// AMQP 1 → 1 through `amq.topic` with a `--words`-word key while `--hashes`-long `#.#.…`
    /// patterns that never match are bound (worst-case topic matching).
    TopicWorst,
    /// `--connections` idle MQTT connections; broker memory per connection (`--broker-pid`).
    MqttIdle,
    /// `--messages` messages queued with no consumer (wire client; `--persistent`: on a
    /// durable queue with confirms, window 200); broker memory growth (`--broker-pid`).
    AmqpDepth,
    /// `--seconds` of transient confirmed publishes into a queue whose consumer acks one
    /// message a millisecond, then a full-speed drain; broker memory peak (`--broker-pid`).
    AmqpSlowConsumer,
    /// `--seconds` of QoS 0 publishes to a subscriber that stopped reading (beside one that
    /// reads); broker memory peak (`--broker-pid`).
    MqttStalledSubscriber,
}

/// The AMQP client a scenario drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AmqpClient {
    /// A pipelined client on Junction's frame codec (many frames per write).
    Wire,
    /// lapin, one publish future per message.
    Lapin,
}

#[derive(Debug, Parser)]
#[command(about = "Load scenarios for AMQP, MQTT and STOMP brokers")]
struct Args {
    #[arg(long, value_enum)]
    scenario: Scenario,
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp: String,
    #[arg(long, value_enum, default_value = "wire")]
    amqp_client: AmqpClient,
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:61613")]
    stomp: SocketAddr,
    /// Messages per producer.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Body size in bytes (at least 16: sequence number and send time).
    #[arg(long, default_value_t = 16)]
    size: usize,
    /// Messages per second for amqp-latency and mqtt-latency.
    #[arg(long, default_value_t = 5_000)]
    rate: u64,
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// The broker's pid, to read its memory (mqtt-idle, amqp-depth).
    #[arg(long)]
    broker_pid: Option<u32>,
    /// amqp-depth: persistent messages on a durable queue.
    #[arg(long)]
    persistent: bool,
    /// topic-worst: `#` words per hostile pattern.
    #[arg(long, default_value_t = 20)]
    hashes: usize,
    /// topic-worst: words in the routing key (at most 127 fit AMQP's 255-byte short string).
    #[arg(long, default_value_t = 100)]
    words: usize,
    /// amqp-slow-consumer, mqtt-stalled-subscriber: how long the publisher runs.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// amqp-depth: leave the queue and its messages behind (to time a restart's recovery).
    #[arg(long)]
    keep: bool,
    /// Trust this CA file and use TLS: MQTT connections go over TLS, and `--amqp` may be
    /// an `amqps://` URI (wire client).
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
    /// `USER:PASSWORD` for the MQTT clients (guest:guest by default).
    #[arg(long)]
    mqtt_login: Option<String>,
}

fn report(settings: &str, o: &Outcome) {
    println!(
        "{settings} deliveries={} secs={:.3} rate={:.0} lost={} dup={} p50_us={:.0} p99_us={:.0} max_us={:.0}",
        o.deliveries,
        o.seconds,
        o.rate(),
        o.lost,
        o.duplicated,
        o.p50_us,
        o.p99_us,
        o.max_us
    );
}

async fn idle_connections(a: &Args) -> anyhow::Result<()> {
    let pid = a
        .broker_pid
        .ok_or_else(|| anyhow::anyhow!("mqtt-idle needs --broker-pid"))?;
    let before = rss_bytes(pid).unwrap_or(0);
    let mut conns = Vec::with_capacity(a.connections);
    for i in 0..a.connections {
        let mut c = junction_tests::raw_mqtt::RawMqtt::open(a.mqtt).await;
        let mut connect = mqttbytes::v4::Connect::new(format!("{}-{i}", unique("idle")));
        connect.keep_alive = 0;
        connect.login = Some(mqttbytes::v4::Login::new("guest", "guest"));
        let mut out = bytes::BytesMut::new();
        connect
            .write(&mut out)
            .map_err(|e| anyhow::anyhow!("encoding CONNECT: {e:?}"))?;
        c.send(&out).await;
        match c.recv_v4().await {
            Some(mqttbytes::v4::Packet::ConnAck(_)) => conns.push(c),
            other => anyhow::bail!("connection {i}: {other:?}"),
        }
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let after = rss_bytes(pid).unwrap_or(0);
    println!(
        "scenario=mqtt-idle connections={} rss_before={} rss_after={} bytes_per_connection={:.0}",
        conns.len(),
        before,
        after,
        after.saturating_sub(before) as f64 / conns.len().max(1) as f64
    );
    Ok(())
}

async fn ceiling(a: &Args) -> anyhow::Result<()> {
    let pid = a
        .broker_pid
        .ok_or_else(|| anyhow::anyhow!("this scenario needs --broker-pid"))?;
    let run = std::time::Duration::from_secs(a.seconds);
    let (name, c) = match a.scenario {
        Scenario::AmqpSlowConsumer => (
            "amqp-slow-consumer persistent=no confirm_window=200 prefetch=1 ack_every_ms=1",
            ceiling::slow_consumer(&a.amqp, run, a.size, pid).await?,
        ),
        _ => (
            "mqtt-stalled-subscriber qos=0 stalled=1 reading=1",
            ceiling::stalled_subscriber(a.mqtt, run, a.size, pid).await?,
        ),
    };
    println!(
        "scenario={name} size={} published={} secs={:.3} publish_rate={:.0} rss_before={} rss_peak={} delivered={} lost={}",
        a.size,
        c.published,
        c.seconds,
        c.published as f64 / c.seconds.max(1e-9),
        c.rss_before,
        c.rss_peak,
        c.delivered,
        c.lost
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if let Some(ca) = &a.tls_ca {
        junction_tests::bench::tls::use_ca(ca)?;
    }
    if let Some((user, password)) = a.mqtt_login.as_deref().and_then(|l| l.split_once(':')) {
        mqtt::set_login(user, password);
    }
    epoch();
    let n = a.messages;
    let size = a.size;
    let fast = |persistent, confirm_window| amqp::Publish {
        size,
        persistent,
        confirm_window,
        rate: 0,
    };
    let lapin = a.amqp_client == AmqpClient::Lapin;
    let client = if lapin { "lapin" } else { "wire" };
    let uri = a.amqp.as_str();
    let one_to_one = |p: amqp::Publish| async move {
        if lapin {
            amqp::one_to_one(uri, n, p).await
        } else {
            amqp_wire::one_to_one(uri, n, p).await
        }
    };
    let (settings, outcome) = match a.scenario {
        Scenario::AmqpTransient => (
            format!("scenario=amqp-transient client={client} size={size} persistent=no confirms=no ack=auto messages={n}"),
            one_to_one(fast(false, 0)).await?,
        ),
        Scenario::AmqpPersistent => (
            format!("scenario=amqp-persistent client={client} size={size} persistent=yes confirm_window=200 ack=manual-multiple prefetch=200 messages={n}"),
            one_to_one(fast(true, 200)).await?,
        ),
        Scenario::AmqpFanout => (
            format!("scenario=amqp-fanout client={client} size={size} queues=10 persistent=no confirms=no ack=auto messages={n}"),
            if lapin {
                amqp::fanout(&a.amqp, n, 10, fast(false, 0)).await?
            } else {
                amqp_wire::fanout(&a.amqp, n, 10, fast(false, 0)).await?
            },
        ),
        Scenario::AmqpLatency => (
            format!("scenario=amqp-latency client={client} size={size} rate={} persistent=no confirms=no ack=auto messages={n}", a.rate),
            one_to_one(amqp::Publish {
                rate: a.rate,
                ..fast(false, 0)
            })
            .await?,
        ),
        Scenario::MqttQos0Fanout => (
            format!("scenario=mqtt-qos0-fanout size={size} subscribers=100 qos=0 messages={n}"),
            mqtt::fan_out(a.mqtt, n, 100, 0, size).await?,
        ),
        Scenario::MqttQos1Pairs => (
            format!("scenario=mqtt-qos1-pairs size={size} pairs=100 qos=1 inflight=100 messages_per_pair={n}"),
            mqtt::pairs(a.mqtt, n, 100, 1, size, 0).await?,
        ),
        Scenario::MqttLatency => (
            format!("scenario=mqtt-latency size={size} rate={} pairs=1 qos=1 inflight=100 messages={n}", a.rate),
            mqtt::pairs(a.mqtt, n, 1, 1, size, a.rate).await?,
        ),
        Scenario::MqttQos2Pairs => (
            format!("scenario=mqtt-qos2-pairs size={size} pairs=100 qos=2 inflight=100 messages_per_pair={n}"),
            mqtt::pairs(a.mqtt, n, 100, 2, size, 0).await?,
        ),
        Scenario::StompQueue => (
            format!("scenario=stomp-queue size={size} ack=auto messages={n}"),
            stomp::run(a.stomp, &format!("/queue/{}", unique("bench")), n, 1, size).await?,
        ),
        Scenario::StompTopic => (
            format!("scenario=stomp-topic size={size} subscribers=10 ack=auto messages={n}"),
            stomp::run(a.stomp, &format!("/topic/{}", unique("bench")), n, 10, size).await?,
        ),
        Scenario::Cross => {
            let key = unique("cross").replace('-', "_");
            let topic = format!("bench.{key}");
            let (_conn, amqp_sink) = if lapin {
                let (c, s) = amqp::topic_sink(&a.amqp, &topic, n).await?;
                (Some(c), s)
            } else {
                (None, amqp_wire::topic_sink(&a.amqp, &topic, n).await?)
            };
            let stomp_sink = stomp::sink(a.stomp, &format!("/topic/bench.{key}"), n).await;
            let start = epoch().elapsed();
            mqtt::publish_only(a.mqtt, &format!("bench/{key}"), n, size).await?;
            let seen = vec![amqp_sink.await?, stomp_sink.await?];
            (
                format!("scenario=cross client={client} size={size} from=mqtt-qos0 to=amqp+stomp messages={n}"),
                Outcome::from(&seen, n, (epoch().elapsed() - start).as_secs_f64()),
            )
        }
        Scenario::TopicWorst => (
            format!(
                "scenario=topic-worst size={size} hashes={} words={} persistent=no confirms=no ack=auto messages={n}",
                a.hashes, a.words
            ),
            amqp_wire::topic_worst(uri, n, a.hashes, a.words, fast(false, 0)).await?,
        ),
        Scenario::MqttIdle => return idle_connections(&a).await,
        Scenario::AmqpSlowConsumer | Scenario::MqttStalledSubscriber => return ceiling(&a).await,
        Scenario::AmqpDepth => {
            let pid = a
                .broker_pid
                .ok_or_else(|| anyhow::anyhow!("amqp-depth needs --broker-pid"))?;
            let p = if a.persistent {
                fast(true, 200)
            } else {
                fast(false, 0)
            };
            let (grew, secs) = amqp_wire::depth(uri, n, p, pid, a.keep).await?;
            println!(
                "scenario=amqp-depth size={size} persistent={} confirm_window={} messages={n} secs={secs:.3} rss_growth={grew} bytes_per_message={:.0}",
                if a.persistent { "yes" } else { "no" },
                p.confirm_window,
                grew as f64 / n.max(1) as f64
            );
            return Ok(());
        }
    };
    report(&settings, &outcome);
    Ok(())
}
