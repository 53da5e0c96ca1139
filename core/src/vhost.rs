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
use crate::value::{FieldTable, FieldValue};
use bytes::Bytes;
use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};

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
    pub name: String,
    pub messages: usize,
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
    pub name: String,
    exchanges: RwLock<HashMap<String, Arc<Exchange>>>,
    queues: RwLock<HashMap<String, Arc<Queue>>>,
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

    pub fn exchange(&self, name: &str) -> CoreResult<Arc<Exchange>> {
        let key = if name == "amq.default" { "" } else { name };
        read(&self.exchanges)
            .get(key)
            .cloned()
            .ok_or_else(|| self.not_found("exchange", name))
    }

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
        Arc::new(Queue::new(
            def,
            args,
            owner,
            host,
            self.name.clone(),
            self.clock.clone(),
            store,
        ))
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

    // ---- publishing ----

    /// Routes a message from `exchange` to every matching queue.
    pub fn publish(&self, exchange: &str, message: Arc<Message>) -> CoreResult<Routed> {
        if exchange.is_empty() {
            // Only keys that look like an address pay for the queue lookup.
            let target = address_target(&message.routing_key)
                .filter(|_| !read(&self.queues).contains_key(&message.routing_key));
            if let Some((x, k)) = target {
                let mut m = (*message).clone();
                m.exchange = x.to_string();
                m.routing_key = k.to_string();
                return self.publish(x, Arc::new(m));
            }
        }
        let ex = self.exchange(exchange)?;
        if ex.def.internal {
            return Err(CoreError::AccessRefused(format!(
                "cannot publish to internal exchange '{exchange}' in vhost '{}'",
                self.name
            )));
        }
        if ex.def.kind == ExchangeKind::Topic {
            crate::topic::check_limits(&message.routing_key)
                .map_err(CoreError::PreconditionFailed)?;
        }
        self.taps.run(self, exchange, &message);
        let mut targets = Vec::new();
        self.route(&ex, &message, &mut targets, &mut Vec::new());
        Ok(deliver_to(targets, message))
    }

    /// Collects the queues a message reaches from `ex`, each once, following exchange-to-exchange
    /// bindings and alternate exchanges, each exchange visited once.
    fn route(
        &self,
        ex: &Arc<Exchange>,
        msg: &Message,
        out: &mut Vec<Arc<Queue>>,
        visited: &mut Vec<Arc<Exchange>>,
    ) {
        visited.push(ex.clone());
        // Whether this exchange's bindings led to any queue (maybe one already collected).
        let mut reached = false;
        let mut onward: Vec<String> = Vec::new();
        {
            let queues = read(&self.queues);
            let mut add = |name: &str| {
                if let Some(q) = queues.get(name) {
                    reached = true;
                    if !out.iter().any(|o| Arc::ptr_eq(o, q)) {
                        out.push(q.clone());
                    }
                }
            };
            if ex.def.name.is_empty() {
                add(&msg.routing_key);
            } else {
                ex.route(
                    &msg.routing_key,
                    msg.properties.headers.as_ref(),
                    &mut |d| match d {
                        Destination::Queue(q) => add(q),
                        Destination::Exchange(e) => onward.push(e.clone()),
                    },
                );
            }
        }
        for e in onward {
            if visited.iter().any(|v| v.def.name == e) {
                continue;
            }
            if let Ok(next) = self.exchange(&e) {
                let before = out.len();
                self.route(&next, msg, out, visited);
                reached |= out.len() > before;
            }
        }
        if !reached {
            if let Some(ae) = ex.def.alternate_exchange() {
                if !visited.iter().any(|v| v.def.name == ae) {
                    if let Ok(next) = self.exchange(ae) {
                        self.route(&next, msg, out, visited);
                    }
                }
            }
        }
    }

    /// Re-publishes a message that died in `queue` to its dead-letter exchange with `x-death`.
    fn route_dead_letter(&self, queue: &Queue, msg: &Message, reason: DeathReason) {
        let Some(dlx) = queue.args.dead_letter_exchange.as_deref() else {
            return;
        };
        let Ok(ex) = self.exchange(dlx) else {
            tracing::debug!(
                queue = queue.name(),
                dlx,
                "dead-letter exchange missing; message dropped"
            );
            return;
        };
        let mut props = crate::message::Properties::clone(&msg.properties);
        let original_expiration = props.expiration.take();
        let headers = props.headers_mut();
        record_death(
            self.clock.unix_seconds(),
            headers,
            queue.name(),
            reason,
            msg,
            original_expiration,
        );
        let routing_key = queue
            .args
            .dead_letter_routing_key
            .clone()
            .unwrap_or_else(|| msg.routing_key.clone());
        let dead = Arc::new(Message {
            exchange: dlx.to_string(),
            routing_key,
            properties: Arc::new(props),
            body: msg.body.clone(),
        });
        let mut targets = Vec::new();
        self.route(&ex, &dead, &mut targets, &mut Vec::new());
        // Cycle detection, as RabbitMQ: a message that already died in a target queue without
        // ever being rejected would loop forever, so that queue is skipped.
        let cyclic = cycle_queues(dead.properties.headers.as_ref());
        targets.retain(|q| !cyclic.iter().any(|c| c == q.name()));
        deliver_to(targets, dead);
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

impl QueueHost for VHost {
    fn dead_letter(&self, queue: &Queue, msg: &Message, reason: DeathReason) {
        self.route_dead_letter(queue, msg, reason);
    }

    fn auto_delete(&self, queue: &Queue) {
        let _ = VHost::delete_queue(self, queue.name(), None, false, false);
    }
}

impl Materialize for VHost {
    /// The vhost's maps follow the state machine: no I/O here beyond telling a deleted
    /// queue's consumers and store.
    fn materialize(&self, cmd: &MetaCommand) {
        match cmd {
            MetaCommand::PutExchange { def, .. } => {
                write(&self.exchanges)
                    .entry(def.name.clone())
                    .or_insert_with(|| Arc::new(Exchange::new(def.clone())));
            }
            MetaCommand::DeleteExchange { name, .. } => {
                write(&self.exchanges).remove(name);
                let dest = Destination::Exchange(name.clone());
                for other in read(&self.exchanges).values() {
                    other.unbind_destination(&dest);
                }
            }
            MetaCommand::PutQueue { def, owner, .. } => {
                let args = QueueArgs::parse(&def.arguments).unwrap_or_default();
                let q = self.build_queue(def.clone(), args, *owner);
                write(&self.queues).insert(def.name.clone(), q);
            }
            MetaCommand::DeleteQueue { name, .. } => {
                let q = write(&self.queues).remove(name);
                let dest = Destination::Queue(name.clone());
                for ex in read(&self.exchanges).values() {
                    ex.unbind_destination(&dest);
                }
                if let Some(q) = q {
                    q.mark_deleted();
                }
            }
            MetaCommand::PutBinding { binding, .. } => {
                if let Ok(ex) = self.exchange(&binding.source) {
                    // Limits were checked before the command was made.
                    let _ = ex.bind(binding.clone());
                }
            }
            MetaCommand::DeleteBinding { binding, .. } => {
                if let Ok(ex) = self.exchange(&binding.source) {
                    ex.unbind(binding);
                }
            }
            _ => {}
        }
    }
}

/// Updates `x-death` as RabbitMQ does: one entry per (queue, reason), newest first, with a count.
fn record_death(
    now_s: u64,
    headers: &mut FieldTable,
    queue: &str,
    reason: DeathReason,
    msg: &Message,
    original_expiration: Option<String>,
) {
    let mut deaths = match headers.remove("x-death") {
        Some(FieldValue::Array(a)) => a,
        _ => Vec::new(),
    };
    let same = |t: &FieldTable| {
        t.get_str("queue") == Some(queue) && t.get_str("reason") == Some(reason.as_str())
    };
    let existing = deaths
        .iter()
        .position(|d| matches!(d, FieldValue::Table(t) if same(t)));
    let entry = match existing {
        Some(i) => {
            let FieldValue::Table(mut t) = deaths.remove(i) else {
                unreachable!("position matched a table")
            };
            let count = t.get_i64("count").unwrap_or(0) + 1;
            t.insert("count", FieldValue::I64(count));
            t.insert("time", FieldValue::Timestamp(now_s));
            t
        }
        None => {
            let mut t = FieldTable::new();
            t.insert("count", FieldValue::I64(1));
            t.insert("reason", FieldValue::string(reason.as_str()));
            t.insert("queue", FieldValue::string(queue));
            t.insert("time", FieldValue::Timestamp(now_s));
            t.insert("exchange", FieldValue::string(msg.exchange.clone()));
            t.insert(
                "routing-keys",
                FieldValue::Array(vec![FieldValue::string(msg.routing_key.clone())]),
            );
            if let Some(exp) = original_expiration {
                t.insert("original-expiration", FieldValue::string(exp));
            }
            t
        }
    };
    deaths.insert(0, FieldValue::Table(entry));
    headers.insert("x-death", FieldValue::Array(deaths));
    if headers.get("x-first-death-reason").is_none() {
        headers.insert("x-first-death-reason", FieldValue::string(reason.as_str()));
        headers.insert("x-first-death-queue", FieldValue::string(queue));
        headers.insert(
            "x-first-death-exchange",
            FieldValue::string(msg.exchange.clone()),
        );
    }
    headers.insert("x-last-death-reason", FieldValue::string(reason.as_str()));
    headers.insert("x-last-death-queue", FieldValue::string(queue));
    headers.insert(
        "x-last-death-exchange",
        FieldValue::string(msg.exchange.clone()),
    );
}

/// Enqueues `message` on each target queue.
fn deliver_to(targets: Vec<Arc<Queue>>, message: Arc<Message>) -> Routed {
    let mut routed = Routed::default();
    for q in targets {
        match q.enqueue(message.clone()) {
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

/// Queues a dead-lettered message must not re-enter: those in its `x-death` when no death in
/// the history was a rejection (a fully automatic cycle).
fn cycle_queues(headers: Option<&FieldTable>) -> Vec<String> {
    let Some(FieldValue::Array(deaths)) = headers.and_then(|h| h.get("x-death")) else {
        return Vec::new();
    };
    let tables: Vec<&FieldTable> = deaths
        .iter()
        .filter_map(|d| match d {
            FieldValue::Table(t) => Some(t),
            _ => None,
        })
        .collect();
    if tables
        .iter()
        .any(|t| t.get_str("reason") == Some("rejected"))
    {
        return Vec::new();
    }
    // The newest entry is the queue the message just died in; a cycle means reaching any
    // queue already in the history.
    tables
        .iter()
        .filter_map(|t| t.get_str("queue").map(str::to_string))
        .collect()
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
