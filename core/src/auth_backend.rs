//! External authentication and authorisation backends (RabbitMQ's `auth_backends`): a user
//! the internal database does not know may be asked about elsewhere — an HTTP service, an
//! LDAP directory. A backend answers four kinds of question, as
//! `rabbitmq_auth_backend_http` asks them: may this user log in (and with which tags), open
//! this vhost, use this resource, use this routing key. [`Cached`] remembers answers for a
//! while, as `rabbitmq_auth_backend_cache` does, so that a publish does not wait on the
//! network.

use crate::clock::Clock;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// One question for a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// May `username` log in with `password` (none after a verified client certificate)?
    User {
        /// The user's name.
        username: String,
        /// The password offered, if any.
        password: Option<String>,
    },
    /// May the user open `vhost` from `ip`?
    VHost {
        /// The user's name.
        username: String,
        /// The vhost.
        vhost: String,
        /// The client's address, when there is a client connection.
        ip: Option<IpAddr>,
    },
    /// May the user `permission` (`configure`, `write`, `read`) the `resource` (`queue`,
    /// `exchange`) called `name`?
    Resource {
        /// The user's name.
        username: String,
        /// The vhost of the resource.
        vhost: String,
        /// `queue` or `exchange`.
        resource: &'static str,
        /// The resource's name.
        name: String,
        /// `configure`, `write` or `read`.
        permission: &'static str,
    },
    /// May the user `permission` (`write` to publish, `read` to bind) `routing_key` on the
    /// topic exchange `name`?
    Topic {
        /// The user's name.
        username: String,
        /// The vhost of the exchange.
        vhost: String,
        /// The exchange's name.
        name: String,
        /// `write` or `read`.
        permission: &'static str,
        /// The routing (or binding) key.
        routing_key: String,
        /// The MQTT client id, if the connection has one.
        client_id: Option<String>,
    },
}

impl Query {
    /// The request parameters, as `rabbitmq_auth_backend_http` names them, in a fixed order.
    pub fn parameters(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::with_capacity(6);
        match self {
            Query::User { username, password } => {
                p.push(("username", username.clone()));
                if let Some(pw) = password {
                    p.push(("password", pw.clone()));
                }
            }
            Query::VHost {
                username,
                vhost,
                ip,
            } => {
                p.push(("username", username.clone()));
                p.push(("vhost", vhost.clone()));
                if let Some(ip) = ip {
                    p.push(("ip", ip.to_string()));
                }
            }
            Query::Resource {
                username,
                vhost,
                resource,
                name,
                permission,
            } => {
                p.push(("username", username.clone()));
                p.push(("vhost", vhost.clone()));
                p.push(("resource", resource.to_string()));
                p.push(("name", name.clone()));
                p.push(("permission", permission.to_string()));
            }
            Query::Topic {
                username,
                vhost,
                name,
                permission,
                routing_key,
                client_id,
            } => {
                p.push(("username", username.clone()));
                p.push(("vhost", vhost.clone()));
                p.push(("resource", "topic".into()));
                p.push(("name", name.clone()));
                p.push(("permission", permission.to_string()));
                p.push(("routing_key", routing_key.clone()));
                if let Some(c) = client_id {
                    p.push(("client_id", c.clone()));
                }
            }
        }
        p
    }

    /// Which of the four questions this is (`user`, `vhost`, `resource`, `topic`).
    pub fn kind(&self) -> &'static str {
        match self {
            Query::User { .. } => "user",
            Query::VHost { .. } => "vhost",
            Query::Resource { .. } => "resource",
            Query::Topic { .. } => "topic",
        }
    }

    /// The key an answer is remembered under: every parameter, a password only as its
    /// SHA-256 (a cache holds no passwords).
    fn cache_key(&self) -> String {
        let mut key = self.kind().to_string();
        for (name, value) in self.parameters() {
            key.push('\0');
            key.push_str(name);
            key.push('=');
            if name == "password" {
                let digest = Sha256::digest(value.as_bytes());
                key.extend(digest.iter().map(|b| format!("{b:02x}")));
            } else {
                key.push_str(&value);
            }
        }
        key
    }
}

/// A backend's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Allowed; for a login, with the user's tags.
    Allow(Vec<String>),
    /// Refused.
    Deny,
    /// The backend could not be asked (unreachable, timed out, an answer it should not give):
    /// treated as a refusal, logged with the reason and never remembered.
    Error(String),
}

impl Answer {
    /// Whether the answer allows.
    pub fn allows(&self) -> bool {
        matches!(self, Answer::Allow(_))
    }
}

/// An external backend. Calls come from a connection's own task and may block it while the
/// backend is asked (never longer than the backend's own timeout); other connections are
/// not held up.
pub trait AuthBackend: Send + Sync + Debug {
    /// The backend's name in logs (`http`).
    fn name(&self) -> &str;

    /// Asks one question.
    fn ask(&self, query: &Query) -> Answer;

    /// Whether the backend decides on routing keys (topic questions); when not, every key
    /// is allowed, as RabbitMQ does for users without topic permissions.
    fn checks_topics(&self) -> bool;
}

