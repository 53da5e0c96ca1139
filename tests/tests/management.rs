//! The management HTTP API against a real broker: with `rabbitmq_http_client` (the client
//! behind rabbitmqadmin v2) as RabbitMQ's own tools use it, and with plain HTTP for the status
//! codes and bodies of refusals.

use junction_core::refusals::Refusal;
use junction_tests::management::{client, hash, reason_of, send};
use junction_tests::{within, TestBroker};
use rabbitmq_http_client::requests::{UserParams, VirtualHostParams};

/// Publishes `body` on `ch` and waits until the broker has taken it.
async fn publish(ch: &lapin::Channel, exchange: &str, key: &str, body: &[u8]) {
    within(ch.basic_publish(exchange, key, Default::default(), body, Default::default()))
        .await
        .expect("publish")
        .await
        .expect("published");
}

/// The broker's queue `name` in `vhost`.
fn queue_of(b: &TestBroker, vhost: &str, name: &str) -> std::sync::Arc<junction_core::Queue> {
    b.gateway()
        .broker()
        .vhost(vhost)
        .expect("vhost")
        .queue(name, None)
        .expect("queue")
}

#[tokio::test]
async fn rabbitmq_http_client_manages_vhosts_and_users() {
    let b = TestBroker::start().await;
    let admin = client(&b, "guest", "guest");
    let me = within(admin.current_user()).await.expect("whoami");
    assert_eq!(me.name, "guest");
    let vhosts = within(admin.list_vhosts()).await.expect("vhosts");
    assert!(vhosts.iter().any(|v| v.name == "/"), "{vhosts:?}");

    within(admin.create_vhost(&VirtualHostParams::named("dev")))
        .await
        .expect("create vhost");
    let dev = within(admin.get_vhost("dev")).await.expect("get vhost");
    assert_eq!(dev.name, "dev");

    let h = hash("s3cret");
    within(admin.create_user(&UserParams::management("bob", &h)))
        .await
        .expect("create user");
    let users = within(admin.list_users()).await.expect("users");
    let bob = users.iter().find(|u| u.name == "bob").expect("bob listed");
    assert_eq!(bob.password_hash, h, "the hash given is the hash stored");
    // bob logs in with the password the hash was made from.
    let as_bob = client(&b, "bob", "s3cret");
    assert_eq!(
        within(as_bob.current_user()).await.expect("bob").name,
        "bob"
    );
    // A management user sees only the vhosts it may open: none yet.
    let seen = within(as_bob.list_vhosts()).await.expect("bob's vhosts");
    assert!(seen.is_empty(), "{seen:?}");
    // ...and may not create one.
    assert!(within(as_bob.create_vhost(&VirtualHostParams::named("x")))
        .await
        .is_err());

    within(admin.delete_user("bob", false))
        .await
        .expect("delete user");
    assert!(
        within(as_bob.current_user()).await.is_err(),
        "deleted user still logs in"
    );
    within(admin.delete_vhost("dev", false))
        .await
        .expect("delete vhost");
    assert!(within(admin.get_vhost("dev")).await.is_err());
    assert!(
        within(admin.delete_vhost("dev", false)).await.is_err(),
        "404 for a gone vhost"
    );
    within(admin.delete_vhost("dev", true))
        .await
        .expect("idempotent delete");
    b.stop().await;
}

