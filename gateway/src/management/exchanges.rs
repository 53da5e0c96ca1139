//! `/api/exchanges`: list, show, declare (PUT), delete, and publish a message.
//! The default exchange is named `amq.default` in paths, as in RabbitMQ.

use super::args::{object_to_table, table_to_json};
use super::auth::Caller;
use super::error::ApiError;
use super::listing::respond;
use super::request::{arguments, flag, json_body, put_status};
use super::stats::Samples;
use super::Api;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use junction_core::exchange::Exchange;
use junction_core::vhost::VHost;
use junction_core::{ExchangeDef, ExchangeKind, Message, Properties};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The exchange a path names (`amq.default` is the default exchange, "").
pub(crate) fn exchange_name(path: &str) -> &str {
    if path == "amq.default" {
        ""
    } else {
        path
    }
}

fn describe(v: &VHost, e: &Exchange, samples: &Samples) -> Value {
    let d = &e.def;
    json!({
        "name": d.name,
        "vhost": v.name,
        "type": d.kind.as_str(),
        "durable": d.durable,
        "auto_delete": d.auto_delete,
        "internal": d.internal,
        "arguments": table_to_json(&d.arguments),
        "policy": e.policy().map(|p| p.name.clone()),
        "message_stats": samples.exchange(&v.name, &d.name, e.counters()),
    })
}

fn sorted(v: &VHost) -> Vec<Arc<Exchange>> {
    let mut names = v.exchange_names();
    names.sort();
    names.iter().filter_map(|n| v.exchange(n).ok()).collect()
}

/// `GET /api/exchanges`.
pub(crate) async fn list_all(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    let samples = api.stats.read();
    for v in caller.vhosts(&api) {
        out.extend(sorted(&v).iter().map(|e| describe(&v, e, &samples)));
    }
    drop(samples);
    respond(out, &q)
}

/// `GET /api/exchanges/{vhost}`.
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    let samples = api.stats.read();
    let all = sorted(&v)
        .iter()
        .map(|e| describe(&v, e, &samples))
        .collect();
    drop(samples);
    respond(all, &q)
}

/// `GET /api/exchanges/{vhost}/{name}`.
pub(crate) async fn show(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    let e = v
        .exchange(exchange_name(&name))
        .map_err(|_| ApiError::not_found())?;
    let out = describe(&v, &e, &api.stats.read());
    Ok(Json(out))
}

/// `PUT /api/exchanges/{vhost}/{name}` with `type`, `durable`, `auto_delete`, `internal`,
/// `arguments`: 201 when declared, 204 when it was declared the same way, 400 otherwise.
pub(crate) async fn put(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    let fields = json_body(&body)?;
    let kind = match fields.get("type") {
        Some(Value::String(t)) => ExchangeKind::parse(t)
            .map_err(|_| ApiError::bad_request(format!("unknown exchange type '{t}'")))?,
        Some(_) => return Err(ApiError::bad_request("'type' must be a string")),
        None => return Err(ApiError::bad_request("an exchange needs a 'type'")),
    };
    let arguments = arguments(&fields)?;
    let name = exchange_name(&name).to_string();
    if name.is_empty() || name.starts_with("amq.") {
        return Err(ApiError::forbidden(format!(
            "exchange name '{name}' is reserved for the broker"
        )));
    }
    let def = ExchangeDef {
        name: name.clone(),
        kind,
        durable: flag(&fields, "durable", true)?,
        auto_delete: flag(&fields, "auto_delete", false)?,
        internal: flag(&fields, "internal", false)?,
        arguments,
    };
    let existed = v.exchange(&name).is_ok();
    let outcome = v.declare_exchange(def, false)?;
    if outcome.stored() {
        api.broker.sync().await?;
    }
    Ok(put_status(existed))
}

/// `DELETE /api/exchanges/{vhost}/{name}` with optional `if-unused`.
pub(crate) async fn delete(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    let name = exchange_name(&name);
    v.exchange(name).map_err(|_| ApiError::not_found())?;
    if name.is_empty() || name.starts_with("amq.") {
        return Err(ApiError::forbidden(format!(
            "exchange '{name}' belongs to the broker"
        )));
    }
    let if_unused = query.get("if-unused").is_some_and(|x| x == "true");
    if v.delete_exchange(name, if_unused)?.stored() {
        api.broker.sync().await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

fn opt_string(p: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!(
            "property '{key}' must be a string"
        ))),
    }
}

