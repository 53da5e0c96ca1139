//! Vhost and user limits and topic permissions through the management API: enforced where
//! they are limits (connections on every protocol, queues), kept across a restart, refused
//! with 400 when malformed.

use junction_tests::management::{reason_of, send};
use junction_tests::raw_mqtt::RawMqtt;
use junction_tests::{within, TestBroker};
use reqwest::Method;

const GUEST: Option<(&str, &str)> = Some(("guest", "guest"));

async fn amqp_opens(b: &TestBroker) -> bool {
    within(lapin::Connection::connect(
        &b.amqp_uri_for("guest", "guest", "%2f"),
        lapin::ConnectionProperties::default(),
    ))
    .await
    .is_ok()
}

#[tokio::test]
async fn a_vhost_connection_limit_refuses_every_protocol_until_lifted() {
    let b = TestBroker::start().await;
    let (status, _, _) = send(
        &b,
        Method::PUT,
        "/api/vhost-limits/%2F/max-connections",
        GUEST,
        Some(r#"{"value":1}"#),
    )
    .await;
    assert_eq!(status, 204);
    let first = within(lapin::Connection::connect(
        &b.amqp_uri_for("guest", "guest", "%2f"),
        lapin::ConnectionProperties::default(),
    ))
    .await
    .expect("the first connection is within the limit");
    assert!(!amqp_opens(&b).await, "a second AMQP connection is refused");
    let mut mqtt = RawMqtt::open(b.addrs.mqtt.expect("mqtt listener")).await;
    let ack = mqtt.connect_v4("over-limit", 0).await;
    assert_eq!(
        ack.code,
        mqttbytes::v4::ConnectReturnCode::ServiceUnavailable
    );
    let (_, _, listed) = send(&b, Method::GET, "/api/vhost-limits", GUEST, None).await;
    assert_eq!(listed[0]["value"]["max-connections"], 1, "{listed}");
    let (status, _, _) = send(
        &b,
        Method::DELETE,
        "/api/vhost-limits/%2F/max-connections",
        GUEST,
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert!(amqp_opens(&b).await, "lifted");
    within(first.close(200, "bye")).await.expect("close");
    b.stop().await;
}

#[tokio::test]
async fn a_queue_limit_refuses_the_next_declaration() {
    let b = TestBroker::start().await;
    let put =
        |path: &'static str, body: &'static str| send(&b, Method::PUT, path, GUEST, Some(body));
    assert_eq!(
        put("/api/vhost-limits/%2F/max-queues", r#"{"value":1}"#)
            .await
            .0,
        204
    );
    assert_eq!(
        put("/api/queues/%2F/one", r#"{"durable":true}"#).await.0,
        201
    );
    let (status, _, body) = put("/api/queues/%2F/two", r#"{"durable":true}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(reason_of(&body).1.contains("queue limit"), "{body}");
    let (status, _, body) = put("/api/vhost-limits/%2F/max-moons", r#"{"value":1}"#).await;
    assert_eq!(status, 400);
    assert!(reason_of(&body).1.contains("unknown limit"), "{body}");
    let (status, _, _) = put("/api/vhost-limits/%2F/max-queues", r#"{"value":"x"}"#).await;
    assert_eq!(status, 400);
    b.stop().await;
}

#[tokio::test]
async fn user_limits_and_topic_permissions_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let start = || TestBroker::start_in(&data);
    let b = start().await;
    let put =
        |path: &'static str, body: &'static str| send(&b, Method::PUT, path, GUEST, Some(body));
    assert_eq!(
        put("/api/users/dev", r#"{"password":"pw","tags":""}"#)
            .await
            .0,
        201
    );
    assert_eq!(
        put("/api/user-limits/dev/max-connections", r#"{"value":5}"#)
            .await
            .0,
        204
    );
    assert_eq!(
        put("/api/user-limits/dev/max-queues", r#"{"value":5}"#)
            .await
            .0,
        400,
        "max-queues is a vhost limit"
    );
    let topic = r#"{"exchange":"amq.topic","write":"^devices\\.","read":".*"}"#;
    assert_eq!(put("/api/topic-permissions/%2F/dev", topic).await.0, 201);
    assert_eq!(put("/api/topic-permissions/%2F/dev", topic).await.0, 204);
    let bad = r#"{"exchange":"amq.topic","write":"(","read":".*"}"#;
    let (status, _, body) = put("/api/topic-permissions/%2F/dev", bad).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = put("/api/topic-permissions/%2F/nobody", topic).await;
    assert_eq!(status, 404, "no such user");
    b.stop().await;

    let b = start().await;
    let (_, _, limits) = send(&b, Method::GET, "/api/user-limits/dev", GUEST, None).await;
    assert_eq!(limits[0]["value"]["max-connections"], 5, "{limits}");
    let (_, _, tp) = send(
        &b,
        Method::GET,
        "/api/topic-permissions/%2F/dev",
        GUEST,
        None,
    )
    .await;
    assert_eq!(tp[0]["write"], "^devices\\.", "{tp}");
    let (_, _, defs) = send(&b, Method::GET, "/api/definitions", GUEST, None).await;
    assert_eq!(
        defs["topic_permissions"][0]["exchange"], "amq.topic",
        "{defs}"
    );
    let (status, _, _) = send(&b, Method::DELETE, "/api/users/dev", GUEST, None).await;
    assert_eq!(status, 204);
    let (_, _, tp) = send(&b, Method::GET, "/api/topic-permissions", GUEST, None).await;
    assert_eq!(
        tp,
        serde_json::json!([]),
        "a deleted user's topic permissions go with it"
    );
    b.stop().await;
}

#[tokio::test]
async fn limits_travel_in_definitions_as_rabbitmq_writes_them() {
    let b = TestBroker::start().await;
    for (path, body) in [
        ("/api/vhost-limits/%2F/max-queues", r#"{"value":50}"#),
        ("/api/user-limits/guest/max-channels", r#"{"value":8}"#),
    ] {
        let (status, _, body) = send(&b, Method::PUT, path, GUEST, Some(body)).await;
        assert_eq!(status, 204, "{body}");
    }
    let (_, _, defs) = send(&b, Method::GET, "/api/definitions", GUEST, None).await;
    let params = defs["parameters"].as_array().expect("parameters");
    assert!(
        params.iter().any(|p| p["component"] == "vhost-limits"
            && p["vhost"] == "/"
            && p["value"]["max-queues"] == 50),
        "{params:?}"
    );
    let guest = defs["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "guest")
        .expect("guest exported");
    assert_eq!(guest["limits"]["max-channels"], 8);

    // Into a fresh broker: the limits come along (and a shovel parameter is skipped).
    let fresh = TestBroker::start().await;
    let mut file = defs.clone();
    file["parameters"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(
            {"vhost": "/", "component": "shovel", "name": "s", "value": {"src-uri": "amqp://"}}
        ));
    let text = file.to_string();
    let (status, _, body) =
        send(&fresh, Method::POST, "/api/definitions", GUEST, Some(&text)).await;
    assert_eq!(status, 204, "{body}");
    let (_, _, v) = send(&fresh, Method::GET, "/api/vhost-limits/%2F", GUEST, None).await;
    assert_eq!(v[0]["value"]["max-queues"], 50);
    let (_, _, u) = send(&fresh, Method::GET, "/api/user-limits/guest", GUEST, None).await;
    assert_eq!(u[0]["value"]["max-channels"], 8);

    // An unknown limit refuses the whole file: nothing changes.
    let bad = r#"{"vhosts":[{"name":"never"}],
        "parameters":[{"vhost":"/","component":"vhost-limits","name":"limits","value":{"max-widgets":1}}]}"#;
    let (status, _, body) = send(&fresh, Method::POST, "/api/definitions", GUEST, Some(bad)).await;
    assert_eq!(status, 400, "{body}");
    assert!(reason_of(&body).1.contains("max-widgets"), "{body}");
    let (status, _, _) = send(&fresh, Method::GET, "/api/vhosts/never", GUEST, None).await;
    assert_eq!(status, 404, "the file was refused whole");
}
