//! The publish path through a vhost: exchanges to queues, exchange-to-exchange bindings,
//! alternate exchanges, and dead letters routed to their exchange.

use super::*;
use crate::dead_letter::{cycle_queues, record_death};

impl VHost {
    /// The exchange and routing key an address such as `/exchange/x/k`, published to the
    /// default exchange, stands for (none when a queue has that name).
    pub fn resolve_address(&self, routing_key: &str) -> Option<(String, String)> {
        address_target(routing_key)
            .filter(|_| !read(&self.queues).contains_key(routing_key))
            .map(|(x, k)| (x.to_string(), k.to_string()))
    }

    /// Routes a message from `exchange` to every matching queue.
    pub fn publish(&self, exchange: &str, message: Arc<Message>) -> CoreResult<Routed> {
        if exchange.is_empty() {
            // Only keys that look like an address pay for the queue lookup.
            if let Some((x, k)) = self.resolve_address(&message.routing_key) {
                let mut m = (*message).clone();
                m.exchange = x.clone();
                m.routing_key = k;
                return self.publish(&x, Arc::new(m));
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
        ex.count_routed(targets.len());
        Ok(deliver_to(targets, message))
    }

    /// The queues a message with `routing_key` and `headers` published to `exchange` would
    /// reach, by name, without publishing it (bindings, exchange-to-exchange bindings and
    /// alternate exchanges followed as a publish would).
    pub fn would_route(
        &self,
        exchange: &str,
        routing_key: &str,
        headers: Option<crate::value::FieldTable>,
    ) -> CoreResult<Vec<String>> {
        let ex = self.exchange(exchange)?;
        let props = crate::message::Properties {
            headers,
            ..crate::message::Properties::default()
        };
        let msg = Message::new(exchange, routing_key, props, bytes::Bytes::new());
        let mut targets = Vec::new();
        self.route(&ex, &msg, &mut targets, &mut Vec::new());
        let mut names: Vec<String> = targets.iter().map(|(q, _)| q.name().to_string()).collect();
        names.sort();
        Ok(names)
    }

    /// Collects the queues a message reaches from `ex`, each once with the match bits of every
    /// binding that led to it, following exchange-to-exchange bindings and alternate exchanges,
    /// each exchange visited once.
    pub(super) fn route(
        &self,
        ex: &Arc<Exchange>,
        msg: &Message,
        out: &mut Vec<(Arc<Queue>, u32)>,
        visited: &mut Vec<Arc<Exchange>>,
    ) {
        visited.push(ex.clone());
        // Whether this exchange's bindings led to any queue (maybe one already collected).
        let mut reached = false;
        let mut onward: Vec<String> = Vec::new();
        {
            let queues = read(&self.queues);
            let mut add = |name: &str, bits: u32| {
                if let Some(q) = queues.get(name) {
                    reached = true;
                    match out.iter_mut().find(|(o, _)| Arc::ptr_eq(o, q)) {
                        Some((_, b)) => *b |= bits,
                        None => out.push((q.clone(), bits)),
                    }
                }
            };
            if ex.def.name.is_empty() {
                add(&msg.routing_key, 0);
            } else {
                ex.route(
                    &msg.routing_key,
                    msg.properties.headers.as_ref(),
                    &mut |d, bits| match d {
                        Destination::Queue(q) => add(q, bits),
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
            if let Some(ae) = ex.alternate_exchange() {
                if !visited.iter().any(|v| v.def.name == ae) {
                    if let Ok(next) = self.exchange(&ae) {
                        self.route(&next, msg, out, visited);
                    }
                }
            }
        }
    }

    /// Re-publishes a message that died in `queue` to its dead-letter exchange with `x-death`.
    pub(super) fn route_dead_letter(&self, queue: &Queue, msg: &Message, reason: DeathReason) {
        let args = queue.args();
        let Some(dlx) = args.dead_letter_exchange.as_deref() else {
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
        let routing_key = args
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
        targets.retain(|(q, _)| !cyclic.iter().any(|c| c == q.name()));
        deliver_to(targets, dead);
    }
}
