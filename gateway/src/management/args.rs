//! AMQP field tables as the management API writes them in JSON (queue and exchange
//! arguments, message headers), both ways.

use junction_core::{FieldTable, FieldValue};
use serde_json::{Map, Number, Value};

/// A field value as JSON: numbers as numbers, long strings as strings (or, if not UTF-8,
/// their bytes), tables as objects.
pub(crate) fn value_to_json(v: &FieldValue) -> Value {
    match v {
        FieldValue::Bool(b) => Value::Bool(*b),
        FieldValue::I8(n) => (*n).into(),
        FieldValue::U8(n) => (*n).into(),
        FieldValue::I16(n) => (*n).into(),
        FieldValue::U16(n) => (*n).into(),
        FieldValue::I32(n) => (*n).into(),
        FieldValue::U32(n) => (*n).into(),
        FieldValue::I64(n) => (*n).into(),
        FieldValue::Timestamp(n) => (*n).into(),
        FieldValue::F32(f) => Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        FieldValue::F64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        FieldValue::Decimal { scale, value } => {
            Number::from_f64(f64::from(*value) / 10f64.powi(i32::from(*scale)))
                .map_or(Value::Null, Value::Number)
        }
        FieldValue::LongString(b) | FieldValue::ByteArray(b) => match std::str::from_utf8(b) {
            Ok(s) => Value::String(s.to_string()),
            Err(_) => Value::Array(b.iter().map(|x| Value::from(*x)).collect()),
        },
        FieldValue::Array(items) => Value::Array(items.iter().map(value_to_json).collect()),
        FieldValue::Table(t) => table_to_json(t),
        FieldValue::Void => Value::Null,
    }
}

/// A field table as a JSON object.
pub(crate) fn table_to_json(t: &FieldTable) -> Value {
    Value::Object(
        t.iter()
            .map(|(k, v)| (k.to_string(), value_to_json(v)))
            .collect::<Map<String, Value>>(),
    )
}

/// A JSON value as a field value: integers as 64-bit (RabbitMQ's `l`), other numbers as
/// doubles, strings as long strings.
pub(crate) fn json_to_value(v: &Value) -> FieldValue {
    match v {
        Value::Null => FieldValue::Void,
        Value::Bool(b) => FieldValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => FieldValue::I64(i),
            None => FieldValue::F64(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => FieldValue::string(s.clone()),
        Value::Array(items) => FieldValue::Array(items.iter().map(json_to_value).collect()),
        Value::Object(m) => FieldValue::Table(object_to_table(m)),
    }
}

/// A JSON object as a field table.
pub(crate) fn object_to_table(m: &Map<String, Value>) -> FieldTable {
    m.iter()
        .map(|(k, v)| (k.clone(), json_to_value(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_survive_a_round_trip_through_json() {
        let j = json!({"x-max-length": 10, "x-message-ttl": 60000, "x-dead-letter-exchange": "dlx",
                       "x-single-active-consumer": true, "nested": {"a": [1, "b"]}, "ratio": 0.5});
        let Value::Object(m) = &j else { unreachable!() };
        let t = object_to_table(m);
        assert_eq!(t.get("x-max-length"), Some(&FieldValue::I64(10)));
        assert_eq!(
            t.get("x-dead-letter-exchange"),
            Some(&FieldValue::string("dlx"))
        );
        assert_eq!(table_to_json(&t), j);
    }
}
