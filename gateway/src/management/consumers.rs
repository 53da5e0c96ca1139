//! `/api/consumers`: every consumer of every queue the caller may see, with its channel's
//! connection, as RabbitMQ lists them (a non-administrator sees those of its own connections).

use super::auth::Caller;
use super::error::ApiError;
use super::listing::respond;
use super::Api;
use axum::extract::{Path, Query, State};
use axum::Json;
use junction_core::connections::ConnectionInfo;
use junction_core::vhost::VHost;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

fn describe_all(api: &Api, caller: &Caller, vhosts: &[Arc<VHost>]) -> Vec<Value> {
    let connections: HashMap<u64, ConnectionInfo> =
        api.broker.connection_list().into_iter().collect();
    let mut out = Vec::new();
    for v in vhosts {
        let mut queues = v.queues();
        queues.sort_by(|a, b| a.def.name.cmp(&b.def.name));
        for q in queues {
            for c in q.consumers() {
                let conn = connections.get(&c.connection);
                if !caller.sees_all() && conn.is_none_or(|x| x.user != caller.name) {
                    continue;
                }
                let channel_details = conn.map_or(json!({}), |x| {
                    super::channels::channel_details(x, c.channel)
                });
                out.push(json!({
                    "consumer_tag": c.tag,
                    "queue": {"name": q.def.name, "vhost": v.name},
                    "channel_details": channel_details,
                    "ack_required": c.ack_required,
                    "exclusive": c.exclusive,
                    "prefetch_count": c.prefetch,
                    "priority": c.priority,
                    "active": c.active,
                    "activity_status": if c.active { "up" } else { "waiting" },
                    "arguments": {},
                    "consumer_timeout": 0,
                }));
            }
        }
    }
    out
}

/// `GET /api/consumers`.
pub(crate) async fn list_all(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let vhosts = caller.vhosts(&api);
    respond(describe_all(&api, &caller, &vhosts), &q)
}

/// `GET /api/consumers/{vhost}`.
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    respond(describe_all(&api, &caller, &[v]), &q)
}
