//! Channels: the exchange, queue, basic, confirm and tx classes on one connection.

use super::error::{code, AmqpError, AmqpResult};
use super::Session;
use crate::codec::{encode_content, ContentHeader, Method};
use bytes::{Bytes, BytesMut};
use junction_core::vhost::{generate_queue_name, REPLY_TO_PREFIX};
use junction_core::{
    Binding, ConsumerSpec, Credit, Delivery, Destination, ExchangeDef, ExchangeKind, Message,
    Properties, Queue, QueueDef, SharedProperties, VHost,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The pseudo-queue of RabbitMQ's direct reply-to.
const REPLY_TO: &str = "amq.rabbitmq.reply-to";

pub(super) struct ConsumerRef {
    key: u64,
    queue: Arc<Queue>,
    credit: Arc<Credit>,
}

struct Unacked {
    queue: Arc<Queue>,
    id: u64,
}

/// A publish waiting for its content header and body frames.
struct Pending {
    exchange: String,
    routing_key: String,
    mandatory: bool,
    header: Option<(u64, Properties)>,
    parts: Vec<Bytes>,
    received: u64,
}

struct PendingMessage {
    exchange: String,
    mandatory: bool,
    message: Arc<Message>,
}

enum AckOp {
    Ack {
        tag: u64,
        multiple: bool,
    },
    Nack {
        tag: u64,
        multiple: bool,
        requeue: bool,
    },
}

#[derive(Default)]
struct Tx {
    publishes: Vec<PendingMessage>,
    acks: Vec<AckOp>,
}

/// One open channel.
#[derive(Default)]
pub(super) struct Channel {
    closing: bool,
    /// The properties of the last publish, shared with the next when equal.
    last_properties: SharedProperties,
    pending: Option<Pending>,
    prefetch: u16,
    global: Option<Arc<Credit>>,
    pub(super) consumers: HashMap<String, ConsumerRef>,
    next_tag: u64,
    unacked: BTreeMap<u64, Unacked>,
    confirm: bool,
    publish_seq: u64,
    tx: Option<Tx>,
    last_queue: Option<String>,
    flow_paused: bool,
    reply_queue: Option<String>,
}

impl Channel {
    pub(super) fn is_open(&self) -> bool {
        !self.closing
    }

    /// Assigns the next delivery tag to a delivery and tracks it until acked.
    pub(super) fn track_delivery(&mut self, d: &Delivery) -> u64 {
        self.next_tag += 1;
        if d.id != 0 {
            self.unacked.insert(
                self.next_tag,
                Unacked {
                    queue: d.queue.clone(),
                    id: d.id,
                },
            );
        }
        self.next_tag
    }

    /// Removes the deliveries an ack/nack/reject names; `None` if the tag is unknown.
    fn take_acked(&mut self, tag: u64, multiple: bool) -> Option<Vec<Unacked>> {
        if multiple {
            if tag == 0 {
                return Some(std::mem::take(&mut self.unacked).into_values().collect());
            }
            if !self.unacked.contains_key(&tag) {
                return None;
            }
            let rest = self.unacked.split_off(&(tag + 1));
            let taken = std::mem::replace(&mut self.unacked, rest);
            Some(taken.into_values().collect())
        } else {
            self.unacked.remove(&tag).map(|u| vec![u])
        }
    }
}

/// Groups deliveries by queue so each queue is locked once.
fn by_queue(items: Vec<Unacked>) -> Vec<(Arc<Queue>, Vec<u64>)> {
    let mut groups: Vec<(Arc<Queue>, Vec<u64>)> = Vec::new();
    for u in items {
        match groups.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &u.queue)) {
            Some((_, ids)) => ids.push(u.id),
            None => groups.push((u.queue, vec![u.id])),
        }
    }
    groups
}

/// A server-named consumer tag, unique in the broker (connection id, then the connection's
/// consumer count): RabbitMQ's `amq.ctag-` prefix, no randomness, so a session replays the
/// same way every time.
fn server_tag(connection: u64, key: u64) -> String {
    format!("amq.ctag-{connection:x}-{key}")
}

impl Session {
    fn vhost(&self) -> Arc<VHost> {
        self.vhost
            .clone()
            .expect("channels exist only on open connections")
    }

