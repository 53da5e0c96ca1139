//! The metadata state machine: what exists, as the commands so far made it. Deterministic and
//! free of I/O and clocks, so the live path, recovery (a replay) and a replica apply the same
//! commands to the same result.

use super::command::{MetaCommand, MetaSnapshot, Permission, TopicPermission, UserRecord};
use crate::error::{CoreError, CoreResult};
use crate::exchange::{builtin_exchanges, is_builtin, Binding, Destination, ExchangeDef};
use crate::limits::LimitTable;
use crate::policy::Policy;
use crate::queue::QueueDef;
use std::collections::BTreeMap;

/// What applying a command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The state changed. `durable`: the change belongs in the metadata store (it touches a
    /// durable object), and whoever asked for it is answered once the store has it.
    Applied {
        /// The change must be made durable before it is acknowledged.
        durable: bool,
    },
    /// The state already was so (a redeclaration, a missing binding deleted, a lost race).
    Unchanged,
}

impl Outcome {
    /// True when the change went to the metadata store.
    pub fn stored(self) -> bool {
        matches!(self, Outcome::Applied { durable: true })
    }
}

/// A queue as the state machine knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    /// What it was declared with.
    pub def: QueueDef,
    /// The owning connection of an exclusive queue.
    pub owner: Option<u64>,
}

impl QueueEntry {
    /// Kept across restarts: durable and not exclusive.
    pub fn durable(&self) -> bool {
        self.def.durable && !self.def.exclusive
    }
}

/// One vhost's exchanges, queues and bindings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VHostMeta {
    /// Exchanges by name (the built-in ones included).
    pub exchanges: BTreeMap<String, ExchangeDef>,
    /// Queues by name.
    pub queues: BTreeMap<String, QueueEntry>,
    /// Bindings by destination (finding one costs its destination's, not the vhost's).
    pub bindings: BTreeMap<Destination, Vec<Binding>>,
    /// Policies by name.
    pub policies: BTreeMap<String, Policy>,
    /// Its limits.
    pub limits: LimitTable,
    /// Its description and tags.
    pub metadata: super::VHostMetadata,
}

impl VHostMeta {
    fn with_builtins() -> Self {
        let mut v = VHostMeta::default();
        for def in builtin_exchanges() {
            v.exchanges.insert(def.name.clone(), def);
        }
        v
    }

    fn destination_durable(&self, d: &Destination) -> Option<bool> {
        match d {
            Destination::Queue(q) => self.queues.get(q).map(QueueEntry::durable),
            Destination::Exchange(e) => self.exchanges.get(e).map(|e| e.durable),
        }
    }

    /// Whether a binding is kept across restarts: both ends are.
    fn binding_durable(&self, b: &Binding) -> bool {
        self.exchanges.get(&b.source).is_some_and(|e| e.durable)
            && self.destination_durable(&b.destination) == Some(true)
    }
}

/// Every vhost and user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaState {
    vhosts: BTreeMap<String, VHostMeta>,
    users: BTreeMap<String, UserRecord>,
    /// Permissions by (vhost, user).
    permissions: BTreeMap<(String, String), Permission>,
    /// Topic permissions by (vhost, user, exchange).
    topic_permissions: BTreeMap<(String, String, String), TopicPermission>,
    /// User limits by user.
    user_limits: BTreeMap<String, LimitTable>,
}

fn missing(kind: &str, name: &str, vhost: &str) -> CoreError {
    CoreError::NotFound(format!("no {kind} '{name}' in vhost '{vhost}'"))
}

impl MetaState {
    /// An empty state: no vhost, no user.
    pub fn new() -> Self {
        MetaState::default()
    }

    /// A vhost's entities, if it exists.
    pub fn vhost(&self, name: &str) -> Option<&VHostMeta> {
        self.vhosts.get(name)
    }

    /// The vhost names.
    pub fn vhost_names(&self) -> impl Iterator<Item = &str> {
        self.vhosts.keys().map(String::as_str)
    }

    /// A user, if it exists.
    pub fn user(&self, name: &str) -> Option<&UserRecord> {
        self.users.get(name)
    }

    fn vhost_mut(&mut self, name: &str) -> CoreResult<&mut VHostMeta> {
        self.vhosts
            .get_mut(name)
            .ok_or_else(|| CoreError::NotFound(format!("no vhost '{name}'")))
    }

