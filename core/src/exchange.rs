//! Exchanges and their bindings: direct, fanout, topic and headers routing.

use crate::error::{CoreError, CoreResult};
use crate::topic::TopicTrie;
use crate::value::{FieldTable, FieldValue};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// The routing algorithm of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExchangeKind {
    /// Routes to bindings whose key equals the routing key.
    Direct,
    /// Routes to every binding.
    Fanout,
    /// Routes by pattern (`*` one word, `#` zero or more).
    Topic,
    /// Routes by headers (`x-match` all / any).
    Headers,
}

impl ExchangeKind {
    /// Parses an AMQP exchange type name.
    pub fn parse(s: &str) -> CoreResult<Self> {
        match s {
            "direct" => Ok(Self::Direct),
            "fanout" => Ok(Self::Fanout),
            "topic" => Ok(Self::Topic),
            "headers" => Ok(Self::Headers),
            other => Err(CoreError::NotImplemented(format!(
                "unknown exchange type '{other}'"
            ))),
        }
    }

    /// The kind's name as AMQP spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Fanout => "fanout",
            Self::Topic => "topic",
            Self::Headers => "headers",
        }
    }
}

/// What an exchange was declared with.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExchangeDef {
    /// The exchange's name ("" is the default exchange).
    pub name: String,
    /// How it routes.
    pub kind: ExchangeKind,
    /// Survives a restart.
    pub durable: bool,
    /// Deleted when its last binding goes.
    pub auto_delete: bool,
    /// Clients may not publish to it, only other exchanges.
    pub internal: bool,
    /// Declare arguments (`alternate-exchange`, ...).
    pub arguments: FieldTable,
}

impl ExchangeDef {
    /// A durable, non-internal exchange of `kind`, without arguments.
    pub fn new(name: impl Into<String>, kind: ExchangeKind) -> Self {
        ExchangeDef {
            name: name.into(),
            kind,
            durable: true,
            auto_delete: false,
            internal: false,
            arguments: FieldTable::new(),
        }
    }

    /// The `alternate-exchange` argument, if any.
    pub fn alternate_exchange(&self) -> Option<&str> {
        self.arguments.get_str("alternate-exchange")
    }

    /// True when a redeclaration with `other` is equivalent (RabbitMQ's rule).
    pub fn equivalent(&self, other: &ExchangeDef) -> bool {
        self.kind == other.kind
            && self.durable == other.durable
            && self.auto_delete == other.auto_delete
            && self.internal == other.internal
            && self.arguments.same_entries(&other.arguments)
    }
}

/// The exchanges every vhost has besides the default one.
pub const PREDECLARED: [(&str, ExchangeKind); 6] = [
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
    ("amq.rabbitmq.trace", ExchangeKind::Topic),
];

/// Every exchange a vhost is created with: the default exchange (`""`) and [`PREDECLARED`].
pub fn builtin_exchanges() -> Vec<ExchangeDef> {
    let mut out = vec![ExchangeDef::new("", ExchangeKind::Direct)];
    for (n, k) in PREDECLARED {
        let mut def = ExchangeDef::new(n, k);
        def.internal = n == "amq.rabbitmq.trace";
        out.push(def);
    }
    out
}

/// True for the exchanges a vhost is created with, which cannot be declared or deleted.
pub fn is_builtin(name: &str) -> bool {
    name.is_empty() || PREDECLARED.iter().any(|(n, _)| *n == name)
}

/// Where a binding leads.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Destination {
    /// A queue, by name.
    Queue(String),
    /// An exchange (exchange-to-exchange binding), by name.
    Exchange(String),
}

impl Destination {
    /// The destination's name.
    pub fn name(&self) -> &str {
        match self {
            Destination::Queue(n) | Destination::Exchange(n) => n,
        }
    }
}

