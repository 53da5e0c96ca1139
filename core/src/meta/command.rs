//! The metadata commands: every change to vhosts, users, exchanges, queues, bindings and
//! adapter records is one of these, whether it comes from a client, from recovery or (later)
//! from a replicated log.

use crate::exchange::{Binding, ExchangeDef};
use crate::policy::Policy;
use crate::queue::QueueDef;

/// A stored user.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UserRecord {
    /// The user name.
    pub name: String,
    /// RabbitMQ's `rabbit_password_hashing_sha256` form: 4 salt bytes then SHA-256(salt ‖ password).
    pub password_hash: Vec<u8>,
    /// RabbitMQ's user tags (`administrator`, `monitoring`, …).
    pub tags: Vec<String>,
    /// Vhosts the user may open.
    pub vhosts: Vec<String>,
}

/// What a user may do in a vhost: RabbitMQ's configure, write and read regular expressions.
/// Having an entry for a vhost is what lets a user open it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Permission {
    /// The user.
    pub user: String,
    /// The vhost.
    pub vhost: String,
    /// Names the user may declare and delete (queues, exchanges).
    pub configure: String,
    /// Names the user may publish to (exchanges) and bind to (queues).
    pub write: String,
    /// Names the user may consume, get, purge and bind from.
    pub read: String,
}

/// What a user may do with routing keys on a topic exchange: RabbitMQ's topic permissions
/// (write and read regular expressions, `{username}`, `{vhost}` and `{client_id}` expanded).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicPermission {
    /// The user.
    pub user: String,
    /// The vhost.
    pub vhost: String,
    /// The topic exchange it applies to.
    pub exchange: String,
    /// Routing keys the user may publish with.
    pub write: String,
    /// Routing keys the user may bind and consume with.
    pub read: String,
}

/// What a vhost says of itself, as RabbitMQ keeps it: a description, tags and the default
/// queue type (shown and exported; nothing routes by them).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VHostMetadata {
    /// Free text.
    pub description: String,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// The queue type a declaration without `x-queue-type` gets (RabbitMQ's
    /// `default_queue_type`); None: classic.
    pub default_queue_type: Option<String>,
}

impl VHostMetadata {
    /// Nothing said.
    pub fn is_empty(&self) -> bool {
        *self == VHostMetadata::default()
    }
}

/// A change to metadata. Applied to [`crate::meta::MetaState`] first; the durable ones then go
/// to the [`crate::storage::MetadataStore`].
#[derive(Debug, Clone, PartialEq)]
pub enum MetaCommand {
    /// Creates a vhost (with its predeclared exchanges).
    PutVHost(String),
    /// Deletes a vhost and everything in it.
    DeleteVHost(String),
    /// Declares an exchange.
    PutExchange {
        /// The vhost it lives in.
        vhost: String,
        /// What it was declared with.
        def: ExchangeDef,
    },
    /// Deletes an exchange and the bindings from and to it.
    DeleteExchange {
        /// The vhost it lives in.
        vhost: String,
        /// Its name.
        name: String,
    },
    /// Declares a queue.
    PutQueue {
        /// The vhost it lives in.
        vhost: String,
        /// What it was declared with.
        def: QueueDef,
        /// The connection that owns it, for an exclusive queue.
        owner: Option<u64>,
    },
    /// Deletes a queue and the bindings to it.
    DeleteQueue {
        /// The vhost it lives in.
        vhost: String,
        /// Its name.
        name: String,
    },
    /// Adds a binding.
    PutBinding {
        /// The vhost it lives in.
        vhost: String,
        /// The binding.
        binding: Binding,
    },
    /// Removes a binding.
    DeleteBinding {
        /// The vhost it lives in.
        vhost: String,
        /// The binding.
        binding: Binding,
    },
    /// Adds or replaces a user.
    PutUser(UserRecord),
    /// Deletes a user (and its permissions).
    DeleteUser(String),
    /// Sets a user's permissions in a vhost.
    PutPermission(Permission),
    /// Clears a user's permissions in a vhost.
    DeletePermission {
        /// The user.
        user: String,
        /// The vhost.
        vhost: String,
    },
    /// Sets a user's topic permissions on one exchange of a vhost.
    PutTopicPermission(TopicPermission),
    /// Clears a user's topic permissions in a vhost: on one exchange, or on all.
    DeleteTopicPermission {
        /// The user.
        user: String,
        /// The vhost.
        vhost: String,
        /// The exchange (none: every exchange).
        exchange: Option<String>,
    },
    /// Sets what a vhost says of itself (description, tags, default queue type).
    PutVHostMetadata {
        /// The vhost.
        vhost: String,
        /// What it says.
        metadata: VHostMetadata,
    },
    /// Sets a vhost's limits (an empty table clears them).
    PutVHostLimits {
        /// The vhost.
        vhost: String,
        /// The limits.
        limits: crate::limits::LimitTable,
    },
    /// Sets a user's limits (an empty table clears them).
    PutUserLimits {
        /// The user.
        user: String,
        /// The limits.
        limits: crate::limits::LimitTable,
    },
    /// Adds or replaces a policy (validated before it is proposed).
    PutPolicy(Policy),
    /// Deletes a policy.
    DeletePolicy {
        /// The vhost it is in.
        vhost: String,
        /// Its name.
        name: String,
    },
    /// An adapter's own durable record (e.g. an MQTT session or retained message), opaque to
    /// the core: `space` names the kind, `key` the record within it.
    PutRecord {
        /// The kind of record (the adapter's name for it).
        space: String,
        /// The record within its space.
        key: String,
        /// The adapter's encoding of it.
        value: Vec<u8>,
    },
    /// Forgets an adapter record.
    DeleteRecord {
        /// The kind of record.
        space: String,
        /// The record within its space.
        key: String,
    },
}

