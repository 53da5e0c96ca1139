//! The broker: vhosts, the user database, the stores, and housekeeping.

use crate::auth::{new_user, Authenticator};
use crate::clock::Clock;
use crate::connections::{Alarm, Connections, Registration};
use crate::consumer::Notifier;
use crate::error::{CoreError, CoreResult};
use crate::meta::{Catalog, Materialize, MetaCommand};
use crate::refusals::Refusals;
use crate::storage::{MemoryMessageStore, MemoryMetadataStore, MessageStore, MetadataStore};
use crate::vhost::{PublishTap, Taps, VHost};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How to build a broker.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// Where metadata (vhosts, users, exchanges, queues, bindings) is kept.
    pub meta: Arc<dyn MetadataStore>,
    /// Where persistent messages of durable queues are kept.
    pub messages: Arc<dyn MessageStore>,
    /// The clock the broker runs on (a manual one in tests).
    pub clock: Arc<Clock>,
    /// The vhost created on first start.
    pub default_vhost: String,
    /// The user created on first start (RabbitMQ's guest/guest), if any.
    pub default_user: Option<(String, String)>,
    /// This node's number in its cluster (0 for a single node): the prefix of its connection
    /// ids ([`crate::connection_id`]).
    pub node: u16,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            meta: Arc::new(MemoryMetadataStore::default()),
            messages: Arc::new(MemoryMessageStore::default()),
            clock: Arc::new(Clock::system()),
            default_vhost: "/".to_string(),
            default_user: Some(("guest".to_string(), "guest".to_string())),
            node: 0,
        }
    }
}

/// One broker: what every adapter's connections share.
#[derive(Debug)]
pub struct Broker {
    vhosts: RwLock<HashMap<String, Arc<VHost>>>,
    auth: Arc<Authenticator>,
    clock: Arc<Clock>,
    /// The metadata state machine and its store.
    catalog: Arc<Catalog>,
    messages: Arc<dyn MessageStore>,
    next_connection: AtomicU64,
    /// This node's number, the prefix of its connection ids.
    node: u16,
    default_vhost: String,
    /// Adapter records recovered at start, until their adapter takes them.
    records: Mutex<Vec<(String, String, Vec<u8>)>>,
    taps: Arc<Taps>,
    /// Every live connection, to tell of a shutdown or a resource alarm.
    connections: Connections,
    /// What was refused, by kind.
    refusals: Refusals,
    /// Topic permissions and user limits.
    access: crate::access::Access,
}

impl Broker {
    /// Builds a broker and recovers whatever the stores hold: the stored metadata is replayed
    /// as commands through the same state machine the live path uses.
    pub fn new(opts: BrokerOptions) -> CoreResult<Arc<Broker>> {
        let snap = opts.meta.load()?;
        let broker = Arc::new(Broker {
            vhosts: RwLock::new(HashMap::new()),
            auth: Arc::new(Authenticator::with_clock(opts.clock.clone())),
            clock: opts.clock,
            catalog: Arc::new(Catalog::new(opts.meta)),
            messages: opts.messages,
            next_connection: AtomicU64::new(1),
            node: opts.node,
            default_vhost: opts.default_vhost.clone(),
            records: Mutex::new(Vec::new()),
            taps: Arc::default(),
            connections: Connections::default(),
            refusals: Refusals::default(),
            access: crate::access::Access::default(),
        });
        let first_start = snap.vhosts.is_empty() && snap.users.is_empty();
        for cmd in snap.commands() {
            if let Err(e) = broker.catalog.replay(&cmd, &*broker) {
                tracing::warn!(error = %e, command = ?cmd, "stored metadata not applied");
            }
        }
        for v in broker.vhost_list() {
            v.recover_messages();
        }
        broker.messages.recovery_done();
        *broker.records.lock().unwrap_or_else(|e| e.into_inner()) = snap.records;
        if first_start {
            broker.add_vhost(&opts.default_vhost)?;
            if let Some((name, password)) = &opts.default_user {
                broker.put_user(new_user(
                    name,
                    password,
                    vec!["administrator".into()],
                    vec!["*".into()],
                ))?;
            }
        }
        Ok(broker)
    }