/// A binding from a source exchange to a queue or exchange.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Binding {
    /// The exchange the binding is on.
    pub source: String,
    /// Where matching messages go.
    pub destination: Destination,
    /// The binding key (a pattern for topic exchanges).
    pub routing_key: String,
    /// Binding arguments (headers exchanges match on them).
    pub arguments: FieldTable,
}

/// The binding argument that marks what a binding routes with a bit (0–31): a consumer of the
/// queue sees the bits of every binding that matched (`Delivery::matched`), so an adapter that
/// keeps many bindings on one queue (MQTT, one per subscription) knows which ones did without
/// matching the routing key again.
pub const MATCH_BIT: &str = "x-match-bit";

impl Binding {
    /// The bit this binding marks its messages with (none without a valid `x-match-bit`).
    pub fn match_bits(&self) -> u32 {
        match self.arguments.get(MATCH_BIT).and_then(FieldValue::as_i64) {
            Some(b @ 0..=31) => 1 << b,
            _ => 0,
        }
    }

    /// The same binding (arguments compared as sets of entries).
    pub fn same(&self, other: &Binding) -> bool {
        self.source == other.source
            && self.destination == other.destination
            && self.routing_key == other.routing_key
            && self.arguments.same_entries(&other.arguments)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum HeadersMode {
    All,
    Any,
    AllWithX,
    AnyWithX,
}

/// A destination as the routing tables hold it: where to go and the bits to mark it with.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    destination: Destination,
    bits: u32,
}

impl Target {
    fn of(b: &Binding) -> Self {
        Target {
            destination: b.destination.clone(),
            bits: b.match_bits(),
        }
    }
}

#[derive(Debug)]
struct HeadersBinding {
    target: Target,
    mode: HeadersMode,
    arguments: FieldTable,
}

impl HeadersBinding {
    fn new(b: &Binding) -> CoreResult<Self> {
        let mode = match b.arguments.get("x-match") {
            None => HeadersMode::All,
            Some(v) => match v.as_str() {
                Some("all") => HeadersMode::All,
                Some("any") => HeadersMode::Any,
                Some("all-with-x") => HeadersMode::AllWithX,
                Some("any-with-x") => HeadersMode::AnyWithX,
                _ => {
                    return Err(CoreError::PreconditionFailed(format!(
                        "invalid x-match field value {v:?}; expected all, any, all-with-x, or any-with-x"
                    )))
                }
            },
        };
        Ok(HeadersBinding {
            target: Target::of(b),
            mode,
            arguments: b.arguments.clone(),
        })
    }

    fn matches(&self, headers: Option<&FieldTable>) -> bool {
        let with_x = matches!(self.mode, HeadersMode::AllWithX | HeadersMode::AnyWithX);
        let all = matches!(self.mode, HeadersMode::All | HeadersMode::AllWithX);
        let empty = FieldTable::new();
        let headers = headers.unwrap_or(&empty);
        let mut considered = self
            .arguments
            .iter()
            .filter(|(k, _)| *k != "x-match" && (with_x || !k.starts_with("x-")));
        let one = |(k, v): (&str, &FieldValue)| match headers.get(k) {
            None => false,
            Some(_) if *v == FieldValue::Void => true,
            Some(h) => h.loosely_equals(v),
        };
        if all {
            considered.all(one)
        } else {
            considered.any(one)
        }
    }
}

#[derive(Debug)]
enum Routes {
    Direct(HashMap<String, Vec<Target>>),
    Fanout(Vec<Target>),
    Topic(TopicTrie<Target>),
    Headers(Vec<HeadersBinding>),
}

#[derive(Debug)]
struct Table {
    /// The bindings by destination: finding, adding and removing one costs the bindings of
    /// its destination, not of the whole exchange (amq.topic holds one per MQTT subscription).
    bindings: HashMap<Destination, Vec<Binding>>,
    count: usize,
    routes: Routes,
}

/// An exchange: its definition and its bindings, under a read-mostly lock of its own.
#[derive(Debug)]
pub struct Exchange {
    /// What it was declared with.
    pub def: ExchangeDef,
    table: RwLock<Table>,
    /// The policy that applies to it, if one does.
    policy: RwLock<Option<std::sync::Arc<crate::policy::Policy>>>,
    /// Messages published to it, and copies it routed on to queues (RabbitMQ's `publish_in`
    /// and `publish_out`). Atomics: publishers of any connection count without a lock.
    publish_in: AtomicU64,
    publish_out: AtomicU64,
}

/// What an exchange has routed since it was declared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExchangeCounters {
    /// Messages published to it.
    pub publish_in: u64,
    /// Copies it routed on to queues.
    pub publish_out: u64,
}

