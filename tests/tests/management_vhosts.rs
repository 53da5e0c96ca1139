//! A vhost's description, tags and default queue type through the management API, as
//! `rabbitmq_http_client` sends and reads them: stored, changed by a second PUT, kept across a
//! restart, exported and imported with definitions; a wrong type is 400.

use junction_tests::management::{client, send};
use junction_tests::{within, TestBroker};
use rabbitmq_http_client::requests::VirtualHostParams;
use reqwest::Method;

const GUEST: Option<(&str, &str)> = Some(("guest", "guest"));

#[tokio::test]
async fn a_vhost_keeps_its_description_and_tags_across_a_restart_and_in_definitions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let b = TestBroker::start_in(&data).await;
    let admin = client(&b, "guest", "guest");
    let params = VirtualHostParams {
        description: Some("sensors of building 7"),
        tags: Some(vec!["iot", "prod"]),
        ..VirtualHostParams::named("b7")
    };
    within(admin.create_vhost(&params)).await.expect("create");
    let v = within(admin.get_vhost("b7")).await.expect("read");
    assert_eq!(v.description.as_deref(), Some("sensors of building 7"));
    let tags: Vec<String> = v.tags.clone().map(|t| t.0).unwrap_or_default();
    assert_eq!(tags, vec!["iot", "prod"]);
    // A second PUT changes it (204), as RabbitMQ's.
    let (status, _, _) = send(
        &b,
        Method::PUT,
        "/api/vhosts/b7",
        GUEST,
        Some(r#"{"description":"building 7","tags":"iot","default_queue_type":"quorum"}"#),
    )
    .await;
    assert_eq!(status, 204);
    b.stop().await;

    let b = TestBroker::start_in(&data).await;
    let (_, _, v) = send(&b, Method::GET, "/api/vhosts/b7", GUEST, None).await;
    assert_eq!(v["description"], "building 7");
    assert_eq!(v["tags"], serde_json::json!(["iot"]));
    assert_eq!(v["default_queue_type"], "quorum");
    assert_eq!(v["metadata"]["description"], "building 7");
    let (_, _, defs) = send(&b, Method::GET, "/api/definitions", GUEST, None).await;
    let exported = defs["vhosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "b7")
        .expect("exported")
        .clone();
    assert_eq!(exported["metadata"]["tags"], serde_json::json!(["iot"]));

    // Into a fresh broker, from RabbitMQ 3.13's shape (metadata nested).
    let fresh = TestBroker::start().await;
    let file = serde_json::json!({ "vhosts": [exported] }).to_string();
    let (status, _, body) =
        send(&fresh, Method::POST, "/api/definitions", GUEST, Some(&file)).await;
    assert_eq!(status, 204, "{body}");
    let (_, _, v) = send(&fresh, Method::GET, "/api/vhosts/b7", GUEST, None).await;
    assert_eq!(v["description"], "building 7");

    let (status, _, _) = send(
        &b,
        Method::PUT,
        "/api/vhosts/b7",
        GUEST,
        Some(r#"{"description": 7}"#),
    )
    .await;
    assert_eq!(status, 400);
    let (_, _, v) = send(&b, Method::GET, "/api/vhosts/b7", GUEST, None).await;
    assert_eq!(
        v["description"], "building 7",
        "a refused PUT changes nothing"
    );
    b.stop().await;
}
