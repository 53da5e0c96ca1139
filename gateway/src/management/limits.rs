//! `/api/vhost-limits` and `/api/user-limits`: RabbitMQ's `max-connections` and `max-queues`
//! per vhost, `max-connections` and `max-channels` per user (administrators change them;
//! a negative value means no limit).

use super::auth::Caller;
use super::error::ApiError;
use super::request::json_body;
use super::Api;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use junction_core::limits::LimitTable;
use serde_json::{json, Value};

fn entry(scope: &str, name: &str, limits: &LimitTable) -> Value {
    json!({ scope: name, "value": limits })
}

/// One object's limits as a list: empty when it has none, as RabbitMQ answers.
fn listed(scope: &str, name: &str, limits: &LimitTable) -> Json<Vec<Value>> {
    Json(if limits.is_empty() {
        Vec::new()
    } else {
        vec![entry(scope, name, limits)]
    })
}

/// The `{"value": N}` of a PUT.
fn value_of(body: &[u8]) -> Result<i64, ApiError> {
    json_body(body)?
        .get("value")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::bad_request("'value' must be an integer"))
}

/// `GET /api/vhost-limits`: the vhosts the caller may see that have limits.
pub(crate) async fn vhosts(
    State(api): State<Api>,
    caller: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    Ok(Json(
        caller
            .vhosts(&api)
            .iter()
            .filter_map(|v| {
                let l = v.limits();
                (!l.is_empty()).then(|| entry("vhost", &v.name, &l))
            })
            .collect(),
    ))
}

/// `GET /api/vhost-limits/{vhost}`.
pub(crate) async fn of_vhost(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    Ok(listed("vhost", &v.name, &v.limits()))
}

/// `PUT /api/vhost-limits/{vhost}/{name}` with `{"value": N}`.
pub(crate) async fn put_vhost(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    let v = caller.vhost(&api, &vhost)?;
    let mut limits = v.limits();
    limits.insert(name, value_of(&body)?);
    api.broker.set_vhost_limits(&vhost, limits)?;
    api.broker.sync().await?;
    tracing::info!(vhost = %vhost, by = %caller.name, "vhost limits set through the management API");
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/vhost-limits/{vhost}/{name}`.
pub(crate) async fn delete_vhost(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    let v = caller.vhost(&api, &vhost)?;
    let mut limits = v.limits();
    limits.remove(&name).ok_or_else(ApiError::not_found)?;
    api.broker.set_vhost_limits(&vhost, limits)?;
    api.broker.sync().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/user-limits` (administrators).
pub(crate) async fn users(
    State(api): State<Api>,
    caller: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require_administrator()?;
    Ok(Json(
        api.broker
            .access()
            .all_user_limits()
            .iter()
            .map(|(u, l)| entry("user", u, l))
            .collect(),
    ))
}

/// `GET /api/user-limits/{user}` (administrators).
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
    Ok(listed(
        "user",
        &user,
        &api.broker.access().user_limits(&user),
    ))
}

/// `PUT /api/user-limits/{user}/{name}` with `{"value": N}`.
pub(crate) async fn put_user(
    State(api): State<Api>,
    caller: Caller,
    Path((user, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    let mut limits = api.broker.access().user_limits(&user);
    limits.insert(name, value_of(&body)?);
    api.broker.set_user_limits(&user, limits)?;
    api.broker.sync().await?;
    tracing::info!(user = %user, by = %caller.name, "user limits set through the management API");
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/user-limits/{user}/{name}`.
pub(crate) async fn delete_user(
    State(api): State<Api>,
    caller: Caller,
    Path((user, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    let mut limits = api.broker.access().user_limits(&user);
    limits.remove(&name).ok_or_else(ApiError::not_found)?;
    api.broker.set_user_limits(&user, limits)?;
    api.broker.sync().await?;
    Ok(StatusCode::NO_CONTENT)
}
