//! STOMP over WebSocket (RabbitMQ Web-STOMP's `/ws` endpoint): sub-protocols, frames split across
//! messages, text and binary messages, and an unknown path refused.

use futures::{SinkExt, StreamExt};
use junction_tests::{within, TestBroker};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(b: &TestBroker, path: &str) -> Result<(Ws, Option<String>), String> {
    let url = format!("ws://{}{path}", b.addrs.stomp_ws.unwrap());
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v10.stomp, v12.stomp".parse().unwrap(),
    );
    let (ws, resp) = within(tokio_tungstenite::connect_async(req))
        .await
        .map_err(|e| e.to_string())?;
    let proto = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .map(|v| v.to_str().unwrap().to_string());
    Ok((ws, proto))
}

/// Reads messages until `needle` shows up in the accumulated text.
async fn read_until(ws: &mut Ws, needle: &str) -> String {
    let mut acc = String::new();
    while !acc.contains(needle) {
        match within(ws.next()).await {
            Some(Ok(Message::Text(t))) => acc.push_str(t.as_str()),
            Some(Ok(Message::Binary(b))) => acc.push_str(&String::from_utf8_lossy(&b)),
            Some(Ok(_)) => {}
            other => panic!("socket ended before {needle:?}: {other:?}; got {acc:?}"),
        }
    }
    acc
}

#[tokio::test]
async fn stomp_over_websocket_with_split_frames() {
    let b = TestBroker::start().await;
    let (mut ws, proto) = open(&b, "/ws").await.expect("upgrade");
    assert_eq!(
        proto.as_deref(),
        Some("v12.stomp"),
        "the best sub-protocol offered is chosen"
    );
    // CONNECT split across two text messages.
    ws.send(Message::text("CONNECT\naccept-version:1.2\nlogin:gu"))
        .await
        .unwrap();
    ws.send(Message::text("est\npasscode:guest\n\n\0"))
        .await
        .unwrap();
    let connected = read_until(&mut ws, "\0").await;
    assert!(
        connected.starts_with("CONNECTED\n") && connected.contains("version:1.2"),
        "{connected}"
    );
    // SUBSCRIBE as text, then SEND as a binary message holding a NUL byte in its body.
    ws.send(Message::text(
        "SUBSCRIBE\nid:0\ndestination:/queue/ws\nreceipt:r\n\n\0",
    ))
    .await
    .unwrap();
    read_until(&mut ws, "receipt-id:r").await;
    ws.send(Message::binary(
        b"SEND\ndestination:/queue/ws\ncontent-length:3\n\na\0b\0".to_vec(),
    ))
    .await
    .unwrap();
    let msg = read_until(&mut ws, "a\0b\0").await;
    assert!(
        msg.contains("MESSAGE\n") && msg.contains("content-length:3"),
        "{msg:?}"
    );
    b.stop().await;
}

#[tokio::test]
async fn unknown_path_is_refused() {
    let b = TestBroker::start().await;
    let Err(err) = open(&b, "/elsewhere").await else {
        panic!("an unknown path must be refused")
    };
    assert!(err.contains("404"), "{err}");
    b.stop().await;
}
