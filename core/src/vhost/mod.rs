//! A virtual host: its exchanges, queues and bindings, and the publish path through them.

use crate::clock::Clock;
use crate::error::{CoreError, CoreResult};
use crate::exchange::{
    builtin_exchanges, Binding, Destination, Exchange, ExchangeDef, ExchangeKind,
};
use crate::message::Message;
use crate::meta::{Catalog, Materialize, MetaCommand, Outcome};
use crate::queue::{DeathReason, Enqueued, Queue, QueueDef, QueueHost};
use crate::queue_args::QueueArgs;
use crate::storage::MessageStore;
use bytes::Bytes;
use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};

mod materialize;
mod policies;
mod routing;

/// What became of a publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Routed {
    /// Queues that took the message.
    pub queues: usize,
    /// Queues that refused it (`x-overflow: reject-publish`).
    pub rejected: usize,
    /// Of `queues`, those that wrote it to the message store: its acknowledgement (confirm,
    /// PUBACK, RECEIPT) waits for the store's sync.
    pub stored: usize,
}

impl Routed {
    /// No queue was selected at all (for mandatory / basic.return).
    pub fn unroutable(&self) -> bool {
        self.queues == 0 && self.rejected == 0
    }
}

/// The result of a queue declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredQueue {
    /// The queue's name (server-named if the client asked for none).
    pub name: String,
    /// Its ready messages.
    pub messages: usize,
    /// Its consumers.
    pub consumers: usize,
    /// The declaration went to the metadata store: answer it once the store has synced.
    pub stored: bool,
}

/// The result of a queue deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deleted {
    /// Ready messages deleted with the queue.
    pub messages: usize,
    /// The deletion went to the metadata store: answer it once the store has synced.
    pub stored: bool,
}

/// Queues behind AMQP direct reply-to are named with this prefix.
pub const REPLY_TO_PREFIX: &str = "amq.rabbitmq.reply-to.";

pub use crate::exchange::PREDECLARED;

/// A virtual host.
#[derive(Debug)]
pub struct VHost {
    /// The vhost's name.
    pub name: String,
    exchanges: RwLock<HashMap<String, Arc<Exchange>>>,
    queues: RwLock<HashMap<String, Arc<Queue>>>,
    /// Its policies, compiled (they follow the policy commands).
    policies: RwLock<crate::policy::PolicySet>,
    /// Its limits (`max-connections`, `max-queues`).
    limits: RwLock<crate::limits::LimitTable>,
    /// Its description and tags.
    metadata: RwLock<crate::meta::VHostMetadata>,
    clock: Arc<Clock>,
    catalog: Arc<Catalog>,
    messages: Arc<dyn MessageStore>,
    taps: Arc<Taps>,
    me: Weak<VHost>,
}

/// Called with every message published to an exchange (e.g. MQTT's retained store watches
/// `amq.topic`), before it is routed.
pub type PublishTap = Arc<dyn Fn(&VHost, &Arc<Message>) + Send + Sync>;

/// The taps of a broker, by exchange name; shared by its vhosts.
#[derive(Default)]
pub struct Taps(RwLock<Vec<(String, PublishTap)>>);

impl std::fmt::Debug for Taps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Taps({})", read(&self.0).len())
    }
}

impl Taps {
    /// Runs `tap` on every publish to `exchange`.
    pub fn add(&self, exchange: &str, tap: PublishTap) {
        write(&self.0).push((exchange.to_string(), tap));
    }

    fn run(&self, vhost: &VHost, exchange: &str, message: &Arc<Message>) {
        for (_, tap) in read(&self.0).iter().filter(|(x, _)| x == exchange) {
            tap(vhost, message);
        }
    }
}

/// RabbitMQ's address forms, accepted as routing keys on the default exchange so that a reply
/// sent "the usual way" (exchange `""`, routing key = `reply_to`) can reach a topic:
/// `/topic/K` → `amq.topic` with K, `/exchange/X/K` → X with K.
fn address_target(routing_key: &str) -> Option<(&str, &str)> {
    if let Some(k) = routing_key.strip_prefix("/topic/") {
        return Some(("amq.topic", k));
    }
    let rest = routing_key.strip_prefix("/exchange/")?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// RabbitMQ's server-named queue form: `amq.gen-` and 22 URL-safe characters.
pub fn generate_queue_name() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::thread_rng();
    let tail: String = (0..22)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("amq.gen-{tail}")
}

