//! `junction ctl` end to end: the built binary against a running `junction` process, for every
//! verb group: what it prints, its exit code, and that the change took effect on the wire.

use bytes::BytesMut;
use junction_tests::process::{run_binary, CtlRun, JunctionProcess, Ports};
use junction_tests::raw_stomp::StompClient;
use junction_tests::{amqp_channel, eventually, settle, within};
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::net::SocketAddr;
use std::path::Path;

async fn broker(dir: &Path) -> JunctionProcess {
    JunctionProcess::start(dir, Ports::free(), "").await
}

/// Asserts that `run` succeeded and returns its stdout.
fn ok(run: CtlRun) -> String {
    assert_eq!(run.code, 0, "junction ctl failed: {run:?}");
    run.stdout
}

/// The rows of a tab-separated listing (without informational lines: run it with -q).
fn rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|l| l.split('\t').map(String::from).collect())
        .collect()
}

async fn amqp_login(j: &JunctionProcess, user: &str, pass: &str, vhost: &str) -> bool {
    let vhost = vhost.replace('/', "%2f");
    let uri = format!("amqp://{user}:{pass}@127.0.0.1:{}/{vhost}", j.ports.amqp);
    match within(Connection::connect(&uri, ConnectionProperties::default())).await {
        Ok(c) => {
            let _ = within(c.close(200, "bye")).await;
            true
        }
        Err(_) => false,
    }
}

async fn stomp_login(j: &JunctionProcess, user: &str, pass: &str, vhost: &str) -> bool {
    let (_c, reply) = within(StompClient::connect_with(
        j.stomp_addr(),
        &[
            ("accept-version", "1.2"),
            ("host", vhost),
            ("login", user),
            ("passcode", pass),
        ],
    ))
    .await;
    reply.command == junction_stomp::codec::Command::Connected
}

