//! Who may open what, beyond passwords and vhost permissions: topic permissions and user
//! limits as the live objects hold them (they follow the metadata commands), and the one check
//! every protocol makes when a client opens a vhost ([`Broker::admit`]): its permission, the
//! vhost's and the user's connection limits.

use crate::broker::Broker;
use crate::error::{CoreError, CoreResult};
use crate::limits::{limit, validate, LimitScope, LimitTable};
use crate::meta::{MetaCommand, Outcome, TopicPermission};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::RwLock;

/// Topic permissions and user limits.
#[derive(Debug, Default)]
pub struct Access {
    /// By (vhost, user, exchange).
    topic: RwLock<BTreeMap<(String, String, String), TopicPermission>>,
    user_limits: RwLock<HashMap<String, LimitTable>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Access {
    /// Every topic permission, by vhost, user and exchange.
    pub fn topic_permissions(&self) -> Vec<TopicPermission> {
        read(&self.topic).values().cloned().collect()
    }

    /// A user's topic permissions in one vhost.
    pub fn topic_permissions_of(&self, user: &str, vhost: &str) -> Vec<TopicPermission> {
        read(&self.topic)
            .values()
            .filter(|t| t.user == user && t.vhost == vhost)
            .cloned()
            .collect()
    }

    /// A user's limits (empty: none).
    pub fn user_limits(&self, user: &str) -> LimitTable {
        read(&self.user_limits)
            .get(user)
            .cloned()
            .unwrap_or_default()
    }

    /// Every user's limits.
    pub fn all_user_limits(&self) -> Vec<(String, LimitTable)> {
        let mut all: Vec<_> = read(&self.user_limits)
            .iter()
            .map(|(u, l)| (u.clone(), l.clone()))
            .collect();
        all.sort();
        all
    }

    /// Follows an applied command (called by the broker's materialization).
    pub(crate) fn follow(&self, cmd: &MetaCommand) {
        match cmd {
            MetaCommand::PutTopicPermission(p) => {
                let slot = (p.vhost.clone(), p.user.clone(), p.exchange.clone());
                write(&self.topic).insert(slot, p.clone());
            }
            MetaCommand::DeleteTopicPermission {
                user,
                vhost,
                exchange,
            } => write(&self.topic).retain(|(v, u, x), _| {
                !(v == vhost && u == user && exchange.as_ref().is_none_or(|e| e == x))
            }),
            MetaCommand::PutUserLimits { user, limits } => {
                let mut all = write(&self.user_limits);
                if limits.is_empty() {
                    all.remove(user);
                } else {
                    all.insert(user.clone(), limits.clone());
                }
            }
            MetaCommand::DeleteUser(name) => {
                write(&self.topic).retain(|(_, u, _), _| u != name);
                write(&self.user_limits).remove(name);
            }
            MetaCommand::DeleteVHost(name) => write(&self.topic).retain(|(v, _, _), _| v != name),
            _ => {}
        }
    }
}

/// Checks that a permission's expression (`configure`, `write`, `read`) compiles.
pub fn check_pattern(what: &str, re: &str) -> CoreResult<()> {
    regex::Regex::new(re).map(|_| ()).map_err(|e| {
        CoreError::PreconditionFailed(format!("'{what}' is not a valid regular expression: {e}"))
    })
}

impl Broker {
    /// Whether `user` may open a connection to `vhost` now: a permission there (403
    /// otherwise), and neither the vhost's nor the user's `max-connections` reached
    /// (NOT_ALLOWED, as RabbitMQ answers).
    /// `ip` is the client's address, for an external backend's vhost question.
    pub fn admit(&self, user: &str, vhost: &str, ip: Option<IpAddr>) -> CoreResult<()> {
        self.auth().check_vhost(user, vhost, ip)?;
        let vhost_max = self
            .vhost(vhost)
            .ok()
            .and_then(|v| limit(&v.limits(), "max-connections"));
        let user_max = limit(&self.access().user_limits(user), "max-connections");
        if vhost_max.is_none() && user_max.is_none() {
            return Ok(());
        }
        let open = self.connection_list();
        if let Some(max) = vhost_max {
            if open.iter().filter(|(_, c)| c.vhost == vhost).count() as u64 >= max {
                return Err(CoreError::NotAllowed(format!(
                    "access to vhost '{vhost}' refused for user '{user}': connection limit ({max}) is reached"
                )));
            }
        }
        if let Some(max) = user_max {
            if open.iter().filter(|(_, c)| c.user == user).count() as u64 >= max {
                return Err(CoreError::NotAllowed(format!(
                    "connection refused for user '{user}': user connection limit ({max}) is reached"
                )));
            }
        }
        Ok(())
    }

    /// Whether `user` may open one more channel: its `max-channels` counts the channels of
    /// all its connections (NOT_ALLOWED otherwise, as RabbitMQ answers).
    pub fn admit_channel(&self, user: &str) -> CoreResult<()> {
        let Some(max) = limit(&self.access().user_limits(user), "max-channels") else {
            return Ok(());
        };
        let open: usize = self
            .connection_list()
            .iter()
            .filter(|(_, c)| c.user == user)
            .map(|(id, _)| self.channel_count(*id))
            .sum();
        if open as u64 >= max {
            return Err(CoreError::NotAllowed(format!(
                "number of channels opened for user '{user}' has reached the maximum allowed user limit of ({max})"
            )));
        }
        Ok(())
    }

    /// Sets a user's topic permissions on one exchange (durable once [`Broker::sync`] resolves).
    pub fn put_topic_permission(&self, p: TopicPermission) -> CoreResult<Outcome> {
        // Checked as it will be compiled: with `{username}`, `{vhost}`, `{client_id}` expanded.
        let sample = crate::permissions::Identity {
            user: p.user.clone(),
            vhost: p.vhost.clone(),
            client_id: Some("client".into()),
        };
        check_pattern("write", &crate::permissions::expand(&p.write, &sample))?;
        check_pattern("read", &crate::permissions::expand(&p.read, &sample))?;
        self.catalog()
            .commit(MetaCommand::PutTopicPermission(p), self)
    }

    /// Clears a user's topic permissions in a vhost (on one exchange, or all); 404 if none.
    pub fn delete_topic_permission(
        &self,
        user: &str,
        vhost: &str,
        exchange: Option<&str>,
    ) -> CoreResult<Outcome> {
        self.catalog().commit(
            MetaCommand::DeleteTopicPermission {
                user: user.to_string(),
                vhost: vhost.to_string(),
                exchange: exchange.map(str::to_string),
            },
            self,
        )
    }

    /// Sets what a vhost says of itself.
    pub fn set_vhost_metadata(
        &self,
        vhost: &str,
        metadata: crate::meta::VHostMetadata,
    ) -> CoreResult<Outcome> {
        self.catalog().commit(
            MetaCommand::PutVHostMetadata {
                vhost: vhost.to_string(),
                metadata,
            },
            self,
        )
    }

    /// Sets a vhost's limits (empty: none).
    pub fn set_vhost_limits(&self, vhost: &str, limits: LimitTable) -> CoreResult<Outcome> {
        validate(LimitScope::VHost, &limits)?;
        self.catalog().commit(
            MetaCommand::PutVHostLimits {
                vhost: vhost.to_string(),
                limits,
            },
            self,
        )
    }

    /// Sets a user's limits (empty: none).
    pub fn set_user_limits(&self, user: &str, limits: LimitTable) -> CoreResult<Outcome> {
        validate(LimitScope::User, &limits)?;
        self.catalog().commit(
            MetaCommand::PutUserLimits {
                user: user.to_string(),
                limits,
            },
            self,
        )
    }
}