    /// A broker with in-memory stores and the default vhost and user.
    pub fn in_memory() -> Arc<Broker> {
        Broker::new(BrokerOptions::default()).expect("in-memory stores do not fail")
    }

    fn insert_vhost(&self, name: &str) -> Arc<VHost> {
        let mut map = self.vhosts.write().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| {
                VHost::new(
                    name,
                    self.clock.clone(),
                    self.catalog.clone(),
                    self.messages.clone(),
                    self.taps.clone(),
                )
            })
            .clone()
    }

    fn vhost_opt(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// A vhost by name (404 NOT_FOUND if absent).
    pub fn vhost(&self, name: &str) -> CoreResult<Arc<VHost>> {
        self.vhost_opt(name)
            .ok_or_else(|| CoreError::NotFound(format!("no vhost '{name}'")))
    }

    /// The names of every vhost.
    pub fn vhost_names(&self) -> Vec<String> {
        self.vhosts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// The vhost a client gets when it names none.
    pub fn default_vhost(&self) -> &str {
        &self.default_vhost
    }

    /// Creates a vhost (durable once [`Broker::sync`] resolves).
    pub fn add_vhost(&self, name: &str) -> CoreResult<Arc<VHost>> {
        self.catalog
            .commit(MetaCommand::PutVHost(name.to_string()), self)?;
        self.vhost(name)
    }

    /// Deletes a vhost with everything in it, and closes the connections that use it.
    pub fn delete_vhost(&self, name: &str) -> CoreResult<()> {
        self.catalog
            .commit(MetaCommand::DeleteVHost(name.to_string()), self)?;
        self.close_connections_where(|c| c.vhost == name, &format!("vhost '{name}' is deleted"));
        Ok(())
    }

    /// Closes every logged-in connection `which` picks, telling each client `reason`.
    fn close_connections_where(
        &self,
        which: impl Fn(&crate::connections::ConnectionInfo) -> bool,
        reason: &str,
    ) {
        for (id, info) in self.connections.list() {
            if which(&info) {
                tracing::info!(peer = %info.peer, user = %info.user, reason, "closing connection");
                self.connections.close(id, reason);
            }
        }
    }

    /// Adds or replaces a user (durable once [`Broker::sync`] resolves).
    pub fn put_user(&self, user: crate::storage::UserRecord) -> CoreResult<()> {
        self.catalog
            .commit(MetaCommand::PutUser(user), self)
            .map(|_| ())
    }

    /// Sets a user's permissions in a vhost (durable once [`Broker::sync`] resolves).
    pub fn put_permission(&self, p: crate::storage::Permission) -> CoreResult<()> {
        self.catalog
            .commit(MetaCommand::PutPermission(p), self)
            .map(|_| ())
    }

    /// Clears a user's permissions in a vhost (404 if there were none).
    pub fn delete_permission(&self, user: &str, vhost: &str) -> CoreResult<()> {
        self.catalog
            .commit(
                MetaCommand::DeletePermission {
                    user: user.to_string(),
                    vhost: vhost.to_string(),
                },
                self,
            )
            .map(|_| ())
    }

    /// Deletes a user (durable once [`Broker::sync`] resolves). A missing user is 404.
    pub fn delete_user(&self, name: &str) -> CoreResult<()> {
        if self.auth.get(name).is_none() {
            return Err(CoreError::NotFound(format!("no user '{name}'")));
        }
        self.catalog
            .commit(MetaCommand::DeleteUser(name.to_string()), self)?;
        self.close_connections_where(|c| c.user == name, &format!("user '{name}' was deleted"));
        Ok(())
    }

    /// Topic permissions and user limits.
    pub fn access(&self) -> &crate::access::Access {
        &self.access
    }

    /// The metadata state machine.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The user database.
    pub fn auth(&self) -> &Arc<Authenticator> {
        &self.auth
    }

    /// The counts of refused connections, frames and requests.
    pub fn refusals(&self) -> &Refusals {
        &self.refusals
    }

    /// The broker's clock.
    pub fn clock(&self) -> &Arc<Clock> {
        &self.clock
    }

    /// The message store.
    pub fn message_store(&self) -> &Arc<dyn MessageStore> {
        &self.messages
    }

    /// The metadata store.
    pub fn metadata_store(&self) -> &Arc<dyn MetadataStore> {
        self.catalog.store()
    }

    /// Calls `tap` with every message published to `exchange` in any vhost.
    pub fn add_publish_tap(&self, exchange: &str, tap: PublishTap) {
        self.taps.add(exchange, tap);
    }

    /// Takes the adapter records of `space` recovered at start, as (key, value).
    pub fn take_records(&self, space: &str) -> Vec<(String, Vec<u8>)> {
        let mut all = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut *all)
            .into_iter()
            .partition(|(s, _, _)| s == space);
        *all = rest;
        mine.into_iter().map(|(_, k, v)| (k, v)).collect()
    }

    /// Resolves once every message and metadata change so far is durable.
    pub async fn sync(&self) -> CoreResult<()> {
        self.catalog.store().sync().await?;
        self.messages.sync().await
    }

    /// Blocks publishers on every protocol (`Some(reason)`) or lets them go on (`None`).
    /// Returns whether that changed anything.
    /// Every registered connection hears of a change ([`crate::consumer::Notices::alarm_changed`]).
    pub fn set_resource_alarm(&self, source: Alarm, reason: Option<&str>) -> bool {
        self.connections.set_alarm(source, reason)
    }

    /// Why `source` blocks publishers, if it does.
    pub fn resource_alarm_of(&self, source: Alarm) -> Option<Arc<str>> {
        self.connections.alarm_of(source)
    }

    /// Why publishers are blocked, if they are: connections that publish stop being read
    /// while it is set.
    pub fn resource_alarm(&self) -> Option<Arc<str>> {
        self.connections.alarm()
    }

    /// Registers a connection's notifier (see [`crate::consumer::Notices`]) until the guard drops.
    pub fn register_connection(&self, id: u64, notifier: Notifier) -> Registration<'_> {
        self.connections.register(id, notifier)
    }

    /// The live connections registry.
    pub(crate) fn connections(&self) -> &Connections {
        &self.connections
    }

    /// Every open AMQP channel of a logged-in connection (see [`Connections::channels`]).
    pub fn channel_list(
        &self,
    ) -> Vec<(
        u64,
        crate::connections::ConnectionInfo,
        u16,
        crate::channels::ChannelSnapshot,
    )> {
        self.connections.channels()
    }

    /// Open channels of connection `id`.
    pub fn channel_count(&self, id: u64) -> usize {
        self.connections.channel_count(id)
    }

    /// Message counts by protocol label (RabbitMQ's global counters), of every connection
    /// since the start.
    pub fn message_totals(
        &self,
    ) -> std::collections::BTreeMap<Arc<str>, crate::message_counts::Totals> {
        self.connections.message_totals()
    }

    /// Logged-in connections by protocol label (`amqp091`, `mqtt311`, `mqtt50`, `stomp`, ...).
    pub fn connections_by_protocol(&self) -> std::collections::BTreeMap<Arc<str>, usize> {
        self.connections.by_protocol()
    }

    /// Connections and channels opened and closed since the start.
    pub fn churn(&self) -> crate::connections::Churn {
        self.connections.churn()
    }

    /// Open channels of every connection.
    pub fn channel_total(&self) -> usize {
        self.connections.channel_total()
    }

    /// Records what connection `id` says of itself once logged in (for listings).
    pub fn describe_connection(&self, id: u64, info: crate::connections::ConnectionInfo) {
        self.connections.describe(id, info);
    }

    /// Every logged-in connection, by id.
    pub fn connection_list(&self) -> Vec<(u64, crate::connections::ConnectionInfo)> {
        self.connections.list()
    }

    /// Asks connection `id` to close with `reason` in its protocol's close; false if it is
    /// not (or no longer) connected.
    pub fn close_connection(&self, id: u64, reason: &str) -> bool {
        self.connections.close(id, reason)
    }

    /// Why an operator closed connection `id` (taken once, by its driver).
    pub fn take_close_reason(&self, id: u64) -> Option<Arc<str>> {
        self.connections.close_reason(id)
    }

    /// Connections registered now (logged in and not yet gone).
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Tells every connection, and every one that registers from now on, to close with its
    /// protocol's own close.
    pub fn shut_down_connections(&self) {
        self.connections.shut_down();
    }

    /// Lets new connections open again after [`Self::shut_down_connections`].
    pub fn resume_connections(&self) {
        self.connections.resume();
    }

    /// A fresh connection id (owner of exclusive queues, key of consumers), prefixed with
    /// this node's number ([`crate::connection_id`]).
    pub fn next_connection_id(&self) -> u64 {
        let local = self.next_connection.fetch_add(1, Ordering::Relaxed);
        crate::connection_id::compose(self.node, local)
    }

    /// Every vhost (a snapshot).
    pub fn vhost_list(&self) -> Vec<Arc<VHost>> {
        self.vhosts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Cleans up after a connection: its exclusive queues go.
    pub fn connection_closed(&self, connection: u64) {
        let vhosts = self.vhost_list();
        for v in vhosts {
            v.connection_closed(connection);
        }
    }

    /// One housekeeping pass: message TTL and queue expiry everywhere.
    pub fn sweep(&self) {
        let vhosts = self.vhost_list();
        for v in vhosts {
            v.sweep();
        }
    }

    /// Runs [`Broker::sweep`] every `period` until the broker is dropped.
    pub fn spawn_housekeeping(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(b) => b.sweep(),
                    None => return,
                }
            }
        })
    }
}

