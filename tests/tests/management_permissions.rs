//! The management API under the caller's permissions: a publish needs write on the exchange
//! and a get read on the queue, as over AMQP (RabbitMQ's rule, administrators included);
//! refusals are 403 with a JSON reason and are counted.

use junction_core::auth::new_user;
use junction_core::refusals::Refusal;
use junction_core::storage::Permission;
use junction_tests::management::{reason_of, send};
use junction_tests::TestBroker;
use reqwest::Method;

#[tokio::test]
async fn publish_and_get_through_the_api_follow_the_callers_permissions() {
    let b = TestBroker::start().await;
    let broker = b.gateway().broker();
    broker
        .put_user(new_user("mon", "pw", vec!["management".into()], vec![]))
        .unwrap();
    broker
        .put_permission(Permission {
            user: "mon".into(),
            vhost: "/".into(),
            configure: "".into(),
            write: "^allowed$".into(),
            read: "^mine$".into(),
        })
        .unwrap();
    let guest = Some(("guest", "guest"));
    for q in ["mine", "theirs"] {
        let (s, _, _) = send(
            &b,
            Method::PUT,
            &format!("/api/queues/%2F/{q}"),
            guest,
            Some("{}"),
        )
        .await;
        assert!(s == 201 || s == 204, "{s}");
    }
    let (s, _, _) = send(
        &b,
        Method::PUT,
        "/api/exchanges/%2F/allowed",
        guest,
        Some(r#"{"type":"fanout"}"#),
    )
    .await;
    assert!(s == 201 || s == 204, "{s}");
    let (s, _, _) = send(
        &b,
        Method::POST,
        "/api/bindings/%2F/e/allowed/q/theirs",
        guest,
        Some("{}"),
    )
    .await;
    assert_eq!(s, 201);

    let mon = Some(("mon", "pw"));
    let message =
        r#"{"routing_key":"theirs","payload":"x","payload_encoding":"string","properties":{}}"#;
    let (s, _, body) = send(
        &b,
        Method::POST,
        "/api/exchanges/%2F/amq.default/publish",
        mon,
        Some(message),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert!(
        reason_of(&body)
            .1
            .contains("write access to exchange 'amq.default'"),
        "{body}"
    );
    let (s, _, body) = send(
        &b,
        Method::POST,
        "/api/exchanges/%2F/allowed/publish",
        mon,
        Some(message),
    )
    .await;
    assert_eq!((s, &body["routed"]), (200, &serde_json::json!(true)));

    let get = r#"{"count":1,"ackmode":"ack_requeue_false","encoding":"auto"}"#;
    let (s, _, body) = send(
        &b,
        Method::POST,
        "/api/queues/%2F/theirs/get",
        mon,
        Some(get),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert!(
        reason_of(&body).1.contains("read access to queue 'theirs'"),
        "{body}"
    );
    let (s, _, body) = send(&b, Method::POST, "/api/queues/%2F/mine/get", mon, Some(get)).await;
    assert_eq!((s, body.as_array().map(Vec::len)), (200, Some(0)));
    // The message mon published is still there for one who may read it.
    let (s, _, body) = send(
        &b,
        Method::POST,
        "/api/queues/%2F/theirs/get",
        guest,
        Some(get),
    )
    .await;
    assert_eq!((s, body[0]["payload"].as_str()), (200, Some("x")));
    assert_eq!(broker.refusals().get(Refusal::AccessRefused), 2);
    b.stop().await;
}
