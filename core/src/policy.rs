//! Policies, as RabbitMQ has them: a vhost-wide rule that gives queues and exchanges whose
//! name matches a regular expression the settings of its definition, so operators change TTLs,
//! length limits and dead-lettering without redeclaring anything. Of the policies matching an
//! object, the one with the highest priority applies (a tie goes to the first name in order).
//!
//! How a policy and an object's own arguments combine follows RabbitMQ: for the numeric limits
//! (`message-ttl`, `expires`, `max-length`, `max-length-bytes`, `delivery-limit`) the lower
//! value wins; for everything else (`dead-letter-exchange`, `dead-letter-routing-key`,
//! `overflow`, `alternate-exchange`, …) the object's own argument wins.

use crate::error::{CoreError, CoreResult};
use crate::value::{FieldTable, FieldValue};

/// Which objects a policy applies to (`apply-to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ApplyTo {
    /// Queues of every type.
    Queues,
    /// Classic queues (every queue Junction has today).
    ClassicQueues,
    /// Quorum queues (none yet: matched by nothing).
    QuorumQueues,
    /// Streams (none: matched by nothing).
    Streams,
    /// Exchanges.
    Exchanges,
    /// Queues and exchanges.
    All,
}

impl ApplyTo {
    /// Parses RabbitMQ's `apply-to` value.
    pub fn parse(s: &str) -> CoreResult<Self> {
        Ok(match s {
            "queues" => ApplyTo::Queues,
            "classic_queues" => ApplyTo::ClassicQueues,
            "quorum_queues" => ApplyTo::QuorumQueues,
            "streams" => ApplyTo::Streams,
            "exchanges" => ApplyTo::Exchanges,
            "all" => ApplyTo::All,
            other => {
                return Err(CoreError::PreconditionFailed(format!(
                    "invalid apply-to '{other}': expected queues, classic_queues, quorum_queues, streams, exchanges or all"
                )))
            }
        })
    }

    /// RabbitMQ's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyTo::Queues => "queues",
            ApplyTo::ClassicQueues => "classic_queues",
            ApplyTo::QuorumQueues => "quorum_queues",
            ApplyTo::Streams => "streams",
            ApplyTo::Exchanges => "exchanges",
            ApplyTo::All => "all",
        }
    }

    fn queues(self) -> bool {
        matches!(
            self,
            ApplyTo::Queues | ApplyTo::ClassicQueues | ApplyTo::All
        )
    }

    fn exchanges(self) -> bool {
        matches!(self, ApplyTo::Exchanges | ApplyTo::All)
    }
}

/// A policy of one vhost.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    /// The vhost it applies in.
    pub vhost: String,
    /// Its name (unique in the vhost).
    pub name: String,
    /// The regular expression names are matched against (unanchored, as RabbitMQ's).
    pub pattern: String,
    /// What it applies to.
    pub apply_to: ApplyTo,
    /// Among matching policies the highest wins.
    pub priority: i64,
    /// The settings (RabbitMQ's keys, without the `x-` of the arguments).
    pub definition: FieldTable,
}

/// Numeric limits: of a policy's value and an argument's, the lower applies.
const LOWER_WINS: [&str; 5] = [
    "message-ttl",
    "expires",
    "max-length",
    "max-length-bytes",
    "delivery-limit",
];

/// Keys applied to queues through their `x-` arguments.
const QUEUE_KEYS: [&str; 9] = [
    "message-ttl",
    "expires",
    "max-length",
    "max-length-bytes",
    "delivery-limit",
    "overflow",
    "dead-letter-exchange",
    "dead-letter-routing-key",
    "queue-mode",
];

/// Keys RabbitMQ recognises that Junction accepts without effect today (queue types and
/// features it does not have yet, or that mean nothing here).
const ACCEPTED_KEYS: [&str; 9] = [
    "queue-version",
    "queue-leader-locator",
    "queue-master-locator",
    "max-age",
    "stream-max-segment-size-bytes",
    "initial-cluster-size",
    "dead-letter-strategy",
    "max-in-memory-length",
    "max-in-memory-bytes",
];

