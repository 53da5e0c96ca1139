//! `/api/topic-permissions`: a user's write/read regular expressions on the routing keys of
//! one topic exchange in a vhost, as RabbitMQ keeps them (administrators). Stored and kept
//! across restarts; enforced by the permission work of the security issue.

use super::auth::Caller;
use super::error::ApiError;
use super::request::{json_body, put_status};
use super::Api;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use junction_core::storage::TopicPermission;
use serde_json::{json, Value};

/// A topic permission as RabbitMQ's API writes it.
pub(crate) fn describe(p: &TopicPermission) -> Value {
    json!({
        "user": p.user, "vhost": p.vhost, "exchange": p.exchange,
        "write": p.write, "read": p.read,
    })
}

fn listed(api: &Api, keep: impl Fn(&TopicPermission) -> bool) -> Json<Vec<Value>> {
    Json(
        api.broker
            .access()
            .topic_permissions()
            .iter()
            .filter(|p| keep(p))
            .map(describe)
            .collect(),
    )
}

/// `GET /api/topic-permissions`.
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require_administrator()?;
    Ok(listed(&api, |_| true))
}

/// `GET /api/users/{user}/topic-permissions`.
pub(crate) async fn of_user(
    State(api): State<Api>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require_administrator()?;
    api.broker
        .auth()
        .get(&user)
        .ok_or_else(ApiError::not_found)?;
    Ok(listed(&api, |p| p.user == user))
}

/// `GET /api/vhosts/{vhost}/topic-permissions`.
pub(crate) async fn of_vhost(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require_administrator()?;
    api.broker
        .vhost(&vhost)
        .map_err(|_| ApiError::not_found())?;
    Ok(listed(&api, |p| p.vhost == vhost))
}

/// `GET /api/topic-permissions/{vhost}/{user}`: the user's topic permissions in the vhost
/// (404 if none).
pub(crate) async fn show(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require_administrator()?;
    let found = listed(&api, |p| p.vhost == vhost && p.user == user);
    if found.0.is_empty() {
        return Err(ApiError::not_found());
    }
    Ok(found)
}

/// `PUT /api/topic-permissions/{vhost}/{user}` with `exchange`, `write`, `read`.
pub(crate) async fn put(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    let f = json_body(&body)?;
    let text = |key: &str| -> Result<String, ApiError> {
        match f.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(ApiError::bad_request(format!("'{key}' must be a string"))),
            None => Err(ApiError::bad_request(format!("'{key}' is missing"))),
        }
    };
    let p = TopicPermission {
        exchange: text("exchange")?,
        write: text("write")?,
        read: text("read")?,
        user: user.clone(),
        vhost: vhost.clone(),
    };
    let existed = api
        .broker
        .access()
        .topic_permissions()
        .iter()
        .any(|x| x.vhost == vhost && x.user == user && x.exchange == p.exchange);
    api.broker.put_topic_permission(p)?;
    api.broker.sync().await?;
    tracing::info!(user = %user, vhost = %vhost, by = %caller.name, "topic permissions set through the management API");
    Ok(put_status(existed))
}

/// `DELETE /api/topic-permissions/{vhost}/{user}`: every one of the user's in the vhost, or
/// with `?exchange=E` (Junction's addition, for `junction ctl clear_topic_permissions`) only
/// the one on exchange E.
pub(crate) async fn delete(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    let exchange = q.get("exchange").map(String::as_str);
    api.broker
        .delete_topic_permission(&user, &vhost, exchange)?;
    api.broker.sync().await?;
    Ok(StatusCode::NO_CONTENT)
}