impl Exchange {
    /// Counts a message published to it that reached `queues` queues.
    pub(crate) fn count_routed(&self, queues: usize) {
        self.publish_in.fetch_add(1, Ordering::Relaxed);
        if queues > 0 {
            self.publish_out.fetch_add(queues as u64, Ordering::Relaxed);
        }
    }

    /// What it has routed so far.
    pub fn counters(&self) -> ExchangeCounters {
        ExchangeCounters {
            publish_in: self.publish_in.load(Ordering::Relaxed),
            publish_out: self.publish_out.load(Ordering::Relaxed),
        }
    }

    /// An exchange with no bindings.
    pub fn new(def: ExchangeDef) -> Self {
        let routes = match def.kind {
            ExchangeKind::Direct => Routes::Direct(HashMap::new()),
            ExchangeKind::Fanout => Routes::Fanout(Vec::new()),
            ExchangeKind::Topic => Routes::Topic(TopicTrie::default()),
            ExchangeKind::Headers => Routes::Headers(Vec::new()),
        };
        Exchange {
            def,
            table: RwLock::new(Table {
                bindings: HashMap::new(),
                count: 0,
                routes,
            }),
            policy: RwLock::new(None),
            publish_in: AtomicU64::new(0),
            publish_out: AtomicU64::new(0),
        }
    }

    /// The policy that applies to it, if one does.
    pub fn policy(&self) -> Option<std::sync::Arc<crate::policy::Policy>> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts the exchange under `policy` (none: no policy applies any more).
    pub(crate) fn set_policy(&self, policy: Option<std::sync::Arc<crate::policy::Policy>>) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// Where unroutable messages go: its `alternate-exchange` argument, else its policy's.
    pub fn alternate_exchange(&self) -> Option<String> {
        let own = self.def.alternate_exchange();
        match self.policy() {
            Some(p) => p.alternate_exchange(own).map(str::to_string),
            None => own.map(str::to_string),
        }
    }

    /// Adds a binding; returns false if an identical one exists.
    pub fn bind(&self, b: Binding) -> CoreResult<bool> {
        if self.def.kind == ExchangeKind::Topic {
            crate::topic::check_limits(&b.routing_key).map_err(CoreError::PreconditionFailed)?;
        }
        let mut t = self.table.write().unwrap_or_else(|e| e.into_inner());
        if t.bindings
            .get(&b.destination)
            .is_some_and(|v| v.iter().any(|x| x.same(&b)))
        {
            return Ok(false);
        }
        match &mut t.routes {
            Routes::Direct(m) => m
                .entry(b.routing_key.clone())
                .or_default()
                .push(Target::of(&b)),
            Routes::Fanout(v) => v.push(Target::of(&b)),
            Routes::Topic(trie) => {
                // The trie keeps one entry per (pattern, destination, bits); several bindings
                // that differ only by other arguments share it.
                trie.insert(&b.routing_key, Target::of(&b));
            }
            Routes::Headers(v) => v.push(HeadersBinding::new(&b)?),
        }
        t.count += 1;
        t.bindings.entry(b.destination.clone()).or_default().push(b);
        Ok(true)
    }