    /// Applies one command. An error leaves the state as it was.
    pub fn apply(&mut self, cmd: &MetaCommand) -> CoreResult<Outcome> {
        use MetaCommand as C;
        let applied = |durable| Ok(Outcome::Applied { durable });
        match cmd {
            C::PutVHost(name) => {
                if self.vhosts.contains_key(name) {
                    return Ok(Outcome::Unchanged);
                }
                self.vhosts.insert(name.clone(), VHostMeta::with_builtins());
                applied(true)
            }
            C::DeleteVHost(name) => match self.vhosts.remove(name) {
                Some(_) => {
                    self.permissions.retain(|(v, _), _| v != name);
                    self.topic_permissions.retain(|(v, _, _), _| v != name);
                    applied(true)
                }
                None => Err(CoreError::NotFound(format!("no vhost '{name}'"))),
            },
            C::PutExchange { vhost, def } => {
                let v = self.vhost_mut(vhost)?;
                if let Some(existing) = v.exchanges.get(&def.name) {
                    return if existing.equivalent(def) || is_builtin(&def.name) {
                        Ok(Outcome::Unchanged)
                    } else {
                        Err(CoreError::PreconditionFailed(format!(
                            "inequivalent arg 'durable' or arguments for exchange '{}' in vhost '{vhost}'",
                            def.name
                        )))
                    };
                }
                v.exchanges.insert(def.name.clone(), def.clone());
                applied(def.durable)
            }
            C::DeleteExchange { vhost, name } => {
                let v = self.vhost_mut(vhost)?;
                if is_builtin(name) {
                    return Err(CoreError::AccessRefused(format!(
                        "operation not permitted on exchange '{name}'"
                    )));
                }
                let Some(def) = v.exchanges.remove(name) else {
                    return Ok(Outcome::Unchanged);
                };
                v.bindings.remove(&Destination::Exchange(name.clone()));
                v.bindings.retain(|_, list| {
                    list.retain(|b| b.source != *name);
                    !list.is_empty()
                });
                applied(def.durable)
            }
            C::PutQueue { vhost, def, owner } => {
                let v = self.vhost_mut(vhost)?;
                if let Some(existing) = v.queues.get(&def.name) {
                    return if existing.def.equivalent(def) {
                        Ok(Outcome::Unchanged)
                    } else {
                        Err(CoreError::PreconditionFailed(format!(
                            "inequivalent arg for queue '{}' in vhost '{vhost}'",
                            def.name
                        )))
                    };
                }
                let entry = QueueEntry {
                    def: def.clone(),
                    owner: *owner,
                };
                let durable = entry.durable();
                v.queues.insert(def.name.clone(), entry);
                applied(durable)
            }
            C::DeleteQueue { vhost, name } => {
                let v = self.vhost_mut(vhost)?;
                let Some(entry) = v.queues.remove(name) else {
                    return Ok(Outcome::Unchanged);
                };
                v.bindings.remove(&Destination::Queue(name.clone()));
                applied(entry.durable())
            }
            C::PutBinding { vhost, binding } => {
                let v = self.vhost_mut(vhost)?;
                if !v.exchanges.contains_key(&binding.source) {
                    return Err(missing("exchange", &binding.source, vhost));
                }
                if v.destination_durable(&binding.destination).is_none() {
                    let kind = match binding.destination {
                        Destination::Queue(_) => "queue",
                        Destination::Exchange(_) => "exchange",
                    };
                    return Err(missing(kind, binding.destination.name(), vhost));
                }
                let durable = v.binding_durable(binding);
                let list = v.bindings.entry(binding.destination.clone()).or_default();
                if list.iter().any(|b| b.same(binding)) {
                    return Ok(Outcome::Unchanged);
                }
                list.push(binding.clone());
                applied(durable)
            }
            C::DeleteBinding { vhost, binding } => {
                let v = self.vhost_mut(vhost)?;
                let durable = v.binding_durable(binding);
                let Some(list) = v.bindings.get_mut(&binding.destination) else {
                    return Ok(Outcome::Unchanged);
                };
                let Some(pos) = list.iter().position(|b| b.same(binding)) else {
                    return Ok(Outcome::Unchanged);
                };
                list.remove(pos);
                if list.is_empty() {
                    v.bindings.remove(&binding.destination);
                }
                applied(durable)
            }
            C::PutUser(u) => {
                self.users.insert(u.name.clone(), u.clone());
                applied(true)
            }
            C::DeleteUser(name) => match self.users.remove(name) {
                Some(_) => {
                    self.permissions.retain(|(_, u), _| u != name);
                    self.topic_permissions.retain(|(_, u, _), _| u != name);
                    self.user_limits.remove(name);
                    applied(true)
                }
                None => Ok(Outcome::Unchanged),
            },
            C::PutPermission(p) => {
                if !self.users.contains_key(&p.user) {
                    return Err(CoreError::NotFound(format!("no user '{}'", p.user)));
                }
                if !self.vhosts.contains_key(&p.vhost) {
                    return Err(CoreError::NotFound(format!("no vhost '{}'", p.vhost)));
                }
                let slot = (p.vhost.clone(), p.user.clone());
                if self.permissions.get(&slot) == Some(p) {
                    return Ok(Outcome::Unchanged);
                }
                self.permissions.insert(slot, p.clone());
                applied(true)
            }
            C::DeletePermission { user, vhost } => {
                match self.permissions.remove(&(vhost.clone(), user.clone())) {
                    Some(_) => applied(true),
                    None => Err(CoreError::NotFound(format!(
                        "no permissions for user '{user}' in vhost '{vhost}'"
                    ))),
                }
            }
            C::PutTopicPermission(p) => {
                if !self.users.contains_key(&p.user) {
                    return Err(CoreError::NotFound(format!("no user '{}'", p.user)));
                }
                if !self.vhosts.contains_key(&p.vhost) {
                    return Err(CoreError::NotFound(format!("no vhost '{}'", p.vhost)));
                }
                let slot = (p.vhost.clone(), p.user.clone(), p.exchange.clone());
                if self.topic_permissions.get(&slot) == Some(p) {
                    return Ok(Outcome::Unchanged);
                }
                self.topic_permissions.insert(slot, p.clone());
                applied(true)
            }
            C::DeleteTopicPermission {
                user,
                vhost,
                exchange,
            } => {
                let before = self.topic_permissions.len();
                self.topic_permissions.retain(|(v, u, x), _| {
                    !(v == vhost && u == user && exchange.as_ref().is_none_or(|e| e == x))
                });
                if self.topic_permissions.len() == before {
                    return Err(CoreError::NotFound(format!(
                        "no topic permissions for user '{user}' in vhost '{vhost}'"
                    )));
                }
                applied(true)
            }
            C::PutVHostMetadata { vhost, metadata } => {
                let v = self.vhost_mut(vhost)?;
                if v.metadata == *metadata {
                    return Ok(Outcome::Unchanged);
                }
                v.metadata = metadata.clone();
                applied(true)
            }
            C::PutVHostLimits { vhost, limits } => {
                let v = self.vhost_mut(vhost)?;
                if v.limits == *limits {
                    return Ok(Outcome::Unchanged);
                }
                v.limits = limits.clone();
                applied(true)
            }
            C::PutUserLimits { user, limits } => {
                if !self.users.contains_key(user) {
                    return Err(CoreError::NotFound(format!("no user '{user}'")));
                }
                let had = self.user_limits.get(user).cloned().unwrap_or_default();
                if had == *limits {
                    return Ok(Outcome::Unchanged);
                }
                if limits.is_empty() {
                    self.user_limits.remove(user);
                } else {
                    self.user_limits.insert(user.clone(), limits.clone());
                }
                applied(true)
            }
            C::PutPolicy(p) => {
                let v = self.vhost_mut(&p.vhost)?;
                if v.policies.get(&p.name) == Some(p) {
                    return Ok(Outcome::Unchanged);
                }
                v.policies.insert(p.name.clone(), p.clone());
                applied(true)
            }
            C::DeletePolicy { vhost, name } => {
                let v = self.vhost_mut(vhost)?;
                match v.policies.remove(name) {
                    Some(_) => applied(true),
                    None => Err(CoreError::NotFound(format!(
                        "no policy '{name}' in vhost '{vhost}'"
                    ))),
                }
            }
            // Adapter records are held by their adapters; the state machine only orders them.
            C::PutRecord { .. } | C::DeleteRecord { .. } => applied(true),
        }
    }

