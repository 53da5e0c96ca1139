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

/// A field value as STOMP header text.
pub fn value_text(v: &FieldValue) -> String {
    match v {
        FieldValue::LongString(b) | FieldValue::ByteArray(b) => {
            String::from_utf8_lossy(b).into_owned()
        }
        FieldValue::Table(_) | FieldValue::Array(_) => json(v),
        other => scalar(other),
    }
}

fn scalar(v: &FieldValue) -> String {
    match v {
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::F32(f) => f.to_string(),
        FieldValue::F64(f) => f.to_string(),
        FieldValue::Decimal { scale, value } => {
            let s = value.to_string();
            let scale = *scale as usize;
            if scale == 0 {
                s
            } else if s.len() > scale {
                format!("{}.{}", &s[..s.len() - scale], &s[s.len() - scale..])
            } else {
                format!("0.{}{s}", "0".repeat(scale - s.len()))
            }
        }
        FieldValue::Void => String::new(),
        other => other.as_i64().map(|n| n.to_string()).unwrap_or_default(),
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON text of a value (tables as objects, arrays as arrays, strings quoted).
pub fn json(v: &FieldValue) -> String {
    match v {
        FieldValue::Table(t) => {
            let fields: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{}:{}", json_string(k), json(v)))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        FieldValue::Array(a) => {
            let items: Vec<String> = a.iter().map(json).collect();
            format!("[{}]", items.join(","))
        }
        FieldValue::LongString(b) | FieldValue::ByteArray(b) => {
            json_string(&String::from_utf8_lossy(b))
        }
        FieldValue::Void => "null".into(),
        FieldValue::Bool(_) => scalar(v),
        FieldValue::Decimal { .. } | FieldValue::F32(_) | FieldValue::F64(_) => scalar(v),
        other => scalar(other),
    }
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
                out.push((k.to_string(), value_text(v)));
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

    #[test]
    fn nested_values_become_json() {
        let mut inner = FieldTable::new();
        inner.insert("count", FieldValue::I64(2));
        inner.insert("queue", FieldValue::string("q\"1"));
        let v = FieldValue::Array(vec![FieldValue::Table(inner), FieldValue::Bool(true)]);
        assert_eq!(value_text(&v), r#"[{"count":2,"queue":"q\"1"},true]"#);
        assert_eq!(
            value_text(&FieldValue::Decimal { scale: 2, value: 5 }),
            "0.05"
        );
        assert_eq!(
            value_text(&FieldValue::Decimal {
                scale: 1,
                value: 123
            }),
            "12.3"
        );
    }
}