    fn channel(&mut self, ch: u16) -> &mut Channel {
        self.channels
            .get_mut(&ch)
            .expect("checked by channel_method")
    }

    pub(super) fn channel_method(&mut self, ch: u16, method: Method) -> AmqpResult<()> {
        let ids = method.ids();
        if ch > self.channel_max {
            return Err(AmqpError::connection(
                code::CHANNEL_ERROR,
                format!("channel {ch} exceeds channel_max {}", self.channel_max),
                ids,
            ));
        }
        match (self.channels.get(&ch), &method) {
            (None, Method::ChannelOpen) => {
                self.channels.insert(ch, Channel::default());
                self.send(ch, &Method::ChannelOpenOk);
                return Ok(());
            }
            (Some(_), Method::ChannelOpen) => {
                return Err(AmqpError::connection(
                    code::CHANNEL_ERROR,
                    format!("second 'channel.open' seen on channel {ch}"),
                    ids,
                ))
            }
            (None, _) => {
                return Err(AmqpError::connection(
                    code::CHANNEL_ERROR,
                    format!("expected 'channel.open' on channel {ch}"),
                    ids,
                ))
            }
            (Some(c), Method::ChannelCloseOk) if c.closing => {
                self.channels.remove(&ch);
                return Ok(());
            }
            (Some(c), Method::ChannelClose { .. }) if c.closing => {
                self.send(ch, &Method::ChannelCloseOk);
                return Ok(());
            }
            (Some(c), _) if c.closing => return Ok(()),
            (Some(c), _) if c.pending.is_some() => {
                return Err(AmqpError::connection(
                    code::UNEXPECTED_FRAME,
                    format!("expected content header for class 60, got method {ids:?}"),
                    ids,
                ))
            }
            _ => {}
        }
        let vhost = self.vhost();
        let conn = self.ctx.connection_id;
        let core = |e| AmqpError::core(e, ids);
        match method {
            Method::ChannelClose { .. } => {
                self.release_channel(ch);
                self.channels.remove(&ch);
                self.send(ch, &Method::ChannelCloseOk);
            }
            Method::ChannelFlow { active } => {
                let c = self.channel(ch);
                c.flow_paused = !active;
                let consumers: Vec<(Arc<Credit>, Arc<Queue>)> = c
                    .consumers
                    .values()
                    .map(|r| (r.credit.clone(), r.queue.clone()))
                    .collect();
                for (credit, queue) in consumers {
                    credit.set_paused(!active);
                    if active {
                        queue.dispatch();
                    }
                }
                self.send(ch, &Method::ChannelFlowOk { active });
            }
            Method::ChannelFlowOk { .. } => {}
            Method::ExchangeDeclare {
                exchange,
                kind,
                passive,
                durable,
                auto_delete,
                internal,
                no_wait,
                arguments,
            } => {
                let kind = match ExchangeKind::parse(&kind) {
                    Ok(k) => k,
                    Err(_) if passive => ExchangeKind::Direct,
                    Err(_) => {
                        return Err(AmqpError::connection(
                            code::COMMAND_INVALID,
                            format!("unknown exchange type '{kind}'"),
                            ids,
                        ))
                    }
                };
                let def = ExchangeDef {
                    name: exchange,
                    kind,
                    durable,
                    auto_delete,
                    internal,
                    arguments,
                };
                let done = vhost.declare_exchange(def, passive).map_err(core)?;
                let reply = (!no_wait).then_some(Method::ExchangeDeclareOk);
                self.reply_after_store(ch, reply, done.stored());
            }
            Method::ExchangeDelete {
                exchange,
                if_unused,
                no_wait,
            } => {
                let done = vhost.delete_exchange(&exchange, if_unused).map_err(core)?;
                let reply = (!no_wait).then_some(Method::ExchangeDeleteOk);
                self.reply_after_store(ch, reply, done.stored());
            }
            Method::ExchangeBind {
                destination,
                source,
                routing_key,
                no_wait,
                arguments,
            }
            | Method::ExchangeUnbind {
                destination,
                source,
                routing_key,
                no_wait,
                arguments,
            } => {
                let b = Binding {
                    source,
                    destination: Destination::Exchange(destination),
                    routing_key,
                    arguments,
                };
                let bind = ids.1 == 30;
                let done = if bind {
                    vhost.bind(b, Some(conn)).map_err(core)?
                } else {
                    vhost.unbind(&b, Some(conn)).map_err(core)?
                };
                let reply = (!no_wait).then_some(if bind {
                    Method::ExchangeBindOk
                } else {
                    Method::ExchangeUnbindOk
                });
                self.reply_after_store(ch, reply, done.stored());
            }
            Method::QueueDeclare {
                queue,
                passive,
                durable,
                exclusive,
                auto_delete,
                no_wait,
                arguments,
            } => {
                let def = QueueDef {
                    name: queue,
                    durable,
                    exclusive,
                    auto_delete,
                    arguments,
                };
                let d = vhost.declare_queue(def, passive, conn).map_err(core)?;
                self.channel(ch).last_queue = Some(d.name.clone());
                let reply = (!no_wait).then(|| Method::QueueDeclareOk {
                    queue: d.name,
                    message_count: d.messages as u32,
                    consumer_count: d.consumers as u32,
                });
                self.reply_after_store(ch, reply, d.stored);
            }
            Method::QueueBind {
                queue,
                exchange,
                routing_key,
                no_wait,
                arguments,
            } => {
                let rk_default = queue.is_empty() && routing_key.is_empty();
                let queue = self.resolve_queue(ch, queue, ids)?;
                let routing_key = if rk_default {
                    queue.clone()
                } else {
                    routing_key
                };
                let b = Binding {
                    source: exchange,
                    destination: Destination::Queue(queue),
                    routing_key,
                    arguments,
                };
                let done = vhost.bind(b, Some(conn)).map_err(core)?;
                let reply = (!no_wait).then_some(Method::QueueBindOk);
                self.reply_after_store(ch, reply, done.stored());
            }
            Method::QueueUnbind {
                queue,
                exchange,
                routing_key,
                arguments,
            } => {
                let queue = self.resolve_queue(ch, queue, ids)?;
                let b = Binding {
                    source: exchange,
                    destination: Destination::Queue(queue),
                    routing_key,
                    arguments,
                };
                let done = vhost.unbind(&b, Some(conn)).map_err(core)?;
                self.reply_after_store(ch, Some(Method::QueueUnbindOk), done.stored());
            }
            Method::QueuePurge { queue, no_wait } => {
                let queue = self.resolve_queue(ch, queue, ids)?;
                let n = vhost.purge_queue(&queue, Some(conn)).map_err(core)?;
                if !no_wait {
                    self.send(
                        ch,
                        &Method::QueuePurgeOk {
                            message_count: n as u32,
                        },
                    );
                }
            }
            Method::QueueDelete {
                queue,
                if_unused,
                if_empty,
                no_wait,
            } => {
                let queue = self.resolve_queue(ch, queue, ids)?;
                let d = vhost
                    .delete_queue(&queue, Some(conn), if_unused, if_empty)
                    .map_err(core)?;
                let reply = (!no_wait).then_some(Method::QueueDeleteOk {
                    message_count: d.messages as u32,
                });
                self.reply_after_store(ch, reply, d.stored);
            }
            Method::BasicQos {
                prefetch_size,
                prefetch_count,
                global,
            } => {
                if prefetch_size != 0 {
                    return Err(AmqpError::connection(
                        code::NOT_IMPLEMENTED,
                        format!("prefetch_size!=0 ({prefetch_size})"),
                        ids,
                    ));
                }
                let c = self.channel(ch);
                if global {
                    match &c.global {
                        Some(g) => g.set_limit(prefetch_count.into()),
                        None if prefetch_count > 0 => {
                            c.global = Some(Credit::new(prefetch_count.into()))
                        }
                        None => {}
                    }
                } else {
                    c.prefetch = prefetch_count;
                }
                let queues: Vec<Arc<Queue>> =
                    c.consumers.values().map(|r| r.queue.clone()).collect();
                for q in queues {
                    q.dispatch();
                }
                self.send(ch, &Method::BasicQosOk);
            }
            Method::BasicConsume {
                queue,
                consumer_tag,
                no_ack,
                exclusive,
                no_wait,
                arguments,
                ..
            } => self.basic_consume(
                ch,
                queue,
                consumer_tag,
                no_ack,
                exclusive,
                no_wait,
                arguments,
                ids,
            )?,
            Method::BasicCancel {
                consumer_tag,
                no_wait,
            } => {
                if let Some(r) = self.channel(ch).consumers.remove(&consumer_tag) {
                    self.consumers.remove(&r.key);
                    r.queue.cancel_consumer(r.key, conn);
                }
                if !no_wait {
                    self.send(ch, &Method::BasicCancelOk { consumer_tag });
                }
            }
            Method::BasicPublish {
                exchange,
                routing_key,
                mandatory,
                immediate,
            } => {
                self.note_published();
                if immediate {
                    return Err(AmqpError::connection(
                        code::NOT_IMPLEMENTED,
                        "immediate=true",
                        ids,
                    ));
                }
                self.channel(ch).pending = Some(Pending {
                    exchange,
                    routing_key,
                    mandatory,
                    header: None,
                    parts: Vec::new(),
                    received: 0,
                });
            }
            Method::BasicGet { queue, no_ack } => {
                let queue = self.resolve_queue(ch, queue, ids)?;
                let q = vhost.queue(&queue, Some(conn)).map_err(core)?;
                match q.get(no_ack) {
                    None => self.send(ch, &Method::BasicGetEmpty),
                    Some(f) => {
                        let c = self.channel(ch);
                        c.next_tag += 1;
                        let tag = c.next_tag;
                        if !no_ack {
                            c.unacked.insert(
                                tag,
                                Unacked {
                                    queue: q.clone(),
                                    id: f.id,
                                },
                            );
                        }
                        self.send(
                            ch,
                            &Method::BasicGetOk {
                                delivery_tag: tag,
                                redelivered: f.redelivered,
                                exchange: f.message.exchange.clone(),
                                routing_key: f.message.routing_key.clone(),
                                message_count: f.remaining as u32,
                            },
                        );
                        encode_content(
                            ch,
                            60,
                            &f.message.properties,
                            &f.message.body,
                            self.frame_max,
                            &mut self.out,
                        );
                    }
                }
            }
            Method::BasicAck {
                delivery_tag,
                multiple,
            } => self.ack_op(
                ch,
                AckOp::Ack {
                    tag: delivery_tag,
                    multiple,
                },
                ids,
            )?,
            Method::BasicNack {
                delivery_tag,
                multiple,
                requeue,
            } => self.ack_op(
                ch,
                AckOp::Nack {
                    tag: delivery_tag,
                    multiple,
                    requeue,
                },
                ids,
            )?,
            Method::BasicReject {
                delivery_tag,
                requeue,
            } => self.ack_op(
                ch,
                AckOp::Nack {
                    tag: delivery_tag,
                    multiple: false,
                    requeue,
                },
                ids,
            )?,
            Method::BasicRecover { .. } | Method::BasicRecoverAsync { .. } => {
                let all = std::mem::take(&mut self.channel(ch).unacked);
                for (q, ids) in by_queue(all.into_values().collect()) {
                    q.reject(&ids, true);
                }
                if matches!(method, Method::BasicRecover { .. }) {
                    self.send(ch, &Method::BasicRecoverOk);
                }
            }
            Method::ConfirmSelect { no_wait } => {
                let c = self.channel(ch);
                if c.tx.is_some() {
                    return Err(AmqpError::channel(
                        code::PRECONDITION_FAILED,
                        "cannot switch from tx to confirm mode",
                        ids,
                    ));
                }
                c.confirm = true;
                if !no_wait {
                    self.send(ch, &Method::ConfirmSelectOk);
                }
            }
            Method::TxSelect => {
                let c = self.channel(ch);
                if c.confirm {
                    return Err(AmqpError::channel(
                        code::PRECONDITION_FAILED,
                        "cannot switch from confirm to tx mode",
                        ids,
                    ));
                }
                c.tx.get_or_insert_with(Tx::default);
                self.send(ch, &Method::TxSelectOk);
            }
            Method::TxCommit | Method::TxRollback => {
                let commit = matches!(method, Method::TxCommit);
                let Some(tx) = self.channel(ch).tx.replace(Tx::default()) else {
                    return Err(AmqpError::channel(
                        code::PRECONDITION_FAILED,
                        "channel is not transactional",
                        ids,
                    ));
                };
                if commit {
                    for p in tx.publishes {
                        self.route(ch, p, ids)?;
                    }
                    for op in tx.acks {
                        self.apply_ack(ch, op, ids)?;
                    }
                    self.send(ch, &Method::TxCommitOk);
                } else {
                    self.send(ch, &Method::TxRollbackOk);
                }
            }
            other => {
                return Err(AmqpError::connection(
                    code::COMMAND_INVALID,
                    format!("method {:?} is not valid from a client", other.ids()),
                    ids,
                ))
            }
        }
        Ok(())
    }

