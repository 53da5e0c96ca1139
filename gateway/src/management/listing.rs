//! What every list endpoint accepts, as RabbitMQ's: `name` (a substring, or a regular
//! expression with `use_regex=true`), `sort` and `sort_reverse`, `columns` (comma-separated,
//! dotted for nested fields), and `page` / `page_size` (1 to 500, default 100), which turn the
//! answer into `{"items", "page", "page_count", "page_size", "item_count", "filtered_count",
//! "total_count"}`.

use super::error::ApiError;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use std::collections::HashMap;

const MAX_PAGE_SIZE: usize = 500;

/// The query parameters that shape a listing.
const SHAPING: [&str; 5] = ["name", "sort", "columns", "page", "page_size"];

/// [`respond`] for items of a typed view: a plain listing (what a poller asks for) is written
/// straight from the views, never built as JSON values, which costs a large listing several
/// times less; a shaped one goes through [`respond`].
pub(crate) fn respond_typed<T: serde::Serialize>(
    items: Vec<T>,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    if !SHAPING.iter().any(|k| q.contains_key(*k)) {
        return Ok(Json(items).into_response());
    }
    let values = items
        .into_iter()
        .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
        .collect();
    respond(values, q).map(IntoResponse::into_response)
}

fn number(q: &HashMap<String, String>, key: &str) -> Result<Option<usize>, ApiError> {
    q.get(key)
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("'{key}' must be a positive integer")))
        })
        .transpose()
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// The field at a dotted path.
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// Keeps only `columns` of an item (nested ones under their parents).
fn only(item: &Value, columns: &[&str]) -> Value {
    let mut out = Map::new();
    for c in columns {
        let Some(v) = at(item, c) else { continue };
        let mut parts = c.split('.').peekable();
        let mut slot = &mut out;
        while let Some(k) = parts.next() {
            if parts.peek().is_none() {
                slot.insert(k.to_string(), v.clone());
            } else {
                let next = slot
                    .entry(k.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                match next {
                    Value::Object(m) => slot = m,
                    _ => break,
                }
            }
        }
    }
    Value::Object(out)
}

/// Filters, sorts, pages and trims `items` as the query asks.
pub(crate) fn respond(
    mut items: Vec<Value>,
    q: &HashMap<String, String>,
) -> Result<Json<Value>, ApiError> {
    let total = items.len();
    if let Some(name) = q.get("name").filter(|n| !n.is_empty()) {
        let matches: Box<dyn Fn(&str) -> bool> = if q.get("use_regex").is_some_and(|v| v == "true")
        {
            let re = regex::Regex::new(name).map_err(|e| {
                ApiError::bad_request(format!("'name' is not a valid regular expression: {e}"))
            })?;
            Box::new(move |s: &str| re.is_match(s))
        } else {
            let needle = name.clone();
            Box::new(move |s: &str| s.contains(needle.as_str()))
        };
        items.retain(|i| i.get("name").and_then(Value::as_str).is_some_and(&matches));
    }
    if let Some(key) = q.get("sort").filter(|k| !k.is_empty()) {
        items.sort_by(|a, b| {
            compare(
                at(a, key).unwrap_or(&Value::Null),
                at(b, key).unwrap_or(&Value::Null),
            )
        });
        if q.get("sort_reverse").is_some_and(|v| v == "true") {
            items.reverse();
        }
    }
    let columns: Option<Vec<&str>> = q.get("columns").map(|c| {
        c.split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect()
    });
    let trim = |items: Vec<Value>| -> Vec<Value> {
        match &columns {
            Some(cols) => items.iter().map(|i| only(i, cols)).collect(),
            None => items,
        }
    };
    let Some(page) = number(q, "page")? else {
        return Ok(Json(Value::Array(trim(items))));
    };
    let page_size = number(q, "page_size")?.unwrap_or(100);
    if page == 0 || page_size == 0 || page_size > MAX_PAGE_SIZE {
        return Err(ApiError::bad_request(format!(
            "'page' must be at least 1 and 'page_size' 1 to {MAX_PAGE_SIZE}"
        )));
    }
    let filtered = items.len();
    let page_count = filtered.div_ceil(page_size).max(1);
    if page > page_count {
        return Err(ApiError::bad_request("page out of range"));
    }
    let page_items: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .collect();
    Ok(Json(json!({
        "item_count": page_items.len(),
        "items": trim(page_items),
        "page": page,
        "page_count": page_count,
        "page_size": page_size,
        "filtered_count": filtered,
        "total_count": total,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn items() -> Vec<Value> {
        (0..7)
            .map(|i| json!({"name": format!("q{i}"), "messages": 7 - i, "stats": {"rate": i}}))
            .collect()
    }

    #[test]
    fn pages_sorts_filters_and_trims_columns() {
        let Json(v) = respond(items(), &q(&[("page", "2"), ("page_size", "3")])).unwrap();
        assert_eq!(
            (v["page_count"].as_u64(), v["item_count"].as_u64()),
            (Some(3), Some(3))
        );
        assert_eq!(v["items"][0]["name"], "q3");
        let Json(v) = respond(items(), &q(&[("sort", "messages")])).unwrap();
        assert_eq!(v[0]["name"], "q6");
        let Json(v) = respond(items(), &q(&[("sort", "name"), ("sort_reverse", "true")])).unwrap();
        assert_eq!(v[0]["name"], "q6");
        let Json(v) = respond(items(), &q(&[("name", "q[12]"), ("use_regex", "true")])).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(2));
        let Json(v) = respond(items(), &q(&[("columns", "name,stats.rate")])).unwrap();
        assert_eq!(v[1], json!({"name": "q1", "stats": {"rate": 1}}));
        for bad in [
            q(&[("page", "0")]),
            q(&[("page", "9")]),
            q(&[("page", "1"), ("page_size", "501")]),
            q(&[("page", "x")]),
            q(&[("name", "("), ("use_regex", "true")]),
        ] {
            assert!(respond(items(), &bad).is_err(), "{bad:?}");
        }
    }
}
