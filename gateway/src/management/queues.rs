//! `/api/queues`: list, show, declare (PUT), delete, purge, and get messages.

use super::args::table_to_json;
use super::auth::Caller;
use super::error::ApiError;
use super::listing::respond_typed;
use super::request::{arguments, flag, json_body, put_status};
use super::stats::{Counts, Samples};
use super::Api;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use junction_core::vhost::VHost;
use junction_core::{CoreError, Message, Queue, QueueDef};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// What one queued message costs beside its body (a queue entry; a test in the core holds it
/// to this size).
const QUEUE_ENTRY_BYTES: usize = 48;

/// A queue as RabbitMQ's API shows it, written straight to JSON.
#[derive(serde::Serialize)]
pub(crate) struct QueueView {
    name: String,
    vhost: String,
    #[serde(rename = "type")]
    kind: &'static str,
    durable: bool,
    auto_delete: bool,
    exclusive: bool,
    arguments: Value,
    node: &'static str,
    state: &'static str,
    consumers: usize,
    messages: usize,
    messages_ready: usize,
    messages_unacknowledged: usize,
    messages_paged_out: usize,
    message_bytes_ready: usize,
    /// An estimate of the queue's memory: its entries and the bodies they reference.
    memory: usize,
    message_stats: Counts<8>,
    policy: Option<String>,
    effective_policy_definition: Value,
    #[serde(flatten)]
    depth_rates: Counts<3>,
}

fn describe(v: &VHost, q: &Queue, samples: &Samples) -> QueueView {
    let snap = q.snapshot();
    let (message_stats, depth_rates) = samples.queue(&v.name, q.name(), &snap);
    let policy = q.policy();
    QueueView {
        name: q.def.name.clone(),
        vhost: v.name.clone(),
        kind: "classic",
        durable: q.def.durable,
        auto_delete: q.def.auto_delete,
        exclusive: q.def.exclusive,
        arguments: table_to_json(&q.def.arguments),
        node: super::overview::NODE,
        state: "running",
        consumers: snap.consumers,
        messages: snap.ready + snap.unacked,
        messages_ready: snap.ready,
        messages_unacknowledged: snap.unacked,
        messages_paged_out: snap.paged_out,
        message_bytes_ready: snap.ready_bytes,
        memory: (snap.ready + snap.unacked) * QUEUE_ENTRY_BYTES + snap.ready_bytes,
        message_stats,
        policy: policy.as_ref().map(|p| p.name.clone()),
        effective_policy_definition: policy.map_or(json!({}), |p| table_to_json(&p.definition)),
        depth_rates,
    }
}

/// Adds the fields of `extra` (an object) to `into`.
pub(crate) fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        into.extend(extra);
    }
}

fn sorted(v: &VHost) -> Vec<Arc<Queue>> {
    let mut qs = v.queues();
    qs.sort_by(|a, b| a.def.name.cmp(&b.def.name));
    qs
}

/// `GET /api/queues`: every queue of every vhost the caller may see.
pub(crate) async fn list_all(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::response::Response, ApiError> {
    let mut out = Vec::new();
    let samples = api.stats.read();
    for v in caller.vhosts(&api) {
        out.extend(sorted(&v).iter().map(|queue| describe(&v, queue, &samples)));
    }
    drop(samples);
    respond_typed(out, &q)
}

/// `GET /api/queues/{vhost}`.
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::response::Response, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    let samples = api.stats.read();
    let all = sorted(&v)
        .iter()
        .map(|queue| describe(&v, queue, &samples))
        .collect();
    drop(samples);
    respond_typed(all, &q)
}

/// `GET /api/queues/{vhost}/{name}`.
pub(crate) async fn show(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<QueueView>, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    let q = v.queue(&name, None).map_err(|_| ApiError::not_found())?;
    let out = describe(&v, &q, &api.stats.read());
    Ok(Json(out))
}

/// `PUT /api/queues/{vhost}/{name}`: declares the queue (201), or finds it declared the same
/// way (204); a queue declared otherwise is 400, as RabbitMQ's inequivalent-argument refusal.
pub(crate) async fn put(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    let fields = json_body(&body)?;
    let arguments = arguments(&fields)?;
    let def = QueueDef {
        name: name.clone(),
        durable: flag(&fields, "durable", true)?,
        exclusive: false,
        auto_delete: flag(&fields, "auto_delete", false)?,
        arguments,
    };
    if name.is_empty() || name.starts_with("amq.") {
        return Err(ApiError::bad_request(format!(
            "queue name '{name}' is reserved or empty"
        )));
    }
    let existed = v.queue(&name, None).is_ok();
    let declared = v.declare_queue(def, false, api.broker.next_connection_id())?;
    if declared.stored {
        api.broker.sync().await?;
    }
    Ok(put_status(existed))
}

