//! MQTT loads (rumqttc, MQTT 3.1.1).

use super::pacer::Pacer;
use super::record::{epoch, payload, Outcome, Seen};
use super::IDLE;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use std::net::SocketAddr;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The rumqttc QoS of a number.
pub fn qos(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

static LOGIN: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();

/// Logs every MQTT client of this process in as `user` (guest/guest otherwise).
pub fn set_login(user: &str, password: &str) {
    let _ = LOGIN.set((user.to_string(), password.to_string()));
}

fn client(addr: SocketAddr, id: &str) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(std::time::Duration::from_secs(60));
    o.set_max_packet_size(1 << 20, 1 << 20);
    o.set_inflight(100);
    let (user, password) = LOGIN.get().map_or(("guest", "guest"), |(u, p)| (u, p));
    o.set_credentials(user, password);
    if let Some(config) = super::tls::config() {
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(config),
        ));
    }
    AsyncClient::new(o, 1000)
}

/// A subscriber: resolves `ready` once subscribed, then counts until `expect` or idle.
fn subscriber(
    addr: SocketAddr,
    id: String,
    filter: String,
    q: QoS,
    expect: u64,
) -> (oneshot::Receiver<()>, JoinHandle<Seen>) {
    let (ready_tx, ready) = oneshot::channel();
    let task = tokio::spawn(async move {
        let (c, mut el) = client(addr, &id);
        let mut seen = Seen::default();
        if c.subscribe(filter, q).await.is_err() {
            return seen;
        }
        let mut ready_tx = Some(ready_tx);
        while seen.received < expect {
            match tokio::time::timeout(IDLE, el.poll()).await {
                Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                    if let Some(r) = ready_tx.take() {
                        let _ = r.send(());
                    }
                }
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => seen.note(&p.payload),
                Ok(Ok(_)) => {}
                _ => break,
            }
        }
        let _ = c.disconnect().await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), el.poll()).await;
        seen
    });
    (ready, task)
}

/// A publisher of `n` messages on `topic` (`rate` per second, 0 = as fast as it can); returns
/// once every QoS 1/2 flow completed.
fn publisher(
    addr: SocketAddr,
    id: String,
    topic: String,
    q: QoS,
    n: u64,
    size: usize,
    rate: u64,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let (c, mut el) = client(addr, &id);
        let sender = tokio::spawn(async move {
            let pacer = (rate > 0).then(|| Pacer::new(rate, n));
            for seq in 0..n {
                if let Some(p) = &pacer {
                    p.tick().await;
                }
                if c.publish(topic.as_str(), q, false, payload(seq, size))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            c
        });
        let mut done = 0u64;
        let target = if q == QoS::AtMostOnce { 0 } else { n };
        loop {
            match tokio::time::timeout(IDLE, el.poll()).await {
                Ok(Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_)))) => done += 1,
                Ok(Ok(Event::Outgoing(rumqttc::Outgoing::Publish(_)))) if target == 0 => done += 1,
                Ok(Ok(_)) => {}
                _ => break,
            }
            if done >= n {
                break;
            }
        }
        if let Ok(c) = sender.await {
            let _ = c.disconnect().await;
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), el.poll()).await;
        }
    })
}

/// 1 publisher → `subs` subscribers of one topic.
pub async fn fan_out(
    addr: SocketAddr,
    n: u64,
    subs: usize,
    q: u8,
    size: usize,
) -> anyhow::Result<Outcome> {
    let tag = super::unique("f");
    let mut tasks = Vec::new();
    for i in 0..subs {
        let (ready, t) = subscriber(
            addr,
            format!("{tag}-s{i}"),
            format!("bench/{tag}"),
            qos(q),
            n,
        );
        ready.await?;
        tasks.push(t);
    }
    let start = epoch().elapsed();
    publisher(
        addr,
        format!("{tag}-p"),
        format!("bench/{tag}"),
        qos(q),
        n,
        size,
        0,
    )
    .await?;
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await?);
    }
    Ok(Outcome::from(
        &seen,
        n,
        (epoch().elapsed() - start).as_secs_f64(),
    ))
}

/// `pairs` publisher/subscriber pairs, each on its own topic, each publisher sending `rate`
/// messages per second (0 = as fast as it can).
pub async fn pairs(
    addr: SocketAddr,
    n: u64,
    pairs: usize,
    q: u8,
    size: usize,
    rate: u64,
) -> anyhow::Result<Outcome> {
    let tag = super::unique("p");
    let mut subs = Vec::new();
    for i in 0..pairs {
        let (ready, t) = subscriber(
            addr,
            format!("{tag}-s{i}"),
            format!("bench/{tag}/{i}"),
            qos(q),
            n,
        );
        ready.await?;
        subs.push(t);
    }
    let start = epoch().elapsed();
    let pubs: Vec<_> = (0..pairs)
        .map(|i| {
            publisher(
                addr,
                format!("{tag}-p{i}"),
                format!("bench/{tag}/{i}"),
                qos(q),
                n,
                size,
                rate,
            )
        })
        .collect();
    for p in pubs {
        p.await?;
    }
    let mut seen = Vec::new();
    for t in subs {
        seen.push(t.await?);
    }
    Ok(Outcome::from(
        &seen,
        n,
        (epoch().elapsed() - start).as_secs_f64(),
    ))
}

/// Publishes `n` QoS 0 messages on `topic` (the cross-protocol scenario's source).
pub async fn publish_only(
    addr: SocketAddr,
    topic: &str,
    n: u64,
    size: usize,
) -> anyhow::Result<()> {
    publisher(
        addr,
        super::unique("x"),
        topic.to_string(),
        QoS::AtMostOnce,
        n,
        size,
        0,
    )
    .await?;
    Ok(())
}
