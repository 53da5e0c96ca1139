//! STOMP headers ⇄ the core's message properties (RabbitMQ's STOMP mapping).
//!
//! Values that STOMP cannot carry as text (AMQP tables and arrays) are written as JSON; byte
//! arrays as UTF-8 (lossy). See the README's mapping table.

use junction_core::{FieldTable, FieldValue, Properties};

/// Headers that are STOMP's own and never become message headers.
const RESERVED: [&str; 10] = [
    "destination",
    "receipt",
    "transaction",
    "content-length",
    "ack",
    "id",
    "subscription",
    "message-id",
    "prefetch-count",
    "redelivered",
];

/// SEND headers → properties. `reply_to` is what the caller resolved the reply-to header to.
pub fn to_properties(headers: &[(String, String)]) -> Properties {
    let mut p = Properties::default();
    let mut table = FieldTable::new();
    let mut seen: Vec<&str> = Vec::new();
    for (k, v) in headers {
        if seen.contains(&k.as_str()) {
            continue; // first occurrence wins
        }
        seen.push(k);
        match k.as_str() {
            "content-type" => p.content_type = Some(v.clone()),
            "content-encoding" => p.content_encoding = Some(v.clone()),
            "correlation-id" => p.correlation_id = Some(v.clone()),
            "reply-to" => p.reply_to = Some(v.clone()),
            "expiration" => p.expiration = Some(v.clone()),
            "priority" => p.priority = v.trim().parse().ok(),
            "persistent" => p.delivery_mode = Some(if v == "true" { 2 } else { 1 }),
            "app-id" => p.app_id = Some(v.clone()),
            "user-id" => p.user_id = Some(v.clone()),
            "type" => p.kind = Some(v.clone()),
            "timestamp" => p.timestamp = v.trim().parse().ok(),
            "amqp-message-id" => p.message_id = Some(v.clone()),
            k if RESERVED.contains(&k) => {}
            k => table.insert(k, FieldValue::string(v.clone())),
        }
    }
    if !table.is_empty() {
        p.headers = Some(table);
    }
    p
}

/// Properties → MESSAGE headers (appended to `out`).
pub fn from_properties(p: &Properties, out: &mut Vec<(String, String)>) {
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            out.push((k.to_string(), v));
        }
    };
    put("content-type", p.content_type.clone());
    put("content-encoding", p.content_encoding.clone());
    put("correlation-id", p.correlation_id.clone());
    put(
        "reply-to",
        p.reply_to.as_ref().map(|r| {
            if r.starts_with('/') {
                r.clone()
            } else {
                format!("/reply-queue/{r}")
            }
        }),
    );
    put("expiration", p.expiration.clone());
    put("priority", p.priority.map(|n| n.to_string()));
    put(
        "persistent",
        (p.delivery_mode == Some(2)).then(|| "true".to_string()),
    );
    put("app-id", p.app_id.clone());
    put("user-id", p.user_id.clone());
    put("type", p.kind.clone());
    put("timestamp", p.timestamp.map(|t| t.to_string()));
    put("amqp-message-id", p.message_id.clone());
    if let Some(h) = &p.headers {
        for (k, v) in h.iter() {
            if !RESERVED.contains(&k) {
                out.push((k.to_string(), v.to_text()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn send_headers_map_to_properties() {
        let p = to_properties(&h(&[
            ("destination", "/queue/a"),
            ("content-type", "application/json"),
            ("persistent", "true"),
            ("priority", "5"),
            ("expiration", "60000"),
            ("amqp-message-id", "m1"),
            ("x-tenant", "acme"),
            ("x-tenant", "ignored"),
            ("receipt", "r1"),
        ]));
        assert_eq!(p.content_type.as_deref(), Some("application/json"));
        assert_eq!(p.delivery_mode, Some(2));
        assert_eq!(p.priority, Some(5));
        assert_eq!(p.expiration.as_deref(), Some("60000"));
        assert_eq!(p.message_id.as_deref(), Some("m1"));
        let t = p.headers.unwrap();
        assert_eq!(t.get_str("x-tenant"), Some("acme"));
        assert_eq!(t.len(), 1);
    }
}
