//! RabbitMQ's permission model, compiled once per connection: configure, write and read
//! regular expressions on queue and exchange names, and topic permissions on the routing keys
//! of topic exchanges (`{username}`, `{vhost}` and `{client_id}` expanded). A [`Permit`] holds
//! one user's compiled grant in one vhost and recompiles it only when a permission changed
//! (a generation counter), so a check on the publish path is an atomic load and, for the
//! usual `.*`, no regex at all.

use crate::auth_backend::{AuthBackend, Query};
use crate::broker::Broker;
use crate::error::{CoreError, CoreResult};
use crate::refusals::Refusal;
use regex::Regex;
use std::collections::HashMap;
use std::sync::Arc;

/// What an operation needs of a resource, as RabbitMQ names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Declare or delete.
    Configure,
    /// Publish to (exchanges), bind to (queues and destination exchanges).
    Write,
    /// Consume, get, purge (queues), bind from (source exchanges).
    Read,
}

impl Action {
    /// The name used in refusals (`configure`, `write`, `read`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Configure => "configure",
            Action::Write => "write",
            Action::Read => "read",
        }
    }
}

/// The kind of a named resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A queue.
    Queue,
    /// An exchange.
    Exchange,
}

impl Resource {
    /// The name a backend is asked with (`queue`, `exchange`).
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Queue => "queue",
            Resource::Exchange => "exchange",
        }
    }
}

/// One permission expression: RabbitMQ's unanchored regex, with `.*` (everything) and the
/// empty string (a synonym of `^$`) recognised without running a regex.
#[derive(Debug, Clone)]
enum Pattern {
    Any,
    Nothing,
    Regex(Regex),
}

impl Pattern {
    fn compile(expr: &str) -> Pattern {
        match expr {
            ".*" | "^.*" | "^.*$" | ".*$" => Pattern::Any,
            "" | "^$" => Pattern::Nothing,
            // A pattern that no longer compiles (it was checked when set) grants nothing.
            e => Regex::new(e).map_or(Pattern::Nothing, Pattern::Regex),
        }
    }

    fn allows(&self, name: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Nothing => name.is_empty(),
            Pattern::Regex(r) => r.is_match(name),
        }
    }
}

/// The variables a topic permission expands.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The user.
    pub user: String,
    /// The vhost.
    pub vhost: String,
    /// The MQTT client id, if the connection has one.
    pub client_id: Option<String>,
}

/// Expands `{username}`, `{vhost}` and `{client_id}` in a topic permission, each value
/// escaped so that it matches only itself. A connection without a client id matches no
/// expression that names one.
pub(crate) fn expand(expr: &str, who: &Identity) -> String {
    let client = who
        .client_id
        .as_deref()
        .map_or_else(|| "[^\\s\\S]".to_string(), regex::escape);
    expr.replace("{username}", &regex::escape(&who.user))
        .replace("{vhost}", &regex::escape(&who.vhost))
        .replace("{client_id}", &client)
}

/// A user's permissions in one vhost, compiled.
#[derive(Debug, Clone)]
struct Grant {
    configure: Pattern,
    write: Pattern,
    read: Pattern,
    /// Topic permissions by exchange: (write, read).
    topic: HashMap<String, (Pattern, Pattern)>,
}

impl Grant {
    fn compile(broker: &Broker, who: &Identity) -> Grant {
        let auth = broker.auth();
        let (configure, write, read) = match auth.permission(&who.user, &who.vhost) {
            Some(p) => (
                Pattern::compile(&p.configure),
                Pattern::compile(&p.write),
                Pattern::compile(&p.read),
            ),
            // Users of the configuration file name their vhosts and have every right there.
            None if auth.lists_vhost(&who.user, &who.vhost) => {
                (Pattern::Any, Pattern::Any, Pattern::Any)
            }
            None => (Pattern::Nothing, Pattern::Nothing, Pattern::Nothing),
        };
        let topic = broker
            .access()
            .topic_permissions_of(&who.user, &who.vhost)
            .into_iter()
            .map(|t| {
                let w = Pattern::compile(&expand(&t.write, who));
                let r = Pattern::compile(&expand(&t.read, who));
                (t.exchange, (w, r))
            })
            .collect();
        Grant {
            configure,
            write,
            read,
            topic,
        }
    }

