//! SEND, SUBSCRIBE, UNSUBSCRIBE, ACK/NACK and transactions.

use super::error::StompError;
use super::Session;
use crate::codec::{Command, Frame, Version};
use crate::destination::Destination;
use crate::headers::{from_properties, to_properties};
use junction_core::authorized::Authorized;
use junction_core::message_counts::Count;
use junction_core::vhost::generate_queue_name;
use junction_core::{
    Binding, ConsumerSpec, Credit, Delivery, Destination as Target, FieldTable, FieldValue,
    Message, Queue, QueueDef,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How a subscription's messages are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AckMode {
    Auto,
    /// Cumulative: an ACK covers every earlier message of the subscription.
    Client,
    ClientIndividual,
}

pub(super) struct Subscription {
    destination: String,
    ack: AckMode,
    key: u64,
    queue: Arc<Queue>,
    /// Ack id → the queue's delivery id.
    unacked: BTreeMap<u64, u64>,
    /// A durable topic subscription's queue, deleted on UNSUBSCRIBE with `durable:true`.
    durable_queue: bool,
}

fn missing(header: &str, command: Command) -> StompError {
    StompError::MissingHeader {
        header: header.to_string(),
        command,
    }
}

fn truthy(f: &Frame, name: &str) -> Option<bool> {
    f.header(name).map(|v| v == "true")
}

/// `x-*` SUBSCRIBE headers become queue arguments; numbers are sent as integers.
fn queue_arguments(f: &Frame) -> FieldTable {
    let mut t = FieldTable::new();
    for (k, v) in &f.headers {
        if k.starts_with("x-") && k != "x-queue-name" && t.get(k).is_none() {
            let value = match v.parse::<i64>() {
                Ok(n) => FieldValue::I64(n),
                Err(_) => FieldValue::string(v.clone()),
            };
            t.insert(k.clone(), value);
        }
    }
    t
}

impl Session {
    fn vh(&self) -> Arc<junction_core::VHost> {
        self.vhost
            .as_ref()
            .expect("open session has a vhost")
            .vhost()
            .clone()
    }

    /// The vhost as the session's permissions let it be used.
    fn guarded(&mut self) -> &mut Authorized {
        self.vhost.as_mut().expect("open session has a vhost")
    }

    pub(super) fn dispatch(&mut self, f: Frame) -> Result<(), StompError> {
        if f.command == Command::Send {
            self.published = true;
        }
        if let Some(tx) = f.header("transaction") {
            if matches!(f.command, Command::Send | Command::Ack | Command::Nack) {
                let tx = tx.to_string();
                let Some(buffered) = self.transactions.get_mut(&tx) else {
                    return Err(StompError::BadTransaction {
                        id: tx,
                        begun: false,
                    });
                };
                buffered.push(f);
                return Ok(());
            }
        }
        match f.command {
            Command::Send => self.send_frame(&f),
            Command::Subscribe => self.subscribe(&f),
            Command::Unsubscribe => self.unsubscribe(&f),
            Command::Ack | Command::Nack => self.ack(&f),
            Command::Begin | Command::Commit | Command::Abort => self.transaction(&f),
            other => Err(StompError::BadCommand(other)),
        }
    }