    /// An empty queue name means the channel's last declared queue.
    fn resolve_queue(&mut self, ch: u16, queue: String, ids: (u16, u16)) -> AmqpResult<String> {
        if !queue.is_empty() {
            return Ok(queue);
        }
        self.channel(ch)
            .last_queue
            .clone()
            .ok_or_else(|| AmqpError::channel(code::NOT_FOUND, "no previously declared queue", ids))
    }

    #[allow(clippy::too_many_arguments)]
    fn basic_consume(
        &mut self,
        ch: u16,
        queue: String,
        consumer_tag: String,
        no_ack: bool,
        exclusive: bool,
        no_wait: bool,
        arguments: junction_core::FieldTable,
        ids: (u16, u16),
    ) -> AmqpResult<()> {
        let vhost = self.vhost();
        let conn = self.ctx.connection_id;
        let queue = if queue == REPLY_TO {
            if !no_ack {
                return Err(AmqpError::channel(
                    code::PRECONDITION_FAILED,
                    "reply consumer cannot acknowledge",
                    ids,
                ));
            }
            self.reply_queue(ch, ids)?
        } else {
            self.resolve_queue(ch, queue, ids)?
        };
        let q = vhost
            .queue(&queue, Some(conn))
            .map_err(|e| AmqpError::core(e, ids))?;
        let tag = if consumer_tag.is_empty() {
            server_tag(conn, self.next_consumer_key)
        } else {
            consumer_tag
        };
        let c = self.channels.get(&ch).expect("open channel");
        if c.consumers.contains_key(&tag) {
            return Err(AmqpError::connection(
                code::NOT_ALLOWED,
                format!("attempt to reuse consumer tag '{tag}'"),
                ids,
            ));
        }
        let credit = Credit::new(if no_ack { 0 } else { c.prefetch.into() });
        credit.set_paused(c.flow_paused);
        let key = self.next_consumer_key;
        self.next_consumer_key += 1;
        let spec = ConsumerSpec {
            key,
            tag: tag.clone(),
            connection: conn,
            no_ack,
            exclusive,
            priority: arguments
                .get_i64("x-priority")
                .map_or(0, |p| p.clamp(i32::MIN as i64, i32::MAX as i64) as i32),
            credit: Some(credit.clone()),
            shared_credit: if no_ack { None } else { c.global.clone() },
            sink: self.sink.clone(),
        };
        self.consumers.insert(key, (ch, tag.clone()));
        if !no_wait {
            self.send(
                ch,
                &Method::BasicConsumeOk {
                    consumer_tag: tag.clone(),
                },
            );
        }
        if let Err(e) = q.add_consumer(spec) {
            self.consumers.remove(&key);
            return Err(AmqpError::core(e, ids));
        }
        self.channel(ch).consumers.insert(
            tag,
            ConsumerRef {
                key,
                queue: q,
                credit,
            },
        );
        Ok(())
    }

