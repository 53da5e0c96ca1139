//! `/api/users` and `/api/whoami`: list, show, create or change (PUT) and delete users.
//! Passwords are stored as RabbitMQ's `rabbit_password_hashing_sha256` hashes; a PUT may carry
//! `password` (hashed here) or `password_hash` (taken as it is, as definitions imports do).

use super::auth::Caller;
use super::error::ApiError;
use super::listing::respond;
use super::request::{json_body, put_status};
use super::Api;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use junction_core::auth::hash_password;
use junction_core::storage::UserRecord;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The only hashing algorithm Junction stores.
const SHA256: &str = "rabbit_password_hashing_sha256";

/// A user as RabbitMQ's API shows it to an administrator (the hash, never the password).
pub(crate) fn describe(api: &Api, u: &UserRecord) -> Value {
    json!({
        "name": u.name,
        "tags": u.tags,
        "password_hash": base64::engine::general_purpose::STANDARD.encode(&u.password_hash),
        "hashing_algorithm": SHA256,
        "limits": api.broker.access().user_limits(&u.name),
    })
}

/// `GET /api/whoami`.
pub(crate) async fn whoami(caller: Caller) -> Json<Value> {
    Json(json!({ "name": caller.name, "tags": caller.tags }))
}

/// `GET /api/users` (administrators).
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    caller.require_administrator()?;
    respond(
        api.broker
            .auth()
            .users()
            .iter()
            .map(|u| describe(&api, u))
            .collect(),
        &q,
    )
}

/// `GET /api/users/{name}` (administrators).
pub(crate) async fn show(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_administrator()?;
    let u = api
        .broker
        .auth()
        .get(&name)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(describe(&api, &u)))
}

/// Tags as RabbitMQ takes them: a comma-separated string or a list of strings.
pub(crate) fn tags_of(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let bad = || ApiError::bad_request("'tags' must be a string or a list of strings");
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// The stored hash a PUT asks for.
pub(crate) fn hash_of(
    fields: &serde_json::Map<String, Value>,
) -> Result<Option<Vec<u8>>, ApiError> {
    match (fields.get("password"), fields.get("password_hash")) {
        (Some(Value::String(p)), _) => Ok(Some(hash_password(p))),
        (Some(_), _) => Err(ApiError::bad_request("'password' must be a string")),
        (None, Some(Value::String(h))) => {
            match fields.get("hashing_algorithm").and_then(Value::as_str) {
                None | Some(SHA256) => {}
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "hashing algorithm '{other}' is not supported (only {SHA256})"
                    )))
                }
            }
            if h.is_empty() {
                // RabbitMQ's passwordless user: no password logs it in.
                return Ok(Some(Vec::new()));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(h)
                .map_err(|_| ApiError::bad_request("'password_hash' is not base64"))?;
            if bytes.len() != 36 {
                return Err(ApiError::bad_request(
                    "'password_hash' is not a salted SHA-256 hash (36 bytes)",
                ));
            }
            Ok(Some(bytes))
        }
        (None, Some(_)) => Err(ApiError::bad_request("'password_hash' must be a string")),
        (None, None) => Ok(None),
    }
}

/// `PUT /api/users/{name}`: 201 when created, 204 when changed. An existing user keeps its
/// vhost access; a new one has none until permissions are set.
pub(crate) async fn put(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    let fields = json_body(&body)?;
    let tags = tags_of(fields.get("tags"))?;
    let hash = hash_of(&fields)?;
    if name.is_empty() {
        return Err(ApiError::bad_request("a user needs a name"));
    }
    let existing = api.broker.auth().get(&name);
    let created = existing.is_none();
    let record = match (existing, hash) {
        (Some(old), hash) => UserRecord {
            password_hash: hash.unwrap_or(old.password_hash),
            tags,
            ..old
        },
        (None, Some(password_hash)) => UserRecord {
            name: name.clone(),
            password_hash,
            tags,
            vhosts: Vec::new(),
        },
        (None, None) => {
            return Err(ApiError::bad_request(
                "a new user needs 'password' or 'password_hash'",
            ))
        }
    };
    api.broker.put_user(record)?;
    api.broker.sync().await?;
    tracing::info!(user = %name, by = %caller.name, created, "user saved through the management API");
    Ok(put_status(!created))
}

/// `DELETE /api/users/{name}`.
pub(crate) async fn delete(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    api.broker.delete_user(&name)?;
    api.broker.sync().await?;
    tracing::info!(user = %name, by = %caller.name, "user deleted through the management API");
    Ok(StatusCode::NO_CONTENT)
}
