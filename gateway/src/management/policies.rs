//! `/api/policies`: RabbitMQ's policies per vhost (pattern, apply-to, priority, definition),
//! for `policymaker` and `administrator` users in the vhosts they may open.

use super::args::{object_to_table, table_to_json};
use super::auth::Caller;
use super::error::ApiError;
use super::listing::respond;
use super::request::{json_body, put_status};
use super::Api;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use junction_core::policy::{ApplyTo, Policy};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// A policy as RabbitMQ's API writes it.
pub(crate) fn describe(p: &Policy) -> Value {
    json!({
        "vhost": p.vhost,
        "name": p.name,
        "pattern": p.pattern,
        "apply-to": p.apply_to.as_str(),
        "definition": table_to_json(&p.definition),
        "priority": p.priority,
    })
}

/// A policy from RabbitMQ's JSON (`pattern` and `definition` required; `priority` 0 and
/// `apply-to` "all" by default), or 400 naming the field.
pub(crate) fn parse(vhost: &str, name: &str, f: &Map<String, Value>) -> Result<Policy, ApiError> {
    let pattern = match f.get("pattern") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::bad_request("'pattern' must be a string")),
        None => return Err(ApiError::bad_request("'pattern' is missing")),
    };
    let definition = match f.get("definition") {
        Some(Value::Object(m)) => object_to_table(m),
        Some(_) => return Err(ApiError::bad_request("'definition' must be an object")),
        None => return Err(ApiError::bad_request("'definition' is missing")),
    };
    let priority = match f.get("priority") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("'priority' must be an integer"))?,
        // rabbitmqadmin and the console send it as a string.
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| ApiError::bad_request("'priority' must be an integer"))?,
        Some(_) => return Err(ApiError::bad_request("'priority' must be an integer")),
    };
    let apply_to = match f.get("apply-to") {
        None | Some(Value::Null) => ApplyTo::All,
        Some(Value::String(s)) => ApplyTo::parse(s)?,
        Some(_) => return Err(ApiError::bad_request("'apply-to' must be a string")),
    };
    Ok(Policy {
        vhost: vhost.to_string(),
        name: name.to_string(),
        pattern,
        apply_to,
        priority,
        definition,
    })
}

/// `GET /api/policies`: the policies of every vhost the caller may see.
pub(crate) async fn list_all(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    caller.require_policymaker()?;
    let mut out = Vec::new();
    for v in caller.vhosts(&api) {
        out.extend(v.policies().iter().map(describe));
    }
    respond(out, &q)
}

/// `GET /api/policies/{vhost}`.
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    caller.require_policymaker()?;
    let v = caller.vhost(&api, &vhost)?;
    respond(v.policies().iter().map(describe).collect(), &q)
}

/// `GET /api/policies/{vhost}/{name}`.
pub(crate) async fn show(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require_policymaker()?;
    let v = caller.vhost(&api, &vhost)?;
    let p = v
        .policies()
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(describe(&p)))
}

/// `PUT /api/policies/{vhost}/{name}`: 201 when created, 204 when replaced; applied to the
/// vhost's queues and exchanges before the answer.
pub(crate) async fn put(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_policymaker()?;
    let v = caller.vhost(&api, &vhost)?;
    let p = parse(&vhost, &name, &json_body(&body)?)?;
    let existed = v.policies().iter().any(|p| p.name == name);
    v.put_policy(p)?;
    api.broker.sync().await?;
    tracing::info!(policy = %name, vhost = %vhost, by = %caller.name, "policy set through the management API");
    Ok(put_status(existed))
}

/// `DELETE /api/policies/{vhost}/{name}`.
pub(crate) async fn delete(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require_policymaker()?;
    let v = caller.vhost(&api, &vhost)?;
    v.delete_policy(&name)?;
    api.broker.sync().await?;
    tracing::info!(policy = %name, vhost = %vhost, by = %caller.name, "policy deleted through the management API");
    Ok(StatusCode::NO_CONTENT)
}