    fn transaction(&mut self, f: &Frame) -> Result<(), StompError> {
        let tx = f
            .header("transaction")
            .ok_or_else(|| missing("transaction", f.command))?
            .to_string();
        match f.command {
            Command::Begin => {
                if self.transactions.contains_key(&tx) {
                    return Err(StompError::BadTransaction {
                        id: tx,
                        begun: true,
                    });
                }
                self.transactions.insert(tx, Vec::new());
                Ok(())
            }
            _ => {
                let frames =
                    self.transactions
                        .remove(&tx)
                        .ok_or_else(|| StompError::BadTransaction {
                            id: tx.clone(),
                            begun: false,
                        })?;
                if f.command == Command::Commit {
                    for mut frame in frames {
                        frame.headers.retain(|(k, _)| k != "transaction");
                        self.dispatch(frame)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// The queue behind `/temp-queue/x`, created (exclusive, auto-delete) on first use.
    fn temp_queue(&mut self, x: &str) -> Result<String, StompError> {
        if let Some(q) = self.temp_queues.get(x) {
            return Ok(q.clone());
        }
        let def = QueueDef {
            name: String::new(),
            durable: false,
            exclusive: true,
            auto_delete: false,
            arguments: FieldTable::new(),
        };
        let conn = self.ctx.connection_id;
        let d = self
            .guarded()
            .declare_queue(def, false, conn)
            .map_err(StompError::from)?;
        self.temp_queues.insert(x.to_string(), d.name.clone());
        // Replies to a temp queue arrive on an implicit subscription named after it.
        let dest = format!("/temp-queue/{x}");
        self.start_consumer(dest.clone(), dest, &d.name, AckMode::Auto, 0, false)?;
        Ok(d.name)
    }

    /// Declares a `/queue/` queue unless it exists.
    fn ensure_queue(&mut self, name: &str, f: Option<&Frame>) -> Result<(), StompError> {
        let conn = self.ctx.connection_id;
        if self.vh().queue(name, Some(conn)).is_ok() {
            return Ok(());
        }
        let def = QueueDef {
            name: name.to_string(),
            durable: f.and_then(|f| truthy(f, "durable")).unwrap_or(true),
            exclusive: f.and_then(|f| truthy(f, "exclusive")).unwrap_or(false),
            auto_delete: f.and_then(|f| truthy(f, "auto-delete")).unwrap_or(false),
            arguments: f.map(queue_arguments).unwrap_or_default(),
        };
        let d = self
            .guarded()
            .declare_queue(def, false, conn)
            .map_err(StompError::from)?;
        self.after_store(d.stored);
        Ok(())
    }

    /// A metadata change went to the store: receipts from now on wait for its sync.
    fn after_store(&mut self, stored: bool) {
        if stored {
            self.outbox.held.want_sync();
        }
    }

    fn send_frame(&mut self, f: &Frame) -> Result<(), StompError> {
        let dest = f
            .header("destination")
            .ok_or_else(|| missing("destination", Command::Send))?;
        let dest = Destination::parse(dest).map_err(StompError::BadDestination)?;
        let (exchange, routing_key) = match dest {
            Destination::Queue(q) => {
                self.ensure_queue(&q, None)?;
                (String::new(), q)
            }
            Destination::Topic(k) => ("amq.topic".to_string(), k),
            Destination::Exchange(e, k) => (e, k),
            Destination::AmqQueue(q) | Destination::ReplyQueue(q) => (String::new(), q),
            Destination::TempQueue(x) => (String::new(), self.temp_queue(&x)?),
        };
        let mut properties = to_properties(&f.headers);
        if let Some(reply) = properties.reply_to.clone() {
            if let Some(x) = reply.strip_prefix("/temp-queue/") {
                properties.reply_to = Some(self.temp_queue(x)?);
            } else if let Some(q) = reply.strip_prefix("/reply-queue/") {
                properties.reply_to = Some(q.to_string());
            }
        }
        let message = Arc::new(Message {
            exchange: exchange.clone(),
            routing_key,
            properties: Arc::new(properties),
            body: f.body.clone(),
        });
        let routed = self
            .guarded()
            .publish(&exchange, message)
            .map_err(StompError::from)?;
        self.count(|c| c.published(&routed, false));
        if routed.stored > 0 {
            self.outbox.held.want_sync();
        }
        Ok(())
    }

    fn subscribe(&mut self, f: &Frame) -> Result<(), StompError> {
        let dest_text = f
            .header("destination")
            .ok_or_else(|| missing("destination", Command::Subscribe))?
            .to_string();
        let id = match f.header("id") {
            Some(id) => id.to_string(),
            None if self.version == Version::V1_0 => dest_text.clone(),
            None => return Err(missing("id", Command::Subscribe)),
        };
        if self.subscriptions.contains_key(&id) {
            return Err(StompError::DuplicateSubscription(id));
        }
        let ack = match f.header("ack").unwrap_or("auto") {
            "auto" => AckMode::Auto,
            "client" => AckMode::Client,
            "client-individual" => AckMode::ClientIndividual,
            other => return Err(StompError::BadAckMode(other.to_string())),
        };
        let prefetch: u32 = f
            .header("prefetch-count")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        let vh = self.vh();
        let durable_sub = truthy(f, "durable")
            .or(truthy(f, "persistent"))
            .unwrap_or(false);
        let private_queue = |name: String, durable: bool| QueueDef {
            name,
            durable,
            exclusive: !durable && truthy(f, "exclusive").unwrap_or(true),
            auto_delete: !durable && truthy(f, "auto-delete").unwrap_or(true),
            arguments: queue_arguments(f),
        };
        let (queue, durable_queue) =
            match Destination::parse(&dest_text).map_err(StompError::BadDestination)? {
                Destination::Queue(q) => {
                    self.ensure_queue(&q, Some(f))?;
                    (q, false)
                }
                Destination::AmqQueue(q) | Destination::ReplyQueue(q) => (q, false),
                Destination::TempQueue(x) => (self.temp_queue(&x)?, false),
                Destination::Topic(k) => {
                    self.bound_queue(f, "amq.topic", &k, &id, durable_sub, &private_queue)?
                }
                Destination::Exchange(e, k) => {
                    vh.exchange(&e).map_err(StompError::from)?;
                    self.bound_queue(f, &e, &k, &id, durable_sub, &private_queue)?
                }
            };
        self.start_consumer(id, dest_text, &queue, ack, prefetch, durable_queue)
    }

    /// A queue bound to `exchange` with `key` for a topic or exchange subscription.
    fn bound_queue(
        &mut self,
        f: &Frame,
        exchange: &str,
        key: &str,
        id: &str,
        durable: bool,
        def: &dyn Fn(String, bool) -> QueueDef,
    ) -> Result<(String, bool), StompError> {
        let name = match f.header("x-queue-name") {
            Some(n) => n.to_string(),
            None if durable => format!("stomp-subscription-{id}"),
            // Named so that a configure permission can allow them, as RabbitMQ names them.
            None => format!(
                "stomp-subscription-{}",
                generate_queue_name().trim_start_matches("amq.gen-")
            ),
        };
        let conn = self.ctx.connection_id;
        let vh = self.guarded();
        let d = vh
            .declare_queue(def(name, durable), false, conn)
            .map_err(StompError::from)?;
        let bound = vh
            .bind(
                Binding {
                    source: exchange.to_string(),
                    destination: Target::Queue(d.name.clone()),
                    routing_key: key.to_string(),
                    arguments: FieldTable::new(),
                },
                Some(conn),
            )
            .map_err(StompError::from)?;
        self.after_store(d.stored || bound.stored());
        Ok((d.name, durable))
    }

    fn start_consumer(
        &mut self,
        id: String,
        destination: String,
        queue: &str,
        ack: AckMode,
        prefetch: u32,
        durable_queue: bool,
    ) -> Result<(), StompError> {
        let conn = self.ctx.connection_id;
        let q = self
            .guarded()
            .readable_queue(queue, Some(conn))
            .map_err(StompError::from)?;
        let key = self.next_key;
        self.next_key += 1;
        let no_ack = ack == AckMode::Auto;
        let spec = ConsumerSpec {
            key,
            tag: id.clone(),
            connection: self.ctx.connection_id,
            channel: 1,
            no_ack,
            exclusive: false,
            priority: 0,
            credit: Some(Credit::new(if no_ack { 0 } else { prefetch })),
            shared_credit: None,
            sink: self.sink.clone(),
        };
        self.consumers.insert(key, id.clone());
        self.subscriptions.insert(
            id.clone(),
            Subscription {
                destination,
                ack,
                key,
                queue: q.clone(),
                unacked: BTreeMap::new(),
                durable_queue,
            },
        );
        if let Err(e) = q.add_consumer(spec) {
            self.consumers.remove(&key);
            self.subscriptions.remove(&id);
            return Err(e.into());
        }
        Ok(())
    }

    fn unsubscribe(&mut self, f: &Frame) -> Result<(), StompError> {
        let id = match (f.header("id"), f.header("destination")) {
            (Some(id), _) => id.to_string(),
            (None, Some(d)) if self.version == Version::V1_0 => d.to_string(),
            _ => return Err(missing("id", Command::Unsubscribe)),
        };
        let Some(sub) = self.subscriptions.get(&id) else {
            return Err(StompError::NoSubscription(id));
        };
        let delete = sub.durable_queue
            && truthy(f, "durable")
                .or(truthy(f, "persistent"))
                .unwrap_or(false);
        let queue = sub.queue.name().to_string();
        self.end_subscription(&id);
        if delete {
            let conn = self.ctx.connection_id;
            let d = self
                .guarded()
                .delete_queue(&queue, Some(conn), false, false)
                .map_err(StompError::from)?;
            self.after_store(d.stored);
        }
        Ok(())
    }

    /// Cancels a subscription's consumer and requeues what it had unacked.
    pub(super) fn end_subscription(&mut self, id: &str) {
        let Some(sub) = self.subscriptions.remove(id) else {
            return;
        };
        self.consumers.remove(&sub.key);
        for ack_id in sub.unacked.keys() {
            self.ack_index.remove(ack_id);
        }
        sub.queue.cancel_consumer(sub.key, self.ctx.connection_id);
        let ids: Vec<u64> = sub.unacked.values().copied().collect();
        if !ids.is_empty() {
            sub.queue.reject(&ids, true);
        }
    }

    fn ack(&mut self, f: &Frame) -> Result<(), StompError> {
        let name = if self.version == Version::V1_2 {
            "id"
        } else {
            "message-id"
        };
        let raw = f.header(name).ok_or_else(|| missing(name, f.command))?;
        let ack_id: u64 = raw
            .parse()
            .map_err(|_| StompError::UnknownAckId(raw.to_string()))?;
        let Some(sub_id) = self.ack_index.get(&ack_id).cloned() else {
            return Err(StompError::BadAckId(raw.to_string()));
        };
        let sub = self
            .subscriptions
            .get_mut(&sub_id)
            .expect("indexed subscription exists");
        let taken: Vec<(u64, u64)> = if sub.ack == AckMode::Client {
            let rest = sub.unacked.split_off(&(ack_id + 1));
            std::mem::replace(&mut sub.unacked, rest)
                .into_iter()
                .collect()
        } else {
            sub.unacked
                .remove(&ack_id)
                .map(|d| vec![(ack_id, d)])
                .unwrap_or_default()
        };
        let queue = sub.queue.clone();
        for (a, _) in &taken {
            self.ack_index.remove(a);
        }
        let ids: Vec<u64> = taken.into_iter().map(|(_, d)| d).collect();
        if f.command == Command::Ack {
            self.count(|c| c.add(Count::Acknowledged, ids.len() as u64));
            queue.ack(&ids);
        } else {
            let requeue = f.header("requeue").is_none_or(|r| r != "false");
            queue.reject(&ids, requeue);
        }
        Ok(())
    }

    pub(super) fn deliver(&mut self, d: Delivery) {
        let Some(sub_id) = self.consumers.get(&d.consumer).cloned() else {
            if d.id != 0 {
                d.queue.reject(&[d.id], true);
            }
            return;
        };
        let n = self.next_message;
        self.next_message += 1;
        let sub = self
            .subscriptions
            .get_mut(&sub_id)
            .expect("consumer has a subscription");
        let needs_ack = sub.ack != AckMode::Auto;
        if let Some(c) = &self.counts {
            c.counts().delivered(false, needs_ack, d.redelivered);
        }
        if needs_ack {
            sub.unacked.insert(n, d.id);
            self.ack_index.insert(n, sub_id.clone());
        }
        let destination = if sub.destination.starts_with("/temp-queue/") {
            sub.destination.clone()
        } else {
            Destination::for_message(&d.message.exchange, &d.message.routing_key)
        };
        let mut headers = vec![
            ("subscription".to_string(), sub_id),
            ("destination".to_string(), destination),
            ("message-id".to_string(), n.to_string()),
            ("redelivered".to_string(), d.redelivered.to_string()),
        ];
        if needs_ack && self.version == Version::V1_2 {
            headers.push(("ack".to_string(), n.to_string()));
        }
        from_properties(&d.message.properties, &mut headers);
        headers.push((
            "content-length".to_string(),
            d.message.body.len().to_string(),
        ));
        self.send(Frame {
            command: Command::Message,
            headers,
            body: d.message.body.clone(),
        });
    }
}
