//! `GET /api/overview`: what the node is, what it serves and how much it holds.

use super::auth::Caller;
use super::Api;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

/// The node's name as the API reports it (one node, until the cluster work).
pub(crate) const NODE: &str = "junction@localhost";

/// `GET /api/overview`.
pub(crate) async fn overview(State(api): State<Api>, caller: Caller) -> Json<Value> {
    let vhosts = caller.vhosts(&api);
    let (mut queues, mut exchanges, mut consumers, mut ready, mut unacked) = (0, 0, 0, 0, 0);
    for v in &vhosts {
        exchanges += v.exchange_names().len();
        for q in v.queues() {
            queues += 1;
            consumers += q.consumer_count();
            ready += q.message_count();
            unacked += q.unacked_count();
        }
    }
    let listeners: Vec<Value> = api
        .listeners
        .iter()
        .map(|(protocol, addr)| {
            json!({
                "node": NODE,
                "protocol": protocol,
                "ip_address": addr.ip().to_string(),
                "port": addr.port(),
            })
        })
        .collect();
    let version = env!("CARGO_PKG_VERSION");
    Json(json!({
        "management_version": version,
        "rabbitmq_version": version,
        "product_name": "Junction",
        "product_version": version,
        "cluster_name": NODE,
        "node": NODE,
        "object_totals": {
            "connections": api.broker.connection_count(),
            "exchanges": exchanges,
            "queues": queues,
            "consumers": consumers,
        },
        "queue_totals": {
            "messages": ready + unacked,
            "messages_ready": ready,
            "messages_unacknowledged": unacked,
        },
        "message_stats": {},
        "listeners": listeners,
    }))
}
