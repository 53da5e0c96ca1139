//! A vhost as one connection may use it: every operation a client asks for passes its
//! [`Permit`] first, so the permission model is enforced here, once, for every protocol.
//! What each operation needs is RabbitMQ's table: declare and delete need configure on the
//! object (a passive declare needs nothing), a queue bind needs write on the queue and read
//! on the exchange, an exchange bind write on the destination and read on the source,
//! publishing write on the exchange, consuming, getting and purging read on the queue. An
//! `alternate-exchange` or `x-dead-letter-exchange` argument needs write on the exchange it
//! names and read on the declared object. Topic permissions apply to topic exchanges: write
//! on the routing key to publish, read on the binding key to bind.

use crate::error::CoreResult;
use crate::exchange::{Binding, Destination, ExchangeDef, ExchangeKind};
use crate::message::Message;
use crate::meta::Outcome;
use crate::permissions::{Action, Permit, Resource};
use crate::queue::{Queue, QueueDef};
use crate::queue_args::QueueArgs;
use crate::vhost::{generate_queue_name, DeclaredQueue, Deleted, Routed, VHost};
use std::sync::Arc;

/// A vhost and the rights of the connection using it.
#[derive(Debug)]
pub struct Authorized {
    vhost: Arc<VHost>,
    permit: Permit,
}

impl Authorized {
    /// `vhost` as the holder of `permit` may use it.
    pub fn new(vhost: Arc<VHost>, permit: Permit) -> Authorized {
        Authorized { vhost, permit }
    }

    /// The vhost itself, for what needs no permission (acks, lookups of a connection's own
    /// consumers, statistics).
    pub fn vhost(&self) -> &Arc<VHost> {
        &self.vhost
    }

    /// exchange.declare: configure on the exchange (none when passive); an
    /// `alternate-exchange` needs write on it and read on the declared exchange.
    pub fn declare_exchange(&mut self, def: ExchangeDef, passive: bool) -> CoreResult<Outcome> {
        if !passive {
            self.permit
                .check(Action::Configure, Resource::Exchange, &def.name)?;
            if let Some(ae) = def.alternate_exchange() {
                self.permit.check(Action::Write, Resource::Exchange, ae)?;
                self.permit
                    .check(Action::Read, Resource::Exchange, &def.name)?;
            }
        }
        self.vhost.declare_exchange(def, passive)
    }

    /// exchange.delete: configure on the exchange.
    pub fn delete_exchange(&mut self, name: &str, if_unused: bool) -> CoreResult<Outcome> {
        self.permit
            .check(Action::Configure, Resource::Exchange, name)?;
        self.vhost.delete_exchange(name, if_unused)
    }

    /// queue.declare: configure on the queue, its server-generated name included (none when
    /// passive); `x-dead-letter-exchange` needs write on it and read on the queue.
    pub fn declare_queue(
        &mut self,
        mut def: QueueDef,
        passive: bool,
        connection: u64,
    ) -> CoreResult<DeclaredQueue> {
        if !passive {
            if def.name.is_empty() {
                def.name = generate_queue_name();
            }
            self.permit
                .check(Action::Configure, Resource::Queue, &def.name)?;
            if let Some(dlx) = QueueArgs::parse(&def.arguments)?.dead_letter_exchange {
                self.permit.check(Action::Write, Resource::Exchange, &dlx)?;
                self.permit
                    .check(Action::Read, Resource::Queue, &def.name)?;
            }
        }
        self.vhost.declare_queue(def, passive, connection)
    }

    /// queue.delete: configure on the queue.
    pub fn delete_queue(
        &mut self,
        name: &str,
        connection: Option<u64>,
        if_unused: bool,
        if_empty: bool,
    ) -> CoreResult<Deleted> {
        self.permit
            .check(Action::Configure, Resource::Queue, name)?;
        self.vhost
            .delete_queue(name, connection, if_unused, if_empty)
    }

    /// queue.purge: read on the queue.
    pub fn purge_queue(&mut self, name: &str, connection: Option<u64>) -> CoreResult<usize> {
        self.permit.check(Action::Read, Resource::Queue, name)?;
        self.vhost.purge_queue(name, connection)
    }

    /// The queue a consume or a get reads: read on it.
    pub fn readable_queue(
        &mut self,
        name: &str,
        connection: Option<u64>,
    ) -> CoreResult<Arc<Queue>> {
        self.permit.check(Action::Read, Resource::Queue, name)?;
        self.vhost.queue(name, connection)
    }

    /// queue.bind / exchange.bind.
    pub fn bind(&mut self, b: Binding, connection: Option<u64>) -> CoreResult<Outcome> {
        self.check_binding(&b)?;
        self.vhost.bind(b, connection)
    }

    /// queue.unbind / exchange.unbind: what a bind needs.
    pub fn unbind(&mut self, b: &Binding, connection: Option<u64>) -> CoreResult<Outcome> {
        self.check_binding(b)?;
        self.vhost.unbind(b, connection)
    }

    fn check_binding(&mut self, b: &Binding) -> CoreResult<()> {
        match &b.destination {
            Destination::Queue(q) => self.permit.check(Action::Write, Resource::Queue, q)?,
            Destination::Exchange(x) => self.permit.check(Action::Write, Resource::Exchange, x)?,
        }
        self.permit
            .check(Action::Read, Resource::Exchange, &b.source)?;
        if self.permit.has_topic_rules(&b.source) && self.is_topic(&b.source) {
            self.permit
                .check_topic(Action::Read, &b.source, &b.routing_key)?;
        }
        Ok(())
    }

    /// basic.publish: write on the exchange the message is routed through (for an address
    /// such as `/exchange/x/k` published to the default exchange, on `x`), and on a topic
    /// exchange with topic permissions, write on the routing key.
    pub fn publish(&mut self, exchange: &str, message: Arc<Message>) -> CoreResult<Routed> {
        let target = if exchange.is_empty() {
            self.vhost.resolve_address(&message.routing_key)
        } else {
            None
        };
        let (x, key) = match &target {
            Some((x, k)) => (x.as_str(), k.as_str()),
            None => (exchange, message.routing_key.as_str()),
        };
        self.permit.check(Action::Write, Resource::Exchange, x)?;
        if self.permit.has_topic_rules(x) && self.is_topic(x) {
            self.permit.check_topic(Action::Write, x, key)?;
        }
        self.vhost.publish(exchange, message)
    }

    /// Whether a publish to `exchange` with `routing_key` would be allowed, without
    /// publishing (MQTT checks a will when it is set).
    pub fn check_publish(&mut self, exchange: &str, routing_key: &str) -> CoreResult<()> {
        self.permit
            .check(Action::Write, Resource::Exchange, exchange)?;
        if self.permit.has_topic_rules(exchange) && self.is_topic(exchange) {
            self.permit
                .check_topic(Action::Write, exchange, routing_key)?;
        }
        Ok(())
    }

    fn is_topic(&self, exchange: &str) -> bool {
        self.vhost
            .exchange(exchange)
            .is_ok_and(|x| x.def.kind == ExchangeKind::Topic)
    }
}
