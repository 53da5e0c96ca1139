//! `/api/vhosts`: list, show, create (PUT) and delete virtual hosts.

use super::auth::Caller;
use super::error::ApiError;
use super::listing::respond;
use super::request::json_body;
use super::stats::Samples;
use super::Api;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use junction_core::vhost::VHost;
use serde_json::{json, Value};
use std::collections::HashMap;

/// A vhost as RabbitMQ's API shows it.
fn describe(v: &VHost, samples: &Samples) -> Value {
    let (mut ready, mut unacked) = (0, 0);
    for q in v.queues() {
        let s = q.snapshot();
        ready += s.ready;
        unacked += s.unacked;
    }
    let (message_stats, depth_rates) = samples.vhost(&v.name);
    let mut out = json!({
        "name": v.name,
        "description": "",
        "tags": [],
        "default_queue_type": "classic",
        "metadata": { "description": "", "tags": [], "default_queue_type": "classic" },
        "tracing": false,
        "messages": ready + unacked,
        "messages_ready": ready,
        "messages_unacknowledged": unacked,
        "message_stats": message_stats,
    });
    super::queues::merge(&mut out, depth_rates);
    out
}

/// `GET /api/vhosts`.
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let samples = api.stats.read();
    let items = caller
        .vhosts(&api)
        .iter()
        .map(|v| describe(v, &samples))
        .collect();
    drop(samples);
    respond(items, &q)
}

/// `GET /api/vhosts/{name}`.
pub(crate) async fn show(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !caller.may_see(&api, &name) {
        return Err(ApiError::not_found());
    }
    let v = api.broker.vhost(&name).map_err(|_| ApiError::not_found())?;
    let out = describe(&v, &api.stats.read());
    Ok(Json(out))
}

/// `PUT /api/vhosts/{name}`: 201 when created, 204 when it existed.
pub(crate) async fn put(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    let fields = json_body(&body)?;
    for (key, ok) in [
        (
            "description",
            fields.get("description").is_none_or(Value::is_string),
        ),
        (
            "tracing",
            fields.get("tracing").is_none_or(Value::is_boolean),
        ),
        (
            "default_queue_type",
            fields
                .get("default_queue_type")
                .is_none_or(Value::is_string),
        ),
    ] {
        if !ok {
            return Err(ApiError::bad_request(format!("'{key}' has the wrong type")));
        }
    }
    if name.is_empty() {
        return Err(ApiError::bad_request("a vhost needs a name"));
    }
    if api.broker.vhost(&name).is_ok() {
        return Ok(StatusCode::NO_CONTENT);
    }
    api.broker.add_vhost(&name)?;
    api.broker.sync().await?;
    tracing::info!(vhost = %name, user = %caller.name, "vhost created through the management API");
    Ok(StatusCode::CREATED)
}

/// `DELETE /api/vhosts/{name}`: deletes the vhost and everything in it.
pub(crate) async fn delete(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    if api.broker.vhost(&name).is_err() {
        return Err(ApiError::not_found());
    }
    api.broker.delete_vhost(&name)?;
    api.broker.sync().await?;
    tracing::info!(vhost = %name, user = %caller.name, "vhost deleted through the management API");
    Ok(StatusCode::NO_CONTENT)
}