impl Materialize for Broker {
    /// Vhosts and users live here; what is inside a vhost is the vhost's own business.
    fn materialize(&self, cmd: &MetaCommand) {
        self.access.follow(cmd);
        if matches!(
            cmd,
            MetaCommand::PutUser(_)
                | MetaCommand::DeleteUser(_)
                | MetaCommand::PutPermission(_)
                | MetaCommand::DeletePermission { .. }
                | MetaCommand::PutTopicPermission(_)
                | MetaCommand::DeleteTopicPermission { .. }
                | MetaCommand::DeleteVHost(_)
        ) {
            // Every connection's compiled permissions are recompiled at its next check.
            self.auth.bump_generation();
        }
        match cmd {
            MetaCommand::PutVHost(name) => {
                self.insert_vhost(name);
            }
            MetaCommand::DeleteVHost(name) => {
                self.auth.retain_permissions(|p| p.vhost != *name);
                let gone = self
                    .vhosts
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(name);
                if let Some(v) = gone {
                    v.tear_down();
                }
            }
            MetaCommand::PutUser(u) => self.auth.put(u.clone()),
            MetaCommand::DeleteUser(name) => {
                self.auth.remove(name);
                self.auth.retain_permissions(|p| p.user != *name);
            }
            MetaCommand::PutPermission(p) => self.auth.put_permission(p.clone()),
            MetaCommand::DeletePermission { user, vhost } => {
                self.auth.remove_permission(user, vhost)
            }
            MetaCommand::PutRecord { .. }
            | MetaCommand::DeleteRecord { .. }
            | MetaCommand::PutTopicPermission(_)
            | MetaCommand::DeleteTopicPermission { .. }
            | MetaCommand::PutUserLimits { .. } => {}
            scoped => {
                if let Some(v) = scoped.vhost().and_then(|v| self.vhost_opt(v)) {
                    v.materialize(scoped);
                }
            }
        }
    }
}
