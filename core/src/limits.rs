//! Vhost and user limits, as RabbitMQ has them: `max-connections` and `max-queues` per vhost,
//! `max-connections` and `max-channels` per user. A negative value means no limit; 0 allows
//! none.

use crate::error::{CoreError, CoreResult};
use std::collections::BTreeMap;

/// Limits by name (`max-connections`, ...) with their values.
pub type LimitTable = BTreeMap<String, i64>;

/// What a limit is set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// A vhost: `max-connections`, `max-queues`.
    VHost,
    /// A user: `max-connections`, `max-channels`.
    User,
}

impl LimitScope {
    /// The limit names this scope knows.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            LimitScope::VHost => &["max-connections", "max-queues"],
            LimitScope::User => &["max-connections", "max-channels"],
        }
    }
}

/// Checks that every limit is one `scope` knows.
pub fn validate(scope: LimitScope, limits: &LimitTable) -> CoreResult<()> {
    for name in limits.keys() {
        if !scope.names().contains(&name.as_str()) {
            return Err(CoreError::PreconditionFailed(format!(
                "unknown limit '{name}': expected one of {}",
                scope.names().join(", ")
            )));
        }
    }
    Ok(())
}

/// The limit `name` in `limits`, if one applies (negative values are none).
pub fn limit(limits: &LimitTable, name: &str) -> Option<u64> {
    limits.get(name).and_then(|v| u64::try_from(*v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_is_unlimited_and_unknown_names_are_refused() {
        let mut t = LimitTable::new();
        t.insert("max-connections".into(), -1);
        t.insert("max-queues".into(), 0);
        validate(LimitScope::VHost, &t).unwrap();
        assert_eq!(limit(&t, "max-connections"), None);
        assert_eq!(limit(&t, "max-queues"), Some(0));
        assert!(
            validate(LimitScope::User, &t).is_err(),
            "max-queues is not a user limit"
        );
    }
}