impl VHost {
    pub(crate) fn new(
        name: &str,
        clock: Arc<Clock>,
        catalog: Arc<Catalog>,
        messages: Arc<dyn MessageStore>,
        taps: Arc<Taps>,
    ) -> Arc<VHost> {
        let v = Arc::new_cyclic(|me| VHost {
            name: name.to_string(),
            exchanges: RwLock::new(HashMap::new()),
            queues: RwLock::new(HashMap::new()),
            policies: RwLock::default(),
            limits: RwLock::default(),
            metadata: RwLock::default(),
            clock,
            catalog,
            messages,
            taps,
            me: me.clone(),
        });
        {
            let mut ex = write(&v.exchanges);
            for def in builtin_exchanges() {
                ex.insert(def.name.clone(), Arc::new(Exchange::new(def)));
            }
        }
        v
    }

    fn commit(&self, cmd: MetaCommand) -> CoreResult<Outcome> {
        self.catalog.commit(cmd, self)
    }

    fn not_found(&self, kind: &str, name: &str) -> CoreError {
        CoreError::NotFound(format!("no {kind} '{name}' in vhost '{}'", self.name))
    }

    // ---- exchanges ----

    /// The exchange named `name` (404 if there is none).
    pub fn exchange(&self, name: &str) -> CoreResult<Arc<Exchange>> {
        let key = if name == "amq.default" { "" } else { name };
        read(&self.exchanges)
            .get(key)
            .cloned()
            .ok_or_else(|| self.not_found("exchange", name))
    }

    /// The names of every exchange.
    pub fn exchange_names(&self) -> Vec<String> {
        read(&self.exchanges).keys().cloned().collect()
    }

    /// exchange.declare: creates, or checks an existing one is equivalent.
    pub fn declare_exchange(&self, def: ExchangeDef, passive: bool) -> CoreResult<Outcome> {
        if passive {
            return self.exchange(&def.name).map(|_| Outcome::Unchanged);
        }
        if let Ok(existing) = self.exchange(&def.name) {
            if existing.def.kind != def.kind {
                return Err(CoreError::PreconditionFailed(format!(
                    "inequivalent arg 'type' for exchange '{}' in vhost '{}': received '{}' but current is '{}'",
                    def.name, self.name, def.kind.as_str(), existing.def.kind.as_str()
                )));
            }
            if def.name.is_empty() || def.name.starts_with("amq.") {
                return Ok(Outcome::Unchanged);
            }
            if !existing.def.equivalent(&def) {
                return Err(CoreError::PreconditionFailed(format!(
                    "inequivalent arg 'durable' or arguments for exchange '{}' in vhost '{}'",
                    def.name, self.name
                )));
            }
            return Ok(Outcome::Unchanged);
        }
        if def.name.starts_with("amq.") {
            return Err(CoreError::AccessRefused(format!(
                "exchange name '{}' contains reserved prefix 'amq.*'",
                def.name
            )));
        }
        self.commit(MetaCommand::PutExchange {
            vhost: self.name.clone(),
            def,
        })
    }

    /// exchange.delete (a missing exchange is not an error, as in RabbitMQ).
    pub fn delete_exchange(&self, name: &str, if_unused: bool) -> CoreResult<Outcome> {
        if name.is_empty() || name.starts_with("amq.") {
            return Err(CoreError::AccessRefused(format!(
                "operation not permitted on exchange '{name}'"
            )));
        }
        let Ok(ex) = self.exchange(name) else {
            return Ok(Outcome::Unchanged);
        };
        if if_unused && ex.binding_count() > 0 {
            return Err(CoreError::PreconditionFailed(format!(
                "exchange '{name}' in vhost '{}' in use",
                self.name
            )));
        }
        // Exchanges bound to it that are left without bindings go too (auto-delete).
        let dest = Destination::Exchange(name.to_string());
        let sources = self.sources_of(&dest);
        let outcome = self.commit(MetaCommand::DeleteExchange {
            vhost: self.name.clone(),
            name: name.to_string(),
        })?;
        self.auto_delete_exchanges(sources);
        Ok(outcome)
    }

    // ---- queues ----

    /// A queue, checked for exclusive ownership by `connection` (None = no check).
    pub fn queue(&self, name: &str, connection: Option<u64>) -> CoreResult<Arc<Queue>> {
        let q = read(&self.queues)
            .get(name)
            .cloned()
            .ok_or_else(|| self.not_found("queue", name))?;
        self.check_owner(&q, connection)?;
        Ok(q)
    }

    fn check_owner(&self, q: &Queue, connection: Option<u64>) -> CoreResult<()> {
        match (q.owner, connection) {
            (Some(owner), Some(c)) if owner != c => Err(CoreError::ResourceLocked(format!(
                "cannot obtain exclusive access to locked queue '{}' in vhost '{}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.",
                q.name(),
                self.name
            ))),
            _ => Ok(()),
        }
    }

    /// The names of every queue.
    pub fn queue_names(&self) -> Vec<String> {
        read(&self.queues).keys().cloned().collect()
    }

    /// All queues (a snapshot).
    pub fn queues(&self) -> Vec<Arc<Queue>> {
        read(&self.queues).values().cloned().collect()
    }

