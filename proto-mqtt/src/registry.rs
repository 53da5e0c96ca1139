//! State shared by every MQTT connection: persistent sessions (kept across reconnects), the
//! connection currently holding each client id (for takeover), and retained messages.
//!
//! Kept in memory behind one lock that is taken only at CONNECT/DISCONNECT, for session
//! changes and for retained messages — never per delivered message. With a metadata store,
//! persistent sessions and retained messages are also stored as records (spaces
//! [`SESSION_SPACE`] and [`RETAINED_SPACE`]) and recovered at start.

use crate::codec::FilterReq;
use junction_core::clock::Clock;
use junction_core::meta::{Catalog, MetaCommand};
use junction_core::runtime::driver::Takeover;
use junction_core::{Broker, FieldValue, Message};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Record space of stored MQTT sessions.
pub const SESSION_SPACE: &str = "mqtt-session";
/// Record space of retained messages.
pub const RETAINED_SPACE: &str = "mqtt-retained";

/// One subscription of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// The filter and options asked for.
    pub req: FilterReq,
    /// v5 subscription identifier.
    pub id: Option<usize>,
    /// `$share/group/...`: the group (the filter is in `req`, without the prefix).
    pub group: Option<String>,
    /// The match bit its binding marks deliveries with (none: matched by topic). Not stored:
    /// a resumed session reads it back from its queue's bindings, which the broker keeps.
    #[serde(skip)]
    pub bit: Option<u8>,
}

/// What a persistent session keeps while its client is away.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionState {
    /// The session's subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// QoS 2 packet ids received (PUBREC sent) and not yet released: a resent PUBLISH with one
    /// of these is not routed again.
    pub incoming_qos2: HashSet<u16>,
    /// QoS 2 packet ids we sent PUBREL for and await PUBCOMP.
    pub outgoing_rel: Vec<u16>,
    /// Seconds the session outlives its connection (u32::MAX = forever).
    pub expiry: u32,
    /// When the client went away (ms since the Unix epoch), for expiry.
    pub left_at: Option<u64>,
}

#[derive(Debug)]
struct Slot {
    /// The session's latest state: while a connection holds it, as that connection last
    /// stored it, so a takeover (or a reconnect before the old connection noticed it was gone)
    /// resumes it.
    state: Option<SessionState>,
    /// The live connection and how to tell it to go.
    live: Option<(u64, Takeover)>,
    /// Bumped at every connect: a delayed will fires only if no one reconnected.
    generation: u64,
}

/// What [`Registry::counts`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegistryCounts {
    /// Sessions held (connected, or persistent and waiting for their client).
    pub sessions: usize,
    /// Sessions with a client connected.
    pub connected: usize,
    /// Retained messages.
    pub retained: usize,
}

/// A retained message.
#[derive(Debug, Clone)]
pub struct Retained {
    /// The retained message.
    pub message: Arc<Message>,
    /// The QoS it was published with.
    pub qos: u8,
}

/// Retained messages a vhost holds at most unless configured otherwise.
pub const DEFAULT_MAX_RETAINED: usize = 1_000_000;

/// The MQTT registry of one broker.
#[derive(Debug, Default)]
pub struct Registry {
    /// Retained messages one vhost may hold (0: no limit).
    max_retained: std::sync::atomic::AtomicUsize,
    sessions: Mutex<HashMap<(String, String), Slot>>,
    retained: Mutex<HashMap<String, BTreeMap<String, Retained>>>,
    /// Where records are committed (none: kept in memory only).
    catalog: Option<Arc<Catalog>>,
    /// The broker's clock (session expiry, retained message expiry).
    clock: Arc<Clock>,
}

#[derive(Serialize, Deserialize)]
struct StoredSession {
    vhost: String,
    client_id: String,
    state: SessionState,
}

#[derive(Serialize, Deserialize)]
struct StoredRetained {
    vhost: String,
    topic: String,
    qos: u8,
    message: Message,
}

