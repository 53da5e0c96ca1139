//! `/api/channels`: every open AMQP channel with its prefetch, consumers, unacked deliveries
//! and modes, named as RabbitMQ names them (`connection name (number)`). A non-administrator
//! sees the channels of its own connections.

use super::auth::Caller;
use super::connections::name_of;
use super::error::ApiError;
use super::listing::respond;
use super::Api;
use axum::extract::{Path, Query, State};
use axum::Json;
use junction_core::channels::ChannelSnapshot;
use junction_core::connections::ConnectionInfo;
use serde_json::{json, Value};
use std::collections::HashMap;

/// What RabbitMQ calls a channel's `channel_details` (also in consumer listings).
pub(crate) fn channel_details(conn: &ConnectionInfo, number: u16) -> Value {
    let name = name_of(conn);
    json!({
        "connection_name": name,
        "name": format!("{name} ({number})"),
        "number": number,
        "node": super::overview::NODE,
        "peer_host": conn.peer.ip().to_string(),
        "peer_port": conn.peer.port(),
        "user": conn.user,
    })
}

fn describe(conn: &ConnectionInfo, number: u16, s: &ChannelSnapshot) -> Value {
    let name = name_of(conn);
    json!({
        "name": format!("{name} ({number})"),
        "number": number,
        "node": super::overview::NODE,
        "user": conn.user,
        "vhost": conn.vhost,
        "state": "running",
        "connection_details": {
            "name": name,
            "peer_host": conn.peer.ip().to_string(),
            "peer_port": conn.peer.port(),
        },
        "prefetch_count": s.prefetch,
        "global_prefetch_count": s.global_prefetch,
        "consumer_count": s.consumers,
        "messages_unacknowledged": s.unacked,
        "messages_unconfirmed": 0,
        "messages_uncommitted": 0,
        "acks_uncommitted": 0,
        "confirm": s.confirm,
        "transactional": s.transactional,
    })
}

/// The channels `caller` may see, with the names of their connections.
fn visible(api: &Api, caller: &Caller) -> Vec<(String, Value)> {
    api.broker
        .channel_list()
        .into_iter()
        .filter(|(_, c, _, _)| caller.sees_all() || c.user == caller.name)
        .map(|(_, c, n, s)| (c.vhost.clone(), describe(&c, n, &s)))
        .collect()
}

/// `GET /api/channels`.
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    respond(
        visible(&api, &caller).into_iter().map(|(_, c)| c).collect(),
        &q,
    )
}

/// `GET /api/vhosts/{vhost}/channels`.
pub(crate) async fn of_vhost(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    caller.vhost(&api, &vhost)?;
    let items = visible(&api, &caller)
        .into_iter()
        .filter(|(v, _)| *v == vhost)
        .map(|(_, c)| c)
        .collect();
    respond(items, &q)
}

/// `GET /api/connections/{name}/channels`.
pub(crate) async fn of_connection(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = visible(&api, &caller)
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| c["connection_details"]["name"] == name.as_str())
        .collect();
    respond(items, &q)
}

/// `GET /api/channels/{name}`.
pub(crate) async fn show(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    visible(&api, &caller)
        .into_iter()
        .map(|(_, c)| c)
        .find(|c| c["name"] == name.as_str())
        .map(Json)
        .ok_or_else(ApiError::not_found)
}
