//! STOMP loads (Junction's test client over plain TCP).

use super::record::{epoch, payload, Outcome, Seen};
use super::IDLE;
use crate::raw_stomp::{frame, StompClient};
use junction_stomp::codec::Command;
use std::net::SocketAddr;
use tokio::task::JoinHandle;

/// A subscriber of `destination` (auto ack), counting until `expect` or idle.
pub async fn sink(addr: SocketAddr, destination: &str, expect: u64) -> JoinHandle<Seen> {
    let (mut c, _) = StompClient::connect(addr).await;
    c.subscribe("bench", destination, &[]).await;
    tokio::spawn(async move {
        let mut seen = Seen::default();
        while seen.received < expect {
            match tokio::time::timeout(IDLE, c.recv()).await {
                Ok(Some(f)) if f.command == Command::Message => seen.note(&f.body),
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        seen
    })
}

async fn produce(addr: SocketAddr, destination: &str, n: u64, size: usize) {
    let (mut c, _) = StompClient::connect(addr).await;
    let len = size.max(16).to_string();
    for seq in 0..n {
        let f = frame(
            Command::Send,
            &[("destination", destination), ("content-length", &len)],
            &payload(seq, size),
        );
        c.send(&f).await;
    }
    c.send_with_receipt(frame(Command::Disconnect, &[], b""), "bye")
        .await;
}

/// 1 producer → `subs` subscribers of `destination` (a /queue/ gets 1, a /topic/ any number).
pub async fn run(
    addr: SocketAddr,
    destination: &str,
    n: u64,
    subs: usize,
    size: usize,
) -> anyhow::Result<Outcome> {
    let mut sinks = Vec::new();
    for _ in 0..subs {
        sinks.push(sink(addr, destination, n).await);
    }
    let start = epoch().elapsed();
    produce(addr, destination, n, size).await;
    let mut seen = Vec::new();
    for s in sinks {
        seen.push(s.await?);
    }
    Ok(Outcome::from(
        &seen,
        n,
        (epoch().elapsed() - start).as_secs_f64(),
    ))
}
