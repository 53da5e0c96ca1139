//! `/api/permissions`: a user's configure/write/read regular expressions per vhost, as
//! RabbitMQ keeps them. Setting any lets the user open the vhost; clearing them takes that
//! away. (What the expressions allow inside the vhost is enforced by the permission work of
//! the security issue.)

use super::auth::Caller;
use super::error::ApiError;
use super::listing::respond;
use super::request::{json_body, put_status};
use super::Api;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use junction_core::storage::Permission;
use serde_json::{json, Value};
use std::collections::HashMap;

fn describe(p: &Permission) -> Value {
    json!({
        "user": p.user,
        "vhost": p.vhost,
        "configure": p.configure,
        "write": p.write,
        "read": p.read,
    })
}

/// `GET /api/permissions` (administrators).
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    caller.require_administrator()?;
    respond(
        api.broker
            .auth()
            .permissions()
            .iter()
            .map(describe)
            .collect(),
        &q,
    )
}

/// `GET /api/users/{user}/permissions` (administrators).
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
    let all = api.broker.auth().permissions();
    Ok(Json(
        all.iter()
            .filter(|p| p.user == user)
            .map(describe)
            .collect(),
    ))
}

/// `GET /api/vhosts/{vhost}/permissions` (administrators).
pub(crate) async fn of_vhost(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require_administrator()?;
    api.broker
        .vhost(&vhost)
        .map_err(|_| ApiError::not_found())?;
    let all = api.broker.auth().permissions();
    Ok(Json(
        all.iter()
            .filter(|p| p.vhost == vhost)
            .map(describe)
            .collect(),
    ))
}

/// `GET /api/permissions/{vhost}/{user}` (administrators).
pub(crate) async fn show(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require_administrator()?;
    let p = api
        .broker
        .auth()
        .permission(&user, &vhost)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(describe(&p)))
}

/// One of the three expressions: a string that compiles as a regular expression.
fn pattern(fields: &serde_json::Map<String, Value>, key: &str) -> Result<String, ApiError> {
    match fields.get(key) {
        Some(Value::String(s)) => {
            junction_core::access::check_pattern(key, s)?;
            Ok(s.clone())
        }
        Some(_) => Err(ApiError::bad_request(format!("'{key}' must be a string"))),
        None => Err(ApiError::bad_request(format!("'{key}' is missing"))),
    }
}

/// `PUT /api/permissions/{vhost}/{user}` with `configure`, `write`, `read`: 201 when set
/// for the first time, 204 when changed.
pub(crate) async fn put(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    let fields = json_body(&body)?;
    let p = Permission {
        configure: pattern(&fields, "configure")?,
        write: pattern(&fields, "write")?,
        read: pattern(&fields, "read")?,
        user: user.clone(),
        vhost: vhost.clone(),
    };
    let existed = api.broker.auth().permission(&user, &vhost).is_some();
    api.broker.put_permission(p)?;
    api.broker.sync().await?;
    tracing::info!(user = %user, vhost = %vhost, by = %caller.name, "permissions set through the management API");
    Ok(put_status(existed))
}

/// `DELETE /api/permissions/{vhost}/{user}`.
pub(crate) async fn delete(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    api.broker.delete_permission(&user, &vhost)?;
    api.broker.sync().await?;
    tracing::info!(user = %user, vhost = %vhost, by = %caller.name, "permissions cleared through the management API");
    Ok(StatusCode::NO_CONTENT)
}