fn invalid(key: &str, why: &str) -> CoreError {
    CoreError::PreconditionFailed(format!("invalid policy definition key '{key}': {why}"))
}

impl Policy {
    /// Checks the pattern and the definition as RabbitMQ's validators do: known keys only,
    /// each with a value of its type.
    pub fn validate(&self) -> CoreResult<()> {
        compile(&self.pattern)?;
        if self.definition.is_empty() {
            return Err(CoreError::PreconditionFailed(
                "a policy definition must not be empty".into(),
            ));
        }
        for (key, value) in self.definition.iter() {
            let int = || {
                value
                    .as_i64()
                    .ok_or_else(|| invalid(key, "must be an integer"))
            };
            let text = || match value {
                FieldValue::LongString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
                _ => Err(invalid(key, "must be a string")),
            };
            match key {
                "message-ttl" | "max-length" | "max-length-bytes" | "delivery-limit" => {
                    if int()? < 0 {
                        return Err(invalid(key, "must be non-negative"));
                    }
                }
                "expires" => {
                    if int()? < 1 {
                        return Err(invalid(key, "must be positive"));
                    }
                }
                "overflow" => {
                    let v = text()?;
                    if !["drop-head", "reject-publish", "reject-publish-dlx"].contains(&v.as_str())
                    {
                        return Err(invalid(
                            key,
                            "must be drop-head, reject-publish or reject-publish-dlx",
                        ));
                    }
                }
                "queue-mode" => {
                    let v = text()?;
                    if v != "default" && v != "lazy" {
                        return Err(invalid(key, "must be default or lazy"));
                    }
                }
                "dead-letter-exchange" | "dead-letter-routing-key" | "alternate-exchange" => {
                    text()?;
                }
                k if ACCEPTED_KEYS.contains(&k) => {}
                _ => return Err(invalid(key, "not recognised")),
            }
        }
        Ok(())
    }

    /// The arguments a queue declared with `args` has under this policy.
    pub fn queue_arguments(&self, args: &FieldTable) -> FieldTable {
        let mut out = args.clone();
        for key in QUEUE_KEYS {
            let Some(pv) = self.definition.get(key) else {
                continue;
            };
            let arg = format!("x-{key}");
            let merged = match out.get(&arg) {
                None => pv.clone(),
                Some(own) if LOWER_WINS.contains(&key) => match (own.as_i64(), pv.as_i64()) {
                    (Some(a), Some(p)) if p < a => pv.clone(),
                    _ => own.clone(),
                },
                Some(own) => own.clone(),
            };
            out.insert(arg, merged);
        }
        out
    }

    /// The alternate exchange an exchange declared with `own` (its argument) has under this
    /// policy: its own argument wins.
    pub fn alternate_exchange<'a>(&'a self, own: Option<&'a str>) -> Option<&'a str> {
        own.or_else(|| self.definition.get_str("alternate-exchange"))
    }
}

fn compile(pattern: &str) -> CoreResult<regex::Regex> {
    regex::Regex::new(pattern).map_err(|e| {
        CoreError::PreconditionFailed(format!("invalid policy pattern '{pattern}': {e}"))
    })
}

/// A vhost's policies, patterns compiled, in the order that decides among them.
#[derive(Debug, Default)]
pub struct PolicySet {
    /// Highest priority first; equal priorities by name.
    policies: Vec<(std::sync::Arc<Policy>, regex::Regex)>,
}

impl PolicySet {
    /// Adds or replaces a policy (by name). A pattern that does not compile is left out (it
    /// was validated before it was committed; a stored one from elsewhere might not be).
    pub fn put(&mut self, p: Policy) {
        self.remove(&p.name);
        match compile(&p.pattern) {
            Ok(re) => self.policies.push((std::sync::Arc::new(p), re)),
            Err(e) => tracing::warn!(policy = %p.name, error = %e, "policy left out"),
        }
        self.policies.sort_by(|(a, _), (b, _)| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
    }

    /// Removes a policy; returns whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.policies.len();
        self.policies.retain(|(p, _)| p.name != name);
        self.policies.len() != before
    }