    /// The channel's direct reply-to queue, created on first use.
    fn reply_queue(&mut self, ch: u16, ids: (u16, u16)) -> AmqpResult<String> {
        if let Some(q) = &self.channel(ch).reply_queue {
            return Ok(q.clone());
        }
        let name = format!(
            "{REPLY_TO_PREFIX}{}",
            generate_queue_name().trim_start_matches("amq.gen-")
        );
        let def = QueueDef {
            name: name.clone(),
            durable: false,
            exclusive: true,
            auto_delete: true,
            arguments: Default::default(),
        };
        self.vhost()
            .declare_queue(def, false, self.ctx.connection_id)
            .map_err(|e| AmqpError::core(e, ids))?;
        self.channel(ch).reply_queue = Some(name.clone());
        Ok(name)
    }

    fn ack_op(&mut self, ch: u16, op: AckOp, ids: (u16, u16)) -> AmqpResult<()> {
        let c = self.channel(ch);
        if let Some(tx) = &mut c.tx {
            tx.acks.push(op);
            return Ok(());
        }
        self.apply_ack(ch, op, ids)
    }

    fn apply_ack(&mut self, ch: u16, op: AckOp, ids: (u16, u16)) -> AmqpResult<()> {
        let (tag, multiple, requeue) = match op {
            AckOp::Ack { tag, multiple } => (tag, multiple, None),
            AckOp::Nack {
                tag,
                multiple,
                requeue,
            } => (tag, multiple, Some(requeue)),
        };
        let c = self.channel(ch);
        let Some(items) = c.take_acked(tag, multiple) else {
            return Err(AmqpError::channel(
                code::PRECONDITION_FAILED,
                format!("unknown delivery tag {tag}"),
                ids,
            ));
        };
        let shared = c.global.is_some();
        for (q, qids) in by_queue(items) {
            match requeue {
                None => q.ack(&qids),
                Some(r) => q.reject(&qids, r),
            };
        }
        if shared {
            // A channel-wide window freed room for every queue this channel consumes from.
            let queues: Vec<Arc<Queue>> = self
                .channel(ch)
                .consumers
                .values()
                .map(|r| r.queue.clone())
                .collect();
            for q in queues {
                q.dispatch();
            }
        }
        Ok(())
    }