    fn pattern(&self, action: Action) -> &Pattern {
        match action {
            Action::Configure => &self.configure,
            Action::Write => &self.write,
            Action::Read => &self.read,
        }
    }
}

/// One connection's rights in its vhost, checked by the core before every declare, delete,
/// bind, publish, consume, get and purge the connection asks for.
#[derive(Debug)]
pub struct Permit {
    broker: Arc<Broker>,
    who: Identity,
    grant: Grant,
    /// The external backend that logged the user in, asked instead of `grant`.
    external: Option<Arc<dyn AuthBackend>>,
    generation: u64,
    /// The last exchange a write was allowed on (publishes repeat it).
    last_write: Option<Box<str>>,
}

impl Permit {
    /// The rights of `who`, as they stand now.
    pub fn new(broker: Arc<Broker>, who: Identity) -> Permit {
        let generation = broker.auth().generation();
        let grant = Grant::compile(&broker, &who);
        let external = broker.auth().external_backend_of(&who.user);
        Permit {
            broker,
            who,
            grant,
            external,
            generation,
            last_write: None,
        }
    }

    /// Every right in `vhost`, for a caller that is not a user (the node's own `junction
    /// ctl`, acting with the local credential).
    pub fn unrestricted(broker: Arc<Broker>, vhost: &str) -> Permit {
        let generation = u64::MAX;
        Permit {
            broker,
            who: Identity {
                user: String::new(),
                vhost: vhost.to_string(),
                client_id: None,
            },
            grant: Grant {
                configure: Pattern::Any,
                write: Pattern::Any,
                read: Pattern::Any,
                topic: HashMap::new(),
            },
            external: None,
            generation,
            last_write: None,
        }
    }

    fn refresh(&mut self) {
        if self.generation == u64::MAX {
            return;
        }
        let now = self.broker.auth().generation();
        if now != self.generation {
            self.grant = Grant::compile(&self.broker, &self.who);
            self.external = self.broker.auth().external_backend_of(&self.who.user);
            self.generation = now;
            self.last_write = None;
        }
    }

    /// Checks `action` on the resource `name` (the default exchange is `amq.default`, as in
    /// RabbitMQ); 403 ACCESS_REFUSED, logged and counted, otherwise.
    pub fn check(&mut self, action: Action, kind: Resource, name: &str) -> CoreResult<()> {
        self.refresh();
        let name = if kind == Resource::Exchange && name.is_empty() {
            "amq.default"
        } else {
            name
        };
        if action == Action::Write
            && kind == Resource::Exchange
            && self.last_write.as_deref() == Some(name)
        {
            return Ok(());
        }
        let allowed = match &self.external {
            Some(backend) => backend
                .ask(&Query::Resource {
                    username: self.who.user.clone(),
                    vhost: self.who.vhost.clone(),
                    resource: kind.as_str(),
                    name: name.to_string(),
                    permission: action.as_str(),
                })
                .allows(),
            None => self.grant.pattern(action).allows(name),
        };
        if allowed {
            if action == Action::Write && kind == Resource::Exchange {
                self.last_write = Some(name.into());
            }
            return Ok(());
        }
        Err(self.refuse(format!(
            "{} access to {} '{name}' in vhost '{}' refused for user '{}'",
            action.as_str(),
            kind.as_str(),
            self.who.vhost,
            self.who.user
        )))
    }

    /// Whether the user has topic permissions on `exchange` (only then does a routing key
    /// need checking).
    pub fn has_topic_rules(&mut self, exchange: &str) -> bool {
        self.refresh();
        match &self.external {
            Some(backend) => backend.checks_topics(),
            None => self.grant.topic.contains_key(exchange),
        }
    }

    /// Checks a topic permission: `action` (write to publish, read to bind) with
    /// `routing_key` on the topic exchange `exchange`. An exchange without topic permissions
    /// for the user allows every key, as in RabbitMQ.
    pub fn check_topic(
        &mut self,
        action: Action,
        exchange: &str,
        routing_key: &str,
    ) -> CoreResult<()> {
        self.refresh();
        let allowed = match &self.external {
            Some(backend) => {
                !backend.checks_topics()
                    || backend
                        .ask(&Query::Topic {
                            username: self.who.user.clone(),
                            vhost: self.who.vhost.clone(),
                            name: exchange.to_string(),
                            permission: action.as_str(),
                            routing_key: routing_key.to_string(),
                            client_id: self.who.client_id.clone(),
                        })
                        .allows()
            }
            None => match self.grant.topic.get(exchange) {
                None => true,
                Some((write, read)) => {
                    let pattern = if action == Action::Write { write } else { read };
                    pattern.allows(routing_key)
                }
            },
        };
        if allowed {
            return Ok(());
        }
        Err(self.refuse(format!(
            "{} access to topic '{routing_key}' in exchange '{exchange}' in vhost '{}' refused for user '{}'",
            action.as_str(),
            self.who.vhost,
            self.who.user
        )))
    }

