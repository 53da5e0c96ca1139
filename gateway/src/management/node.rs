//! The node itself: `GET /api/nodes` as RabbitMQ's (memory, disk, alarms, uptime, listeners),
//! and Junction's operations that RabbitMQ does over Erlang distribution rather than HTTP,
//! under `/api/junction/`: the client listeners' switch (`stop_app`/`start_app`), the log
//! level, and the configuration in force (`environment`). `junction ctl` calls these.

use super::auth::Caller;
use super::error::ApiError;
use super::overview::NODE;
use super::request::json_body;
use super::Api;
use crate::{disk_monitor, logging, memory_monitor};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use junction_core::connections::Alarm;
use serde_json::{json, Value};

/// What one node reports: RabbitMQ's `/api/nodes/{name}` fields, plus Junction's own.
async fn describe(api: &Api) -> Value {
    let n = &api.node;
    let b = &api.broker;
    let mem_used = memory_monitor::resident_bytes().unwrap_or(0);
    let disk_free = disk_monitor::free_bytes(&n.data_dir).unwrap_or(0);
    let (segments, store_bytes) = n.log.disk_usage();
    let listeners = super::overview::listeners(api);
    let alarm = |a| b.resource_alarm_of(a).is_some();
    let mqtt = n.mqtt.counts();
    json!({
        "name": NODE,
        "type": "disc",
        "running": true,
        "being_drained": false,
        "uptime": n.started.elapsed().as_millis() as u64,
        "os_pid": std::process::id().to_string(),
        "rabbitmq_version": env!("CARGO_PKG_VERSION"),
        "product_name": "Junction",
        "mem_used": mem_used,
        "mem_limit": n.memory.get(),
        "mem_alarm": alarm(Alarm::Memory),
        "mem_calculation_strategy": "rss",
        "disk_free": disk_free,
        "disk_free_limit": n.disk.free(),
        "disk_free_alarm": alarm(Alarm::Disk),
        "fd_used": crate::descriptors::open_count().unwrap_or(0),
        "fd_total": crate::descriptors::limit().unwrap_or(0),
        "sockets_used": b.connection_count(),
        "processors": std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1),
        "listeners": listeners,
        "data_dir": n.data_dir.display().to_string(),
        "junction": {
            "accepting_clients": n.clients.running().await,
            "connections_by_protocol": b.connections_by_protocol(),
            "channels": b.channel_total(),
            "alarm": b.resource_alarm().map(|r| r.to_string()),
            "log_level": logging::current(),
            "mqtt": {
                "sessions": mqtt.sessions,
                "sessions_connected": mqtt.connected,
                "retained_messages": mqtt.retained,
            },
            "store": {
                "segments": segments,
                "bytes": store_bytes,
                "recovery_seconds": n.recovery_seconds,
                "damaged_stretches_skipped": n.recovery_damage.0,
                "torn_tails_cut": n.recovery_damage.1,
            },
        },
    })
}

/// `GET /api/nodes`.
pub(crate) async fn list(State(api): State<Api>, _caller: Caller) -> Json<Value> {
    Json(json!([describe(&api).await]))
}

/// `GET /api/nodes/{name}`.
pub(crate) async fn show(
    State(api): State<Api>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if name != NODE {
        return Err(ApiError::not_found());
    }
    Ok(Json(describe(&api).await))
}

/// `GET /api/junction/app`: whether the client listeners accept connections.
pub(crate) async fn app(State(api): State<Api>, _caller: Caller) -> Json<Value> {
    Json(json!({ "running": api.node.clients.running().await }))
}

/// `PUT /api/junction/app` with `{"running": false}` (`stop_app`: close the client listeners
/// and every client connection) or `{"running": true}` (`start_app`). Administrators only.
pub(crate) async fn set_app(
    State(api): State<Api>,
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    let fields = json_body(&body)?;
    let running = match fields.get("running") {
        Some(Value::Bool(b)) => *b,
        _ => return Err(ApiError::bad_request("'running' must be true or false")),
    };
    let clients = &api.node.clients;
    if running {
        clients
            .resume()
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
    } else {
        clients.stop().await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/junction/reload-certificates`: reads the `[tls]` files again for new
/// connections (as SIGHUP does). Administrators only; 400 when TLS is not configured or a
/// file is bad (the certificate in force stays).
pub(crate) async fn reload_certificates(
    State(api): State<Api>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    match api.node.reload_certificates() {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::bad_request(
            "TLS is not configured ([tls] is not set)",
        )),
        Err(e) => Err(ApiError::bad_request(e.to_string())),
    }
}

/// `PUT /api/junction/log-level` with `{"level": "debug"}`: RabbitMQ's level names or a
/// RUST_LOG filter. Administrators only.
pub(crate) async fn set_log_level(caller: Caller, body: Bytes) -> Result<Json<Value>, ApiError> {
    caller.require_administrator()?;
    let fields = json_body(&body)?;
    let Some(Value::String(level)) = fields.get("level") else {
        return Err(ApiError::bad_request("'level' must be a string"));
    };
    match logging::set_level(level) {
        Ok(filter) => {
            tracing::info!(filter, by = caller.name, "log level changed");
            Ok(Json(json!({ "level": level, "filter": filter })))
        }
        Err(logging::LevelError::Invalid(why)) => Err(ApiError::bad_request(format!(
            "'{level}' is not a log level: {why}"
        ))),
        Err(logging::LevelError::NotInstalled) => Err(ApiError::unavailable(
            "this broker does not own its process's logger",
        )),
    }
}

/// `GET /api/junction/environment`: the configuration in force, passwords hidden.
/// Administrators only.
pub(crate) async fn environment(
    State(api): State<Api>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require_administrator()?;
    Ok(Json(api.node.redacted_config()))
}

/// A byte count from a body field, or 400.
fn bytes_field(fields: &serde_json::Map<String, Value>) -> Result<Option<u64>, ApiError> {
    match fields.get("bytes") {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("'bytes' must be a non-negative integer")),
    }
}

/// `PUT /api/junction/memory-high-watermark` with `{"fraction": 0.4}` (of the memory available
/// to the process) or `{"bytes": N}`: `set_vm_memory_high_watermark`, checked at once.
/// Administrators only.
pub(crate) async fn set_memory_watermark(
    State(api): State<Api>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require_administrator()?;
    let fields = json_body(&body)?;
    let bytes = match (bytes_field(&fields)?, fields.get("fraction")) {
        (Some(b), None) => b,
        (None, Some(f)) => match f.as_f64() {
            Some(f) if (0.0..=1.0).contains(&f) => {
                (memory_monitor::total_memory() as f64 * f) as u64
            }
            _ => return Err(ApiError::bad_request("'fraction' must be between 0 and 1")),
        },
        _ => return Err(ApiError::bad_request("give either 'fraction' or 'bytes'")),
    };
    api.node.memory.set(bytes);
    tracing::info!(bytes, by = caller.name, "memory high watermark changed");
    Ok(Json(json!({ "mem_limit": bytes })))
}

/// `PUT /api/junction/disk-free-limit` with `{"bytes": N}`: `set_disk_free_limit`, checked at
/// once. Administrators only.
pub(crate) async fn set_disk_free_limit(
    State(api): State<Api>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require_administrator()?;
    let fields = json_body(&body)?;
    let bytes =
        bytes_field(&fields)?.ok_or_else(|| ApiError::bad_request("'bytes' is required"))?;
    api.node.disk.set_free(bytes);
    tracing::info!(bytes, by = caller.name, "free disk limit changed");
    Ok(Json(json!({ "disk_free_limit": bytes })))
}