fn record_key(vhost: &str, name: &str) -> String {
    format!("{vhost}\0{name}")
}

/// Whether a message's own expiry (its `expiration`, counted from its `timestamp`, which an
/// MQTT 5 publish with a Message Expiry Interval carries) has passed at `now_ms`. The
/// timestamp has whole seconds: the message is taken as sent at the end of its second, so it
/// is never dropped early.
fn has_expired(m: &Message, now_ms: u64) -> bool {
    match (m.properties.ttl_ms(), m.properties.timestamp) {
        (Some(ttl), Some(sent_s)) => {
            now_ms.saturating_sub(sent_s.saturating_add(1).saturating_mul(1000)) >= ttl
        }
        _ => false,
    }
}

/// What a connecting client gets from the registry.
pub struct Claim {
    /// The stored session, if one existed and was resumed.
    pub resumed: Option<SessionState>,
    /// Becomes `true` when another connection takes the client id over.
    pub kicked: Takeover,
    /// Which connection of the client holds the session.
    pub generation: u64,
}

impl Registry {
    /// A registry that stores sessions and retained messages in the broker's metadata store,
    /// starting from what it recovered.
    pub fn durable(broker: &Broker) -> Registry {
        let mut sessions = HashMap::new();
        let now = broker.clock().unix_ms();
        for (key, value) in broker.take_records(SESSION_SPACE) {
            match postcard::from_bytes::<StoredSession>(&value) {
                Ok(mut s) => {
                    // A session whose connection was cut by a crash starts its expiry now.
                    s.state.left_at.get_or_insert(now);
                    sessions.insert(
                        (s.vhost, s.client_id),
                        Slot {
                            state: Some(s.state),
                            live: None,
                            generation: 0,
                        },
                    );
                }
                Err(e) => tracing::warn!(key, error = %e, "unreadable stored MQTT session dropped"),
            }
        }
        let mut retained: HashMap<String, BTreeMap<String, Retained>> = HashMap::new();
        for (key, value) in broker.take_records(RETAINED_SPACE) {
            match postcard::from_bytes::<StoredRetained>(&value) {
                Ok(r) => {
                    retained.entry(r.vhost).or_default().insert(
                        r.topic,
                        Retained {
                            message: Arc::new(r.message),
                            qos: r.qos,
                        },
                    );
                }
                Err(e) => tracing::warn!(key, error = %e, "unreadable retained message dropped"),
            }
        }
        if !sessions.is_empty() || !retained.is_empty() {
            tracing::info!(
                sessions = sessions.len(),
                retained = retained.values().map(|v| v.len()).sum::<usize>(),
                "MQTT state recovered"
            );
        }
        Registry {
            max_retained: std::sync::atomic::AtomicUsize::new(DEFAULT_MAX_RETAINED),
            sessions: Mutex::new(sessions),
            retained: Mutex::new(retained),
            catalog: Some(broker.catalog().clone()),
            clock: broker.clock().clone(),
        }
    }

    fn submit(&self, command: MetaCommand) {
        if let Some(catalog) = &self.catalog {
            if let Err(e) = catalog.commit_record(command) {
                tracing::error!(error = %e, "MQTT record not stored");
            }
        }
    }

    /// Stores a persistent session's state (the broker's sync waits for it).
    pub fn store_session(&self, vhost: &str, client_id: &str, state: &SessionState) {
        self.write_session(vhost, client_id, state);
    }

    /// Stores the state of the session that `connection` holds, both durably and as what a
    /// connection taking it over resumes. A connection that lost the session changes nothing.
    pub fn update_live(&self, vhost: &str, client_id: &str, connection: u64, state: &SessionState) {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = map.get_mut(&(vhost.to_string(), client_id.to_string())) else {
            return;
        };
        if slot.live.as_ref().is_none_or(|(c, _)| *c != connection) {
            return;
        }
        slot.state = Some(state.clone());
        drop(map);
        self.write_session(vhost, client_id, state);
    }

