//! What a PUT or POST body holds, read the same way by every endpoint: the JSON object,
//! flags, arguments tables; and what a PUT answers.

use super::args::object_to_table;
use super::error::ApiError;
use axum::http::StatusCode;
use junction_core::FieldTable;
use serde_json::{Map, Value};

/// The body of a PUT or POST as JSON (an empty body is `{}`), or 400.
pub(crate) fn json_body(
    body: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!("body is not JSON: {e}"))),
    }
}

/// A boolean field (absent or null: `default`).
pub(crate) fn flag(
    fields: &Map<String, Value>,
    key: &str,
    default: bool,
) -> Result<bool, ApiError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::bad_request(format!(
            "'{key}' must be true or false"
        ))),
    }
}

/// The `arguments` object as a field table (absent or null: empty).
pub(crate) fn arguments(fields: &Map<String, Value>) -> Result<FieldTable, ApiError> {
    match fields.get("arguments") {
        None | Some(Value::Null) => Ok(FieldTable::new()),
        Some(Value::Object(m)) => Ok(object_to_table(m)),
        Some(_) => Err(ApiError::bad_request("'arguments' must be an object")),
    }
}

/// What a PUT answers: 201 when it created the object, 204 when the object was there.
pub(crate) fn put_status(existed: bool) -> StatusCode {
    if existed {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    }
}
