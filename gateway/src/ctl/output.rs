//! What `junction ctl` prints, as rabbitmqctl prints it: an informational line ("Listing
//! users ..."), then tab-separated rows under a header line (none when there are no rows). `-q` drops the informational
//! line, `-s` that line and the header, `--no-table-headers` the header;
//! `--formatter json` prints a JSON array of objects and nothing else.

use serde_json::{Map, Value};
use std::io::Write;

/// How results are printed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Output {
    /// `-q`: no informational lines.
    pub(crate) quiet: bool,
    /// No header line over tables.
    pub(crate) no_headers: bool,
    /// `--formatter json`.
    pub(crate) json: bool,
}

impl Output {
    /// An informational line ("Adding user \"bob\" ...").
    pub(crate) fn info(&self, text: &str) {
        if !self.quiet && !self.json {
            println!("{text}");
        }
    }

    /// A line of the result itself ("Success", "Ping succeeded").
    pub(crate) fn line(&self, text: &str) {
        if !self.json {
            println!("{text}");
        }
    }

    /// A table of `rows`, each an object; `columns` chooses and orders the fields.
    pub(crate) fn table(&self, columns: &[String], rows: &[Map<String, Value>]) {
        let mut out = std::io::stdout().lock();
        if self.json {
            let objects: Vec<Value> = rows
                .iter()
                .map(|r| {
                    Value::Object(
                        columns
                            .iter()
                            .map(|c| (c.clone(), r.get(c).cloned().unwrap_or(Value::Null)))
                            .collect(),
                    )
                })
                .collect();
            let _ = writeln!(out, "{}", json_lines(&objects));
            return;
        }
        // rabbitmqctl prints no header over an empty listing.
        if !self.no_headers && !rows.is_empty() {
            let _ = writeln!(out, "{}", columns.join("\t"));
        }
        for r in rows {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| cell(r.get(c).unwrap_or(&Value::Null)))
                .collect();
            let _ = writeln!(out, "{}", cells.join("\t"));
        }
    }

    /// A JSON document, printed as is (definitions, limits).
    pub(crate) fn document(&self, v: &Value) {
        println!("{}", serde_json::to_string(v).unwrap_or_default());
    }
}

/// rabbitmqctl's JSON list: one object per line between brackets.
fn json_lines(objects: &[Value]) -> String {
    let mut s = String::from("[\n");
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&o.to_string());
        s.push('\n');
    }
    s.push(']');
    s
}

/// One table cell: strings as they are, lists as `[a, b]`, argument tables as rabbitmqctl's
/// `[{"x-max-length",10}]`, nothing as empty.
pub(crate) fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(cell).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(m) => {
            let inner: Vec<String> = m.iter().map(|(k, v)| format!("{{\"{k}\",{v}}}")).collect();
            format!("[{}]", inner.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_as_rabbitmqctl_prints_them() {
        assert_eq!(cell(&json!("q1")), "q1");
        assert_eq!(cell(&json!(true)), "true");
        assert_eq!(cell(&json!(12)), "12");
        assert_eq!(cell(&json!(["administrator"])), "[administrator]");
        assert_eq!(cell(&json!(["a", "b"])), "[a, b]");
        assert_eq!(cell(&json!({})), "[]");
        assert_eq!(
            cell(&json!({"x-max-length": 10})),
            "[{\"x-max-length\",10}]"
        );
        assert_eq!(cell(&Value::Null), "");
    }

    #[test]
    fn json_list_layout() {
        assert_eq!(
            json_lines(&[json!({"a": 1}), json!({"a": 2})]),
            "[\n{\"a\":1}\n,{\"a\":2}\n]"
        );
        assert_eq!(json_lines(&[]), "[\n]");
    }
}
