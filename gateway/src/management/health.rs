//! Health checks as RabbitMQ's API has them: 200 `{"status":"ok"}` when healthy, 503 with
//! `{"status":"failed","reason":...}` when not; and the aliveness test, which declares a queue,
//! publishes to it and takes the message back.

use super::auth::Caller;
use super::error::ApiError;
use super::Api;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use junction_core::{Message, Properties, QueueDef};
use serde_json::{json, Value};

type Check = (StatusCode, Json<Value>);

fn ok() -> Check {
    (StatusCode::OK, Json(json!({ "status": "ok" })))
}

fn failed(body: Value) -> Check {
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}

/// `GET /api/health/checks/alarms` and `local-alarms` (one node: the same).
pub(crate) async fn alarms(State(api): State<Api>, _caller: Caller) -> Check {
    match api.broker.resource_alarm() {
        None => ok(),
        Some(reason) => failed(json!({
            "status": "failed",
            "reason": "resource alarm(s) in effect in the cluster",
            "alarms": [{ "node": super::overview::NODE, "resource": reason.as_ref() }],
        })),
    }
}

/// `GET /api/health/checks/virtual-hosts`: every vhost is up (they cannot be down here).
pub(crate) async fn virtual_hosts(_caller: Caller) -> Check {
    ok()
}

/// `GET /api/health/checks/port-listener/{port}`.
pub(crate) async fn port_listener(
    State(api): State<Api>,
    _caller: Caller,
    Path(port): Path<String>,
) -> Result<Check, ApiError> {
    let port: u16 = port
        .parse()
        .map_err(|_| ApiError::bad_request(format!("'{port}' is not a port number")))?;
    let ports: Vec<u16> = api.node.listeners.iter().map(|(_, a)| a.port()).collect();
    Ok(if ports.contains(&port) {
        (
            StatusCode::OK,
            Json(json!({ "status": "ok", "port": port })),
        )
    } else {
        failed(json!({
            "status": "failed",
            "reason": "No active listener",
            "missing": port,
            "ports": ports,
        }))
    })
}

/// `GET /api/aliveness-test/{vhost}`: declares `aliveness-test`, publishes `test_message` to
/// it through the default exchange and gets it back.
pub(crate) async fn aliveness(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
) -> Result<Check, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    let name = "aliveness-test";
    v.declare_queue(QueueDef::new(name), false, api.broker.next_connection_id())?;
    let message = Message::new("", name, Properties::default(), "test_message".into());
    v.publish("", message)?;
    let q = v.queue(name, None)?;
    Ok(match q.get(true) {
        Some(f) if &f.message.body[..] == b"test_message" => ok(),
        _ => failed(json!({ "status": "failed", "reason": "the test message did not come back" })),
    })
}