/// An MQTT 3.1.1 CONNECT with credentials; the CONNACK's return code.
async fn mqtt_login(addr: SocketAddr, user: &str, pass: &str) -> u8 {
    let mut c = within(junction_tests::raw_mqtt::RawMqtt::open(addr)).await;
    let mut connect = mqttbytes::v4::Connect::new("ctl-test");
    connect.set_login(user, pass);
    let mut out = BytesMut::new();
    connect.write(&mut out).unwrap();
    within(c.send(&out)).await;
    match within(c.recv_v4()).await {
        Some(mqttbytes::v4::Packet::ConnAck(a)) => a.code as u8,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[tokio::test]
async fn a_user_added_by_ctl_logs_in_over_amqp_stomp_and_mqtt() {
    let dir = tempfile::tempdir().unwrap();
    let j = broker(dir.path()).await;
    let out = ok(j.ctl(&["add_user", "dev", "s3cret"]).await);
    assert!(out.starts_with("Adding user \"dev\" ..."), "{out}");
    let again = j.ctl(&["add_user", "dev", "s3cret"]).await;
    assert_eq!(again.code, 70);
    assert!(
        again.stderr.contains("User \"dev\" already exists"),
        "{again:?}"
    );
    ok(j.ctl(&["add_vhost", "devices"]).await);
    ok(
        j.ctl(&["set_permissions", "-p", "devices", "dev", ".*", ".*", ".*"])
            .await,
    );
    // MQTT's `vhost:user` login names the vhost.
    assert!(amqp_login(&j, "dev", "s3cret", "devices").await);
    assert!(stomp_login(&j, "dev", "s3cret", "devices").await);
    assert_eq!(mqtt_login(j.mqtt_addr(), "devices:dev", "s3cret").await, 0);
    assert!(!amqp_login(&j, "dev", "wrong", "devices").await);

    ok(j.ctl(&["change_password", "dev", "n3w"]).await);
    assert!(!amqp_login(&j, "dev", "s3cret", "devices").await);
    assert!(amqp_login(&j, "dev", "n3w", "devices").await);
    let auth = j.ctl(&["authenticate_user", "dev", "n3w"]).await;
    assert!(ok(auth).contains("Success"));
    let refused = j.ctl(&["authenticate_user", "dev", "s3cret"]).await;
    assert_eq!(refused.code, 70, "{refused:?}");

    ok(
        j.ctl(&["set_user_tags", "dev", "monitoring", "policymaker"])
            .await,
    );
    let users = rows(&ok(j.ctl(&["-q", "list_users"]).await));
    assert_eq!(users[0], ["user", "tags"]);
    assert!(users.contains(&vec!["dev".into(), "[monitoring, policymaker]".into()]));
    let perms = rows(&ok(j.ctl(&["-s", "list_user_permissions", "dev"]).await));
    assert_eq!(perms, [["devices", ".*", ".*", ".*"]]);

    ok(j.ctl(&["clear_permissions", "-p", "devices", "dev"]).await);
    assert!(!amqp_login(&j, "dev", "n3w", "devices").await);
    ok(j.ctl(&["delete_user", "dev"]).await);
    let gone = j.ctl(&["delete_user", "dev"]).await;
    assert_eq!(gone.code, 70);
    assert!(gone.stderr.contains("does not exist"), "{gone:?}");
    ok(j.ctl(&["delete_vhost", "devices"]).await);
    let vhosts = rows(&ok(j.ctl(&["-s", "list_vhosts"]).await));
    assert_eq!(vhosts, [["/"]]);
}

#[tokio::test]
async fn topic_permissions_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let j = broker(dir.path()).await;
    ok(j.ctl(&["add_user", "t", "pw"]).await);
    ok(j.ctl(&[
        "set_topic_permissions",
        "t",
        "amq.topic",
        "^dev\\.",
        "^dev\\.",
    ])
    .await);
    let listed = rows(&ok(j.ctl(&["-s", "list_topic_permissions"]).await));
    assert_eq!(listed, [["t", "amq.topic", "^dev\\.", "^dev\\."]]);
    ok(j.ctl(&["clear_topic_permissions", "t", "amq.topic"]).await);
    assert!(ok(j.ctl(&["-s", "list_topic_permissions"]).await).is_empty());

    ok(j.ctl(&["set_vhost_limits", "{\"max-connections\": 1}"])
        .await);
    let limits = ok(j.ctl(&["-q", "list_vhost_limits"]).await);
    assert_eq!(limits.trim(), "{\"max-connections\":1}");
    let (_c1, _ch) = amqp_channel(&j.amqp_uri()).await;
    assert!(
        !amqp_login(&j, "guest", "guest", "/").await,
        "max-connections 1 refuses a second connection"
    );
    ok(j.ctl(&["clear_vhost_limits"]).await);
    assert!(amqp_login(&j, "guest", "guest", "/").await);

    ok(j.ctl(&["set_user_limits", "t", "{\"max-channels\": 3}"])
        .await);
    let user_limits = ok(j.ctl(&["-q", "list_user_limits", "--user", "t"]).await);
    assert_eq!(user_limits.trim(), "{\"max-channels\":3}");
    ok(j.ctl(&["clear_user_limits", "t", "all"]).await);
    let cleared = ok(j.ctl(&["-q", "list_user_limits", "--user", "t"]).await);
    assert_eq!(cleared.trim(), "{}");
    let bad = j.ctl(&["set_vhost_limits", "not json"]).await;
    assert_eq!(bad.code, 64, "{bad:?}");
}

/// Queues with their counts and flags, as `list_queues` prints them.
async fn listed(j: &JunctionProcess) -> Vec<Vec<String>> {
    let run = j.ctl(&[
        "-s",
        "list_queues",
        "name",
        "messages",
        "messages_ready",
        "messages_unacknowledged",
        "consumers",
        "durable",
        "auto_delete",
    ]);
    rows(&ok(run.await))
}

#[tokio::test]
async fn purge_delete_and_a_max_length_policy_act_on_queues() {
    let dir = tempfile::tempdir().unwrap();
    let j = broker(dir.path()).await;
    let (_c, ch) = amqp_channel(&j.amqp_uri()).await;
    let publish = |queue: &'static str, n: usize| {
        let ch = ch.clone();
        async move {
            for i in 0..n {
                within(ch.basic_publish(
                    "",
                    queue,
                    BasicPublishOptions::default(),
                    format!("m{i}").as_bytes(),
                    BasicProperties::default(),
                ))
                .await
                .unwrap()
                .await
                .unwrap();
            }
        }
    };
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    within(ch.queue_declare("work", durable, Default::default()))
        .await
        .unwrap();
    publish("work", 7).await;
    // The confirm-less publishes are in once a listing shows them; poll for that.
    let seen = settle(
        || listed(&j),
        |rows| rows.iter().any(|r| r[0] == "work" && r[1] == "7"),
    )
    .await;
    assert!(
        seen.contains(
            &["work", "7", "7", "0", "0", "true", "false"]
                .map(String::from)
                .to_vec()
        ),
        "{seen:?}"
    );
    let purged = ok(j.ctl(&["purge_queue", "work"]).await);
    assert!(
        purged.contains("Purging queue 'work' in vhost '/' ..."),
        "{purged}"
    );
    let after = within(ch.queue_declare(
        "work",
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        Default::default(),
    ))
    .await
    .unwrap();
    assert_eq!(after.message_count(), 0, "the purge emptied the queue");

    ok(j.ctl(&[
        "set_policy",
        "cap",
        "^capped",
        "{\"max-length\": 2}",
        "--apply-to",
        "queues",
    ])
    .await);
    let policies = rows(&ok(j.ctl(&["-s", "list_policies"]).await));
    assert_eq!(
        policies,
        [["/", "cap", "^capped", "queues", "{\"max-length\":2}", "0"]]
    );
    within(ch.queue_declare("capped-1", durable, Default::default()))
        .await
        .unwrap();
    publish("capped-1", 5).await;
    let capped = settle(
        || listed(&j),
        |rows| rows.iter().any(|r| r[0] == "capped-1" && r[1] == "2"),
    )
    .await;
    assert!(
        capped.iter().any(|r| r[0] == "capped-1" && r[1] == "2"),
        "{capped:?}"
    );
    ok(j.ctl(&["clear_policy", "cap"]).await);
    assert!(ok(j.ctl(&["-s", "list_policies"]).await).is_empty());

    let deleted = ok(j.ctl(&["delete_queue", "capped-1"]).await);
    assert!(
        deleted.contains("Queue was successfully deleted with 2 ready messages"),
        "{deleted}"
    );
    let missing = j.ctl(&["delete_queue", "capped-1"]).await;
    assert_eq!(missing.code, 70);
    assert!(missing.stderr.contains("not found"), "{missing:?}");
    let bad_column = j.ctl(&["list_queues", "name", "bogus"]).await;
    assert_eq!(bad_column.code, 64);
    assert!(
        bad_column.stderr.contains("Invalid column: bogus"),
        "{bad_column:?}"
    );
}