    /// The durable part of the state (what a restart recovers), built-in exchanges left out.
    pub fn durable_snapshot(&self) -> MetaSnapshot {
        let mut snap = MetaSnapshot {
            vhosts: self.vhosts.keys().cloned().collect(),
            users: self.users.values().cloned().collect(),
            permissions: self.permissions.values().cloned().collect(),
            topic_permissions: self.topic_permissions.values().cloned().collect(),
            user_limits: self
                .user_limits
                .iter()
                .map(|(u, l)| (u.clone(), l.clone()))
                .collect(),
            ..MetaSnapshot::default()
        };
        for (name, v) in &self.vhosts {
            snap.policies.extend(v.policies.values().cloned());
            if !v.limits.is_empty() {
                snap.vhost_limits.push((name.clone(), v.limits.clone()));
            }
            if !v.metadata.is_empty() {
                snap.vhost_metadata.push((name.clone(), v.metadata.clone()));
            }
            for def in v.exchanges.values() {
                if def.durable && !is_builtin(&def.name) {
                    snap.exchanges.push((name.clone(), def.clone()));
                }
            }
            for q in v.queues.values().filter(|q| q.durable()) {
                snap.queues.push((name.clone(), q.def.clone()));
            }
            for b in v
                .bindings
                .values()
                .flatten()
                .filter(|b| v.binding_durable(b))
            {
                snap.bindings.push((name.clone(), b.clone()));
            }
        }
        snap
    }
}