fn opt_number(p: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("property '{key}' must be a number"))),
    }
}

/// The message properties of a publish request.
fn properties_of(p: &Map<String, Value>) -> Result<Properties, ApiError> {
    let headers = match p.get("headers") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(object_to_table(m)),
        Some(_) => return Err(ApiError::bad_request("'headers' must be an object")),
    };
    let small = |key: &str| -> Result<Option<u8>, ApiError> {
        opt_number(p, key)?
            .map(|n| {
                u8::try_from(n)
                    .map_err(|_| ApiError::bad_request(format!("property '{key}' is out of range")))
            })
            .transpose()
    };
    Ok(Properties {
        content_type: opt_string(p, "content_type")?,
        content_encoding: opt_string(p, "content_encoding")?,
        headers,
        delivery_mode: small("delivery_mode")?,
        priority: small("priority")?,
        correlation_id: opt_string(p, "correlation_id")?,
        reply_to: opt_string(p, "reply_to")?,
        expiration: opt_string(p, "expiration")?,
        message_id: opt_string(p, "message_id")?,
        timestamp: opt_number(p, "timestamp")?,
        kind: opt_string(p, "type")?,
        user_id: opt_string(p, "user_id")?,
        app_id: opt_string(p, "app_id")?,
        ..Properties::default()
    })
}

/// What a publish or a route test names: its vhost, the exchange, the routing key and the
/// message properties, and the rest of the body.
struct Addressed {
    vhost: std::sync::Arc<junction_core::vhost::VHost>,
    exchange: String,
    routing_key: String,
    properties: Properties,
    fields: Map<String, Value>,
}

/// Reads the vhost, exchange (404 if absent), `routing_key` and `properties` of a request.
fn addressed(
    api: &Api,
    caller: &Caller,
    vhost: &str,
    name: &str,
    body: &[u8],
) -> Result<Addressed, ApiError> {
    let v = caller.vhost(api, vhost)?;
    let exchange = exchange_name(name).to_string();
    v.exchange(&exchange).map_err(|_| ApiError::not_found())?;
    let fields = json_body(body)?;
    let routing_key = match fields.get("routing_key") {
        Some(Value::String(k)) => k.clone(),
        _ => return Err(ApiError::bad_request("'routing_key' must be a string")),
    };
    let properties = match fields.get("properties") {
        None | Some(Value::Null) => Properties::default(),
        Some(Value::Object(p)) => properties_of(p)?,
        Some(_) => return Err(ApiError::bad_request("'properties' must be an object")),
    };
    Ok(Addressed {
        vhost: v,
        exchange,
        routing_key,
        properties,
        fields,
    })
}

/// `POST /api/exchanges/{vhost}/{name}/publish` with `routing_key`, `payload`,
/// `payload_encoding` (`string` or `base64`) and `properties`; answers `{"routed": bool}`.
pub(crate) async fn publish(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let a = addressed(&api, &caller, &vhost, &name, &body)?;
    let payload = match a.fields.get("payload") {
        Some(Value::String(p)) => p.clone(),
        _ => return Err(ApiError::bad_request("'payload' must be a string")),
    };
    let body = match a.fields.get("payload_encoding").and_then(Value::as_str) {
        None | Some("string") => payload.into_bytes(),
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(payload)
            .map_err(|_| ApiError::bad_request("'payload' is not base64"))?,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "'payload_encoding' must be string or base64, not '{other}'"
            )))
        }
    };
    let message = Message::new(
        a.exchange.as_str(),
        a.routing_key,
        a.properties,
        body.into(),
    );
    let routed = caller
        .authorized(&api, a.vhost.clone())
        .publish(&a.exchange, message)?;
    if routed.stored > 0 {
        api.broker.sync().await?;
    }
    Ok(Json(json!({ "routed": routed.queues > 0 })))
}

/// `POST /api/exchanges/{vhost}/{name}/route` with `routing_key` and optional
/// `properties.headers` (a Junction addition; RabbitMQ has no such tool): the queues a message
/// would reach, as `{"routed_to": [names]}`, without publishing anything.
pub(crate) async fn route(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let a = addressed(&api, &caller, &vhost, &name, &body)?;
    let queues = a
        .vhost
        .would_route(&a.exchange, &a.routing_key, a.properties.headers)?;
    Ok(Json(json!({ "routed_to": queues })))
}