    /// The policy that applies to the queue `name`.
    pub fn for_queue(&self, name: &str) -> Option<std::sync::Arc<Policy>> {
        self.first(name, ApplyTo::queues)
    }

    /// The policy that applies to the exchange `name`.
    pub fn for_exchange(&self, name: &str) -> Option<std::sync::Arc<Policy>> {
        self.first(name, ApplyTo::exchanges)
    }

    fn first(&self, name: &str, kind: fn(ApplyTo) -> bool) -> Option<std::sync::Arc<Policy>> {
        self.policies
            .iter()
            .find(|(p, re)| kind(p.apply_to) && re.is_match(name))
            .map(|(p, _)| p.clone())
    }

    /// Every policy, in the deciding order.
    pub fn list(&self) -> Vec<Policy> {
        self.policies.iter().map(|(p, _)| (**p).clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, pattern: &str, priority: i64, def: &[(&str, FieldValue)]) -> Policy {
        Policy {
            vhost: "/".into(),
            name: name.into(),
            pattern: pattern.into(),
            apply_to: ApplyTo::Queues,
            priority,
            definition: def
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn the_highest_priority_match_wins_and_ties_go_by_name() {
        let mut set = PolicySet::default();
        set.put(policy("b", "^q", 1, &[("max-length", FieldValue::I64(1))]));
        set.put(policy("a", "^q", 1, &[("max-length", FieldValue::I64(2))]));
        set.put(policy(
            "low",
            ".*",
            0,
            &[("max-length", FieldValue::I64(3))],
        ));
        assert_eq!(set.for_queue("q1").unwrap().name, "a");
        assert_eq!(set.for_queue("other").unwrap().name, "low");
        assert!(set.for_exchange("q1").is_none(), "apply-to queues");
        assert!(set.remove("a"));
        assert_eq!(set.for_queue("q1").unwrap().name, "b");
    }

    #[test]
    fn limits_take_the_lower_value_and_other_arguments_the_queues_own() {
        let p = policy(
            "p",
            ".*",
            0,
            &[
                ("max-length", FieldValue::I64(10)),
                ("message-ttl", FieldValue::I64(5000)),
                ("dead-letter-exchange", FieldValue::string("policy-dlx")),
                ("overflow", FieldValue::string("reject-publish")),
            ],
        );
        let own: FieldTable = [
            ("x-max-length".to_string(), FieldValue::I32(20)),
            ("x-message-ttl".to_string(), FieldValue::I64(100)),
            (
                "x-dead-letter-exchange".to_string(),
                FieldValue::string("own"),
            ),
        ]
        .into_iter()
        .collect();
        let eff = p.queue_arguments(&own);
        assert_eq!(eff.get_i64("x-max-length"), Some(10));
        assert_eq!(eff.get_i64("x-message-ttl"), Some(100));
        assert_eq!(eff.get_str("x-dead-letter-exchange"), Some("own"));
        assert_eq!(eff.get_str("x-overflow"), Some("reject-publish"));
    }

    #[test]
    fn bad_definitions_and_patterns_are_refused() {
        let bad = [
            policy("p", "(", 0, &[("max-length", FieldValue::I64(1))]),
            policy("p", ".*", 0, &[]),
            policy("p", ".*", 0, &[("max-length", FieldValue::string("x"))]),
            policy("p", ".*", 0, &[("expires", FieldValue::I64(0))]),
            policy(
                "p",
                ".*",
                0,
                &[("overflow", FieldValue::string("sideways"))],
            ),
            policy("p", ".*", 0, &[("no-such-key", FieldValue::I64(1))]),
        ];
        for p in bad {
            assert!(p.validate().is_err(), "{p:?}");
        }
        let good = policy(
            "p",
            "^a\\.",
            0,
            &[("queue-mode", FieldValue::string("lazy"))],
        );
        good.validate().unwrap();
    }
}