    fn write_session(&self, vhost: &str, client_id: &str, state: &SessionState) {
        if self.catalog.is_none() {
            return;
        }
        let value = postcard::to_stdvec(&StoredSession {
            vhost: vhost.to_string(),
            client_id: client_id.to_string(),
            state: state.clone(),
        })
        .unwrap_or_default();
        self.submit(MetaCommand::PutRecord {
            space: SESSION_SPACE.into(),
            key: record_key(vhost, client_id),
            value,
        });
    }

    /// Forgets a stored session.
    pub fn forget_session(&self, vhost: &str, client_id: &str) {
        self.submit(MetaCommand::DeleteRecord {
            space: SESSION_SPACE.into(),
            key: record_key(vhost, client_id),
        });
    }

    /// Takes the client id for `connection`: the previous holder is told to go; a stored session
    /// is resumed unless `clean_start` (or it has expired).
    pub fn claim(&self, vhost: &str, client_id: &str, connection: u64, clean_start: bool) -> Claim {
        let now = self.clock.unix_ms();
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let slot = map
            .entry((vhost.to_string(), client_id.to_string()))
            .or_insert_with(|| Slot {
                state: None,
                live: None,
                generation: 0,
            });
        if let Some((_, kick)) = slot.live.take() {
            kick.signal();
        }
        slot.generation += 1;
        let kicked = Takeover::new();
        slot.live = Some((connection, kicked.clone()));
        let stored = slot.state.take().filter(|s| {
            s.left_at.is_none_or(|left| {
                s.expiry == u32::MAX || now.saturating_sub(left) < u64::from(s.expiry) * 1000
            })
        });
        Claim {
            resumed: if clean_start { None } else { stored },
            kicked,
            generation: slot.generation,
        }
    }

    /// The connection ended: keep `state` if the session outlives it, and free the client id
    /// unless someone else already holds it.
    pub fn release(
        &self,
        vhost: &str,
        client_id: &str,
        connection: u64,
        state: Option<SessionState>,
    ) {
        let now = self.clock.unix_ms();
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let key = (vhost.to_string(), client_id.to_string());
        let Some(slot) = map.get_mut(&key) else {
            return;
        };
        let ours = slot.live.as_ref().is_some_and(|(c, _)| *c == connection);
        if ours {
            slot.live = None;
        }
        if let Some(mut s) = state.filter(|s| s.expiry > 0) {
            // A takeover already resumed (or replaced) the session: the newer holder owns it.
            if ours {
                s.left_at = Some(now);
                self.store_session(vhost, client_id, &s);
                slot.state = Some(s);
            }
        } else if ours {
            slot.state = None;
            self.forget_session(vhost, client_id);
        }
        if slot.live.is_none() && slot.state.is_none() {
            map.remove(&key);
        }
    }