/// At most this many answers are remembered; when full, expired ones go first, then all.
pub const CACHE_CAPACITY: usize = 65_536;

/// Remembers another backend's answers for `ttl_ms` on the broker's clock (positive and
/// negative alike, errors never), as `rabbitmq_auth_backend_cache`.
#[derive(Debug)]
pub struct Cached<B> {
    inner: B,
    ttl_ms: u64,
    clock: Arc<Clock>,
    answers: Mutex<HashMap<String, (Answer, u64)>>,
}

impl<B: AuthBackend> Cached<B> {
    /// `inner`'s answers, each remembered for `ttl_ms` (0: not at all).
    pub fn new(inner: B, ttl_ms: u64, clock: Arc<Clock>) -> Cached<B> {
        Cached {
            inner,
            ttl_ms,
            clock,
            answers: Mutex::new(HashMap::new()),
        }
    }

    /// How many answers are remembered now.
    pub fn len(&self) -> usize {
        self.answers.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no answer is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<B: AuthBackend> AuthBackend for Cached<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn ask(&self, query: &Query) -> Answer {
        if self.ttl_ms == 0 {
            return self.inner.ask(query);
        }
        let key = query.cache_key();
        let now = self.clock.now_ms();
        {
            let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((answer, until)) = answers.get(&key) {
                if *until > now {
                    return answer.clone();
                }
            }
        }
        // Asked without the lock held: a slow backend holds up only this question.
        let answer = self.inner.ask(query);
        if !matches!(answer, Answer::Error(_)) {
            let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            if answers.len() >= CACHE_CAPACITY {
                answers.retain(|_, (_, until)| *until > now);
                if answers.len() >= CACHE_CAPACITY {
                    answers.clear();
                }
            }
            answers.insert(key, (answer.clone(), now.saturating_add(self.ttl_ms)));
        }
        answer
    }

    fn checks_topics(&self) -> bool {
        self.inner.checks_topics()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A backend that allows user `a` with password `pw` and counts the questions it gets.
    #[derive(Debug, Default)]
    struct Counting {
        asked: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
    }

    impl AuthBackend for &Counting {
        fn name(&self) -> &str {
            "counting"
        }
        fn ask(&self, q: &Query) -> Answer {
            self.asked.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Answer::Error("down".into());
            }
            match q {
                Query::User { username, password }
                    if username == "a" && password.as_deref() == Some("pw") =>
                {
                    Answer::Allow(vec!["management".into()])
                }
                _ => Answer::Deny,
            }
        }
        fn checks_topics(&self) -> bool {
            true
        }
    }

    fn login(pw: &str) -> Query {
        Query::User {
            username: "a".into(),
            password: Some(pw.into()),
        }
    }

    #[test]
    fn answers_are_remembered_until_they_expire_on_the_supplied_clock() {
        let counting = Counting::default();
        let clock = Arc::new(Clock::manual());
        let cached = Cached::new(&counting, 1000, clock.clone());
        assert_eq!(
            cached.ask(&login("pw")),
            Answer::Allow(vec!["management".into()])
        );
        assert_eq!(cached.ask(&login("nope")), Answer::Deny);
        assert_eq!(cached.ask(&login("pw")), cached.ask(&login("pw")));
        assert_eq!(cached.ask(&login("nope")), Answer::Deny);
        assert_eq!(counting.asked.load(Ordering::SeqCst), 2, "both remembered");
        clock.advance(1000);
        cached.ask(&login("pw"));
        assert_eq!(
            counting.asked.load(Ordering::SeqCst),
            3,
            "expired, asked again"
        );
    }

    #[test]
    fn errors_are_not_remembered_and_passwords_are_kept_only_as_digests() {
        let counting = Counting::default();
        counting.fail.store(true, Ordering::SeqCst);
        let cached = Cached::new(&counting, 60_000, Arc::new(Clock::manual()));
        assert!(matches!(cached.ask(&login("pw")), Answer::Error(_)));
        assert!(cached.is_empty());
        counting.fail.store(false, Ordering::SeqCst);
        assert!(cached.ask(&login("pw")).allows());
        let keys: Vec<String> = cached.answers.lock().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 1);
        assert!(!keys[0].contains("=pw"), "{:?}", keys[0]);
    }

    #[test]
    fn the_cache_is_bounded() {
        let counting = Counting::default();
        let cached = Cached::new(&counting, 60_000, Arc::new(Clock::manual()));
        for i in 0..CACHE_CAPACITY + 10 {
            cached.ask(&login(&i.to_string()));
        }
        assert!(cached.len() <= CACHE_CAPACITY);
    }

    #[test]
    fn parameters_follow_the_http_backend_contract() {
        let q = Query::Topic {
            username: "u".into(),
            vhost: "/".into(),
            name: "amq.topic".into(),
            permission: "write",
            routing_key: "d.1".into(),
            client_id: Some("c".into()),
        };
        let names: Vec<&str> = q.parameters().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "username",
                "vhost",
                "resource",
                "name",
                "permission",
                "routing_key",
                "client_id"
            ]
        );
        assert_eq!(q.kind(), "topic");
    }
}
