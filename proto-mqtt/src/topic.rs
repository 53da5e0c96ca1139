//! MQTT topics and filters, and their mapping onto `amq.topic` routing keys (RabbitMQ's:
//! `/` and `.` swap, `+` becomes `*`, `#` stays).

/// Swaps `/` and `.` (the mapping is its own inverse).
pub fn swap_separators(s: &str) -> String {
    let mut b = s.as_bytes().to_vec();
    for c in &mut b {
        match *c {
            b'/' => *c = b'.',
            b'.' => *c = b'/',
            _ => {}
        }
    }
    // Exchanging two ASCII bytes keeps UTF-8 valid, so the fallback is never taken.
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// MQTT topic name → AMQP routing key.
pub fn topic_to_key(topic: &str) -> String {
    swap_separators(topic)
}

/// AMQP routing key → MQTT topic name.
pub fn key_to_topic(key: &str) -> String {
    swap_separators(key)
}

/// MQTT topic filter → AMQP binding key.
pub fn filter_to_binding(filter: &str) -> String {
    filter
        .split('/')
        .map(|level| match level {
            "+" => "*".to_string(),
            "#" => "#".to_string(),
            l => l.replace('.', "/"),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// At most this many levels in a topic or filter (the core's word limit, Mosquitto's
/// hierarchy limit).
const MAX_LEVELS: usize = junction_core::topic::MAX_WORDS;

fn levels_within_limit(s: &str) -> bool {
    s.len() < MAX_LEVELS || s.bytes().filter(|&b| b == b'/').count() < MAX_LEVELS
}

/// A topic name as PUBLISH may carry it: non-empty, no wildcards, no NUL, at most
/// `MAX_LEVELS` levels.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && !topic.bytes().any(|b| matches!(b, b'+' | b'#' | 0))
        && levels_within_limit(topic)
}

/// A topic filter: `#` only as the whole last level, `+` only as a whole level.
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') || !levels_within_limit(filter) {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, l)| {
        (!l.contains('#') || (*l == "#" && i == levels.len() - 1))
            && (!l.contains('+') || *l == "+")
    })
}

/// MQTT's rule for `$` topics (`$SYS/...`): a filter starting with a wildcard never matches
/// one, though the AMQP binding it maps to does.
pub fn hides_dollar_topic(topic: &str, filter: &str) -> bool {
    topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#'))
}

/// MQTT matching: a filter starting with a wildcard never matches a `$` topic.
pub fn matches(topic: &str, filter: &str) -> bool {
    if hides_dollar_topic(topic, filter) {
        return false;
    }
    let mut t = topic.as_bytes().split(|&b| b == b'/');
    for f in filter.as_bytes().split(|&b| b == b'/') {
        if f == b"#" {
            return true;
        }
        match t.next() {
            Some(_) if f == b"+" => {}
            Some(level) if level == f => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

/// A shared subscription `$share/group/filter`, split into (group, filter).
pub fn shared(filter: &str) -> Option<(&str, &str)> {
    let rest = filter.strip_prefix("$share/")?;
    let (group, f) = rest.split_once('/')?;
    (!group.is_empty() && !group.contains(['+', '#']) && !f.is_empty()).then_some((group, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_matches_rabbitmq() {
        assert_eq!(topic_to_key("sensors/kitchen/temp"), "sensors.kitchen.temp");
        assert_eq!(topic_to_key("a.b/c"), "a/b.c");
        assert_eq!(key_to_topic("a/b.c"), "a.b/c");
        assert_eq!(topic_to_key("ä/ö.ü/"), "ä.ö/ü.");
        assert_eq!(topic_to_key("/"), ".");
        assert_eq!(topic_to_key(""), "");
        assert_eq!(filter_to_binding("a/+/#"), "a.*.#");
        assert_eq!(filter_to_binding("v1.0/+"), "v1/0.*");
    }

    #[test]
    fn validation() {
        assert!(valid_topic("a/b"));
        assert!(!valid_topic("a/+"));
        assert!(!valid_topic(""));
        assert!(valid_filter("#"));
        assert!(valid_filter("a/+/c/#"));
        assert!(!valid_filter("a/#/c"));
        assert!(!valid_filter("a/b#"));
        assert!(!valid_filter("a/b+/c"));
        // At most MAX_LEVELS levels, as Mosquitto.
        let deep = vec!["a"; MAX_LEVELS].join("/");
        assert!(valid_topic(&deep) && valid_filter(&deep));
        let deeper = format!("{deep}/a");
        assert!(!valid_topic(&deeper) && !valid_filter(&deeper));
        assert!(!valid_topic(&"/".repeat(MAX_LEVELS)));
    }

    #[test]
    fn matching_with_dollar_topics() {
        assert!(matches("a/b/c", "a/+/c"));
        assert!(matches("a/b/c", "a/#"));
        assert!(matches("a", "a/#"));
        assert!(!matches("a/b", "a/+/c"));
        assert!(!matches("$SYS/x", "#"));
        assert!(!matches("$SYS/x", "+/x"));
        assert!(matches("$SYS/x", "$SYS/#"));
        assert!(matches("/a", "+/a"));
        assert_eq!(shared("$share/g1/a/+"), Some(("g1", "a/+")));
        assert_eq!(shared("$share/g1"), None);
    }
}
