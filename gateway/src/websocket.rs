//! WebSocket listeners: the upgrade on a path with a protocol's sub-protocols, then the
//! connection handed to the adapter as a plain byte stream.

use crate::listener::{accept_each, Accepting};
use futures::{SinkExt, StreamExt};
use junction_core::runtime::{ConnectionContext, ProtocolAdapter, Transport};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::Message;

/// How long one side of the bridge may outlive the other.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);
/// Bytes buffered between the WebSocket and the adapter, each way.
const BRIDGE_BUFFER: usize = 64 * 1024;

/// What a WebSocket listener accepts.
#[derive(Debug, Clone)]
pub struct WsOptions {
    /// The HTTP path the upgrade is accepted on.
    pub path: String,
    /// Sub-protocols offered, in preference order (e.g. `v12.stomp`, or `mqtt`).
    pub subprotocols: &'static [&'static str],
}

/// Accepts WebSocket connections on `listener` until its task is aborted (over TLS on a TLS
/// listener: WSS).
pub(crate) async fn ws_accept_loop(
    listener: TcpListener,
    opts: WsOptions,
    adapter: Arc<dyn ProtocolAdapter>,
    accepting: Accepting,
) {
    let protocol = adapter.name();
    let serve = move |stream, ctx| serve_ws(stream, opts.clone(), adapter.clone(), ctx);
    accept_each(listener, protocol, accepting, serve).await
}

async fn serve_ws(
    stream: Box<dyn Transport>,
    opts: WsOptions,
    adapter: Arc<dyn ProtocolAdapter>,
    ctx: ConnectionContext,
) -> Result<(), String> {
    // The callback type is tungstenite's; its error type is its own large HTTP response.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() != opts.path {
            let mut e = ErrorResponse::new(Some(format!(
                "no WebSocket endpoint at {}",
                req.uri().path()
            )));
            *e.status_mut() = StatusCode::NOT_FOUND;
            return Err(e);
        }
        let offered: Vec<String> = req
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
            .collect();
        if let Some(p) = opts
            .subprotocols
            .iter()
            .find(|p| offered.iter().any(|o| o == *p))
        {
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(p));
        }
        Ok(resp)
    };
    // The upgrade counts against the handshake deadline, as the protocol's login does after it.
    let upgrade = tokio_tungstenite::accept_hdr_async(stream, callback);
    let ws = match tokio::time::timeout_at(ctx.handshake_deadline(), upgrade).await {
        Ok(ws) => ws.map_err(|e| e.to_string())?,
        Err(_) => {
            junction_core::runtime::driver::handshake_expired(&ctx.broker, ctx.peer);
            return Ok(());
        }
    };
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (adapter_side, bridge_side) = tokio::io::duplex(BRIDGE_BUFFER);
    let (mut from_adapter, mut to_adapter) = tokio::io::split(bridge_side);
    let name = adapter.name();
    let serve = tokio::spawn(async move { adapter.serve(Box::new(adapter_side), ctx).await });
    // Client → adapter: every data message's payload, in order, whatever its framing.
    let inbound = async {
        while let Some(msg) = ws_rx.next().await {
            let data = match msg {
                Ok(Message::Binary(b)) => b.to_vec(),
                Ok(Message::Text(t)) => t.as_bytes().to_vec(),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            if to_adapter.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = to_adapter.shutdown().await;
    };
    // Adapter → client: each chunk the adapter writes becomes one message: text when it is
    // UTF-8 (a character cut at the chunk's end waits for the next chunk), else binary.
    let outbound = async {
        let mut buf = vec![0u8; BRIDGE_BUFFER];
        let mut pending: Vec<u8> = Vec::new();
        loop {
            match from_adapter.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    let msg = match std::str::from_utf8(&pending) {
                        Ok(text) => {
                            let m = Message::text(text);
                            pending.clear();
                            m
                        }
                        Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => {
                            let rest = pending.split_off(e.valid_up_to());
                            let text = String::from_utf8(std::mem::replace(&mut pending, rest))
                                .unwrap_or_default();
                            Message::text(text)
                        }
                        Err(e) if e.error_len().is_none() => continue,
                        Err(_) => Message::binary(std::mem::take(&mut pending)),
                    };
                    if ws_tx.send(msg).await.is_err() {
                        break;
                    }
                }
            }
        }
        if !pending.is_empty() {
            let _ = ws_tx.send(Message::binary(pending)).await;
        }
        let _ = ws_tx.close().await;
    };
    // Whichever side ends first, the other gets a short grace to finish (a client that never
    // answers the close must not hold the connection open).
    tokio::pin!(inbound);
    tokio::pin!(outbound);
    tokio::select! {
        _ = &mut outbound => { let _ = tokio::time::timeout(CLOSE_GRACE, inbound).await; }
        _ = &mut inbound => { let _ = tokio::time::timeout(CLOSE_GRACE, outbound).await; }
    }
    match serve.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{name}: {e}")),
        Err(e) => Err(e.to_string()),
    }
}
