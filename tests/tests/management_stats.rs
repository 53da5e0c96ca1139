//! What the console reads, against a real broker: counters that match what lapin did, rates that
//! are non-zero while a publisher runs and fall back to zero when it stops, the node's
//! history for charts, read raw and through `rabbitmq_http_client`; and the route test.

use junction_tests::management::{client, send};
use junction_tests::{amqp_channel, within, TestBroker};
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::BasicProperties;
use reqwest::Method;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const GUEST: Option<(&str, &str)> = Some(("guest", "guest"));

async fn fast_sampling() -> TestBroker {
    TestBroker::start_with(|c| c.management.collect_statistics_interval = 100).await
}

/// Polls `path` until `cond` holds on its JSON body; returns that body.
async fn until(b: &TestBroker, path: &str, cond: impl Fn(&Value) -> bool) -> Value {
    within(async {
        loop {
            let (status, _, body) = send(b, Method::GET, path, GUEST, None).await;
            assert_eq!(status, 200, "{body}");
            if cond(&body) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

fn rate(v: &Value, name: &str) -> f64 {
    v[format!("{name}_details")]["rate"].as_f64().unwrap_or(0.0)
}

async fn publish(ch: &lapin::Channel, exchange: &str, key: &str) {
    within(ch.basic_publish(
        exchange,
        key,
        BasicPublishOptions::default(),
        b"m",
        BasicProperties::default(),
    ))
    .await
    .expect("publish")
    .await
    .expect("confirmed");
}

#[tokio::test]
async fn queue_counters_match_what_the_client_did() {
    let b = fast_sampling().await;
    let (_c, ch) = amqp_channel(&b.amqp_uri()).await;
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirms");
    within(ch.queue_declare(
        "counted",
        QueueDeclareOptions::default(),
        Default::default(),
    ))
    .await
    .expect("declare");
    for _ in 0..30 {
        publish(&ch, "", "counted").await;
    }
    for _ in 0..10 {
        let got = within(ch.basic_get("counted", BasicGetOptions::default()))
            .await
            .expect("get")
            .expect("a message");
        within(got.delivery.acker.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
    }
    let q = until(&b, "/api/queues/%2F/counted", |q| {
        q["message_stats"]["ack"] == 10
    })
    .await;
    let s = &q["message_stats"];
    assert_eq!(
        (s["publish"].as_u64(), s["get"].as_u64()),
        (Some(30), Some(10))
    );
    assert_eq!(s["deliver_get"], 10);
    assert_eq!(s["redeliver"], 0);
    assert_eq!(q["messages"], 20);
    // A plain listing (written straight from typed views) and a shaped one (through JSON
    // values) say the same of the queue, rates aside (they may move between the two calls).
    let (_, _, plain) = send(&b, Method::GET, "/api/queues/%2F", GUEST, None).await;
    let (_, _, paged) = send(
        &b,
        Method::GET,
        "/api/queues/%2F?page=1&page_size=10",
        GUEST,
        None,
    )
    .await;
    let steady = |v: &Value| {
        let mut v = v.clone();
        let m = v.as_object_mut().unwrap();
        m.retain(|k, _| !k.ends_with("_details") && k != "message_stats");
        v
    };
    assert_eq!(steady(&plain[0]), steady(&paged["items"][0]));
    assert_eq!(
        plain[0]["messages_ready_details"]
            .as_object()
            .map(|m| m.len()),
        Some(1)
    );
    // The default exchange took 30 in and routed 30 out.
    let e = until(&b, "/api/exchanges/%2F/amq.default", |_| true).await;
    assert_eq!(e["message_stats"]["publish_in"], 30);
    assert_eq!(e["message_stats"]["publish_out"], 30);
    // The node's totals catch up at the next sample.
    let o = until(&b, "/api/overview", |o| o["message_stats"]["ack"] == 10).await;
    assert_eq!(o["message_stats"]["publish"], 30);
    assert_eq!(o["queue_totals"]["messages_ready"], 20);
    // rabbitmq_http_client reads the same overview.
    let ov = within(client(&b, "guest", "guest").overview())
        .await
        .expect("overview parses");
    assert_eq!(ov.queue_totals.messages, 20);
}

#[tokio::test]
async fn rates_rise_while_a_publisher_runs_and_fall_to_zero_after() {
    let b = fast_sampling().await;
    let (_c, ch) = amqp_channel(&b.amqp_uri()).await;
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirms");
    within(ch.queue_declare("rated", QueueDeclareOptions::default(), Default::default()))
        .await
        .expect("declare");
    let running = Arc::new(AtomicBool::new(true));
    let publisher = {
        let (ch, running) = (ch.clone(), running.clone());
        tokio::spawn(async move {
            // Bounded: the test ends it long before this many.
            for _ in 0..1_000_000 {
                if !running.load(Ordering::Relaxed) {
                    break;
                }
                publish(&ch, "", "rated").await;
            }
        })
    };
    let q = until(&b, "/api/queues/%2F/rated", |q| {
        rate(&q["message_stats"], "publish") > 0.0 && rate(q, "messages") > 0.0
    })
    .await;
    assert!(q["message_stats"]["publish"].as_u64().unwrap() > 0);
    let o = until(&b, "/api/overview?msg_rates_age=60&msg_rates_incr=5", |o| {
        rate(&o["message_stats"], "publish") > 0.0
    })
    .await;
    let samples = o["message_stats"]["publish_details"]["samples"]
        .as_array()
        .expect("samples");
    assert!(samples.len() >= 2, "{samples:?}");
    let (newest, older) = (&samples[0], &samples[1]);
    assert!(newest["timestamp"].as_u64() > older["timestamp"].as_u64());
    assert!(newest["sample"].as_u64() >= older["sample"].as_u64());
    let v = until(&b, "/api/vhosts/%2F", |v| {
        rate(&v["message_stats"], "publish") > 0.0
    })
    .await;
    assert!(v["message_stats"]["publish"].as_u64().unwrap() > 0);

    running.store(false, Ordering::Relaxed);
    within(publisher).await.expect("publisher ends");
    until(&b, "/api/queues/%2F/rated", |q| {
        rate(&q["message_stats"], "publish") == 0.0 && rate(q, "messages") == 0.0
    })
    .await;
}

#[tokio::test]
async fn a_sampling_interval_out_of_range_is_refused_by_name() {
    let e =
        junction_gateway::config::Config::parse("[management]\ncollect_statistics_interval = 5\n")
            .unwrap_err()
            .to_string();
    assert!(e.contains("management.collect_statistics_interval"), "{e}");
}

#[tokio::test]
async fn the_route_test_names_the_queues_a_key_reaches_without_publishing() {
    let b = fast_sampling().await;
    let (_c, ch) = amqp_channel(&b.amqp_uri()).await;
    for q in ["sensors", "all"] {
        within(ch.queue_declare(q, QueueDeclareOptions::default(), Default::default()))
            .await
            .expect("declare");
    }
    for (q, key) in [("sensors", "sensor.*"), ("all", "#")] {
        within(ch.queue_bind(q, "amq.topic", key, Default::default(), Default::default()))
            .await
            .expect("bind");
    }
    let ask = |key: &str| format!(r#"{{"routing_key": "{key}"}}"#);
    let path = "/api/exchanges/%2F/amq.topic/route";
    let (status, _, body) = send(&b, Method::POST, path, GUEST, Some(&ask("sensor.t"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["routed_to"], serde_json::json!(["all", "sensors"]));
    let (_, _, body) = send(&b, Method::POST, path, GUEST, Some(&ask("x.y.z"))).await;
    assert_eq!(body["routed_to"], serde_json::json!(["all"]));
    // Nothing was published.
    let (_, _, q) = send(&b, Method::GET, "/api/queues/%2F/all", GUEST, None).await;
    assert_eq!(
        (
            q["messages"].as_u64(),
            q["message_stats"]["publish"].as_u64()
        ),
        (Some(0), Some(0))
    );
    // Bad input: 400 with a reason; an unknown exchange: 404.
    let (status, _, body) =
        send(&b, Method::POST, path, GUEST, Some(r#"{"routing_key": 5}"#)).await;
    assert_eq!(status, 400, "{body}");
    let missing = "/api/exchanges/%2F/nope/route";
    let (status, _, _) = send(&b, Method::POST, missing, GUEST, Some(&ask("k"))).await;
    assert_eq!(status, 404);
}
