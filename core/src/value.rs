//! AMQP-style typed values: the header table model every protocol maps onto.

use bytes::Bytes;

/// A typed field value, covering every type RabbitMQ clients put in tables.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum FieldValue {
    /// `t`: a boolean.
    Bool(bool),
    /// `b`: a signed octet.
    I8(i8),
    /// `B`: an unsigned octet.
    U8(u8),
    /// `s`: a signed 16-bit integer.
    I16(i16),
    /// `u`: an unsigned 16-bit integer.
    U16(u16),
    /// `I`: a signed 32-bit integer.
    I32(i32),
    /// `i`: an unsigned 32-bit integer.
    U32(u32),
    /// `l`: a signed 64-bit integer.
    I64(i64),
    /// `f`: a 32-bit float.
    F32(f32),
    /// `d`: a 64-bit float.
    F64(f64),
    /// `D`: a decimal, `value` / 10^`scale`.
    Decimal {
        /// Decimal digits after the point.
        scale: u8,
        /// The unscaled value.
        value: u32,
    },
    /// `S`: a long string (bytes, usually UTF-8).
    LongString(Bytes),
    /// `A`: an array.
    Array(Vec<FieldValue>),
    /// `T`: a timestamp, seconds since the Unix epoch.
    Timestamp(u64),
    /// `F`: a nested table.
    Table(FieldTable),
    /// `V`: no value.
    Void,
    /// `x`: a byte array.
    ByteArray(Bytes),
}

impl FieldValue {
    /// A long string from text.
    pub fn string(s: impl Into<String>) -> Self {
        FieldValue::LongString(Bytes::from(s.into()))
    }

    /// The value as an integer, whatever its integer width.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            FieldValue::I8(v) => Some(v.into()),
            FieldValue::U8(v) => Some(v.into()),
            FieldValue::I16(v) => Some(v.into()),
            FieldValue::U16(v) => Some(v.into()),
            FieldValue::I32(v) => Some(v.into()),
            FieldValue::U32(v) => Some(v.into()),
            FieldValue::I64(v) => Some(v),
            FieldValue::Timestamp(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as text, if it is a (valid UTF-8) string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::LongString(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The value as header text where the other side has only strings (STOMP headers, MQTT 5
    /// user properties): strings as they are, numbers in decimal, booleans as `true`/`false`,
    /// tables and arrays as JSON.
    pub fn to_text(&self) -> String {
        value_text(self)
    }

    /// Loose equality as RabbitMQ's headers exchange applies it: numbers compare by value
    /// whatever their width, everything else by type and value.
    pub fn loosely_equals(&self, other: &FieldValue) -> bool {
        match (self.as_i64(), other.as_i64()) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }
}

/// An ordered table of named values (wire order is kept; later duplicates are ignored on lookup).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct FieldTable(pub Vec<(String, FieldValue)>);

impl FieldTable {
    /// An empty table.
    pub fn new() -> Self {
        FieldTable(Vec::new())
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key`, replacing an existing entry in place.
    pub fn insert(&mut self, key: impl Into<String>, value: FieldValue) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<FieldValue> {
        let pos = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(pos).1)
    }

    /// True if the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many entries it has.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FieldValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Equality regardless of entry order (used to compare declare arguments).
    pub fn same_entries(&self, other: &FieldTable) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(k, v)| other.get(k).is_some_and(|o| o.loosely_equals(v)))
    }

    /// An integer argument, if present and integral.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(FieldValue::as_i64)
    }

    /// A string argument, if present and a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(FieldValue::as_str)
    }
}

impl FromIterator<(String, FieldValue)> for FieldTable {
    fn from_iter<T: IntoIterator<Item = (String, FieldValue)>>(iter: T) -> Self {
        FieldTable(iter.into_iter().collect())
    }
}

fn value_text(v: &FieldValue) -> String {
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
fn json(v: &FieldValue) -> String {
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

#[cfg(test)]
mod text_tests {
    use super::*;

    #[test]
    fn nested_values_become_json() {
        let mut inner = FieldTable::new();
        inner.insert("count", FieldValue::I64(2));
        inner.insert("queue", FieldValue::string("q\"1"));
        let v = FieldValue::Array(vec![FieldValue::Table(inner), FieldValue::Bool(true)]);
        assert_eq!(v.to_text(), r#"[{"count":2,"queue":"q\"1"},true]"#);
        assert_eq!(FieldValue::Decimal { scale: 2, value: 5 }.to_text(), "0.05");
        assert_eq!(
            FieldValue::Decimal {
                scale: 1,
                value: 123
            }
            .to_text(),
            "12.3"
        );
    }
}