#[tokio::test]
async fn listings_cover_every_protocol_and_the_formats() {
    let dir = tempfile::tempdir().unwrap();
    let j = broker(dir.path()).await;
    let (amqp, ch) = amqp_channel(&j.amqp_uri()).await;
    within(ch.queue_declare("listed", QueueDeclareOptions::default(), Default::default()))
        .await
        .unwrap();
    let (mut stomp, _) = within(StompClient::connect(j.stomp_addr())).await;
    within(stomp.subscribe("s1", "/queue/listed", &[])).await;
    let mut mqtt = within(junction_tests::raw_mqtt::RawMqtt::open(j.mqtt_addr())).await;
    within(mqtt.connect_v4("lister", 60)).await;
    let protocols = settle(
        || async {
            let out = ok(j.ctl(&["-s", "list_connections", "protocol"]).await);
            let mut p: Vec<String> = rows(&out).into_iter().map(|r| r[0].clone()).collect();
            p.sort();
            p
        },
        |p| p.len() == 3,
    )
    .await;
    assert_eq!(protocols, ["AMQP 0-9-1", "MQTT 3.1.1", "STOMP 1.2"]);

    let json = ok(j
        .ctl(&["list_queues", "--formatter", "json", "name", "consumers"])
        .await);
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("json output");
    assert!(parsed
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({"name": "listed", "consumers": 1})));
    let full = ok(j.ctl(&["list_exchanges"]).await);
    assert!(
        full.starts_with("Listing exchanges for vhost / ...\nname\ttype\n"),
        "{full}"
    );
    assert!(full.contains("amq.topic\ttopic"));
    let bindings = rows(&ok(j.ctl(&["-s", "list_bindings"]).await));
    assert!(bindings.contains(
        &["", "exchange", "listed", "queue", "listed", "[]"]
            .map(String::from)
            .to_vec()
    ));
    let consumers = rows(&ok(j
        .ctl(&["-s", "list_consumers", "queue_name", "consumer_tag"])
        .await));
    assert_eq!(consumers, [["listed", "s1"]]);
    let channels = rows(&ok(j.ctl(&["-s", "list_channels", "user", "number"]).await));
    assert!(
        channels.contains(&vec!["guest".into(), "1".into()]),
        "{channels:?}"
    );

    // close_connection takes the name list_connections shows.
    let names = ok(j.ctl(&["-s", "list_connections", "name", "protocol"]).await);
    let amqp_name = rows(&names)
        .into_iter()
        .find(|r| r[1] == "AMQP 0-9-1")
        .map(|r| r[0].clone())
        .expect("the AMQP connection is listed");
    ok(j.ctl(&["close_connection", &amqp_name, "go away"]).await);
    eventually(|| !amqp.status().connected()).await;
    assert!(!amqp.status().connected(), "the connection was closed");
    let unknown = j.ctl(&["close_connection", "nobody", "x"]).await;
    assert_eq!(unknown.code, 70);
    // close_all_connections: the STOMP and MQTT clients left in vhost /.
    let all = ok(j.ctl(&["close_all_connections", "maintenance"]).await);
    assert!(all.contains("Closed 2 connections"), "{all}");
    assert!(within(stomp.recv())
        .await
        .is_none_or(|f| f.command == junction_stomp::codec::Command::Error));
    assert!(ok(j.ctl(&["-s", "list_queues", "--offline"]).await).is_empty());
}