    /// Removes a binding; returns false if it was not there.
    pub fn unbind(&self, b: &Binding) -> bool {
        let mut t = self.table.write().unwrap_or_else(|e| e.into_inner());
        let Some(list) = t.bindings.get_mut(&b.destination) else {
            return false;
        };
        let Some(pos) = list.iter().position(|x| x.same(b)) else {
            return false;
        };
        let removed = list.remove(pos);
        let target = Target::of(&removed);
        let still_keyed = list
            .iter()
            .any(|x| x.routing_key == removed.routing_key && x.match_bits() == target.bits);
        if list.is_empty() {
            t.bindings.remove(&b.destination);
        }
        t.count -= 1;
        match &mut t.routes {
            Routes::Direct(m) => {
                if let Some(v) = m.get_mut(&removed.routing_key) {
                    if let Some(i) = v.iter().position(|d| *d == target) {
                        v.remove(i);
                    }
                    if v.is_empty() {
                        m.remove(&removed.routing_key);
                    }
                }
            }
            Routes::Fanout(v) => {
                if let Some(i) = v.iter().position(|d| *d == target) {
                    v.remove(i);
                }
            }
            Routes::Topic(trie) => {
                if !still_keyed {
                    trie.remove(&removed.routing_key, &target);
                }
            }
            Routes::Headers(v) => {
                if let Some(i) = v.iter().position(|h| {
                    h.target == target && h.arguments.same_entries(&removed.arguments)
                }) {
                    v.remove(i);
                }
            }
        }
        true
    }

    /// Removes every binding to `dest`; returns how many went.
    pub fn unbind_destination(&self, dest: &Destination) -> usize {
        let doomed = self
            .table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .bindings
            .get(dest)
            .cloned()
            .unwrap_or_default();
        doomed.iter().filter(|b| self.unbind(b)).count()
    }

    /// True when some binding of this exchange leads to `dest`.
    pub fn has_destination(&self, dest: &Destination) -> bool {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .bindings
            .contains_key(dest)
    }

    /// A snapshot of this exchange's bindings to `dest` (costs those, not all of them).
    pub fn bindings_to(&self, dest: &Destination) -> Vec<Binding> {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .bindings
            .get(dest)
            .cloned()
            .unwrap_or_default()
    }

    /// A snapshot of the bindings whose source is this exchange.
    pub fn bindings(&self) -> Vec<Binding> {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .bindings
            .values()
            .flatten()
            .cloned()
            .collect()
    }

    /// How many bindings it has.
    pub fn binding_count(&self) -> usize {
        self.table.read().unwrap_or_else(|e| e.into_inner()).count
    }