    /// Logs (once per burst) and counts a refusal.
    fn refuse(&self, text: String) -> CoreError {
        if self.broker.refusals().count(Refusal::AccessRefused) {
            tracing::warn!(user = %self.who.user, vhost = %self.who.vhost, "{text}");
        } else {
            tracing::debug!(user = %self.who.user, vhost = %self.who.vhost, "{text}");
        }
        CoreError::AccessRefused(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(client: Option<&str>) -> Identity {
        Identity {
            user: "dev.1".into(),
            vhost: "/".into(),
            client_id: client.map(str::to_string),
        }
    }

    #[test]
    fn patterns_follow_rabbitmq() {
        assert!(Pattern::compile(".*").allows("anything"));
        assert!(!Pattern::compile("").allows("q"));
        assert!(!Pattern::compile("^$").allows("q"));
        assert!(Pattern::compile("^app-").allows("app-1"));
        assert!(!Pattern::compile("^app-").allows("x-app-1"));
        assert!(Pattern::compile("app").allows("x-app-1"), "unanchored");
        assert!(!Pattern::compile("(").allows("("), "broken grants nothing");
    }

    #[test]
    fn variables_expand_escaped() {
        let e = expand("^devices\\.{client_id}\\.", &who(Some("a.b")));
        let p = Pattern::compile(&e);
        assert!(p.allows("devices.a.b.temp"));
        assert!(!p.allows("devices.aXb.temp"), "the dot of a.b is literal");
        let user = Pattern::compile(&expand("^{username}$", &who(None)));
        assert!(user.allows("dev.1") && !user.allows("devX1"));
        let none = Pattern::compile(&expand("^{client_id}", &who(None)));
        assert!(!none.allows("anything"), "no client id matches nothing");
    }

    #[test]
    fn a_permit_follows_permission_changes_and_counts_refusals() {
        let broker = Broker::in_memory();
        broker
            .put_user(crate::auth::new_user("u", "pw", vec![], vec![]))
            .unwrap();
        let grant = |configure: &str| crate::storage::Permission {
            user: "u".into(),
            vhost: "/".into(),
            configure: configure.into(),
            write: ".*".into(),
            read: "^own-".into(),
        };
        broker.put_permission(grant("^own-")).unwrap();
        let mut permit = Permit::new(
            broker.clone(),
            Identity {
                user: "u".into(),
                vhost: "/".into(),
                client_id: Some("c1".into()),
            },
        );
        permit
            .check(Action::Configure, Resource::Queue, "own-q")
            .unwrap();
        let e = permit
            .check(Action::Read, Resource::Queue, "other")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "ACCESS_REFUSED - read access to queue 'other' in vhost '/' refused for user 'u'"
        );
        assert_eq!(broker.refusals().get(Refusal::AccessRefused), 1);
        permit.check(Action::Write, Resource::Exchange, "").unwrap();
        broker.put_permission(grant("")).unwrap();
        assert!(
            permit
                .check(Action::Configure, Resource::Queue, "own-q")
                .is_err(),
            "a change applies to a permit already made"
        );
        broker
            .put_topic_permission(crate::meta::TopicPermission {
                user: "u".into(),
                vhost: "/".into(),
                exchange: "amq.topic".into(),
                write: "^d\\.{client_id}\\.".into(),
                read: ".*".into(),
            })
            .unwrap();
        assert!(permit.has_topic_rules("amq.topic"));
        permit
            .check_topic(Action::Write, "amq.topic", "d.c1.t")
            .unwrap();
        assert!(permit
            .check_topic(Action::Write, "amq.topic", "d.c2.t")
            .is_err());
        permit
            .check_topic(Action::Write, "other.topic", "anything")
            .unwrap();
    }
}