    /// queue.declare. An empty name gets a server-generated one. `connection` owns exclusive queues.
    pub fn declare_queue(
        &self,
        mut def: QueueDef,
        passive: bool,
        connection: u64,
    ) -> CoreResult<DeclaredQueue> {
        if def.name.is_empty() {
            if passive {
                return Err(self.not_found("queue", ""));
            }
            def.name = generate_queue_name();
        }
        let existing = read(&self.queues).get(&def.name).cloned();
        if let Some(q) = existing {
            self.check_owner(&q, Some(connection))?;
            if !passive && !q.def.equivalent(&def) {
                return Err(CoreError::PreconditionFailed(format!(
                    "inequivalent arg for queue '{}' in vhost '{}': the declared durable, exclusive, auto_delete or arguments differ from the existing queue",
                    def.name, self.name
                )));
            }
            q.touch();
            return Ok(DeclaredQueue {
                name: def.name,
                messages: q.message_count(),
                consumers: q.consumer_count(),
                stored: false,
            });
        }
        if passive {
            return Err(self.not_found("queue", &def.name));
        }
        let reserved_ok = def.name.starts_with("amq.gen-")
            || (def.exclusive && def.name.starts_with(REPLY_TO_PREFIX));
        if def.name.starts_with("amq.") && !reserved_ok {
            return Err(CoreError::AccessRefused(format!(
                "queue name '{}' contains reserved prefix 'amq.*'",
                def.name
            )));
        }
        QueueArgs::parse(&def.arguments)?;
        if let Some(max) = crate::limits::limit(&self.limits(), "max-queues") {
            if read(&self.queues).len() as u64 >= max {
                return Err(CoreError::PreconditionFailed(format!(
                    "cannot declare queue '{}': queue limit in vhost '{}' ({max}) is reached",
                    def.name, self.name
                )));
            }
        }
        let owner = def.exclusive.then_some(connection);
        let name = def.name.clone();
        let outcome = self.commit(MetaCommand::PutQueue {
            vhost: self.name.clone(),
            def,
            owner,
        })?;
        // Unchanged: another declaration of the same name won the race; answer with it.
        let q = self.queue(&name, Some(connection))?;
        // Every queue is bound to the default exchange by its name (implicitly: see publish).
        Ok(DeclaredQueue {
            name,
            messages: q.message_count(),
            consumers: q.consumer_count(),
            stored: outcome.stored(),
        })
    }

    fn build_queue(&self, def: QueueDef, args: QueueArgs, owner: Option<u64>) -> Arc<Queue> {
        // Every queue gets the store: durable ones keep persistent messages in it, and any deep
        // queue pages transient messages out to it.
        let store = Some(self.messages.clone());
        let host: Weak<dyn QueueHost> = self.me.clone();
        Queue::new(
            def,
            args,
            owner,
            host,
            self.name.clone(),
            self.clock.clone(),
            store,
        )
    }

    /// queue.delete; returns the number of ready messages deleted. A missing queue is not an error.
    pub fn delete_queue(
        &self,
        name: &str,
        connection: Option<u64>,
        if_unused: bool,
        if_empty: bool,
    ) -> CoreResult<Deleted> {
        let Some(q) = read(&self.queues).get(name).cloned() else {
            return Ok(Deleted::default());
        };
        self.check_owner(&q, connection)?;
        if if_unused && q.consumer_count() > 0 {
            return Err(CoreError::PreconditionFailed(format!(
                "queue '{name}' in vhost '{}' in use",
                self.name
            )));
        }
        if if_empty && q.message_count() > 0 {
            return Err(CoreError::PreconditionFailed(format!(
                "queue '{name}' in vhost '{}' not empty",
                self.name
            )));
        }
        let sources = self.sources_of(&Destination::Queue(name.to_string()));
        let messages = q.message_count();
        let outcome = self.commit(MetaCommand::DeleteQueue {
            vhost: self.name.clone(),
            name: name.to_string(),
        })?;
        self.auto_delete_exchanges(sources);
        Ok(Deleted {
            messages: if outcome == Outcome::Unchanged {
                0
            } else {
                messages
            },
            stored: outcome.stored(),
        })
    }

    /// The exchanges with a binding to `dest`.
    fn sources_of(&self, dest: &Destination) -> Vec<Arc<Exchange>> {
        read(&self.exchanges)
            .values()
            .filter(|e| e.def.auto_delete && e.has_destination(dest))
            .cloned()
            .collect()
    }

    /// Deletes those of `exchanges` that are auto-delete and have lost their last binding.
    fn auto_delete_exchanges(&self, exchanges: Vec<Arc<Exchange>>) {
        for ex in exchanges {
            self.maybe_auto_delete_exchange(&ex);
        }
    }