async fn refused(addr: SocketAddr) -> bool {
    matches!(
        within(tokio::net::TcpStream::connect(addr)).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

#[tokio::test]
async fn stop_app_refuses_every_listener_and_start_app_opens_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let j = broker(dir.path()).await;
    let (client, _ch) = amqp_channel(&j.amqp_uri()).await;
    let out = ok(j.ctl(&["stop_app"]).await);
    assert!(out.contains("Stopping junction application"), "{out}");
    for addr in [
        j.stomp_addr(),
        j.mqtt_addr(),
        SocketAddr::from(([127, 0, 0, 1], j.ports.amqp)),
    ] {
        assert!(refused(addr).await, "{addr} still accepts after stop_app");
    }
    eventually(|| !client.status().connected()).await;
    assert!(
        !client.status().connected(),
        "stop_app closed the client connection"
    );
    // The API stays up: the node says it does not accept clients.
    let waited = j.ctl(&["await_startup", "--timeout", "0.3"]).await;
    assert_eq!(waited.code, 69, "{waited:?}");
    let status = ok(j.ctl(&["status"]).await);
    assert!(
        status.contains("Accepting client connections: false"),
        "{status}"
    );

    ok(j.ctl(&["start_app"]).await);
    ok(j.ctl(&["await_startup"]).await);
    assert!(amqp_login(&j, "guest", "guest", "/").await);
    assert!(stomp_login(&j, "guest", "guest", "/").await);
    assert_eq!(mqtt_login(j.mqtt_addr(), "guest", "guest").await, 0);
    assert!(ok(j.ctl(&["stop_app"]).await).contains("Stopping"));
    assert!(ok(j.ctl(&["start_app"]).await).contains("Starting node"));
}

#[tokio::test]
async fn the_local_credential_must_be_private_and_other_refusals_have_their_codes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let j = broker(dir.path()).await;
    let credential = dir.path().join("data").join("ctl.credential");
    let mode = std::fs::metadata(&credential).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::set_permissions(&credential, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = j.ctl(&["list_users"]).await;
    assert_eq!(open.code, 70, "{open:?}");
    assert!(open.stderr.contains("chmod 600"), "{open:?}");
    std::fs::set_permissions(&credential, std::fs::Permissions::from_mode(0o600)).unwrap();
    ok(j.ctl(&["list_users"]).await);

    // --node with credentials: the same verbs, as a remote administrator would run them.
    let node = format!("http://127.0.0.1:{}", j.ports.management);
    let as_guest = |pass: &str| {
        [
            "ctl",
            "--node",
            &node,
            "--username",
            "guest",
            "--password",
            pass,
            "-s",
            "list_vhosts",
        ]
        .map(String::from)
    };
    assert_eq!(ok(run_binary(&as_guest("guest")).await).trim(), "/");
    let wrong = run_binary(&as_guest("nope")).await;
    assert_eq!(wrong.code, 70, "{wrong:?}");
    assert!(
        wrong.stderr.contains("refused the credentials"),
        "{wrong:?}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = format!("http://127.0.0.1:{port}");
    let args = ["ctl", "--node", &nowhere, "--username", "guest", "ping"].map(String::from);
    assert_eq!(run_binary(&args).await.code, 69);

    let usage = j.ctl(&["no_such_verb"]).await;
    assert_eq!(usage.code, 64);
    assert_eq!(j.ctl(&["add_user", "only-a-name"]).await.code, 64);
    assert_eq!(j.ctl(&["list_users", "--bogus"]).await.code, 64);
    let help = ok(j.ctl(&["help"]).await);
    for verb in [
        "list_queues",
        "set_permissions",
        "stop_app",
        "export_definitions",
        "status",
    ] {
        assert!(help.contains(verb), "help lists {verb}");
    }
    let one = ok(j.ctl(&["help", "set_policy"]).await);
    assert!(one.contains("Usage: junction ctl set_policy"), "{one}");
}

#[tokio::test]
async fn status_environment_ping_and_the_log_level() {
    let dir = tempfile::tempdir().unwrap();
    let j = broker(dir.path()).await;
    let status = ok(j.ctl(&["status"]).await);
    for wanted in [
        "Status of node junction@localhost",
        "Uptime (seconds):",
        &format!("port: {}, protocol: amqp", j.ports.amqp),
        &format!("port: {}, protocol: mqtt", j.ports.mqtt),
        &format!("port: {}, protocol: stomp", j.ports.stomp),
        "Free disk space:",
        "Total memory used:",
        "Alarms\n\n(none)",
        "Queue count: 0",
        "Message log segments:",
    ] {
        assert!(
            status.contains(wanted),
            "status lacks {wanted:?}:\n{status}"
        );
    }
    let json = ok(j.ctl(&["status", "--formatter", "json"]).await);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["mem_alarm"], false);
    assert!(v["mem_limit"].as_u64().unwrap() > 0);
    assert!(ok(j.ctl(&["ping"]).await).contains("Ping succeeded"));
    let env = ok(j.ctl(&["environment"]).await);
    assert!(env.contains("default_pass = \"********\""), "{env}");
    assert!(!env.contains("\"guest\"\ndefault_user") && !env.contains("pass = \"guest\""));
    let report = ok(j.ctl(&["report"]).await);
    assert!(report.contains("Virtual host /") && report.contains("Listing exchanges"));

    assert!(!j.log().contains("DEBUG"), "started at info");
    ok(j.ctl(&["set_log_level", "debug"]).await);
    let (_c, _ch) = amqp_channel(&j.amqp_uri()).await;
    eventually(|| j.log().contains("DEBUG")).await;
    assert_eq!(j.ctl(&["set_log_level", "not a level!"]).await.code, 70);

    // A free-disk limit above what the disk has raises the disk alarm; status shows it, and
    // a sane limit clears it.
    let status = || async { ok(j.ctl(&["status"]).await) };
    ok(j.ctl(&["set_disk_free_limit", "1000000GB"]).await);
    let alarmed = settle(status, |s| s.contains("Free disk space alarm")).await;
    assert!(
        alarmed.contains("Free disk space alarm on node junction@localhost"),
        "{alarmed}"
    );
    ok(j.ctl(&["set_disk_free_limit", "50MB"]).await);
    let cleared = settle(status, |s| s.contains("Alarms\n\n(none)")).await;
    assert!(cleared.contains("Alarms\n\n(none)"), "{cleared}");
    assert_eq!(j.ctl(&["set_disk_free_limit", "lots"]).await.code, 64);
}

#[tokio::test]
async fn definitions_export_and_import_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let j = broker(dir.path()).await;
    ok(j.ctl(&["add_vhost", "shop"]).await);
    ok(j.ctl(&["add_user", "clerk", "pw"]).await);
    ok(j.ctl(&[
        "set_permissions",
        "-p",
        "shop",
        "clerk",
        "^orders",
        ".*",
        ".*",
    ])
    .await);
    let (_c, ch) = amqp_channel(&j.amqp_uri()).await;
    within(ch.queue_declare(
        "kept",
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        Default::default(),
    ))
    .await
    .unwrap();
    let file = dir.path().join("defs.json");
    let file = file.to_str().unwrap();
    ok(j.ctl(&["export_definitions", file]).await);
    let defs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert!(defs["vhosts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["name"] == "shop"));
    ok(j.ctl(&["delete_vhost", "shop"]).await);
    ok(j.ctl(&["delete_user", "clerk"]).await);
    ok(j.ctl(&["delete_queue", "kept"]).await);
    ok(j.ctl(&["import_definitions", file]).await);
    let perms = rows(&ok(j.ctl(&["-s", "list_permissions", "-p", "shop"]).await));
    assert_eq!(perms, [["clerk", "^orders", ".*", ".*"]]);
    let queues = rows(&ok(j.ctl(&["-s", "list_queues", "name", "durable"]).await));
    assert_eq!(queues, [["kept", "true"]]);
    assert!(amqp_login(&j, "clerk", "pw", "shop").await);
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{ not json").unwrap();
    assert_eq!(
        j.ctl(&["import_definitions", broken.to_str().unwrap()])
            .await
            .code,
        70
    );
}

#[tokio::test]
async fn json_logs_name_every_listener_and_every_refused_login() {
    let dir = tempfile::tempdir().unwrap();
    let j =
        JunctionProcess::start_with_args(dir.path(), Ports::free(), "", &["--log-format", "json"])
            .await;
    assert!(!amqp_login(&j, "guest", "wrong", "/").await);
    let refused_line = || {
        j.log()
            .lines()
            .find(|l| l.contains("login refused"))
            .map(String::from)
    };
    eventually(|| refused_line().is_some()).await;
    let line = refused_line();
    let line = line.expect("a refused-login line");
    let refusal: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(refusal["fields"]["user"], "guest");
    assert_eq!(refusal["fields"]["protocol"], "AMQP 0-9-1");
    assert_eq!(refusal["fields"]["reason"], "wrong password");
    assert!(refusal["fields"]["peer"]
        .as_str()
        .unwrap()
        .contains("127.0.0.1"));
    let log = j.log();
    for l in log.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    let started = log
        .lines()
        .find(|l| l.contains("Junction started"))
        .expect("the start line");
    let started: serde_json::Value = serde_json::from_str(started).unwrap();
    let listeners = started["fields"]["listeners"].as_str().unwrap();
    for (name, port) in [
        ("amqp", j.ports.amqp),
        ("stomp", j.ports.stomp),
        ("mqtt", j.ports.mqtt),
        ("http", j.ports.management),
    ] {
        assert!(
            listeners.contains(&format!("{name}=127.0.0.1:{port}")),
            "{listeners}"
        );
    }
    assert!(started["fields"]["data_dir"]
        .as_str()
        .unwrap()
        .ends_with("data"));
}