impl MetaCommand {
    /// The vhost a command is scoped to, if it is.
    pub fn vhost(&self) -> Option<&str> {
        match self {
            MetaCommand::PutExchange { vhost, .. }
            | MetaCommand::DeleteExchange { vhost, .. }
            | MetaCommand::PutQueue { vhost, .. }
            | MetaCommand::DeleteQueue { vhost, .. }
            | MetaCommand::PutBinding { vhost, .. }
            | MetaCommand::DeleteBinding { vhost, .. }
            | MetaCommand::DeletePolicy { vhost, .. }
            | MetaCommand::PutVHostLimits { vhost, .. }
            | MetaCommand::PutVHostMetadata { vhost, .. } => Some(vhost),
            MetaCommand::PutPolicy(p) => Some(&p.vhost),
            _ => None,
        }
    }
}

/// Durable metadata as recovered at start.
#[derive(Debug, Clone, Default)]
pub struct MetaSnapshot {
    /// Vhost names.
    pub vhosts: Vec<String>,
    /// Durable exchanges, by vhost.
    pub exchanges: Vec<(String, ExchangeDef)>,
    /// Durable queues, by vhost.
    pub queues: Vec<(String, QueueDef)>,
    /// Durable bindings, by vhost.
    pub bindings: Vec<(String, Binding)>,
    /// Users.
    pub users: Vec<UserRecord>,
    /// Users' permissions per vhost.
    pub permissions: Vec<Permission>,
    /// Policies of every vhost.
    pub policies: Vec<Policy>,
    /// Users' topic permissions.
    pub topic_permissions: Vec<TopicPermission>,
    /// Vhost limits (vhost, limits).
    pub vhost_limits: Vec<(String, crate::limits::LimitTable)>,
    /// Vhost descriptions and tags (vhost, metadata), for vhosts that have any.
    pub vhost_metadata: Vec<(String, VHostMetadata)>,
    /// User limits (user, limits).
    pub user_limits: Vec<(String, crate::limits::LimitTable)>,
    /// Adapter records: (space, key, value).
    pub records: Vec<(String, String, Vec<u8>)>,
}

impl MetaSnapshot {
    /// The commands that rebuild this state from nothing, in an order that applies cleanly
    /// (vhosts, users, permissions, policies, exchanges, queues, then bindings). Adapter records are not among them:
    /// their adapters hold that state ([`crate::Broker::take_records`]).
    pub fn commands(&self) -> Vec<MetaCommand> {
        let mut out: Vec<MetaCommand> = Vec::new();
        out.extend(self.vhosts.iter().cloned().map(MetaCommand::PutVHost));
        out.extend(self.users.iter().cloned().map(MetaCommand::PutUser));
        out.extend(
            self.permissions
                .iter()
                .cloned()
                .map(MetaCommand::PutPermission),
        );
        out.extend(self.policies.iter().cloned().map(MetaCommand::PutPolicy));
        out.extend(
            self.topic_permissions
                .iter()
                .cloned()
                .map(MetaCommand::PutTopicPermission),
        );
        out.extend(self.vhost_metadata.iter().map(|(vhost, metadata)| {
            MetaCommand::PutVHostMetadata {
                vhost: vhost.clone(),
                metadata: metadata.clone(),
            }
        }));
        out.extend(
            self.vhost_limits
                .iter()
                .map(|(vhost, limits)| MetaCommand::PutVHostLimits {
                    vhost: vhost.clone(),
                    limits: limits.clone(),
                }),
        );
        out.extend(
            self.user_limits
                .iter()
                .map(|(user, limits)| MetaCommand::PutUserLimits {
                    user: user.clone(),
                    limits: limits.clone(),
                }),
        );
        out.extend(
            self.exchanges
                .iter()
                .map(|(vhost, def)| MetaCommand::PutExchange {
                    vhost: vhost.clone(),
                    def: def.clone(),
                }),
        );
        out.extend(
            self.queues
                .iter()
                .map(|(vhost, def)| MetaCommand::PutQueue {
                    vhost: vhost.clone(),
                    def: def.clone(),
                    owner: None,
                }),
        );
        out.extend(
            self.bindings
                .iter()
                .map(|(vhost, binding)| MetaCommand::PutBinding {
                    vhost: vhost.clone(),
                    binding: binding.clone(),
                }),
        );
        out
    }
}
