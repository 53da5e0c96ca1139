//! Prometheus's text exposition format (version 0.0.4): `# HELP` and `# TYPE` lines per family,
//! then one line per sample, labels escaped as the format requires. Checked against a real
//! parser (Python's `prometheus_client`) in the interop tests.

use std::fmt::Write;

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only goes up (names end in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// A document being written.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    out: String,
}

/// Appends `v` with the escapes label values need (backslash, double quote, newline).
fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

impl Exposition {
    /// Starts a family: its help text and type.
    pub(crate) fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample of the family last started.
    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
            writeln!(self.out, " {}", value as i64)
        } else {
            writeln!(self.out, " {value}")
        };
    }

    /// A family of one unlabelled sample.
    pub(crate) fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The document.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escapes_as_the_format_says() {
        let mut e = Exposition::default();
        e.family("x_total", Kind::Counter, "a \\ help\nline");
        e.sample("x_total", &[("q", "a\"b\\c\nd"), ("v", "/")], 3.0);
        e.single("y", Kind::Gauge, "half", 0.5);
        assert_eq!(
            e.finish(),
            "# HELP x_total a \\\\ help\\nline\n# TYPE x_total counter\n\
             x_total{q=\"a\\\"b\\\\c\\nd\",v=\"/\"} 3\n\
             # HELP y half\n# TYPE y gauge\ny 0.5\n"
        );
    }
}
