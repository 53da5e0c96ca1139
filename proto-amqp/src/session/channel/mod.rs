//! Channels: their state, the check every channel method passes first, and the dispatch of
//! each class to its room (declare, basic, publish).

use super::error::{code, AmqpError, AmqpResult};
use super::Session;
use crate::codec::{encode_content, ContentHeader, Method};
use bytes::{Bytes, BytesMut};
use junction_core::authorized::Authorized;
use junction_core::vhost::{generate_queue_name, REPLY_TO_PREFIX};
use junction_core::{
    same_queue, Binding, ConsumerSpec, Credit, Delivery, DeliveryQueue, Destination, ExchangeDef,
    ExchangeKind, Message, Properties, Queue, QueueDef, SharedProperties, VHost,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

mod basic;
mod declare;
mod publish;

/// The pseudo-queue of RabbitMQ's direct reply-to.
const REPLY_TO: &str = "amq.rabbitmq.reply-to";

pub(super) struct ConsumerRef {
    key: u64,
    queue: Arc<Queue>,
    credit: Arc<Credit>,
}

struct Unacked {
    queue: Arc<dyn DeliveryQueue>,
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
    /// Its entry in the broker's channel listing.
    listing: Option<junction_core::channels::ChannelEntry>,
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
            if let Some(l) = &self.listing {
                l.stats().set_unacked(self.unacked.len());
            }
        }
        self.next_tag
    }

    /// Writes its numbers into its listing entry.
    pub(super) fn report(&self) {
        if let Some(l) = &self.listing {
            let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            l.stats().set(junction_core::channels::ChannelSnapshot {
                prefetch: self.prefetch.into(),
                global_prefetch: self.global.as_ref().map_or(0, |g| g.limit()),
                consumers: count(self.consumers.len()),
                unacked: count(self.unacked.len()),
                confirm: self.confirm,
                transactional: self.tx.is_some(),
            });
        }
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
fn by_queue(items: Vec<Unacked>) -> Vec<(Arc<dyn DeliveryQueue>, Vec<u64>)> {
    let mut groups: Vec<(Arc<dyn DeliveryQueue>, Vec<u64>)> = Vec::new();
    for u in items {
        match groups.iter_mut().find(|(q, _)| same_queue(q, &u.queue)) {
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
            .as_ref()
            .expect("channels exist only on open connections")
            .vhost()
            .clone()
    }

    /// The vhost as the connection's permissions let it be used.
    fn guarded(&mut self) -> &mut Authorized {
        self.vhost
            .as_mut()
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
                let user = self.user.as_ref().map_or("", |u| u.name.as_str());
                self.broker
                    .admit_channel(user)
                    .map_err(|e| AmqpError::core_on_connection(e, ids))?;
                let listing = junction_core::channels::ChannelEntry::open(
                    &self.broker,
                    self.ctx.connection_id,
                    ch,
                );
                self.channels.insert(
                    ch,
                    Channel {
                        listing: Some(listing),
                        ..Channel::default()
                    },
                );
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
        let handled = match method.ids().0 {
            20 => self.channel_class_method(ch, method),
            40 | 50 => self.declare_method(ch, method),
            60 if matches!(method, Method::BasicPublish { .. }) => {
                // A publish changes nothing a listing shows.
                return self.publish_method(ch, method);
            }
            60 => self.basic_method(ch, method),
            85 | 90 => self.publish_method(ch, method),
            _ => Err(not_from_client(&method, method.ids())),
        };
        if let Some(c) = self.channels.get(&ch) {
            c.report();
        }
        handled
    }

    /// channel.flow, channel.close and their replies on an open channel.
    fn channel_class_method(&mut self, ch: u16, method: Method) -> AmqpResult<()> {
        let ids = method.ids();
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
            other => return Err(not_from_client(&other, ids)),
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

/// A server-side method sent by the client: COMMAND_INVALID.
fn not_from_client(m: &Method, ids: (u16, u16)) -> AmqpError {
    AmqpError::connection(
        code::COMMAND_INVALID,
        format!("method {:?} is not valid from a client", m.ids()),
        ids,
    )
}
