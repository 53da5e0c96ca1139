//! `/api/bindings` and the binding lists of queues and exchanges: list, create (POST), and
//! delete by properties key. A binding without arguments has its routing key as properties
//! key (`~` for an empty key), as RabbitMQ; with arguments, the key, `~` and a hash of them.

use super::args::table_to_json;
use super::auth::Caller;
use super::error::ApiError;
use super::exchanges::exchange_name;
use super::listing::respond;
use super::request::{arguments, json_body};
use super::Api;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use junction_core::vhost::VHost;
use junction_core::{Binding, Destination};
use serde_json::{json, Value};
use std::collections::HashMap;

/// RabbitMQ's properties key of a binding.
fn properties_key(b: &Binding) -> String {
    if b.arguments.is_empty() {
        return if b.routing_key.is_empty() {
            "~".to_string()
        } else {
            b.routing_key.clone()
        };
    }
    // FNV-1a of the arguments' JSON: stable for one set of arguments.
    let text = table_to_json(&b.arguments).to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}~{h:016x}", b.routing_key)
}

fn describe(v: &VHost, b: &Binding) -> Value {
    let (destination_type, destination) = match &b.destination {
        Destination::Queue(q) => ("queue", q),
        Destination::Exchange(e) => ("exchange", e),
    };
    json!({
        "source": b.source,
        "vhost": v.name,
        "destination": destination,
        "destination_type": destination_type,
        "routing_key": b.routing_key,
        "arguments": table_to_json(&b.arguments),
        "properties_key": properties_key(b),
    })
}

/// Every binding of a vhost, the default exchange's implicit ones first (as RabbitMQ lists
/// them: each queue bound to `""` by its name).
fn all_of(v: &VHost) -> Vec<Binding> {
    let mut queues = v.queue_names();
    queues.sort();
    let mut out: Vec<Binding> = queues
        .into_iter()
        .map(|q| Binding {
            source: String::new(),
            destination: Destination::Queue(q.clone()),
            routing_key: q,
            arguments: Default::default(),
        })
        .collect();
    let mut explicit = v.bindings();
    explicit.sort_by(|a, b| {
        (&a.source, a.destination.name(), &a.routing_key).cmp(&(
            &b.source,
            b.destination.name(),
            &b.routing_key,
        ))
    });
    out.extend(explicit);
    out
}

/// `GET /api/bindings`.
pub(crate) async fn list_all(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    for v in caller.vhosts(&api) {
        out.extend(all_of(&v).iter().map(|b| describe(&v, b)));
    }
    respond(out, &q)
}

/// `GET /api/bindings/{vhost}`.
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    respond(all_of(&v).iter().map(|b| describe(&v, b)).collect(), &q)
}

/// `GET /api/queues/{vhost}/{name}/bindings`.
pub(crate) async fn of_queue(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    v.queue(&name, None).map_err(|_| ApiError::not_found())?;
    let dest = Destination::Queue(name);
    Ok(Json(
        all_of(&v)
            .iter()
            .filter(|b| b.destination == dest)
            .map(|b| describe(&v, b))
            .collect(),
    ))
}

/// `GET /api/exchanges/{vhost}/{name}/bindings/source` and `.../destination`.
pub(crate) async fn of_exchange(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name, side)): Path<(String, String, String)>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    let name = exchange_name(&name).to_string();
    v.exchange(&name).map_err(|_| ApiError::not_found())?;
    let keep: Box<dyn Fn(&Binding) -> bool> = match side.as_str() {
        "source" => Box::new(|b: &Binding| b.source == name),
        "destination" => {
            Box::new(|b: &Binding| b.destination == Destination::Exchange(name.clone()))
        }
        _ => return Err(ApiError::not_found()),
    };
    Ok(Json(
        all_of(&v)
            .iter()
            .filter(|b| keep(b))
            .map(|b| describe(&v, b))
            .collect(),
    ))
}

fn destination_of(kind: &str, name: String) -> Result<Destination, ApiError> {
    match kind {
        "q" => Ok(Destination::Queue(name)),
        "e" => Ok(Destination::Exchange(exchange_name(&name).to_string())),
        _ => Err(ApiError::not_found()),
    }
}

/// `POST /api/bindings/{vhost}/e/{exchange}/{q|e}/{destination}` with `routing_key` and
/// `arguments`: 201, with the new binding's path in `Location`.
pub(crate) async fn create(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, source, kind, destination)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap), ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    let destination = destination_of(&kind, destination)?;
    let fields = json_body(&body)?;
    let routing_key = match fields.get("routing_key") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(k)) => k.clone(),
        Some(_) => return Err(ApiError::bad_request("'routing_key' must be a string")),
    };
    let arguments = arguments(&fields)?;
    let source = exchange_name(&source).to_string();
    if source.is_empty() {
        return Err(ApiError::forbidden(
            "the default exchange's bindings are implicit and cannot be added",
        ));
    }
    let b = Binding {
        source,
        destination,
        routing_key,
        arguments,
    };
    if v.bind(b.clone(), None)?.stored() {
        api.broker.sync().await?;
    }
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&properties_key(&b)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers))
}

/// `GET` / `DELETE /api/bindings/{vhost}/e/{exchange}/{q|e}/{destination}/{props}`.
async fn find(
    api: &Api,
    caller: &Caller,
    (vhost, source, kind, destination, props): (String, String, String, String, String),
) -> Result<(std::sync::Arc<VHost>, Binding), ApiError> {
    let v = caller.vhost(api, &vhost)?;
    let destination = destination_of(&kind, destination)?;
    let source = exchange_name(&source).to_string();
    let b = all_of(&v)
        .into_iter()
        .find(|b| b.source == source && b.destination == destination && properties_key(b) == props)
        .ok_or_else(ApiError::not_found)?;
    Ok((v, b))
}

/// `GET /api/bindings/{vhost}/e/{exchange}/{q|e}/{destination}/{props}`.
pub(crate) async fn show(
    State(api): State<Api>,
    caller: Caller,
    Path(path): Path<(String, String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (v, b) = find(&api, &caller, path).await?;
    Ok(Json(describe(&v, &b)))
}

/// `DELETE /api/bindings/{vhost}/e/{exchange}/{q|e}/{destination}/{props}`.
pub(crate) async fn delete(
    State(api): State<Api>,
    caller: Caller,
    Path(path): Path<(String, String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let (v, b) = find(&api, &caller, path).await?;
    if b.source.is_empty() {
        return Err(ApiError::forbidden(
            "the default exchange's bindings are implicit and cannot be removed",
        ));
    }
    if v.unbind(&b, None)?.stored() {
        api.broker.sync().await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/bindings/{vhost}/e/{exchange}/{q|e}/{destination}`: the bindings between two.
pub(crate) async fn list_between(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, source, kind, destination)): Path<(String, String, String, String)>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let v = caller.vhost(&api, &vhost)?;
    let destination = destination_of(&kind, destination)?;
    let source = exchange_name(&source).to_string();
    Ok(Json(
        all_of(&v)
            .iter()
            .filter(|b| b.source == source && b.destination == destination)
            .map(|b| describe(&v, b))
            .collect(),
    ))
}
