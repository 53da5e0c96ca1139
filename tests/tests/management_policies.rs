//! Policies through the management API, with `rabbitmq_http_client` as rabbitmqadmin v2 uses
//! it: applied at once to existing queues and exchanges, kept across a restart, refused with
//! RabbitMQ's status codes when malformed or not the caller's to make.

use junction_tests::management::{client, hash, reason_of, send};
use junction_tests::{within, TestBroker};
use rabbitmq_http_client::commons::PolicyTarget;
use rabbitmq_http_client::requests::{
    PolicyDefinitionBuilder, PolicyParams, QueueParams, UserParams,
};
use reqwest::Method;

#[tokio::test]
async fn a_policy_caps_existing_and_new_queues_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let start = || TestBroker::start_in(&data);
    let b = start().await;
    let admin = client(&b, "guest", "guest");
    within(admin.declare_queue(
        "/",
        &QueueParams::new_durable_classic_queue("pol.old", None),
    ))
    .await
    .expect("queue");
    for i in 0..5 {
        let routed = within(admin.publish_message(
            "/",
            "amq.default",
            "pol.old",
            &i.to_string(),
            Default::default(),
        ))
        .await
        .expect("publish");
        assert!(routed.routed);
    }
    let definition = PolicyDefinitionBuilder::new().max_length(2).build();
    let params =
        PolicyParams::new("/", "cap", "^pol\\.", definition).apply_to(PolicyTarget::Queues);
    within(admin.declare_policy(&params)).await.expect("policy");
    let q = within(admin.get_queue_info("/", "pol.old"))
        .await
        .expect("queue info");
    assert_eq!(q.policy.as_deref(), Some("cap"));
    assert_eq!(q.message_count, 2, "trimmed at once: {q:?}");

    within(admin.declare_queue(
        "/",
        &QueueParams::new_durable_classic_queue("pol.new", None),
    ))
    .await
    .expect("queue");
    within(admin.declare_queue("/", &QueueParams::new_durable_classic_queue("other", None)))
        .await
        .expect("queue");
    for q in ["pol.new", "other"] {
        for i in 0..4 {
            within(admin.publish_message(
                "/",
                "amq.default",
                q,
                &i.to_string(),
                Default::default(),
            ))
            .await
            .expect("publish");
        }
    }
    let count = |name: &'static str| {
        let admin = &admin;
        async move {
            within(admin.get_queue_info("/", name))
                .await
                .expect("queue info")
                .message_count
        }
    };
    assert_eq!((count("pol.new").await, count("other").await), (2, 4));
    let p = within(admin.get_policy("/", "cap")).await.expect("policy");
    assert_eq!((p.pattern.as_str(), p.priority), ("^pol\\.", 0));
    b.stop().await;

    let b = start().await;
    let admin = client(&b, "guest", "guest");
    let listed = within(admin.list_policies_in("/")).await.expect("policies");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let q = within(admin.get_queue_info("/", "pol.new"))
        .await
        .expect("queue info");
    assert_eq!(q.policy.as_deref(), Some("cap"), "applied after recovery");
    within(admin.delete_policy("/", "cap", false))
        .await
        .expect("delete");
    let q = within(admin.get_queue_info("/", "pol.new"))
        .await
        .expect("queue info");
    assert_eq!(q.policy, None);
    b.stop().await;
}

#[tokio::test]
async fn bad_policies_and_callers_without_the_tag_are_refused() {
    let b = TestBroker::start().await;
    let admin = client(&b, "guest", "guest");
    within(admin.create_user(&UserParams::monitoring("mon", &hash("pw"))))
        .await
        .expect("user");
    within(admin.create_user(&UserParams::policymaker("pm", &hash("pw"))))
        .await
        .expect("user");
    let guest = Some(("guest", "guest"));
    let path = "/api/policies/%2F/p";
    let cases = [
        ("{not json", "not JSON"),
        (r#"{"definition":{"max-length":1}}"#, "'pattern' is missing"),
        (
            r#"{"pattern":"(","definition":{"max-length":1}}"#,
            "invalid policy pattern",
        ),
        (
            r#"{"pattern":".*","definition":{"max-length":"x"}}"#,
            "must be an integer",
        ),
        (
            r#"{"pattern":".*","definition":{"no-such":1}}"#,
            "not recognised",
        ),
        (
            r#"{"pattern":".*","definition":{"max-length":1},"apply-to":"moons"}"#,
            "apply-to",
        ),
        (r#"{"pattern":".*","definition":{}}"#, "must not be empty"),
    ];
    for (body, why) in cases {
        let (status, _, reply) = send(&b, Method::PUT, path, guest, Some(body)).await;
        assert_eq!(status, 400, "{body}: {reply}");
        let (error, reason) = reason_of(&reply);
        assert_eq!(error, "bad_request");
        assert!(reason.contains(why), "{body}: {reason}");
    }
    assert!(within(admin.list_policies())
        .await
        .expect("list")
        .is_empty());

    let good = Some(r#"{"pattern":".*","definition":{"message-ttl":1000}}"#);
    let (status, _, _) = send(&b, Method::PUT, path, Some(("mon", "pw")), good).await;
    assert_eq!(status, 403, "monitoring is not policymaker");
    let (status, _, _) = send(&b, Method::PUT, path, Some(("pm", "pw")), good).await;
    assert_eq!(status, 403, "a policymaker without access to the vhost");
    let (status, _, _) = send(
        &b,
        Method::PUT,
        "/api/permissions/%2F/pm",
        guest,
        Some(r#"{"configure":".*","write":".*","read":".*"}"#),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _, _) = send(&b, Method::PUT, path, Some(("pm", "pw")), good).await;
    assert_eq!(status, 201, "created");
    let (status, _, _) = send(&b, Method::PUT, path, Some(("pm", "pw")), good).await;
    assert_eq!(status, 204, "replaced");
    let (status, _, _) = send(&b, Method::DELETE, "/api/policies/%2F/none", guest, None).await;
    assert_eq!(status, 404);
    let (status, _, body) = send(&b, Method::GET, "/api/definitions", guest, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["policies"][0]["name"], "p", "{body}");
    assert_eq!(body["policies"][0]["definition"]["message-ttl"], 1000);
    b.stop().await;
}
