//! The Prometheus endpoint of a running broker: refusals counted by kind, logins refused,
//! connection churn and the alarms, read back over HTTP as a scraper would.

use junction_tests::raw_amqp::RawClient;
use junction_tests::raw_stomp::StompClient;
use junction_tests::{within, TestBroker};

async fn scrape(b: &TestBroker) -> String {
    let url = format!(
        "http://{}/metrics",
        b.addrs.prometheus.expect("prometheus listener")
    );
    let r = within(reqwest::get(url)).await.expect("scrape");
    assert!(r.status().is_success());
    assert!(r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain; version=0.0.4")));
    within(r.text()).await.unwrap()
}

/// The value of the sample `series` (name and labels exactly as written), 0 if absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn refusals_and_refused_logins_are_counted_by_kind() {
    let b = TestBroker::start().await;
    let before = scrape(&b).await;
    let malformed = r#"junction_refusals_total{kind="malformed_frame"}"#;
    // Bytes no STOMP command starts with: an ERROR frame, a close, and one count.
    let mut c = within(StompClient::open(b.addrs.stomp.unwrap())).await;
    c.send_raw(b"\x16\x03\x01\x00\xa5\x01\x00").await;
    let _ = within(c.recv()).await;
    assert!(within(c.recv()).await.is_none(), "closed after the ERROR");
    // A wrong password over AMQP.
    let refused = within(RawClient::try_connect_with(
        b.addrs.amqp.unwrap(),
        0,
        "PLAIN",
        bytes::Bytes::from_static(b"\0guest\0wrong"),
    ))
    .await;
    assert!(refused.is_err(), "a wrong password was accepted");
    let after = scrape(&b).await;
    assert_eq!(sample(&after, malformed) - sample(&before, malformed), 1.0);
    let failures = "junction_auth_failures_total";
    assert_eq!(sample(&after, failures) - sample(&before, failures), 1.0);
    assert!(sample(&after, "rabbitmq_connections_opened_total") >= 2.0);
    b.stop().await;
}

#[tokio::test]
async fn the_memory_alarm_shows_as_rabbitmq_names_it() {
    let b = TestBroker::start().await;
    let alarm = "rabbitmq_alarms_memory_used_watermark";
    assert_eq!(sample(&scrape(&b).await, alarm), 0.0);
    b.gateway().set_memory_high_watermark(0);
    let broker = b.gateway().broker().clone();
    within(async {
        while broker
            .resource_alarm_of(junction_core::connections::Alarm::Memory)
            .is_none()
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let text = scrape(&b).await;
    assert_eq!(sample(&text, alarm), 1.0);
    assert_eq!(sample(&text, "rabbitmq_resident_memory_limit_bytes"), 0.0);
    b.stop().await;
}
