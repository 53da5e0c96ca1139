//! `/api/connections`: every logged-in connection of every protocol, and closing one. A close
//! reaches the client as its protocol's close (AMQP connection.close 320, STOMP ERROR, MQTT 5
//! DISCONNECT 0x98) with the reason from the `X-Reason` header.

use super::args::table_to_json;
use super::auth::Caller;
use super::error::ApiError;
use super::listing::respond;
use super::Api;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use junction_core::connections::ConnectionInfo;
use serde_json::{json, Value};
use std::collections::HashMap;

/// RabbitMQ's connection name: `client address -> listener address`.
pub(crate) fn name_of(c: &ConnectionInfo) -> String {
    match c.local {
        Some(local) => format!("{} -> {local}", c.peer),
        None => c.peer.to_string(),
    }
}

fn describe(api: &Api, id: u64, c: &ConnectionInfo) -> Value {
    let tls = c.tls.as_deref();
    json!({
        "name": name_of(c),
        "node": super::overview::NODE,
        "type": "network",
        "state": "running",
        "protocol": c.protocol,
        "user": c.user,
        "vhost": c.vhost,
        "peer_host": c.peer.ip().to_string(),
        "peer_port": c.peer.port(),
        "host": c.local.map(|l| l.ip().to_string()),
        "port": c.local.map(|l| l.port()),
        "connected_at": c.connected_at,
        "client_properties": table_to_json(&c.client_properties),
        "channels": api.broker.channel_count(id),
        "ssl": tls.is_some(),
        "ssl_protocol": tls.map(|t| t.protocol),
        "ssl_cipher": tls.map(|t| t.cipher.clone()),
        "peer_cert_subject": tls.and_then(|t| t.peer_subject.clone()),
    })
}

/// The connections `caller` may see: all for administrators and monitoring users, its own
/// otherwise (as RabbitMQ).
fn visible(api: &Api, caller: &Caller) -> Vec<(u64, ConnectionInfo)> {
    api.broker
        .connection_list()
        .into_iter()
        .filter(|(_, c)| caller.sees_all() || c.user == caller.name)
        .collect()
}

/// `GET /api/connections`.
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    respond(
        visible(&api, &caller)
            .iter()
            .map(|(id, c)| describe(&api, *id, c))
            .collect(),
        &q,
    )
}

/// `GET /api/vhosts/{vhost}/connections`.
pub(crate) async fn of_vhost(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    caller.vhost(&api, &vhost)?;
    let items = visible(&api, &caller)
        .iter()
        .filter(|(_, c)| c.vhost == vhost)
        .map(|(id, c)| describe(&api, *id, c))
        .collect();
    respond(items, &q)
}

fn find(api: &Api, caller: &Caller, name: &str) -> Result<(u64, ConnectionInfo), ApiError> {
    visible(api, caller)
        .into_iter()
        .find(|(_, c)| name_of(c) == name)
        .ok_or_else(ApiError::not_found)
}

/// `GET /api/connections/{name}`.
pub(crate) async fn show(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (id, c) = find(&api, &caller, &name)?;
    Ok(Json(describe(&api, id, &c)))
}

/// `DELETE /api/connections/{name}`, the reason in `X-Reason`.
pub(crate) async fn close(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (id, c) = find(&api, &caller, &name)?;
    let reason = headers
        .get("x-reason")
        .and_then(|v| v.to_str().ok())
        .filter(|r| !r.is_empty())
        .unwrap_or("Closed via management plugin")
        .to_string();
    if !api.broker.close_connection(id, &reason) {
        return Err(ApiError::not_found());
    }
    tracing::info!(connection = %name, user = %c.user, by = %caller.name, %reason, "connection closed through the management API");
    Ok(StatusCode::NO_CONTENT)
}