    fn maybe_auto_delete_exchange(&self, ex: &Exchange) {
        if ex.def.auto_delete && ex.binding_count() == 0 {
            let _ = self.delete_exchange(&ex.def.name, false);
        }
    }

    /// queue.purge; returns the number of messages purged.
    pub fn purge_queue(&self, name: &str, connection: Option<u64>) -> CoreResult<usize> {
        Ok(self.queue(name, connection)?.purge())
    }

    /// Deletes the exclusive queues of a connection that has closed.
    pub fn connection_closed(&self, connection: u64) {
        let owned: Vec<String> = read(&self.queues)
            .values()
            .filter(|q| q.owner == Some(connection))
            .map(|q| q.name().to_string())
            .collect();
        for name in owned {
            let _ = self.delete_queue(&name, None, false, false);
        }
    }

    // ---- bindings ----

    fn check_destination(&self, b: &Binding, connection: Option<u64>) -> CoreResult<()> {
        match &b.destination {
            Destination::Queue(q) => self.queue(q, connection).map(|_| ()),
            Destination::Exchange(e) => self.exchange(e).map(|_| ()),
        }
    }

    fn check_not_default(&self, name: &str) -> CoreResult<()> {
        if name.is_empty() || name == "amq.default" {
            return Err(CoreError::AccessRefused(format!(
                "operation not permitted on the default exchange in vhost '{}'",
                self.name
            )));
        }
        Ok(())
    }

    /// queue.bind / exchange.bind.
    pub fn bind(&self, b: Binding, connection: Option<u64>) -> CoreResult<Outcome> {
        self.check_not_default(&b.source)?;
        if let Destination::Exchange(d) = &b.destination {
            self.check_not_default(d)?;
        }
        let source = self.exchange(&b.source)?;
        self.check_destination(&b, connection)?;
        if source.def.kind == ExchangeKind::Topic {
            crate::topic::check_limits(&b.routing_key).map_err(CoreError::PreconditionFailed)?;
        }
        self.commit(MetaCommand::PutBinding {
            vhost: self.name.clone(),
            binding: b,
        })
    }

    /// queue.unbind / exchange.unbind (a missing binding is not an error).
    pub fn unbind(&self, b: &Binding, connection: Option<u64>) -> CoreResult<Outcome> {
        self.check_not_default(&b.source)?;
        let source = self.exchange(&b.source)?;
        self.check_destination(b, connection)?;
        let outcome = self.commit(MetaCommand::DeleteBinding {
            vhost: self.name.clone(),
            binding: b.clone(),
        })?;
        if outcome != Outcome::Unchanged {
            self.maybe_auto_delete_exchange(&source);
        }
        Ok(outcome)
    }

    /// Expires messages and `x-expires` queues.
    pub fn sweep(&self) {
        let candidates: Vec<Arc<Queue>> = read(&self.queues)
            .values()
            .filter(|q| q.needs_expiry())
            .cloned()
            .collect();
        for q in candidates {
            if q.expire() {
                tracing::debug!(queue = q.name(), vhost = %self.name, "queue expired (x-expires)");
                let _ = self.delete_queue(q.name(), None, false, false);
            }
        }
    }

    /// Loads the stored messages of every durable queue (once, at start, after the replay).
    pub(crate) fn recover_messages(&self) {
        for q in self.queues() {
            if q.def.durable && !q.def.exclusive {
                let stored = self
                    .messages
                    .load(crate::storage::queue_id(&self.name, q.name()));
                q.restore(stored);
            }
        }
    }

    /// Tells every queue it is gone (the vhost was deleted).
    pub(crate) fn tear_down(&self) {
        let queues: Vec<Arc<Queue>> = write(&self.queues).drain().map(|(_, q)| q).collect();
        for q in queues {
            q.mark_deleted();
        }
    }

    /// Every binding in the vhost (a snapshot).
    pub fn bindings(&self) -> Vec<Binding> {
        read(&self.exchanges)
            .values()
            .flat_map(|e| e.bindings())
            .collect()
    }
}

/// Enqueues `message` on each target queue, with the match bits of the bindings that led there.
fn deliver_to(targets: Vec<(Arc<Queue>, u32)>, message: Arc<Message>) -> Routed {
    let mut routed = Routed::default();
    for (q, matched) in targets {
        match q.enqueue(message.clone(), matched) {
            Enqueued::Accepted => routed.queues += 1,
            Enqueued::Stored => {
                routed.queues += 1;
                routed.stored += 1;
            }
            Enqueued::Rejected => routed.rejected += 1,
        }
    }
    routed
}

/// Body helper for tests and adapters: a transient message with no properties.
pub fn plain_message(exchange: &str, routing_key: &str, body: &'static [u8]) -> Arc<Message> {
    Message::new(
        exchange,
        routing_key,
        Default::default(),
        Bytes::from_static(body),
    )
}
