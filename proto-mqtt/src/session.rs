//! The MQTT session, sans I/O: packets and clock values in, core calls and packets out.
//!
//! A session's subscriptions are bindings of its queue to `amq.topic` (shared subscriptions
//! consume a queue per group and filter). Deliveries are matched back against the
//! subscriptions to pick the QoS, the retain flag and the v5 subscription identifiers.

use crate::codec::{
    self, Ack, ConnAckInfo, ConnectInfo, FilterReq, Inbound, Level, PubProps, Publish, Will,
};
use crate::registry::{Registry, SessionState, Subscription};
use crate::topic::{
    filter_to_binding, key_to_topic, matches, shared, topic_to_key, valid_filter, valid_topic,
};
use bytes::{Bytes, BytesMut};
use junction_core::clock::unix_seconds;
use junction_core::id_hash::IdHashBuilder;
use junction_core::runtime::driver::{self, Held, Takeover};
use junction_core::runtime::{ConnectionContext, WriteBuf};
use junction_core::{
    Binding, ConsumerSpec, CoreError, Credit, Delivery, DeliverySink, Destination, FieldTable,
    FieldValue, Message, Properties, Queue, QueueDef, SinkEvent, VHost,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Headers Junction sets on messages published over MQTT (documented in the README).
pub const H_QOS: &str = "x-mqtt-publish-qos";
pub const H_RETAIN: &str = "x-mqtt-retain";
pub const H_CLIENT: &str = "x-mqtt-client-id";
pub const H_USER: &str = "x-mqtt-user";
pub const H_REPLY_TOPIC: &str = "x-reply-to-topic";
pub const H_CORRELATION: &str = "x-correlation-id";
/// MQTT 5 user properties as the list they are (an array of `[key, value]` arrays), when a key
/// came more than once; the headers then hold each key's first value.
pub const H_USER_PROPERTIES: &str = "x-mqtt-user-properties";

/// The list [`H_USER_PROPERTIES`] holds, if it is one.
fn user_property_list(v: Option<&FieldValue>) -> Option<Vec<(String, String)>> {
    let FieldValue::Array(items) = v? else {
        return None;
    };
    items
        .iter()
        .map(|pair| match pair {
            FieldValue::Array(kv) if kv.len() == 2 => {
                Some((kv[0].as_str()?.to_string(), kv[1].as_str()?.to_string()))
            }
            _ => None,
        })
        .collect()
}
/// Topics under this prefix name a queue: `$reply/Q` publishes to the default exchange with
/// routing key Q. It is the response topic MQTT clients see for an AMQP or STOMP `reply_to`.
pub const REPLY_PREFIX: &str = "$reply/";

/// Where a publish on `topic` goes: `amq.topic` with the topic as a routing key, or for
/// `$reply/Q` the default exchange with key Q.
fn route_of(topic: &str) -> (&'static str, String) {
    match topic.strip_prefix(REPLY_PREFIX) {
        Some(queue) => ("", queue.to_string()),
        None => ("amq.topic", topic_to_key(topic)),
    }
}

/// Topic aliases a client may use towards us.
const TOPIC_ALIAS_MAX: u16 = 64;
/// In-flight QoS 1/2 deliveries for 3.1.1 clients (v5 clients set their receive maximum).
const V4_INFLIGHT: u16 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    AwaitConnect,
    Open,
    Closed,
}

struct Inflight {
    queue: Arc<Queue>,
    id: u64,
}

struct ConsumerRef {
    queue: Arc<Queue>,
    /// For a shared subscription: its filter.
    shared_filter: Option<String>,
}

/// A will to publish after the connection ends (after `delay` seconds).
pub struct PendingWill {
    pub delay: u32,
    pub vhost: Arc<VHost>,
    pub will: Will,
    pub client_id: String,
    pub user: String,
    pub generation: u64,
}

/// An acknowledgement held until the stores have synced.
#[derive(Debug)]
enum Reply {
    /// PUBACK/PUBREC of a stored message: kind, packet id, reason code.
    Ack(Ack, u16, u8),
    /// SUBACK of a durable subscription: packet id, return codes.
    SubAck(u16, Vec<u8>),
}

/// One MQTT connection.
pub struct Session {
    ctx: ConnectionContext,
    registry: Arc<Registry>,
    state: State,
    level: Option<Level>,
    client_id: String,
    user: String,
    vhost: Option<Arc<VHost>>,
    /// Boxed: most connections have none, and every byte here is paid per connection.
    will: Option<Box<Will>>,
    publish_will: bool,
    keep_alive: u16,
    session: SessionState,
    queue: Option<Arc<Queue>>,
    consumers: HashMap<u64, ConsumerRef, IdHashBuilder>,
    next_key: u64,
    inflight: BTreeMap<u16, Inflight>,
    /// The properties of this connection's last plain publish (QoS, retain).
    plain_properties: Option<(u8, bool, Arc<Properties>)>,
    /// Packet ids we sent PUBREL for.
    next_pkid: u16,
    receive_maximum: u16,
    max_packet_out: Option<u32>,
    alias_max_out: u16,
    aliases_out: HashMap<String, u16>,
    aliases_in: HashMap<u16, String>,
    sink: DeliverySink,
    out: WriteBuf,
    last_recv: u64,
    /// PUBACK/PUBRECs waiting for the stores' sync.
    held: Held<Reply>,
    /// The session state changed and must be stored again.
    dirty: bool,
    generation: u64,
    kicked: Option<Takeover>,
    /// The client has published (a resource alarm stops reading from it).
    published: bool,
    /// This connection resumed a stored session (Session Present 1).
    resumed: bool,
}