#[tokio::test]
async fn refusals_have_rabbitmqs_status_codes_and_json_reasons_and_are_counted() {
    use reqwest::Method;
    let b = TestBroker::start().await;
    let guest = Some(("guest", "guest"));
    let refusals = || b.gateway().broker().refusals();
    let logins_before = refusals().get(Refusal::ManagementLogin);

    let (status, headers, body) = send(&b, Method::GET, "/api/overview", None, None).await;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        "Basic realm=\"RabbitMQ Management\""
    );
    assert_eq!(reason_of(&body).0, "not_authorised");
    let (status, ..) = send(
        &b,
        Method::GET,
        "/api/whoami",
        Some(("guest", "nope")),
        None,
    )
    .await;
    assert_eq!(status, 401, "wrong password");
    assert_eq!(refusals().get(Refusal::ManagementLogin), logins_before + 2);

    // A user without a management tag may not use the API at all.
    let (status, ..) = send(
        &b,
        Method::PUT,
        "/api/users/plain",
        guest,
        Some(r#"{"password":"p","tags":""}"#),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _, body) = send(&b, Method::GET, "/api/whoami", Some(("plain", "p")), None).await;
    assert_eq!((status, reason_of(&body).1), (401, "Not management user"));

    // A management user may look, not change.
    let (status, ..) = send(
        &b,
        Method::PUT,
        "/api/users/mgmt",
        guest,
        Some(r#"{"password":"p","tags":["management"]}"#),
    )
    .await;
    assert_eq!(status, 201);
    let forbidden_before = refusals().get(Refusal::ManagementForbidden);
    for (method, path) in [
        (Method::PUT, "/api/vhosts/evil"),
        (Method::DELETE, "/api/vhosts/%2F"),
        (Method::GET, "/api/users"),
        (Method::DELETE, "/api/users/guest"),
    ] {
        let (status, _, body) = send(&b, method.clone(), path, Some(("mgmt", "p")), None).await;
        assert_eq!(status, 403, "{method} {path}");
        assert_eq!(
            reason_of(&body),
            ("not_authorised", "Not administrator user")
        );
    }
    assert_eq!(
        refusals().get(Refusal::ManagementForbidden),
        forbidden_before + 4
    );
    assert!(
        b.gateway().broker().vhost("evil").is_err(),
        "nothing changed"
    );

    // Malformed requests: 400 with a reason, and nothing changed.
    let bad_before = refusals().get(Refusal::ManagementBadRequest);
    for body in [
        "{not json",
        "[1, 2]",
        r#"{"password": 7}"#,
        r#"{"password": "p", "tags": 5}"#,
        r#"{"password_hash": "***"}"#,
        r#"{"password_hash": "c2hvcnQ="}"#,
        r#"{"password_hash": "AAAA", "hashing_algorithm": "rabbit_password_hashing_md5"}"#,
        r#"{"tags": "administrator"}"#,
    ] {
        let (status, _, reply) = send(&b, Method::PUT, "/api/users/carol", guest, Some(body)).await;
        assert_eq!(status, 400, "{body} -> {reply}");
        assert_eq!(reason_of(&reply).0, "bad_request");
    }
    let (status, ..) = send(
        &b,
        Method::PUT,
        "/api/vhosts/v1",
        guest,
        Some(r#"{"tracing": "yes"}"#),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        refusals().get(Refusal::ManagementBadRequest),
        bad_before + 9
    );
    assert!(b.gateway().broker().auth().get("carol").is_none());
    assert!(b.gateway().broker().vhost("v1").is_err());

    // Unknown things.
    for (method, path) in [
        (Method::GET, "/api/vhosts/nope"),
        (Method::DELETE, "/api/vhosts/nope"),
        (Method::GET, "/api/users/nope"),
        (Method::DELETE, "/api/users/nope"),
        (Method::GET, "/api/no-such-endpoint"),
    ] {
        let (status, _, body) = send(&b, method.clone(), path, guest, None).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(reason_of(&body).0, "Object Not Found");
    }
    b.stop().await;
}

#[tokio::test]
async fn users_and_vhosts_made_through_the_api_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let start = || TestBroker::start_in(&data);
    let b = start().await;
    let admin = client(&b, "guest", "guest");
    within(admin.create_vhost(&VirtualHostParams::named("kept")))
        .await
        .expect("vhost");
    within(admin.create_user(&UserParams::administrator("dora", &hash("pw"))))
        .await
        .expect("user");
    b.stop().await;

    let b = start().await;
    let dora = client(&b, "dora", "pw");
    assert_eq!(
        within(dora.current_user()).await.expect("dora").name,
        "dora"
    );
    let vhosts = within(dora.list_vhosts()).await.expect("vhosts");
    assert!(vhosts.iter().any(|v| v.name == "kept"), "{vhosts:?}");
    b.stop().await;
}

#[tokio::test]
async fn health_checks_overview_and_the_aliveness_test() {
    use reqwest::Method;
    let b = TestBroker::start().await;
    let guest = Some(("guest", "guest"));
    let (status, _, body) = send(&b, Method::GET, "/api/health/checks/alarms", guest, None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let amqp = b.addrs.amqp.expect("amqp").port();
    let path = format!("/api/health/checks/port-listener/{amqp}");
    let (status, _, body) = send(&b, Method::GET, &path, guest, None).await;
    assert_eq!(
        (status, body["port"].as_u64()),
        (200, Some(u64::from(amqp)))
    );
    let (status, _, body) = send(
        &b,
        Method::GET,
        "/api/health/checks/port-listener/1",
        guest,
        None,
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (503, Some("failed")));
    let (status, ..) = send(
        &b,
        Method::GET,
        "/api/health/checks/port-listener/http",
        guest,
        None,
    )
    .await;
    assert_eq!(status, 400);

    let (status, _, body) = send(&b, Method::GET, "/api/aliveness-test/%2F", guest, None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, ..) = send(&b, Method::GET, "/api/aliveness-test/nope", guest, None).await;
    assert_eq!(status, 404);

    let (status, _, body) = send(&b, Method::GET, "/api/overview", guest, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["product_name"], "Junction");
    let listeners = body["listeners"].as_array().expect("listeners");
    assert!(
        listeners
            .iter()
            .any(|l| l["protocol"] == "amqp" && l["port"].as_u64() == Some(u64::from(amqp))),
        "{listeners:?}"
    );
    // The aliveness test's queue is counted.
    assert!(body["object_totals"]["queues"].as_u64() >= Some(1));
    b.stop().await;
}

#[tokio::test]
async fn queues_are_declared_listed_read_purged_and_deleted_through_the_api() {
    use rabbitmq_http_client::requests::QueueParams;
    use reqwest::Method;
    let b = TestBroker::start().await;
    let admin = client(&b, "guest", "guest");
    let mut args = serde_json::Map::new();
    args.insert("x-max-length".into(), serde_json::json!(100));
    within(admin.declare_queue(
        "/",
        &QueueParams::new_durable_classic_queue("work", Some(args)),
    ))
    .await
    .expect("declare");
    // The queue is the broker's own: AMQP publishes into it.
    let (_conn, ch) = junction_tests::amqp_channel(&b.amqp_uri()).await;
    for body in ["one", "two", "three"] {
        publish(&ch, "", "work", body.as_bytes()).await;
    }
    let q = queue_of(&b, "/", "work");
    junction_tests::eventually(|| q.message_count() == 3).await;
    let info = within(admin.get_queue_info("/", "work"))
        .await
        .expect("info");
    assert_eq!((info.durable, info.message_count), (true, 3));
    assert_eq!(
        info.arguments.0.get("x-max-length"),
        Some(&serde_json::json!(100))
    );
    let listed = within(admin.list_queues_in("/")).await.expect("list");
    assert!(listed.iter().any(|q| q.name == "work"), "{listed:?}");

    // Peek: taken and given back, in order, marked redelivered next time.
    let peeked = within(admin.get_messages("/", "work", 2, "ack_requeue_true"))
        .await
        .expect("get");
    let bodies: Vec<&str> = peeked.iter().map(|m| m.payload.as_str()).collect();
    assert_eq!(bodies, ["one", "two"]);
    assert_eq!(q.message_count(), 3);
    let again = within(admin.get_messages("/", "work", 1, "ack_requeue_false"))
        .await
        .expect("get");
    assert_eq!(
        (again[0].payload.as_str(), again[0].redelivered),
        ("one", true)
    );
    assert_eq!(q.message_count(), 2);

    // if-empty refuses a queue with messages; purge empties it.
    let (status, _, body) = send(
        &b,
        Method::DELETE,
        "/api/queues/%2F/work?if-empty=true",
        Some(("guest", "guest")),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    within(admin.purge_queue("/", "work")).await.expect("purge");
    assert_eq!(q.message_count(), 0);
    // A redeclaration with other settings is refused and changes nothing.
    let (status, ..) = send(
        &b,
        Method::PUT,
        "/api/queues/%2F/work",
        Some(("guest", "guest")),
        Some(r#"{"durable": false}"#),
    )
    .await;
    assert_eq!(status, 400);
    for (path, body) in [
        (
            "/api/queues/%2F/work/get",
            r#"{"count": 1, "ackmode": "eat_it"}"#,
        ),
        (
            "/api/queues/%2F/work/get",
            r#"{"count": "1", "ackmode": "ack_requeue_true"}"#,
        ),
        (
            "/api/queues/%2F/work/get",
            r#"{"count": 1, "ackmode": "ack_requeue_true", "encoding": "hex"}"#,
        ),
    ] {
        let (status, ..) = send(&b, Method::POST, path, Some(("guest", "guest")), Some(body)).await;
        assert_eq!(status, 400, "{body}");
    }
    within(admin.delete_queue("/", "work", false))
        .await
        .expect("delete");
    assert!(b
        .gateway()
        .broker()
        .vhost("/")
        .unwrap()
        .queue("work", None)
        .is_err());
    assert!(within(admin.delete_queue("/", "work", false))
        .await
        .is_err());
    let (status, ..) = send(
        &b,
        Method::GET,
        "/api/queues/nope",
        Some(("guest", "guest")),
        None,
    )
    .await;
    assert_eq!(status, 404);
    b.stop().await;
}

#[tokio::test]
async fn exchanges_bindings_and_publish_through_the_api() {
    use rabbitmq_http_client::commons::BindingDestinationType;
    use rabbitmq_http_client::requests::{BindingDeletionParams, ExchangeParams, QueueParams};
    use reqwest::Method;
    let b = TestBroker::start().await;
    let admin = client(&b, "guest", "guest");
    within(admin.declare_exchange("/", &ExchangeParams::fanout("events", true, false, None)))
        .await
        .expect("declare exchange");
    within(admin.declare_queue("/", &QueueParams::new_durable_classic_queue("audit", None)))
        .await
        .expect("declare queue");
    within(admin.bind_queue("/", "audit", "events", Some("ignored"), None))
        .await
        .expect("bind");
    let info = within(admin.get_exchange_info("/", "events"))
        .await
        .expect("info");
    assert_eq!(
        (info.exchange_type.as_str(), info.durable),
        ("fanout", true)
    );
    let listed = within(admin.list_exchanges_in("/")).await.expect("list");
    assert!(
        listed.iter().any(|e| e.name == "amq.topic"),
        "predeclared exchanges are listed"
    );
    let qb = within(admin.list_queue_bindings("/", "audit"))
        .await
        .expect("queue bindings");
    // The default exchange's implicit binding, then ours.
    assert_eq!(qb.len(), 2, "{qb:?}");
    assert!(qb
        .iter()
        .any(|x| x.source == "events" && x.routing_key == "ignored"));

    let routed = within(admin.publish_message("/", "events", "", "hello", Default::default()))
        .await
        .expect("publish");
    assert!(routed.routed);
    let q = queue_of(&b, "/", "audit");
    assert_eq!(q.message_count(), 1);
    let got = within(admin.get_messages("/", "audit", 1, "ack_requeue_false"))
        .await
        .expect("get");
    assert_eq!(
        (got[0].payload.as_str(), got[0].exchange.as_str()),
        ("hello", "events")
    );
    // Publishing to the default exchange by queue name, with properties.
    let (status, _, body) = send(
        &b,
        Method::POST,
        "/api/exchanges/%2F/amq.default/publish",
        Some(("guest", "guest")),
        Some(r#"{"routing_key":"audit","payload":"aGk=","payload_encoding":"base64",
                 "properties":{"delivery_mode":2,"headers":{"k":"v"},"content_type":"text/plain"}}"#),
    )
    .await;
    assert_eq!((status, body["routed"].as_bool()), (200, Some(true)));
    let m = q.get(true).expect("the message");
    assert_eq!(&m.message.body[..], b"hi");
    assert!(m.message.properties.is_persistent());
    let (status, _, body) = send(
        &b,
        Method::POST,
        "/api/exchanges/%2F/amq.direct/publish",
        Some(("guest", "guest")),
        Some(r#"{"routing_key":"nowhere","payload":"x","properties":{}}"#),
    )
    .await;
    assert_eq!((status, body["routed"].as_bool()), (200, Some(false)));

    within(admin.delete_binding(
        &BindingDeletionParams {
            virtual_host: "/",
            source: "events",
            destination: "audit",
            destination_type: BindingDestinationType::Queue,
            routing_key: "ignored",
            arguments: None,
        },
        false,
    ))
    .await
    .expect("unbind");
    let qb = within(admin.list_queue_bindings("/", "audit"))
        .await
        .expect("queue bindings");
    assert_eq!(qb.len(), 1, "{qb:?}");

    // Refusals: the broker's own exchanges, unknown types, bad bodies.
    for (method, path, body, want) in [
        (
            Method::PUT,
            "/api/exchanges/%2F/amq.mine",
            Some(r#"{"type":"direct"}"#),
            403,
        ),
        (Method::DELETE, "/api/exchanges/%2F/amq.topic", None, 403),
        (
            Method::PUT,
            "/api/exchanges/%2F/x",
            Some(r#"{"type":"sideways"}"#),
            400,
        ),
        (
            Method::PUT,
            "/api/exchanges/%2F/x",
            Some(r#"{"durable":true}"#),
            400,
        ),
        (
            Method::POST,
            "/api/exchanges/%2F/events/publish",
            Some(r#"{"payload":"x"}"#),
            400,
        ),
        (
            Method::POST,
            "/api/exchanges/%2F/nope/publish",
            Some(r#"{"routing_key":"","payload":"x"}"#),
            404,
        ),
        (
            Method::POST,
            "/api/bindings/%2F/e/events/q/nope",
            Some("{}"),
            404,
        ),
        (
            Method::DELETE,
            "/api/bindings/%2F/e/events/q/audit/~",
            None,
            404,
        ),
    ] {
        let (status, _, reply) =
            send(&b, method.clone(), path, Some(("guest", "guest")), body).await;
        assert_eq!(status, want, "{method} {path} -> {reply}");
    }
    within(admin.delete_exchange("/", "events", false))
        .await
        .expect("delete exchange");
    assert!(within(admin.get_exchange_info("/", "events"))
        .await
        .is_err());
    b.stop().await;
}

/// Whether `user` can open an AMQP connection to `/`.
async fn amqp_opens(b: &TestBroker, user: &str, pass: &str) -> bool {
    within(lapin::Connection::connect(
        &b.amqp_uri_for(user, pass, "%2f"),
        lapin::ConnectionProperties::default(),
    ))
    .await
    .is_ok()
}

#[tokio::test]
async fn permissions_set_through_the_api_open_a_vhost_to_amqp_and_survive_a_restart() {
    use reqwest::Method;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let start = || TestBroker::start_in(&data);
    let guest = Some(("guest", "guest"));
    let b = start().await;
    let admin = client(&b, "guest", "guest");
    within(admin.create_user(&UserParams::without_tags("eve", &hash("pw"))))
        .await
        .expect("user");
    assert!(
        !amqp_opens(&b, "eve", "pw").await,
        "no permissions, no vhost"
    );

    let all = r#"{"configure": ".*", "write": ".*", "read": ".*"}"#;
    let (status, ..) = send(
        &b,
        Method::PUT,
        "/api/permissions/%2F/eve",
        guest,
        Some(all),
    )
    .await;
    assert_eq!(status, 201);
    let (status, ..) = send(
        &b,
        Method::PUT,
        "/api/permissions/%2F/eve",
        guest,
        Some(all),
    )
    .await;
    assert_eq!(status, 204, "setting them again changes them");
    assert!(amqp_opens(&b, "eve", "pw").await);
    let (status, _, body) = send(&b, Method::GET, "/api/permissions/%2F/eve", guest, None).await;
    assert_eq!((status, body["configure"].as_str()), (200, Some(".*")));
    let (_, _, body) = send(&b, Method::GET, "/api/users/eve/permissions", guest, None).await;
    assert_eq!(body.as_array().map(Vec::len), Some(1));

    for (path, body, want) in [
        (
            "/api/permissions/%2F/eve",
            r#"{"configure": "(", "write": "", "read": ""}"#,
            400,
        ),
        (
            "/api/permissions/%2F/eve",
            r#"{"configure": ".*", "write": ".*"}"#,
            400,
        ),
        (
            "/api/permissions/%2F/eve",
            r#"{"configure": 1, "write": "", "read": ""}"#,
            400,
        ),
        ("/api/permissions/%2F/nobody", all, 404),
        ("/api/permissions/nowhere/eve", all, 404),
    ] {
        let (status, _, reply) = send(&b, Method::PUT, path, guest, Some(body)).await;
        assert_eq!(status, want, "{path} {body} -> {reply}");
    }
    let (_, _, body) = send(&b, Method::GET, "/api/permissions/%2F/eve", guest, None).await;
    assert_eq!(body["configure"], ".*", "a refused change changed nothing");
    b.stop().await;

    // Kept across a restart.
    let b = start().await;
    assert!(amqp_opens(&b, "eve", "pw").await, "permissions recovered");
    let (status, ..) = send(&b, Method::DELETE, "/api/permissions/%2F/eve", guest, None).await;
    assert_eq!(status, 204);
    assert!(
        !amqp_opens(&b, "eve", "pw").await,
        "cleared permissions close the vhost"
    );
    let (status, ..) = send(&b, Method::DELETE, "/api/permissions/%2F/eve", guest, None).await;
    assert_eq!(status, 404);
    // A deleted user takes its permissions with it.
    let (status, ..) = send(
        &b,
        Method::PUT,
        "/api/permissions/%2F/eve",
        guest,
        Some(all),
    )
    .await;
    assert_eq!(status, 201);
    let (status, ..) = send(&b, Method::DELETE, "/api/users/eve", guest, None).await;
    assert_eq!(status, 204);
    let (status, ..) = send(&b, Method::GET, "/api/permissions/%2F/eve", guest, None).await;
    assert_eq!(status, 404);
    b.stop().await;
}

/// A definitions file in the shape RabbitMQ 3.12 exports (tags as a comma string, `x-queue-type`
/// among the arguments), with the hash of "s3cret" computed the way RabbitMQ computes it.
fn rabbitmq_3_definitions(hash: &str) -> String {
    serde_json::json!({
        "rabbit_version": "3.12.13",
        "rabbitmq_version": "3.12.13",
        "product_name": "RabbitMQ",
        "product_version": "3.12.13",
        "users": [{
            "name": "importer",
            "password_hash": hash,
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": "management",
            "limits": {}
        }],
        "vhosts": [{"name": "imported", "description": "", "tags": [], "metadata": {}}],
        "permissions": [{"user": "importer", "vhost": "imported",
                         "configure": ".*", "write": ".*", "read": ".*"}],
        "topic_permissions": [],
        "parameters": [],
        "global_parameters": [{"name": "cluster_name", "value": "rabbit@old"}],
        "policies": [],
        "queues": [{"name": "jobs", "vhost": "imported", "durable": true, "auto_delete": false,
                    "arguments": {"x-queue-type": "classic", "x-max-length": 5000}}],
        "exchanges": [{"name": "jobs.x", "vhost": "imported", "type": "topic", "durable": true,
                       "auto_delete": false, "internal": false, "arguments": {}}],
        "bindings": [{"source": "jobs.x", "vhost": "imported", "destination": "jobs",
                      "destination_type": "queue", "routing_key": "job.#", "arguments": {}}]
    })
    .to_string()
}

#[tokio::test]
async fn a_rabbitmq_definitions_file_imports_and_its_user_logs_in_on_every_protocol() {
    use junction_stomp::codec::Command;
    use junction_tests::raw_mqtt::RawMqtt;
    use junction_tests::raw_stomp::StompClient;
    use reqwest::Method;
    let b = TestBroker::start().await;
    let guest = Some(("guest", "guest"));
    // A malformed file changes nothing.
    let broken = rabbitmq_3_definitions(&hash("s3cret")).replace(
        "\"destination_type\":\"queue\"",
        "\"destination_type\":\"pipe\"",
    );
    let (status, ..) = send(&b, Method::POST, "/api/definitions", guest, Some(&broken)).await;
    assert_eq!(status, 400);
    assert!(
        b.gateway().broker().vhost("imported").is_err(),
        "nothing applied"
    );

    let file = rabbitmq_3_definitions(&hash("s3cret"));
    let (status, _, body) = send(&b, Method::POST, "/api/definitions", guest, Some(&file)).await;
    assert_eq!(status, 204, "{body}");

    // AMQP, on the imported vhost, through the imported exchange and binding.
    let (_conn, ch) =
        junction_tests::amqp_channel(&b.amqp_uri_for("importer", "s3cret", "imported")).await;
    publish(&ch, "jobs.x", "job.build", b"go").await;
    let q = queue_of(&b, "imported", "jobs");
    junction_tests::eventually(|| q.message_count() == 1).await;
    // STOMP.
    let (_c, ok) = within(StompClient::connect_with(
        b.addrs.stomp.unwrap(),
        &[
            ("accept-version", "1.2"),
            ("host", "imported"),
            ("login", "importer"),
            ("passcode", "s3cret"),
        ],
    ))
    .await;
    assert_eq!(ok.command, Command::Connected, "{ok:?}");
    // MQTT, with RabbitMQ's vhost:user login.
    let mut raw = RawMqtt::open(b.addrs.mqtt.unwrap()).await;
    let mut c = mqttbytes::v4::Connect::new("imported-client");
    c.login = Some(mqttbytes::v4::Login::new("imported:importer", "s3cret"));
    let mut out = bytes::BytesMut::new();
    c.write(&mut out).unwrap();
    raw.send(&out).await;
    match within(raw.recv_v4()).await {
        Some(mqttbytes::v4::Packet::ConnAck(ack)) => {
            assert_eq!(ack.code, mqttbytes::v4::ConnectReturnCode::Success)
        }
        other => panic!("{other:?}"),
    }

    // Junction's own export has what was imported, and imports again unchanged.
    let (status, _, exported) = send(&b, Method::GET, "/api/definitions", guest, None).await;
    assert_eq!(status, 200);
    let names = |key: &str| -> Vec<String> {
        exported[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert!(names("users").contains(&"importer".to_string()));
    assert!(names("vhosts").contains(&"imported".to_string()));
    assert_eq!(names("queues"), vec!["jobs".to_string()]);
    assert_eq!(names("exchanges"), vec!["jobs.x".to_string()]);
    assert_eq!(exported["bindings"].as_array().unwrap().len(), 1);
    let again = exported.to_string();
    let (status, ..) = send(&b, Method::POST, "/api/definitions", guest, Some(&again)).await;
    assert_eq!(status, 204);
    b.stop().await;
}

#[tokio::test]
async fn list_endpoints_page_sort_filter_and_pick_columns_as_rabbitmq() {
    use rabbitmq_http_client::commons::PaginationParams;
    use reqwest::Method;
    let b = TestBroker::start().await;
    let guest = Some(("guest", "guest"));
    for name in ["c", "a", "e", "b", "d"] {
        let path = format!("/api/queues/%2F/{name}");
        let (status, ..) = send(&b, Method::PUT, &path, guest, Some("{}")).await;
        assert_eq!(status, 201);
    }
    let (status, _, body) = send(
        &b,
        Method::GET,
        "/api/queues/%2F?page=2&page_size=2&sort=name&columns=name,messages",
        guest,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["page"].as_u64(),
            body["page_count"].as_u64(),
            body["total_count"].as_u64()
        ),
        (Some(2), Some(3), Some(5))
    );
    assert_eq!(
        body["items"],
        serde_json::json!([{"name": "c", "messages": 0}, {"name": "d", "messages": 0}])
    );
    let (_, _, body) = send(
        &b,
        Method::GET,
        "/api/queues?name=^[ab]$&use_regex=true",
        guest,
        None,
    )
    .await;
    assert_eq!(body.as_array().map(Vec::len), Some(2), "{body}");
    let (status, ..) = send(&b, Method::GET, "/api/queues?page=7", guest, None).await;
    assert_eq!(status, 400);
    // The paged listing rabbitmq_http_client asks for.
    let admin = client(&b, "guest", "guest");
    let page = within(admin.list_queues_paged(&PaginationParams {
        page: Some(1),
        page_size: Some(3),
    }))
    .await
    .expect("paged list");
    assert_eq!(page.len(), 3);
    b.stop().await;
}

#[tokio::test]
async fn connections_of_every_protocol_are_listed_and_closed_with_their_protocols_close() {
    use junction_amqp::codec::{Frame, Method};
    use junction_stomp::codec::Command;
    use junction_tests::raw_amqp::RawClient;
    use junction_tests::raw_mqtt::RawMqtt;
    use junction_tests::raw_stomp::StompClient;
    use reqwest::Method as Http;
    let b = TestBroker::start().await;
    let guest = Some(("guest", "guest"));
    let mut amqp = within(RawClient::connect(b.addrs.amqp.unwrap(), 0)).await;
    let (mut stomp, ok) = within(StompClient::connect_with(
        b.addrs.stomp.unwrap(),
        &[
            ("accept-version", "1.2"),
            ("host", "/"),
            ("login", "guest"),
            ("passcode", "guest"),
        ],
    ))
    .await;
    assert_eq!(ok.command, Command::Connected);
    let mut mqtt = RawMqtt::open(b.addrs.mqtt.unwrap()).await;
    within(mqtt.connect_v5("dash-1")).await;

    let listed = || async {
        let (status, _, body) = send(&b, Http::GET, "/api/connections", guest, None).await;
        assert_eq!(status, 200);
        body.as_array().cloned().unwrap_or_default()
    };
    let registered = || b.gateway().broker().connection_list().len();
    junction_tests::eventually(|| registered() == 3).await;
    let seen = listed().await;
    let protocols: std::collections::BTreeSet<String> = seen
        .iter()
        .map(|c| c["protocol"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        protocols.into_iter().collect::<Vec<_>>(),
        ["AMQP 0-9-1", "MQTT 5.0", "STOMP 1.2"],
        "{seen:?}"
    );
    assert!(seen
        .iter()
        .all(|c| c["user"] == "guest" && c["vhost"] == "/"));
    let name_of = |protocol: &str| -> String {
        let c = seen.iter().find(|c| c["protocol"] == protocol).unwrap();
        let name = c["name"].as_str().unwrap().to_string();
        assert!(name.contains(" -> "), "{name}");
        name.replace(' ', "%20").replace('>', "%3E")
    };
    let close = |name: String, reason: &'static str| {
        let url = format!(
            "http://{}/api/connections/{name}",
            b.addrs.management.unwrap()
        );
        async move {
            let resp = within(
                reqwest::Client::new()
                    .delete(url)
                    .basic_auth("guest", Some("guest"))
                    .header("x-reason", reason)
                    .send(),
            )
            .await
            .expect("DELETE");
            resp.status().as_u16()
        }
    };

    assert_eq!(close(name_of("AMQP 0-9-1"), "maintenance").await, 204);
    loop {
        match within(amqp.recv()).await {
            Some(Frame::Method {
                channel: 0,
                method:
                    Method::ConnectionClose {
                        reply_code,
                        reply_text,
                        ..
                    },
            }) => {
                assert_eq!(reply_code, 320);
                assert!(reply_text.contains("maintenance"), "{reply_text}");
                amqp.send_method(0, &Method::ConnectionCloseOk).await;
                break;
            }
            Some(_) => continue,
            None => panic!("closed without connection.close"),
        }
    }
    assert_eq!(close(name_of("STOMP 1.2"), "moving you").await, 204);
    let err = within(stomp.recv()).await.expect("ERROR frame");
    assert_eq!(err.command, Command::Error);
    assert!(String::from_utf8_lossy(&err.body).contains("moving you"));
    assert_eq!(close(name_of("MQTT 5.0"), "bye").await, 204);
    let rest = within(mqtt.rest()).await;
    assert_eq!(
        (rest.first(), rest.get(2)),
        (Some(&0xE0), Some(&0x98)),
        "{rest:?}"
    );

    // Gone from the list; closing again is 404.
    junction_tests::eventually(|| registered() == 0).await;
    assert!(listed().await.is_empty());
    assert_eq!(close(name_of("MQTT 5.0"), "again").await, 404);
    b.stop().await;
}

/// Reads frames until connection.close, answers it, and returns its code and text.
async fn amqp_closed(c: &mut junction_tests::raw_amqp::RawClient) -> (u16, String) {
    use junction_amqp::codec::{Frame, Method};
    loop {
        match within(c.recv()).await {
            Some(Frame::Method {
                channel: 0,
                method:
                    Method::ConnectionClose {
                        reply_code,
                        reply_text,
                        ..
                    },
            }) => {
                c.send_method(0, &Method::ConnectionCloseOk).await;
                return (reply_code, reply_text.to_string());
            }
            Some(_) => continue,
            None => panic!("closed without connection.close"),
        }
    }
}

#[tokio::test]
async fn deleting_a_user_or_a_vhost_closes_their_connections() {
    use junction_tests::raw_amqp::RawClient;
    use reqwest::Method;
    let b = TestBroker::start().await;
    let guest = Some(("guest", "guest"));
    let admin = client(&b, "guest", "guest");
    within(admin.create_vhost(&VirtualHostParams::named("dev")))
        .await
        .expect("vhost");
    within(admin.create_user(&UserParams::without_tags("temp", &hash("pw"))))
        .await
        .expect("user");
    let all = r#"{"configure": ".*", "write": ".*", "read": ".*"}"#;
    for path in ["/api/permissions/%2F/temp", "/api/permissions/dev/guest"] {
        let (status, ..) = send(&b, Method::PUT, path, guest, Some(all)).await;
        assert_eq!(status, 201);
    }
    let amqp = b.addrs.amqp.unwrap();
    let mut as_temp = within(RawClient::connect_as(amqp, "temp", "pw", "/")).await;
    let mut on_dev = within(RawClient::connect_as(amqp, "guest", "guest", "dev")).await;
    let mut bystander = within(RawClient::connect(amqp, 0)).await;
    let registered = || b.gateway().broker().connection_list().len();
    junction_tests::eventually(|| registered() == 3).await;

    within(admin.delete_user("temp", false))
        .await
        .expect("delete user");
    let (code, text) = amqp_closed(&mut as_temp).await;
    assert_eq!(code, 320);
    assert!(text.contains("user 'temp' was deleted"), "{text}");
    within(admin.delete_vhost("dev", false))
        .await
        .expect("delete vhost");
    let (code, text) = amqp_closed(&mut on_dev).await;
    assert_eq!(code, 320);
    assert!(text.contains("vhost 'dev' is deleted"), "{text}");
    drop((as_temp, on_dev));
    junction_tests::eventually(|| registered() == 1).await;
    // Others are left alone.
    bystander.open_channel(1).await;
    drop(bystander);
    b.stop().await;
}