    pub(super) fn content_header(&mut self, ch: u16, header: ContentHeader) -> AmqpResult<()> {
        let max = self.limits().max_message_size;
        let Some(c) = self.channels.get_mut(&ch) else {
            return Err(AmqpError::connection(
                code::CHANNEL_ERROR,
                format!("content header on channel {ch} that is not open"),
                (60, 40),
            ));
        };
        if c.closing {
            return Ok(());
        }
        let Some(p) = c.pending.as_mut().filter(|p| p.header.is_none()) else {
            return Err(AmqpError::connection(
                code::UNEXPECTED_FRAME,
                "content header without basic.publish",
                (60, 40),
            ));
        };
        if header.class_id != 60 {
            return Err(AmqpError::connection(
                code::FRAME_ERROR,
                format!("content header for class {}", header.class_id),
                (60, 40),
            ));
        }
        if header.body_size > max {
            c.pending = None;
            return Err(AmqpError::channel(
                code::PRECONDITION_FAILED,
                format!(
                    "message size {} is larger than configured max size {max}",
                    header.body_size
                ),
                (60, 40),
            ));
        }
        p.header = Some((header.body_size, header.properties));
        if header.body_size == 0 {
            self.complete_publish(ch)?;
        }
        Ok(())
    }

    pub(super) fn content_body(&mut self, ch: u16, payload: Bytes) -> AmqpResult<()> {
        let Some(c) = self.channels.get_mut(&ch) else {
            return Err(AmqpError::connection(
                code::CHANNEL_ERROR,
                format!("content body on channel {ch} that is not open"),
                (60, 40),
            ));
        };
        if c.closing {
            return Ok(());
        }
        let Some(p) = c.pending.as_mut().filter(|p| p.header.is_some()) else {
            return Err(AmqpError::connection(
                code::UNEXPECTED_FRAME,
                "content body without content header",
                (60, 40),
            ));
        };
        let size = p.header.as_ref().map_or(0, |h| h.0);
        p.received += payload.len() as u64;
        if p.received > size {
            return Err(AmqpError::connection(
                code::FRAME_ERROR,
                format!("content body exceeds declared size {size}"),
                (60, 40),
            ));
        }
        p.parts.push(payload);
        if p.received == size {
            self.complete_publish(ch)?;
        }
        Ok(())
    }