fn qos_of_message(m: &Message) -> u8 {
    let h = m.properties.headers.as_ref();
    match h.and_then(|h| h.get_i64(H_QOS)) {
        Some(q) => q.clamp(0, 2) as u8,
        None => u8::from(m.properties.is_persistent()),
    }
}

impl Session {
    pub fn new(
        ctx: ConnectionContext,
        registry: Arc<Registry>,
        sink: DeliverySink,
        now: u64,
    ) -> Session {
        Session {
            ctx,
            registry,
            state: State::AwaitConnect,
            level: None,
            client_id: String::new(),
            user: String::new(),
            vhost: None,
            will: None,
            publish_will: true,
            keep_alive: 0,
            session: SessionState::default(),
            queue: None,
            consumers: HashMap::default(),
            next_key: 1,
            inflight: BTreeMap::new(),
            plain_properties: None,
            next_pkid: 1,
            receive_maximum: V4_INFLIGHT,
            max_packet_out: None,
            alias_max_out: 0,
            aliases_out: HashMap::new(),
            aliases_in: HashMap::new(),
            sink,
            out: WriteBuf::new(),
            last_recv: now,
            held: Held::default(),
            dirty: false,
            generation: 0,
            kicked: None,
            published: false,
            resumed: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn level(&self) -> Option<Level> {
        self.level
    }

    /// Largest packet accepted from the client.
    pub fn max_packet(&self) -> usize {
        (self.ctx.limits.max_message_size as usize)
            .saturating_add(64 * 1024)
            .min(268_435_455)
    }

    fn vh(&self) -> Arc<VHost> {
        self.vhost.clone().expect("open session has a vhost")
    }

    /// Closes with a v5 DISCONNECT carrying `reason` (3.1.1: just closes). The will is published.
    pub fn disconnect(&mut self, reason: u8, text: &str) {
        if self.state == State::Closed {
            return;
        }
        tracing::info!(peer = %self.ctx.peer, client = %self.client_id, reason, text, "closing MQTT connection");
        if let Some(level) = self.level.filter(|_| self.state == State::Open) {
            codec::disconnect(level, reason, text, self.out.buf());
        }
        self.state = State::Closed;
    }

    /// A decode error.
    pub fn codec_error(&mut self, e: &codec::CodecError) {
        self.ctx
            .broker
            .refusals()
            .count(junction_core::refusals::Refusal::MalformedFrame);
        if self.state == State::AwaitConnect {
            if let codec::CodecError::UnsupportedLevel(_) = e {
                codec::connack_refused_level(self.out.buf());
            }
            self.state = State::Closed;
            return;
        }
        self.disconnect(e.reason_code(), &e.to_string());
    }

    /// Broker shutdown.
    pub fn shutdown(&mut self) {
        self.publish_will = false;
        self.disconnect(0x8B, "server shutting down");
    }

    pub fn handle_packet(&mut self, p: Inbound, now: u64) {
        self.handle_one(p, now);
        if std::mem::take(&mut self.dirty) {
            self.store_session();
        }
    }

    /// Stores the session state (durably, before the next held acknowledgement goes out), or
    /// forgets it when the session ends with its connection.
    fn store_session(&mut self) {
        let Some(vhost) = &self.vhost else { return };
        if self.persistent() {
            self.registry.update_live(
                &vhost.name,
                &self.client_id,
                self.ctx.connection_id,
                &self.session,
            );
            self.held.want_sync();
        } else {
            self.registry.forget_session(&vhost.name, &self.client_id);
        }
    }

    fn handle_one(&mut self, p: Inbound, now: u64) {
        self.last_recv = now;
        if self.state == State::Closed {
            return;
        }
        if self.state == State::AwaitConnect {
            match p {
                Inbound::Connect(c) => self.connect(*c),
                _ => self.state = State::Closed,
            }
            return;
        }
        match p {
            Inbound::Connect(_) => self.disconnect(0x82, "second CONNECT"),
            Inbound::Publish(p) => {
                self.published = true;
                self.publish_in(p)
            }
            Inbound::PubAck(pkid) => {
                if let Some(f) = self.inflight.remove(&pkid) {
                    f.queue.ack(&[f.id]);
                }
            }
            Inbound::PubRec(pkid) => {
                if let Some(f) = self.inflight.remove(&pkid) {
                    f.queue.ack(&[f.id]);
                    self.session.outgoing_rel.push(pkid);
                    self.dirty = true;
                }
                let reason = if self.session.outgoing_rel.contains(&pkid) {
                    0
                } else {
                    0x92
                };
                codec::ack(self.lv(), Ack::PubRel, pkid, reason, self.out.buf());
            }
            Inbound::PubComp(pkid) => {
                self.session.outgoing_rel.retain(|p| *p != pkid);
                self.dirty = true;
            }
            Inbound::PubRel(pkid) => {
                let reason = if self.session.incoming_qos2.remove(&pkid) {
                    self.dirty = true;
                    0
                } else {
                    0x92
                };
                codec::ack(self.lv(), Ack::PubComp, pkid, reason, self.out.buf());
            }
            Inbound::Subscribe { pkid, filters, id } => self.subscribe(pkid, filters, id),
            Inbound::Unsubscribe { pkid, filters } => self.unsubscribe(pkid, filters),
            Inbound::PingReq => codec::pingresp(self.out.buf()),
            Inbound::Disconnect {
                reason,
                session_expiry,
            } => {
                if let Some(e) = session_expiry {
                    if self.session.expiry == 0 && e > 0 {
                        self.disconnect(
                            0x82,
                            "session expiry cannot be set on DISCONNECT when it was 0",
                        );
                        return;
                    }
                    self.session.expiry = e;
                    self.dirty = true;
                }
                // 0x04: disconnect with will message.
                self.publish_will = reason == 0x04;
                self.state = State::Closed;
            }
            Inbound::Auth => self.disconnect(0x8C, "enhanced authentication is not supported"),
        }
    }

    /// The negotiated level (3.1.1 until CONNECT says otherwise).
    fn lv(&self) -> Level {
        self.level.unwrap_or(Level::V4)
    }

    fn refuse(&mut self, level: Level, code: u8, why: &str) {
        tracing::info!(peer = %self.ctx.peer, code, why, "MQTT CONNECT refused");
        let info = ConnAckInfo {
            reason_string: Some(why.to_string()),
            ..Default::default()
        };
        codec::connack(level, code, &info, self.out.buf());
        self.state = State::Closed;
    }

    fn connect(&mut self, c: ConnectInfo) {
        let level = c.level;
        self.level = Some(level);
        if c.auth_method.is_some() {
            return self.refuse(level, 0x8C, "enhanced authentication is not supported");
        }
        // RabbitMQ's `vhost:user` login form.
        let (login, password) = c
            .login
            .clone()
            .unwrap_or_else(|| ("guest".into(), "guest".into()));
        let (vhost_name, user) = match login.split_once(':') {
            Some((v, u)) if !v.is_empty() => (v.to_string(), u.to_string()),
            _ => (self.ctx.broker.default_vhost().to_string(), login.clone()),
        };
        let auth = self.ctx.broker.auth().clone();
        if auth
            .authenticate(&user, &password, Some(self.ctx.peer))
            .is_err()
        {
            return self.refuse(level, 0x86, "bad user name or password");
        }
        if auth.check_vhost(&user, &vhost_name).is_err() {
            return self.refuse(level, 0x87, "not authorized for this vhost");
        }
        let Ok(vhost) = self.ctx.broker.vhost(&vhost_name) else {
            return self.refuse(level, 0x87, "no such vhost");
        };
        let mut assigned = None;
        let client_id = if c.client_id.is_empty() {
            if level == Level::V4 && !c.clean_start {
                return self.refuse(level, 0x85, "an empty client id needs a clean session");
            }
            let id = format!("junction-{}", self.ctx.connection_id);
            assigned = Some(id.clone());
            id
        } else {
            c.client_id.clone()
        };
        self.client_id = client_id;
        self.user = user;
        self.vhost = Some(vhost);
        self.keep_alive = c.keep_alive;
        self.will = c.will.map(Box::new);
        self.receive_maximum = if level == Level::V5 {
            c.receive_maximum
        } else {
            V4_INFLIGHT
        };
        self.max_packet_out = c.max_packet_size;
        self.alias_max_out = c.topic_alias_max;
        let claim = self.registry.claim(
            &vhost_name,
            &self.client_id,
            self.ctx.connection_id,
            c.clean_start,
        );
        self.generation = claim.generation;
        self.kicked = Some(claim.kicked);
        let session_present = claim.resumed.is_some();
        self.resumed = session_present;
        self.session = claim.resumed.unwrap_or_default();
        self.session.expiry = c.session_expiry;
        self.dirty = true;
        self.state = State::Open;
        let info = ConnAckInfo {
            // MQTT 3.1's CONNACK has no Session Present flag (its first byte is reserved).
            session_present: session_present && !c.legacy_31,
            assigned_client_id: assigned.filter(|_| level == Level::V5),
            receive_maximum: Some(u16::MAX),
            topic_alias_max: Some(TOPIC_ALIAS_MAX),
            max_packet_size: Some(self.max_packet() as u32),
            ..Default::default()
        };
        codec::connack(level, 0, &info, self.out.buf());
        if c.clean_start || !session_present {
            // A clean start throws away a stored durable queue too.
            let _ = self
                .vh()
                .delete_queue(&self.durable_queue_name(), None, false, false);
        }
        if session_present {
            if let Err(e) = self.resume() {
                tracing::warn!(client = %self.client_id, error = %e, "could not resume session");
            }
        }
    }

    fn persistent(&self) -> bool {
        self.session.expiry > 0
    }

    fn durable_queue_name(&self) -> String {
        format!("mqtt-subscription-{}", self.client_id)
    }

    /// Re-attaches a resumed session: its queue, its shared subscriptions, and PUBRELs in flight.
    fn resume(&mut self) -> Result<(), junction_core::CoreError> {
        if self.session.subscriptions.iter().any(|s| s.group.is_none()) {
            self.ensure_queue()?;
        }
        let shared: Vec<Subscription> = self
            .session
            .subscriptions
            .iter()
            .filter(|s| s.group.is_some())
            .cloned()
            .collect();
        for s in shared {
            self.consume_shared(&s)?;
        }
        for pkid in self.session.outgoing_rel.clone() {
            codec::ack(self.lv(), Ack::PubRel, pkid, 0, self.out.buf());
        }
        Ok(())
    }

    /// The session's own queue, declared and consumed on first need.
    fn ensure_queue(&mut self) -> Result<Arc<Queue>, junction_core::CoreError> {
        if let Some(q) = &self.queue {
            return Ok(q.clone());
        }
        let vh = self.vh();
        if self.resumed {
            // The resumed session's queue holds what arrived while the client was away, whatever
            // expiry this connection asks for now (an expiry of 0 ends the session, and the
            // queue, with this connection).
            if let Ok(q) = vh.queue(&self.durable_queue_name(), None) {
                self.consume(q.clone(), None)?;
                self.queue = Some(q.clone());
                return Ok(q);
            }
        }
        let persistent = self.persistent();
        let mut args = FieldTable::new();
        if persistent && self.session.expiry != u32::MAX {
            args.insert(
                "x-expires",
                FieldValue::I64(i64::from(self.session.expiry.max(1)) * 1000),
            );
        }
        let max_queued = self.ctx.limits.max_queued_messages;
        if !persistent && max_queued > 0 {
            // A client that stops reading loses new QoS 0 messages past the limit, as with
            // Mosquitto, instead of growing the broker without bound.
            args.insert("x-max-transient-length", FieldValue::I64(max_queued as i64));
        }
        let def = QueueDef {
            name: if persistent {
                self.durable_queue_name()
            } else {
                format!(
                    "mqtt-subscription-{}-{}",
                    self.client_id, self.ctx.connection_id
                )
            },
            durable: persistent,
            exclusive: !persistent,
            auto_delete: false,
            arguments: args,
        };
        let d = match vh.declare_queue(def.clone(), false, self.ctx.connection_id) {
            Ok(d) => d,
            Err(CoreError::PreconditionFailed(_)) => {
                // Declared earlier with another expiry: start it afresh.
                vh.delete_queue(&def.name, None, false, false)?;
                vh.declare_queue(def, false, self.ctx.connection_id)?
            }
            Err(e) => return Err(e),
        };
        if d.stored {
            // The SUBACK that follows waits for the store.
            self.held.want_sync();
        }
        let q = vh.queue(&d.name, Some(self.ctx.connection_id))?;
        self.consume(q.clone(), None)?;
        self.queue = Some(q.clone());
        Ok(q)
    }

    fn consume(
        &mut self,
        q: Arc<Queue>,
        shared_filter: Option<String>,
    ) -> Result<(), junction_core::CoreError> {
        let key = self.next_key;
        self.next_key += 1;
        q.add_consumer(ConsumerSpec {
            key,
            tag: format!("mqtt-{}", self.client_id),
            connection: self.ctx.connection_id,
            no_ack: false,
            exclusive: false,
            priority: 0,
            credit: Some(Credit::new(u32::from(self.receive_maximum))),
            shared_credit: None,
            sink: self.sink.clone(),
        })?;
        self.consumers.insert(
            key,
            ConsumerRef {
                queue: q,
                shared_filter,
            },
        );
        Ok(())
    }

    fn shared_queue_name(group: &str, filter: &str) -> String {
        format!("mqtt-shared-{group}-{}", filter_to_binding(filter))
    }

    fn consume_shared(&mut self, s: &Subscription) -> Result<(), junction_core::CoreError> {
        let group = s.group.clone().unwrap_or_default();
        let name = Self::shared_queue_name(&group, &s.req.filter);
        let vh = self.vh();
        let def = QueueDef {
            name: name.clone(),
            durable: false,
            exclusive: false,
            auto_delete: true,
            arguments: FieldTable::new(),
        };
        vh.declare_queue(def, false, self.ctx.connection_id)?;
        vh.bind(
            Binding {
                source: "amq.topic".into(),
                destination: Destination::Queue(name.clone()),
                routing_key: filter_to_binding(&s.req.filter),
                arguments: FieldTable::new(),
            },
            None,
        )?;
        let q = vh.queue(&name, None)?;
        self.consume(q, Some(s.req.filter.clone()))
    }

    fn subscribe(&mut self, pkid: u16, filters: Vec<FilterReq>, id: Option<usize>) {
        let mut codes = Vec::with_capacity(filters.len());
        let mut retained_to_send = Vec::new();
        for mut req in filters {
            req.qos = req.qos.min(2);
            let (group, filter) = match shared(&req.filter) {
                Some((g, f)) => (Some(g.to_string()), f.to_string()),
                None => (None, req.filter.clone()),
            };
            if !valid_filter(&filter) || (group.is_some() && req.no_local) {
                codes.push(if self.lv() == Level::V5 { 0x8F } else { 0x80 });
                continue;
            }
            req.filter = filter.clone();
            let sub = Subscription {
                req: req.clone(),
                id,
                group: group.clone(),
            };
            let existing = self
                .session
                .subscriptions
                .iter()
                .position(|s| s.req.filter == filter && s.group == group);
            let result = match (&group, existing) {
                (_, Some(i)) => {
                    self.session.subscriptions[i] = sub.clone();
                    self.dirty = true;
                    Ok(())
                }
                (Some(_), None) => self.consume_shared(&sub),
                (None, None) => self.ensure_queue().and_then(|q| {
                    self.vh()
                        .bind(
                            Binding {
                                source: "amq.topic".into(),
                                destination: Destination::Queue(q.name().to_string()),
                                routing_key: filter_to_binding(&filter),
                                arguments: FieldTable::new(),
                            },
                            Some(self.ctx.connection_id),
                        )
                        .map(|done| {
                            if done.stored() {
                                self.held.want_sync();
                            }
                        })
                }),
            };
            match result {
                Ok(()) => {
                    if existing.is_none() {
                        self.session.subscriptions.push(sub);
                        self.dirty = true;
                    }
                    codes.push(req.qos);
                    let send = group.is_none()
                        && (req.retain_handling == 0
                            || (req.retain_handling == 1 && existing.is_none()));
                    if send {
                        let vhost = self.vh().name.clone();
                        for (topic, r) in self.registry.retained_matching(&vhost, &filter) {
                            retained_to_send.push((topic, r, req.qos, id));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(client = %self.client_id, filter, error = %e, "subscribe failed");
                    codes.push(0x80);
                }
            }
        }
        if self.held.is_holding() {
            // A durable subscription is acknowledged once the store has it (PUBLISHes of
            // it may come first: MQTT allows that).
            self.held.hold(Reply::SubAck(pkid, codes));
        } else {
            codec::suback(self.lv(), pkid, &codes, self.out.buf());
        }
        for (topic, r, granted, id) in retained_to_send {
            let qos = r.qos.min(granted);
            self.send_publish(
                topic,
                &r.message,
                qos,
                true,
                false,
                id.into_iter().collect(),
                None,
            );
        }
    }

    fn unsubscribe(&mut self, pkid: u16, filters: Vec<String>) {
        let mut existed = Vec::with_capacity(filters.len());
        for f in filters {
            let (group, filter) = match shared(&f) {
                Some((g, f)) => (Some(g.to_string()), f.to_string()),
                None => (None, f.clone()),
            };
            let pos = self
                .session
                .subscriptions
                .iter()
                .position(|s| s.req.filter == filter && s.group == group);
            existed.push(pos.is_some());
            let Some(i) = pos else { continue };
            self.session.subscriptions.remove(i);
            self.dirty = true;
            match group {
                None => {
                    if let Some(q) = &self.queue {
                        let key = filter_to_binding(&filter);
                        let still =
                            self.session.subscriptions.iter().any(|s| {
                                s.group.is_none() && filter_to_binding(&s.req.filter) == key
                            });
                        if !still {
                            let _ = self.vh().unbind(
                                &Binding {
                                    source: "amq.topic".into(),
                                    destination: Destination::Queue(q.name().to_string()),
                                    routing_key: key,
                                    arguments: FieldTable::new(),
                                },
                                Some(self.ctx.connection_id),
                            );
                        }
                    }
                }
                Some(_) => {
                    let doomed: Vec<u64> = self
                        .consumers
                        .iter()
                        .filter(|(_, c)| c.shared_filter.as_deref() == Some(&filter))
                        .map(|(k, _)| *k)
                        .collect();
                    for k in doomed {
                        if let Some(c) = self.consumers.remove(&k) {
                            c.queue.cancel_consumer(k, self.ctx.connection_id);
                            c.queue.requeue_consumer(k);
                        }
                    }
                }
            }
        }
        codec::unsuback(self.lv(), pkid, &existed, self.out.buf());
    }

    /// Builds the core message for an MQTT publish (also used for wills).
    pub fn make_message(
        client_id: &str,
        user: &str,
        topic: &str,
        qos: u8,
        retain: bool,
        props: &PubProps,
        payload: Bytes,
    ) -> Arc<Message> {
        let properties = Self::message_properties(client_id, user, qos, retain, props);
        Self::message_with(topic, Arc::new(properties), payload)
    }

    fn message_with(topic: &str, properties: Arc<Properties>, payload: Bytes) -> Arc<Message> {
        let (exchange, routing_key) = route_of(topic);
        Arc::new(Message {
            exchange: exchange.into(),
            routing_key,
            properties,
            body: payload,
        })
    }

    /// Properties for a publish. Plain ones (no MQTT 5 properties) are shared by every message
    /// of this connection with the same QoS and retain flag: one allocation, not one each.
    fn properties_for(&mut self, qos: u8, retain: bool, props: &PubProps) -> Arc<Properties> {
        let plain = *props == PubProps::default();
        if let Some((q, r, p)) = &self.plain_properties {
            if plain && *q == qos && *r == retain {
                return p.clone();
            }
        }
        let p = Arc::new(Self::message_properties(
            &self.client_id,
            &self.user,
            qos,
            retain,
            props,
        ));
        if plain {
            self.plain_properties = Some((qos, retain, p.clone()));
        }
        p
    }

    /// The core properties of an MQTT publish (RabbitMQ's headers for QoS and retain, the
    /// publisher's client id for no-local, MQTT 5 properties mapped).
    fn message_properties(
        client_id: &str,
        user: &str,
        qos: u8,
        retain: bool,
        props: &PubProps,
    ) -> Properties {
        let mut headers = FieldTable::new();
        let mut repeated = false;
        for (k, v) in &props.user_properties {
            if headers.get(k).is_none() {
                headers.insert(k.clone(), FieldValue::string(v.clone()));
            } else {
                repeated = true;
            }
        }
        if repeated {
            // User properties are a list: a key may come more than once. Headers keep the first
            // value of each key (what AMQP and STOMP consumers read); the whole list, in order,
            // travels in H_USER_PROPERTIES as an array of [key, value] pairs.
            let list = props
                .user_properties
                .iter()
                .map(|(k, v)| {
                    FieldValue::Array(vec![
                        FieldValue::string(k.clone()),
                        FieldValue::string(v.clone()),
                    ])
                })
                .collect();
            headers.insert(H_USER_PROPERTIES, FieldValue::Array(list));
        }
        headers.insert(H_QOS, FieldValue::U8(qos));
        if retain {
            headers.insert(H_RETAIN, FieldValue::Bool(true));
        }
        headers.insert(H_CLIENT, FieldValue::string(client_id));
        headers.insert(H_USER, FieldValue::string(user));
        let mut p = Properties {
            delivery_mode: Some(if qos > 0 { 2 } else { 1 }),
            content_type: props.content_type.clone(),
            ..Default::default()
        };
        if let Some(rt) = &props.response_topic {
            headers.insert(H_REPLY_TOPIC, FieldValue::string(rt.clone()));
            // An AMQP responder replies to exchange "" with this routing key; the core
            // routes the address form to amq.topic, where the requester subscribed.
            p.reply_to = Some(match rt.strip_prefix(REPLY_PREFIX) {
                Some(queue) => queue.to_string(),
                None => format!("/topic/{}", topic_to_key(rt)),
            });
        }
        if let Some(cd) = &props.correlation_data {
            match std::str::from_utf8(cd) {
                Ok(s) if s.len() <= 255 => p.correlation_id = Some(s.to_string()),
                _ => headers.insert(H_CORRELATION, FieldValue::ByteArray(cd.clone())),
            }
        }
        if let Some(e) = props.expiry {
            p.expiration = Some((u64::from(e) * 1000).to_string());
            p.timestamp = Some(unix_seconds());
        }
        if let Some(pf) = props.payload_format {
            headers.insert("x-mqtt-payload-format", FieldValue::U8(pf));
        }
        p.headers = Some(headers);
        p
    }

    fn publish_in(&mut self, mut p: Publish) {
        let level = self.lv();
        if let Some(alias) = p.props.topic_alias.take() {
            if alias == 0 || alias > TOPIC_ALIAS_MAX {
                return self.disconnect(0x94, "topic alias out of range");
            }
            if p.topic.is_empty() {
                match self.aliases_in.get(&alias) {
                    Some(t) => p.topic = t.clone(),
                    None => return self.disconnect(0x82, "unknown topic alias"),
                }
            } else {
                self.aliases_in.insert(alias, p.topic.clone());
            }
        }
        if !valid_topic(&p.topic) {
            return self.disconnect(0x90, "invalid topic name in PUBLISH");
        }
        if p.qos > 2 {
            return self.disconnect(0x81, "invalid QoS");
        }
        if p.qos == 2 && self.session.incoming_qos2.contains(&p.pkid) {
            // A resend of a message already taken: acknowledge, do not route it again.
            codec::ack(level, Ack::PubRec, p.pkid, 0, self.out.buf());
            return;
        }
        let properties = self.properties_for(p.qos, p.retain, &p.props);
        let vh = self.vh();
        // A retained message is stored by the registry's tap on amq.topic.
        let msg = Self::message_with(&p.topic, properties, p.payload);
        let routed = match vh.publish(route_of(&p.topic).0, msg) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "MQTT publish failed");
                return self.disconnect(0x80, "publish failed");
            }
        };
        let reason = if routed.unroutable() && level == Level::V5 {
            0x10
        } else {
            0
        };
        let kind = match p.qos {
            0 => return,
            1 => Ack::PubAck,
            _ => {
                self.session.incoming_qos2.insert(p.pkid);
                self.dirty = true;
                Ack::PubRec
            }
        };
        // Stored messages, and the QoS 2 packet ids of a persistent session, are
        // acknowledged once the stores have them; other acks keep their place behind those.
        if routed.stored > 0 || (p.qos == 2 && self.persistent()) || self.held.is_holding() {
            self.held.hold(Reply::Ack(kind, p.pkid, reason));
        } else {
            codec::ack(level, kind, p.pkid, reason, self.out.buf());
        }
    }

    fn alloc_pkid(&mut self) -> Option<u16> {
        for _ in 0..u16::MAX {
            let id = self.next_pkid;
            self.next_pkid = if id == u16::MAX { 1 } else { id + 1 };
            if !self.inflight.contains_key(&id) && !self.session.outgoing_rel.contains(&id) {
                return Some(id);
            }
        }
        None
    }

    fn deliver(&mut self, d: Delivery) {
        let Some(consumer) = self.consumers.get(&d.consumer) else {
            d.queue.reject(&[d.id], true);
            return;
        };
        let topic = key_to_topic(&d.message.routing_key);
        let headers = d.message.properties.headers.as_ref();
        let from_self = headers.and_then(|h| h.get_str(H_CLIENT)) == Some(self.client_id.as_str());
        // The subscriptions of this session the message came for: the highest QoS among them,
        // whether one keeps the retain flag, and their MQTT 5 subscription identifiers.
        let (mut any, mut granted, mut keep_retain, mut ids) = (false, 0, false, Vec::new());
        for s in self.session.subscriptions.iter() {
            let ours = match &consumer.shared_filter {
                Some(f) => s.group.is_some() && s.req.filter == *f,
                None => s.group.is_none(),
            };
            if ours && matches(&topic, &s.req.filter) && !(s.req.no_local && from_self) {
                any = true;
                granted = granted.max(s.req.qos);
                keep_retain |= s.req.retain_as_published;
                ids.extend(s.id);
            }
        }
        if !any {
            d.queue.ack(&[d.id]);
            return;
        }
        let qos = qos_of_message(&d.message).min(granted);
        let was_retained =
            headers.is_some_and(|h| h.get(H_RETAIN) == Some(&FieldValue::Bool(true)));
        let sent = self.send_publish(
            topic,
            &d.message,
            qos,
            was_retained && keep_retain,
            d.redelivered,
            ids,
            Some((&d.queue, d.id)),
        );
        if !sent || qos == 0 {
            d.queue.ack(&[d.id]);
        }
    }

    /// Sends a PUBLISH; for QoS 1/2 with `track`, remembers it until acknowledged. Returns false
    /// if nothing was sent (too large for the client, or no packet id free).
    #[allow(clippy::too_many_arguments)]
    fn send_publish(
        &mut self,
        topic: String,
        m: &Message,
        qos: u8,
        retain: bool,
        dup: bool,
        subscription_ids: Vec<usize>,
        track: Option<(&Arc<Queue>, u64)>,
    ) -> bool {
        let level = self.lv();
        let pkid = if qos > 0 {
            match self.alloc_pkid() {
                Some(p) => p,
                None => return false,
            }
        } else {
            0
        };
        let mut p = Publish {
            dup: dup && qos > 0,
            qos,
            retain,
            topic,
            pkid,
            props: PubProps::default(),
            payload: m.body.clone(),
        };
        if level == Level::V5 {
            p.props = self.publish_properties(m);
            p.props.subscription_ids = subscription_ids;
            if self.alias_max_out > 0 {
                match self.aliases_out.get(&p.topic) {
                    Some(&a) => {
                        p.props.topic_alias = Some(a);
                        p.topic.clear();
                    }
                    None if (self.aliases_out.len() as u16) < self.alias_max_out => {
                        let a = self.aliases_out.len() as u16 + 1;
                        self.aliases_out.insert(p.topic.clone(), a);
                        p.props.topic_alias = Some(a);
                    }
                    None => {}
                }
            }
        }
        if !codec::publish(level, &p, self.max_packet_out, &mut self.out) {
            // The client cannot take it: the spec says drop it as if delivered.
            return false;
        }
        if let (true, Some((q, id))) = (qos > 0, track) {
            self.inflight.insert(
                pkid,
                Inflight {
                    queue: q.clone(),
                    id,
                },
            );
        }
        true
    }

    /// Core properties → MQTT 5 publish properties.
    fn publish_properties(&self, m: &Message) -> PubProps {
        let p = &m.properties;
        let mut out = PubProps {
            content_type: p.content_type.clone(),
            correlation_data: p.correlation_id.clone().map(Bytes::from),
            ..Default::default()
        };
        if let Some(ttl) = p.ttl_ms() {
            let elapsed = p.timestamp.map_or(0, |t| unix_seconds().saturating_sub(t));
            out.expiry = Some(((ttl / 1000).saturating_sub(elapsed)).max(1) as u32);
        }
        out.response_topic = p
            .reply_to
            .as_deref()
            .and_then(|r| match r.strip_prefix("/topic/") {
                Some(key) => Some(key_to_topic(key)),
                None if r.starts_with('/') => None,
                None => Some(format!("{REPLY_PREFIX}{r}")),
            });
        if let Some(h) = &p.headers {
            // The full list, when a key came more than once; its keys are not repeated below.
            let listed = user_property_list(h.get(H_USER_PROPERTIES));
            if let Some(list) = &listed {
                out.user_properties.extend(list.iter().cloned());
            }
            for (k, v) in h.iter() {
                if listed
                    .as_ref()
                    .is_some_and(|l| l.iter().any(|(lk, _)| lk == k))
                {
                    continue;
                }
                match k {
                    H_QOS | H_RETAIN | H_CLIENT | H_USER | H_USER_PROPERTIES => {}
                    H_REPLY_TOPIC => out.response_topic = v.as_str().map(str::to_string),
                    H_CORRELATION => {
                        if let FieldValue::ByteArray(b) | FieldValue::LongString(b) = v {
                            out.correlation_data = Some(b.clone());
                        }
                    }
                    "x-mqtt-payload-format" => out.payload_format = v.as_i64().map(|n| n as u8),
                    k => out.user_properties.push((k.to_string(), v.to_text())),
                }
            }
        }
        out
    }

    /// The connection is over: requeue in-flight deliveries, keep or drop the session, and hand
    /// back the will if one is due.
    pub fn finish(&mut self) -> Option<PendingWill> {
        let conn = self.ctx.connection_id;
        for (key, c) in self.consumers.drain() {
            c.queue.cancel_consumer(key, conn);
            c.queue.requeue_consumer(key);
        }
        // Deliveries sent but unacknowledged went back with requeue_consumer.
        self.inflight.clear();
        let vhost = self.vhost.clone()?;
        let keep = self.persistent();
        let expiry = self.session.expiry;
        if !keep {
            if let Some(q) = self.queue.take() {
                let _ = vhost.delete_queue(q.name(), None, false, false);
            }
        }
        self.ctx.broker.connection_closed(conn);
        let state = keep.then(|| std::mem::take(&mut self.session));
        self.registry
            .release(&vhost.name, &self.client_id, conn, state);
        let will = self.will.take().filter(|_| self.publish_will)?;
        Some(PendingWill {
            delay: will.delay.min(expiry),
            vhost,
            will: *will,
            client_id: self.client_id.clone(),
            user: self.user.clone(),
            generation: self.generation,
        })
    }
}

impl PendingWill {
    /// Publishes the will (the registry's tap retains it if asked).
    pub fn publish(self) {
        let w = self.will;
        let msg = Session::make_message(
            &self.client_id,
            &self.user,
            &w.topic,
            w.qos,
            w.retain,
            &w.props,
            w.payload,
        );
        if let Err(e) = self.vhost.publish(route_of(&w.topic).0, msg) {
            tracing::warn!(error = %e, "will publish failed");
        }
    }
}

impl driver::Session for Session {
    fn output(&mut self) -> &mut WriteBuf {
        &mut self.out
    }

    fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    fn is_established(&self) -> bool {
        self.state != State::AwaitConnect
    }

    fn needs_sync(&self) -> bool {
        self.held.needs_sync()
    }

    fn sync_started(&mut self) {
        self.held.sync_started();
    }

    /// The stores synced: send the PUBACK/PUBRECs the sync covered.
    fn synced(&mut self) {
        let level = self.level.unwrap_or(Level::V4);
        for reply in self.held.synced() {
            match reply {
                Reply::Ack(kind, pkid, reason) => {
                    codec::ack(level, kind, pkid, reason, self.out.buf())
                }
                Reply::SubAck(pkid, codes) => codec::suback(level, pkid, &codes, self.out.buf()),
            }
        }
    }

    /// When [`Session::handle_timeout`] should next run (keep-alive; the driver bounds the
    /// wait for CONNECT with the handshake deadline).
    fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            State::Open if self.keep_alive > 0 => {
                Some(self.last_recv + u64::from(self.keep_alive) * 1500)
            }
            _ => None,
        }
    }

    /// Drops a client silent for 1.5 × its keep-alive.
    fn handle_timeout(&mut self, now: u64) {
        match (self.state, self.poll_timeout()) {
            (State::Open, Some(t)) if now >= t => self.disconnect(0x8D, "keep alive timeout"),
            _ => {}
        }
    }

    fn handle_bytes(&mut self, buf: &mut BytesMut, now: u64) {
        while !self.is_closed() {
            match codec::decode(buf, self.level(), self.max_packet()) {
                Ok(Some(p)) => self.handle_packet(p, now),
                Ok(None) => return,
                Err(e) => {
                    self.codec_error(&e);
                    buf.clear();
                    return;
                }
            }
        }
    }

    /// Handles a core event for one of this session's consumers.
    fn handle_sink_event(&mut self, ev: SinkEvent) {
        match ev {
            SinkEvent::Deliver(d) => self.deliver(d),
            SinkEvent::Cancelled { consumer } => {
                if let Some(c) = self.consumers.remove(&consumer) {
                    if self
                        .queue
                        .as_ref()
                        .is_some_and(|q| Arc::ptr_eq(q, &c.queue))
                    {
                        self.queue = None;
                    }
                }
            }
        }
    }

    fn shutdown(&mut self, _now: u64) {
        Session::shutdown(self)
    }

    fn takeover_signal(&self) -> Option<&Takeover> {
        self.kicked.as_ref()
    }

    /// Another connection took this client id.
    fn taken_over(&mut self) {
        self.disconnect(0x8E, "session taken over");
    }

    /// The takeover signal to watch (after CONNECT).
    fn has_published(&self) -> bool {
        self.published
    }

    /// Input held back by a resource alarm: PINGREQs cannot be seen, so count the client alive.
    fn peer_alive(&mut self, now: u64) {
        self.last_recv = now;
    }
}
