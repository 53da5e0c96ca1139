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
use junction_core::meta::VHostMetadata;
use junction_core::vhost::VHost;
use serde_json::{json, Map, Value};
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
    let m = v.metadata();
    let queue_type = m.default_queue_type.as_deref().unwrap_or("classic");
    let mut out = json!({
        "name": v.name,
        "description": m.description,
        "tags": m.tags,
        "default_queue_type": queue_type,
        "metadata": { "description": m.description, "tags": m.tags, "default_queue_type": queue_type },
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
    if fields.get("tracing").is_some_and(|t| !t.is_boolean()) {
        return Err(ApiError::bad_request("'tracing' has the wrong type"));
    }
    let metadata = metadata_of(&fields)?;
    if name.is_empty() {
        return Err(ApiError::bad_request("a vhost needs a name"));
    }
    let created = api.broker.vhost(&name).is_err();
    if created {
        api.broker.add_vhost(&name)?;
    }
    api.broker.set_vhost_metadata(&name, metadata)?;
    api.broker.sync().await?;
    if created {
        tracing::info!(vhost = %name, user = %caller.name, "vhost created through the management API");
        Ok(StatusCode::CREATED)
    } else {
        Ok(StatusCode::NO_CONTENT)
    }
}

/// The description, tags and default queue type of a vhost PUT or a definitions file's vhost
/// (at the top level, or under `metadata` as RabbitMQ 3.13+ writes them).
pub(crate) fn metadata_of(fields: &Map<String, Value>) -> Result<VHostMetadata, ApiError> {
    let nested = fields.get("metadata").and_then(Value::as_object);
    let pick = |key: &str| fields.get(key).or_else(|| nested.and_then(|m| m.get(key)));
    let string = |key: &str| -> Result<Option<String>, ApiError> {
        match pick(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::bad_request(format!("'{key}' has the wrong type"))),
        }
    };
    Ok(VHostMetadata {
        description: string("description")?.unwrap_or_default(),
        tags: super::users::tags_of(pick("tags"))?,
        default_queue_type: string("default_queue_type")?.filter(|t| !t.is_empty()),
    })
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
