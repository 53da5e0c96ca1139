//! `GET /api/overview`: what the node is, what it serves and how much it holds.

use super::auth::Caller;
use super::Api;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

pub(crate) use crate::node::NODE_NAME as NODE;

/// `GET /api/overview`; `msg_rates_age=SECONDS` adds the node's recent samples to each
/// `*_details` (as RabbitMQ's), which the console draws its charts from.
pub(crate) async fn overview(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let vhosts = caller.vhosts(&api);
    let (mut queues, mut exchanges, mut consumers, mut ready, mut unacked) = (0, 0, 0, 0, 0);
    for v in &vhosts {
        exchanges += v.exchange_names().len();
        for q in v.queues() {
            let s = q.snapshot();
            queues += 1;
            consumers += s.consumers;
            ready += s.ready;
            unacked += s.unacked;
        }
    }
    let age = q.get("msg_rates_age").and_then(|a| a.parse::<u64>().ok());
    // A user who may see only some vhosts sees only their numbers, as in RabbitMQ.
    let (message_stats, depth_rates) = if caller.sees_all() {
        api.stats.read().node(age.map(|a| a.min(3600)))
    } else {
        api.stats
            .read()
            .vhosts(vhosts.iter().map(|v| v.name.as_str()))
    };
    let mut queue_totals = json!({
        "messages": ready + unacked,
        "messages_ready": ready,
        "messages_unacknowledged": unacked,
    });
    super::queues::merge(&mut queue_totals, depth_rates);
    let listeners = listeners(&api);
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
            "channels": api.broker.channel_total(),
            "exchanges": exchanges,
            "queues": queues,
            "consumers": consumers,
        },
        "queue_totals": queue_totals,
        "message_stats": message_stats,
        "statistics_db_event_queue": 0,
        "listeners": listeners,
    }))
}

/// The node's listeners as RabbitMQ's API lists them (`overview` and `nodes` alike).
pub(crate) fn listeners(api: &Api) -> Vec<Value> {
    api.node
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
        .collect()
}