/// `DELETE /api/queues/{vhost}/{name}` with optional `if-empty` and `if-unused`.
pub(crate) async fn delete(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    v.queue(&name, None).map_err(|_| ApiError::not_found())?;
    let yes = |k: &str| query.get(k).is_some_and(|x| x == "true");
    let deleted = v.delete_queue(&name, None, yes("if-unused"), yes("if-empty"))?;
    if deleted.stored {
        api.broker.sync().await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/queues/{vhost}/{name}/contents`: purges the queue.
pub(crate) async fn purge(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    let q = v.queue(&name, None).map_err(|_| ApiError::not_found())?;
    q.purge();
    Ok(StatusCode::NO_CONTENT)
}

/// A message as the get endpoint shows it.
fn fetched_json(
    m: &Message,
    redelivered: bool,
    remaining: usize,
    base64: bool,
    truncate: Option<usize>,
) -> Value {
    let body = &m.body[..truncate.map_or(m.body.len(), |t| t.min(m.body.len()))];
    let (payload, encoding) = match (base64, std::str::from_utf8(body)) {
        (false, Ok(s)) => (s.to_string(), "string"),
        _ => (
            base64::engine::general_purpose::STANDARD.encode(body),
            "base64",
        ),
    };
    let p = &m.properties;
    let mut props = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            props.insert(k.to_string(), v);
        }
    };
    put("content_type", p.content_type.clone().map(Value::from));
    put(
        "content_encoding",
        p.content_encoding.clone().map(Value::from),
    );
    put("headers", p.headers.as_ref().map(table_to_json));
    put("delivery_mode", p.delivery_mode.map(Value::from));
    put("priority", p.priority.map(Value::from));
    put("correlation_id", p.correlation_id.clone().map(Value::from));
    put("reply_to", p.reply_to.clone().map(Value::from));
    put("expiration", p.expiration.clone().map(Value::from));
    put("message_id", p.message_id.clone().map(Value::from));
    put("timestamp", p.timestamp.map(Value::from));
    put("type", p.kind.clone().map(Value::from));
    put("user_id", p.user_id.clone().map(Value::from));
    put("app_id", p.app_id.clone().map(Value::from));
    json!({
        "payload_bytes": m.body.len(),
        "redelivered": redelivered,
        "exchange": m.exchange,
        "routing_key": m.routing_key,
        "message_count": remaining,
        "properties": Value::Object(props),
        "payload": payload,
        "payload_encoding": encoding,
    })
}

/// `POST /api/queues/{vhost}/{name}/get`: takes up to `count` messages with `ackmode`
/// `ack_requeue_true`/`reject_requeue_true` (given back, marked redelivered) or
/// `ack_requeue_false`/`reject_requeue_false` (removed), `encoding` `auto` or `base64`.
pub(crate) async fn get(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Vec<Value>>, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    let q = caller
        .authorized(&api, v)
        .readable_queue(&name, None)
        .map_err(|e| match e {
            CoreError::AccessRefused(_) => ApiError::from(e),
            _ => ApiError::not_found(),
        })?;
    let fields = json_body(&body)?;
    let count = match fields.get("count") {
        None => 1,
        Some(n) => n
            .as_u64()
            .ok_or_else(|| ApiError::bad_request("'count' must be a non-negative integer"))?,
    };
    let requeue = match fields.get("ackmode").and_then(Value::as_str) {
        Some("ack_requeue_true") | Some("reject_requeue_true") => true,
        Some("ack_requeue_false") | Some("reject_requeue_false") => false,
        other => {
            return Err(ApiError::bad_request(format!(
                "'ackmode' must be ack_requeue_true, ack_requeue_false, reject_requeue_true or reject_requeue_false, not {other:?}"
            )))
        }
    };
    let base64 = match fields.get("encoding").and_then(Value::as_str) {
        None | Some("auto") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "'encoding' must be auto or base64, not '{other}'"
            )))
        }
    };
    let truncate = match fields.get("truncate") {
        None | Some(Value::Null) => None,
        Some(n) => Some(
            n.as_u64()
                .ok_or_else(|| ApiError::bad_request("'truncate' must be an integer"))?
                as usize,
        ),
    };
    let mut out = Vec::new();
    let mut taken = Vec::new();
    for _ in 0..count.min(10_000) {
        let Some(f) = q.get(false) else { break };
        out.push(fetched_json(
            &f.message,
            f.redelivered,
            f.remaining,
            base64,
            truncate,
        ));
        taken.push(f.id);
    }
    // Given back only after all were taken, so that `count` messages are distinct.
    if requeue {
        q.reject(&taken, true);
    } else {
        q.ack(&taken);
    }
    Ok(Json(out))
}