    /// True if the client id has connected again since `generation`.
    pub fn reconnected_since(&self, vhost: &str, client_id: &str, generation: u64) -> bool {
        let map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(vhost.to_string(), client_id.to_string()))
            .is_some_and(|s| s.generation != generation)
    }

    /// How many sessions there are (persistent ones kept while their client is away, and
    /// live ones), how many of them have a client connected, and how many retained messages
    /// are held: what the metrics report.
    pub fn counts(&self) -> RegistryCounts {
        let (sessions, connected) = {
            let map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let live = map.values().filter(|s| s.live.is_some()).count();
            let kept = map
                .values()
                .filter(|s| s.live.is_some() || s.state.is_some())
                .count();
            (kept, live)
        };
        let retained = self
            .retained
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(BTreeMap::len)
            .sum();
        RegistryCounts {
            sessions,
            connected,
            retained,
        }
    }

    /// Sets how many retained messages one vhost may hold (0: no limit).
    pub fn set_max_retained(&self, max: usize) {
        self.max_retained
            .store(max, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a retained message for `topic` in `vhost` would be kept: it replaces one, or
    /// the vhost is below its limit.
    pub fn may_retain(&self, vhost: &str, topic: &str) -> bool {
        let max = self.max_retained.load(std::sync::atomic::Ordering::Relaxed);
        if max == 0 {
            return true;
        }
        let r = self.retained.lock().unwrap_or_else(|e| e.into_inner());
        r.get(vhost)
            .is_none_or(|v| v.len() < max || v.contains_key(topic))
    }

    /// Stores (or with an empty body, clears) the retained message of a topic. A new topic
    /// past the vhost's limit is not stored (false).
    pub fn retain(&self, vhost: &str, topic: &str, retained: Option<Retained>) -> bool {
        let max = self.max_retained.load(std::sync::atomic::Ordering::Relaxed);
        let mut r = self.retained.lock().unwrap_or_else(|e| e.into_inner());
        let v = r.entry(vhost.to_string()).or_default();
        let key = record_key(vhost, topic);
        match retained {
            Some(_) if max > 0 && v.len() >= max && !v.contains_key(topic) => {
                tracing::debug!(
                    vhost,
                    topic,
                    max,
                    "retained message limit reached: not retained"
                );
                return false;
            }
            Some(m) => {
                if self.catalog.is_some() {
                    let value = postcard::to_stdvec(&StoredRetained {
                        vhost: vhost.to_string(),
                        topic: topic.to_string(),
                        qos: m.qos,
                        message: (*m.message).clone(),
                    })
                    .unwrap_or_default();
                    self.submit(MetaCommand::PutRecord {
                        space: RETAINED_SPACE.into(),
                        key,
                        value,
                    });
                }
                v.insert(topic.to_string(), m);
            }
            None => {
                if v.remove(topic).is_some() {
                    self.submit(MetaCommand::DeleteRecord {
                        space: RETAINED_SPACE.into(),
                        key,
                    });
                }
            }
        }
        true
    }

    /// A message published to `amq.topic` (by any protocol): with `x-mqtt-retain` true it
    /// becomes the retained message of its topic, or clears it when the body is empty.
    pub fn retain_published(&self, vhost: &str, message: &Arc<Message>) {
        let Some(h) = message.properties.headers.as_ref() else {
            return;
        };
        let retain = match h.get(crate::headers::H_RETAIN) {
            Some(FieldValue::Bool(b)) => *b,
            Some(v) => v.as_i64() == Some(1) || v.as_str() == Some("true"),
            None => false,
        };
        if !retain {
            return;
        }
        let qos = h
            .get_i64(crate::headers::H_QOS)
            .map_or(u8::from(message.properties.is_persistent()), |q| {
                q.clamp(0, 2) as u8
            });
        let topic = crate::topic::key_to_topic(&message.routing_key);
        let retained = (!message.body.is_empty()).then(|| Retained {
            message: message.clone(),
            qos,
        });
        self.retain(vhost, &topic, retained);
    }

    /// Retained messages whose topic matches `filter`, in topic order. One whose MQTT 5
    /// message expiry has passed is not sent (and is forgotten), as the spec requires.
    pub fn retained_matching(&self, vhost: &str, filter: &str) -> Vec<(String, Retained)> {
        let now_ms = self.clock.unix_ms();
        let mut expired = Vec::new();
        let found = {
            let r = self.retained.lock().unwrap_or_else(|e| e.into_inner());
            r.get(vhost)
                .map(|v| {
                    v.iter()
                        .filter(|(t, _)| crate::topic::matches(t, filter))
                        .filter(|(t, m)| {
                            let gone = has_expired(&m.message, now_ms);
                            if gone {
                                expired.push((*t).clone());
                            }
                            !gone
                        })
                        .map(|(t, m)| (t.clone(), m.clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        for topic in expired {
            self.retain(vhost, &topic, None);
        }
        found
    }
}
