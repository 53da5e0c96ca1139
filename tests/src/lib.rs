//! Test support: a real Junction on ephemeral loopback ports with a temp data dir, plus helpers
//! that put a timeout on every await.

pub mod auth_service;
pub mod bench;
pub mod certificates;
pub mod management;
pub mod mqtt_v4;
pub mod mqtt_v5;
pub mod process;
pub mod raw_amqp;
pub mod raw_mqtt;
pub mod raw_stomp;
pub mod tls_client;

use junction_gateway::config::Config;
use junction_gateway::{BoundAddrs, Gateway};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tempfile::TempDir;

/// The limit on any single await in a test.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Awaits `f`, failing the test if it takes longer than [`TIMEOUT`].
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .expect("timed out waiting in test")
}

/// A broker started in-process for one test.
pub struct TestBroker {
    gateway: Option<Gateway>,
    /// Where its listeners are bound.
    pub addrs: BoundAddrs,
    /// Its data directory, deleted on drop.
    pub dir: TempDir,
}

impl TestBroker {
    /// Starts with defaults, every listener on 127.0.0.1 and an ephemeral port.
    pub async fn start() -> TestBroker {
        Self::start_with(|_| {}).await
    }

    /// Starts on the data directory `data` (kept by the caller), so that a second call after
    /// [`TestBroker::stop`] is a restart of the same broker.
    pub async fn start_in(data: &std::path::Path) -> TestBroker {
        let data = data.to_path_buf();
        Self::start_with(move |c| c.data_dir = data).await
    }

    /// Starts after `tweak` has adjusted the test configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestBroker {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = Config::default();
        for l in [
            &mut cfg.listeners.amqp,
            &mut cfg.listeners.stomp,
            &mut cfg.listeners.mqtt,
            &mut cfg.listeners.management,
            &mut cfg.listeners.prometheus,
            &mut cfg.listeners.amqps,
            &mut cfg.listeners.stomps,
            &mut cfg.listeners.mqtts,
            &mut cfg.listeners.management_tls,
        ] {
            l.address = IpAddr::V4(Ipv4Addr::LOCALHOST);
            l.port = 0;
        }
        for l in [
            &mut cfg.listeners.stomp_ws,
            &mut cfg.listeners.mqtt_ws,
            &mut cfg.listeners.stomp_wss,
            &mut cfg.listeners.mqtt_wss,
        ] {
            l.address = IpAddr::V4(Ipv4Addr::LOCALHOST);
            l.port = 0;
        }
        cfg.data_dir = dir.path().join("data");
        tweak(&mut cfg);
        let gateway = within(Gateway::start(cfg)).await.expect("broker starts");
        TestBroker {
            addrs: gateway.addrs().clone(),
            gateway: Some(gateway),
            dir,
        }
    }

    /// The running gateway.
    pub fn gateway(&self) -> &Gateway {
        self.gateway.as_ref().expect("running")
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`
    pub fn amqp_uri(&self) -> String {
        self.amqp_uri_for("guest", "guest", "%2f")
    }

    /// An AMQP URI for `user` on `vhost`.
    pub fn amqp_uri_for(&self, user: &str, pass: &str, vhost: &str) -> String {
        let a = self.addrs.amqp.expect("AMQP listener");
        format!("amqp://{user}:{pass}@{a}/{vhost}")
    }

    /// Shuts the broker down cleanly.
    pub async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            within(g.shutdown()).await;
        }
    }
}

/// An AMQP connection to `uri` with one open channel (lapin).
pub async fn amqp_channel(uri: &str) -> (lapin::Connection, lapin::Channel) {
    let c = within(lapin::Connection::connect(
        uri,
        lapin::ConnectionProperties::default(),
    ))
    .await
    .expect("AMQP connects");
    let ch = within(c.create_channel()).await.expect("channel");
    (c, ch)
}

/// Polls `cond` every few milliseconds until it holds (or the test times out).
pub async fn eventually(mut cond: impl FnMut() -> bool) {
    within(async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// Awaits `probe` every 20 ms until `done` holds of what it returned, for at most
/// [`TIMEOUT`]; returns the last probe either way, so the caller's assertion can show it.
pub async fn settle<T, F, Fut>(mut probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let v = within(probe()).await;
        if done(&v) || tokio::time::Instant::now() >= deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `#` words of the hostile topic patterns the hardening tests bind.
pub const HOSTILE_HASHES: usize = 20;

/// Binds a fresh server-named queue to `amq.topic` with worst-case patterns (`HOSTILE_HASHES`
/// `#` words before a literal that never comes) on `ch`; returns the `#` run for more patterns.
pub async fn bind_hostile_patterns(ch: &lapin::Channel) -> String {
    let q = within(ch.queue_declare("", Default::default(), Default::default()))
        .await
        .expect("declare");
    let hashes = vec!["#"; HOSTILE_HASHES].join(".");
    for pattern in [format!("{hashes}.z"), format!("#.a.{hashes}.a.#.z")] {
        within(ch.queue_bind(
            q.name().as_str(),
            "amq.topic",
            &pattern,
            Default::default(),
            Default::default(),
        ))
        .await
        .expect("bind");
    }
    hashes
}