    fn complete_publish(&mut self, ch: u16) -> AmqpResult<()> {
        let ids = (60, 40);
        let c = self.channel(ch);
        let Some(p) = c.pending.take() else {
            return Ok(());
        };
        let (_, mut properties) = p.header.unwrap_or_default();
        let body = match p.parts.len() {
            0 => Bytes::new(),
            1 => p.parts.into_iter().next().unwrap_or_default(),
            _ => {
                let mut b = BytesMut::with_capacity(p.received as usize);
                for part in &p.parts {
                    b.extend_from_slice(part);
                }
                b.freeze()
            }
        };
        if let Some(uid) = &properties.user_id {
            let user = self.user.as_ref().map(|u| u.name.as_str()).unwrap_or("");
            if uid != user {
                return Err(AmqpError::channel(
                    code::PRECONDITION_FAILED,
                    format!("user_id property set to '{uid}' but authenticated user was '{user}'"),
                    ids,
                ));
            }
        }
        if properties.reply_to.as_deref() == Some(REPLY_TO) {
            let Some(q) = self.channel(ch).reply_queue.clone() else {
                return Err(AmqpError::channel(
                    code::PRECONDITION_FAILED,
                    "fast reply consumer does not exist",
                    ids,
                ));
            };
            properties.reply_to = Some(q);
        }
        let properties = self.channel(ch).last_properties.share(properties);
        let message = Arc::new(Message {
            exchange: p.exchange.clone(),
            routing_key: p.routing_key,
            properties,
            body,
        });
        let pm = PendingMessage {
            exchange: p.exchange,
            mandatory: p.mandatory,
            message,
        };
        let c = self.channel(ch);
        if let Some(tx) = &mut c.tx {
            tx.publishes.push(pm);
            return Ok(());
        }
        self.route(ch, pm, ids)
    }