    /// Calls `f` for each destination this exchange's own bindings select for the message, with
    /// the [`MATCH_BIT`]s of the binding that selected it (a destination bound by several
    /// matching bindings may come more than once).
    pub fn route(
        &self,
        routing_key: &str,
        headers: Option<&FieldTable>,
        f: &mut impl FnMut(&Destination, u32),
    ) {
        let t = self.table.read().unwrap_or_else(|e| e.into_inner());
        let mut each = |t: &Target| f(&t.destination, t.bits);
        match &t.routes {
            Routes::Direct(m) => {
                if let Some(v) = m.get(routing_key) {
                    v.iter().for_each(each);
                }
            }
            Routes::Fanout(v) => v.iter().for_each(each),
            Routes::Topic(trie) => trie.matches(routing_key, &mut each),
            Routes::Headers(v) => v
                .iter()
                .filter(|h| h.matches(headers))
                .for_each(|h| each(&h.target)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str) -> Destination {
        Destination::Queue(name.into())
    }

    fn bind(ex: &Exchange, dest: &str, key: &str, args: FieldTable) {
        ex.bind(Binding {
            source: ex.def.name.clone(),
            destination: q(dest),
            routing_key: key.into(),
            arguments: args,
        })
        .unwrap();
    }

    fn routed(ex: &Exchange, key: &str, headers: Option<&FieldTable>) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        ex.route(key, headers, &mut |d, _| names.push(d.name().to_string()));
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn direct_routes_by_exact_key() {
        let ex = Exchange::new(ExchangeDef::new("d", ExchangeKind::Direct));
        bind(&ex, "errors", "error", FieldTable::new());
        bind(&ex, "all", "error", FieldTable::new());
        bind(&ex, "all", "info", FieldTable::new());
        assert_eq!(routed(&ex, "error", None), vec!["all", "errors"]);
        assert_eq!(routed(&ex, "info", None), vec!["all"]);
        assert!(routed(&ex, "warning", None).is_empty());
    }

    #[test]
    fn fanout_ignores_key_and_unbind_removes() {
        let ex = Exchange::new(ExchangeDef::new("f", ExchangeKind::Fanout));
        bind(&ex, "a", "x", FieldTable::new());
        bind(&ex, "b", "", FieldTable::new());
        assert_eq!(routed(&ex, "whatever", None), vec!["a", "b"]);
        assert!(ex.unbind(&Binding {
            source: "f".into(),
            destination: q("a"),
            routing_key: "x".into(),
            arguments: FieldTable::new()
        }));
        assert_eq!(routed(&ex, "whatever", None), vec!["b"]);
    }

    #[test]
    fn duplicate_binding_is_idempotent() {
        let ex = Exchange::new(ExchangeDef::new("t", ExchangeKind::Topic));
        let b = Binding {
            source: "t".into(),
            destination: q("a"),
            routing_key: "a.*".into(),
            arguments: FieldTable::new(),
        };
        assert!(ex.bind(b.clone()).unwrap());
        assert!(!ex.bind(b.clone()).unwrap());
        assert_eq!(ex.binding_count(), 1);
        assert_eq!(routed(&ex, "a.b", None), vec!["a"]);
        assert!(ex.unbind(&b));
        assert!(routed(&ex, "a.b", None).is_empty());
    }

    fn table(entries: &[(&str, FieldValue)]) -> FieldTable {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn headers_all_any_and_with_x() {
        let ex = Exchange::new(ExchangeDef::new("h", ExchangeKind::Headers));
        bind(
            &ex,
            "all",
            "",
            table(&[
                ("x-match", FieldValue::string("all")),
                ("format", FieldValue::string("pdf")),
                ("type", FieldValue::string("report")),
            ]),
        );
        bind(
            &ex,
            "any",
            "",
            table(&[
                ("x-match", FieldValue::string("any")),
                ("format", FieldValue::string("zip")),
                ("size", FieldValue::I32(10)),
            ]),
        );
        bind(&ex, "present", "", table(&[("format", FieldValue::Void)]));
        bind(
            &ex,
            "anyx",
            "",
            table(&[
                ("x-match", FieldValue::string("any-with-x")),
                ("x-tenant", FieldValue::string("acme")),
            ]),
        );
        let h = table(&[
            ("format", FieldValue::string("pdf")),
            ("type", FieldValue::string("report")),
        ]);
        assert_eq!(routed(&ex, "", Some(&h)), vec!["all", "present"]);
        let h = table(&[("size", FieldValue::I64(10))]);
        assert_eq!(routed(&ex, "", Some(&h)), vec!["any"]);
        let h = table(&[("x-tenant", FieldValue::string("acme"))]);
        assert_eq!(routed(&ex, "", Some(&h)), vec!["anyx"]);
        assert!(routed(&ex, "", None).is_empty());
    }

    #[test]
    fn headers_bad_x_match_is_refused() {
        let ex = Exchange::new(ExchangeDef::new("h", ExchangeKind::Headers));
        let err = ex
            .bind(Binding {
                source: "h".into(),
                destination: q("a"),
                routing_key: "".into(),
                arguments: table(&[("x-match", FieldValue::string("some"))]),
            })
            .unwrap_err();
        assert_eq!(err.name(), "PRECONDITION_FAILED");
    }
}
