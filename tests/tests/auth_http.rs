//! The HTTP auth backend against a small service speaking `rabbitmq_auth_backend_http`'s
//! contract: logins, vhost access, resource and topic checks on AMQP (lapin) and MQTT
//! (rumqttc), the cache in front of it, POST, and a service that fails or is gone.

use junction_gateway::config::{AuthHttpConfig, Backend, HttpMethod};
use junction_tests::auth_service::{AuthRequest, AuthService};
use junction_tests::{within, TestBroker};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rumqttc::{MqttOptions, Packet, QoS, SubscribeReasonCode};
use std::time::Duration;

/// alice (password `secret`, tag management) may use queues called `alice-…` and publish on
/// `amq.topic` under `alice.`; device `d1` (password `pw`) may use everything in `/` and
/// publish or subscribe only under `devices/{client_id}/`; `boom` makes the service fail.
fn decide(r: &AuthRequest) -> (u16, String) {
    let user = r.param("username");
    if user == "boom" {
        return (500, "oops".into());
    }
    let answer = match r.path.as_str() {
        "/auth/user" => match (user, r.param("password")) {
            ("alice", "secret") => "allow management",
            ("d1", "pw") => "allow",
            _ => "deny",
        },
        "/auth/vhost" => {
            if r.param("vhost") == "/" && r.param("ip") == "127.0.0.1" {
                "allow"
            } else {
                "deny"
            }
        }
        "/auth/resource" => match (user, r.param("resource"), r.param("name")) {
            ("d1", _, _) => "allow",
            ("alice", "queue", n) if n.starts_with("alice-") => "allow",
            ("alice", "exchange", _) if r.param("permission") == "write" => "allow",
            _ => "deny",
        },
        "/auth/topic" => {
            let key = r.param("routing_key");
            let allowed = match user {
                "alice" => key.starts_with("alice."),
                _ => key.starts_with(&format!("devices.{}.", r.param("client_id"))),
            };
            if allowed {
                "allow"
            } else {
                "deny"
            }
        }
        _ => return (404, "no".into()),
    };
    (200, answer.into())
}

async fn next(events: &mut tokio::sync::mpsc::UnboundedReceiver<Packet>) -> Packet {
    within(events.recv()).await.expect("an MQTT packet")
}

async fn broker(service: &AuthService, method: HttpMethod, cache_ttl: u64) -> TestBroker {
    let cfg = AuthHttpConfig {
        http_method: method,
        user_path: service.url("/auth/user"),
        vhost_path: service.url("/auth/vhost"),
        resource_path: service.url("/auth/resource"),
        topic_path: Some(service.url("/auth/topic")),
        cache_ttl,
        request_timeout: 2000,
    };
    TestBroker::start_with(move |c| {
        c.auth.backends = vec![Backend::Internal, Backend::Http];
        c.auth_http = Some(cfg);
        c.limits.failed_login_delay = 0;
    })
    .await
}

async fn amqp(b: &TestBroker, user: &str, pass: &str) -> Result<Connection, lapin::Error> {
    within(Connection::connect(
        &b.amqp_uri_for(user, pass, "%2f"),
        ConnectionProperties::default(),
    ))
    .await
}