    fn route(&mut self, ch: u16, p: PendingMessage, ids: (u16, u16)) -> AmqpResult<()> {
        let routed = self
            .vhost()
            .publish(&p.exchange, p.message.clone())
            .map_err(|e| AmqpError::core(e, ids))?;
        if p.mandatory && routed.unroutable() {
            self.send(
                ch,
                &Method::BasicReturn {
                    reply_code: code::NO_ROUTE,
                    reply_text: "NO_ROUTE".into(),
                    exchange: p.message.exchange.clone(),
                    routing_key: p.message.routing_key.clone(),
                },
            );
            encode_content(
                ch,
                60,
                &p.message.properties,
                &p.message.body,
                self.frame_max,
                &mut self.out,
            );
        }
        let c = self.channel(ch);
        if c.confirm {
            c.publish_seq += 1;
            let tag = c.publish_seq;
            let confirm = if routed.rejected > 0 && routed.queues == 0 {
                Method::BasicNack {
                    delivery_tag: tag,
                    multiple: false,
                    requeue: false,
                }
            } else {
                Method::BasicAck {
                    delivery_tag: tag,
                    multiple: false,
                }
            };
            if routed.stored > 0 || self.held.is_holding() {
                // Stored: confirmed only once the store has synced (group commit); others
                // keep their place behind held ones.
                self.held.hold((ch, confirm));
            } else if let Method::BasicAck { delivery_tag, .. } = confirm {
                self.confirm(ch, delivery_tag);
            } else {
                self.send(ch, &confirm);
            }
        }
        Ok(())
    }

    /// Server-initiated channel.close: the channel's work is released at once.
    pub(super) fn close_channel_with(&mut self, ch: u16, e: AmqpError) {
        // Confirms of what the channel published before the error go out first.
        self.flush_confirms();
        tracing::debug!(channel = ch, code = e.code, text = %e.text, "closing channel");
        self.release_channel(ch);
        if let Some(c) = self.channels.get_mut(&ch) {
            c.closing = true;
            c.pending = None;
        }
        self.send(
            ch,
            &Method::ChannelClose {
                reply_code: e.code,
                reply_text: e.reply_text(),
                class_id: e.class_id,
                method_id: e.method_id,
            },
        );
    }

    /// Cancels the channel's consumers, then requeues what it had unacked.
    pub(super) fn release_channel(&mut self, ch: u16) {
        let conn = self.ctx.connection_id;
        let Some(c) = self.channels.get_mut(&ch) else {
            return;
        };
        let consumers: Vec<ConsumerRef> = c.consumers.drain().map(|(_, r)| r).collect();
        let unacked = std::mem::take(&mut c.unacked);
        for r in consumers {
            self.consumers.remove(&r.key);
            r.queue.cancel_consumer(r.key, conn);
        }
        for (q, ids) in by_queue(unacked.into_values().collect()) {
            q.reject(&ids, true);
        }
    }
}