fn reply_code(e: &lapin::Error) -> Option<u16> {
    match e {
        lapin::Error::ProtocolError(p) => Some(p.get_id()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_logins_and_rights_come_from_the_service() {
    let service = AuthService::start(decide);
    let b = broker(&service, HttpMethod::Get, 60_000).await;
    // The internal database is tried first: guest still works, and is not asked about.
    amqp(&b, "guest", "guest").await.expect("internal guest");
    assert!(service.requests_to("/auth/user").is_empty());
    assert!(amqp(&b, "alice", "wrong").await.is_err(), "denied");
    let conn = amqp(&b, "alice", "secret").await.expect("alice logs in");
    let logins = service.requests_to("/auth/user");
    assert_eq!(logins.len(), 2);
    assert_eq!(logins[1].method, "GET");
    let vhost = service.requests_to("/auth/vhost");
    assert_eq!(vhost[0].param("ip"), "127.0.0.1");

    let ch = within(conn.create_channel()).await.unwrap();
    within(ch.queue_declare(
        "alice-q",
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("configure on alice-q allowed");
    let refused = within(ch.queue_declare(
        "bob-q",
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap_err();
    assert_eq!(reply_code(&refused), Some(403), "{refused:?}");
    let asked: Vec<_> = service
        .requests_to("/auth/resource")
        .into_iter()
        .map(|r| (r.param("resource").to_string(), r.param("name").to_string()))
        .collect();
    assert!(
        asked.contains(&("queue".into(), "bob-q".into())),
        "{asked:?}"
    );

    // Topic checks on amq.topic: alice.* allowed (confirmed), another key refused with 403.
    let ch = within(conn.create_channel()).await.unwrap();
    within(ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .unwrap();
    let confirm = within(ch.basic_publish(
        "amq.topic",
        "alice.t",
        BasicPublishOptions::default(),
        b"x",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    assert!(within(confirm).await.unwrap().is_ack());
    let _ = within(ch.basic_publish(
        "amq.topic",
        "bob.t",
        BasicPublishOptions::default(),
        b"x",
        BasicProperties::default(),
    ))
    .await;
    let closed = within(async {
        loop {
            if !ch.status().connected() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    closed.await;
    let topics = service.requests_to("/auth/topic");
    assert!(topics
        .iter()
        .any(|r| r.param("routing_key") == "bob.t" && r.param("name") == "amq.topic"));

    // The cache: a second login with the same credentials asks nothing more.
    let before = service.requests_to("/auth/user").len();
    amqp(&b, "alice", "secret").await.expect("again");
    assert_eq!(service.requests_to("/auth/user").len(), before);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_devices_are_confined_to_their_client_id_and_post_works() {
    let service = AuthService::start(decide);
    let b = broker(&service, HttpMethod::Post, 0).await;
    let a = b.addrs.mqtt.unwrap();
    let mut o = MqttOptions::new("c1", a.ip().to_string(), a.port());
    o.set_credentials("d1", "pw");
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = junction_tests::mqtt_v4::spawn(o);
    assert!(matches!(next(&mut events).await, Packet::ConnAck(_)));
    client
        .subscribe("devices/c1/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    client
        .subscribe("devices/c2/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut codes = Vec::new();
    while codes.len() < 2 {
        if let Packet::SubAck(s) = next(&mut events).await {
            codes.push(s.return_codes[0]);
        }
    }
    assert_eq!(codes[0], SubscribeReasonCode::Success(QoS::AtLeastOnce));
    assert_eq!(
        codes[1],
        SubscribeReasonCode::Failure,
        "another device's topics"
    );
    client
        .publish("devices/c1/temp", QoS::AtLeastOnce, false, "21")
        .await
        .unwrap();
    loop {
        match next(&mut events).await {
            Packet::PubAck(_) => break,
            Packet::Publish(p) => assert_eq!(p.topic, "devices/c1/temp"),
            _ => {}
        }
    }
    // A publish outside its topics closes the connection (MQTT 3.1.1, as RabbitMQ).
    client
        .publish("devices/c2/temp", QoS::AtLeastOnce, false, "21")
        .await
        .unwrap();
    loop {
        match next(&mut events).await {
            Packet::Disconnect => break,
            Packet::PubAck(_) => panic!("a refused publish is not acknowledged"),
            _ => {}
        }
    }
    let logins = service.requests_to("/auth/user");
    assert_eq!(logins[0].method, "POST");
    assert_eq!(logins[0].param("password"), "pw");
    let topic = service.requests_to("/auth/topic");
    assert!(topic
        .iter()
        .all(|r| r.param("client_id") == "c1" && r.param("vhost") == "/"));
    assert!(topic.iter().any(|r| r.param("permission") == "read"));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_absent_service_refuses_cleanly() {
    let service = AuthService::start(decide);
    let b = broker(&service, HttpMethod::Get, 60_000).await;
    let before = b.gateway().broker().auth().failures();
    assert!(amqp(&b, "boom", "x").await.is_err(), "a 500 is a refusal");
    assert!(
        amqp(&b, "boom", "x").await.is_err(),
        "errors are not cached as answers"
    );
    assert_eq!(service.requests_to("/auth/user").len(), 2);
    assert_eq!(b.gateway().broker().auth().failures(), before + 2);
    b.stop().await;

    // Nothing listens at the configured address: refused within the request timeout, and
    // internal users are served meanwhile.
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cfg = AuthHttpConfig {
        http_method: HttpMethod::Get,
        user_path: format!("http://{gone}/auth/user"),
        vhost_path: format!("http://{gone}/auth/vhost"),
        resource_path: format!("http://{gone}/auth/resource"),
        topic_path: None,
        cache_ttl: 0,
        request_timeout: 500,
    };
    let b = TestBroker::start_with(move |c| {
        c.auth.backends = vec![Backend::Internal, Backend::Http];
        c.auth_http = Some(cfg);
        c.limits.failed_login_delay = 0;
    })
    .await;
    assert!(amqp(&b, "alice", "secret").await.is_err());
    amqp(&b, "guest", "guest").await.expect("internal users");
    b.stop().await;
}
