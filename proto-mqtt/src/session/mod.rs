//! The MQTT session, sans I/O: packets and clock values in, core calls and packets out.
//!
//! A session's subscriptions are bindings of its queue to `amq.topic` (shared subscriptions
//! consume a queue per group and filter). Each binding carries a match bit, and a delivery the
//! bits of the bindings that routed it: those name the subscriptions it came for (their QoS,
//! retain flag and v5 subscription identifiers) without matching the topic again.

use crate::codec::{
    self, Ack, ConnAckInfo, ConnectInfo, FilterReq, Inbound, Level, PubProps, Publish, ReasonCode,
    Will,
};
use crate::registry::{Registry, SessionState, Subscription};
use crate::topic::{
    filter_to_binding, key_to_topic, matches, shared, topic_to_key, valid_filter, valid_topic,
};
use bytes::{Bytes, BytesMut};
use junction_core::authorized::Authorized;
use junction_core::id_hash::IdHashBuilder;
use junction_core::message_counts::{Count, CountsEntry, MessageCounts};
use junction_core::permissions::{Identity, Permit};
use junction_core::refusals::Refusal;
use junction_core::runtime::driver::{self, Takeover};
use junction_core::runtime::{ConnectionContext, Outbox};
use junction_core::{
    Binding, ConsumerSpec, CoreError, Credit, Delivery, DeliveryQueue, DeliverySink, Destination,
    FieldTable, FieldValue, Message, Properties, Queue, QueueDef, SinkEvent, VHost,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::headers::{
    H_CLIENT, H_CORRELATION, H_QOS, H_REPLY_TOPIC, H_RETAIN, H_USER, H_USER_PROPERTIES,
    REPLY_PREFIX,
};

mod connect;
mod mapping;
mod match_bits;
mod publish;
mod subscribe;
#[cfg(test)]
mod tests;
mod will;

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
/// Where a connection is in its life.
pub enum State {
    /// Waiting for CONNECT.
    AwaitConnect,
    /// Connected.
    Open,
    /// Ended: the socket is closed.
    Closed,
}

struct Inflight {
    queue: Arc<dyn DeliveryQueue>,
    id: u64,
}

struct ConsumerRef {
    queue: Arc<Queue>,
    /// For a shared subscription: its filter.
    shared_filter: Option<String>,
}

/// A will to publish after the connection ends (after `delay` seconds).
pub struct PendingWill {
    /// Seconds to wait before publishing it (v5 will delay).
    pub delay: u32,
    /// The vhost it is published in.
    pub vhost: Arc<VHost>,
    /// The will.
    pub will: Will,
    /// The client that left it.
    pub client_id: String,
    /// The user the client logged in as.
    pub user: String,
    /// Which connection of the client left it (a takeover cancels it).
    pub generation: u64,
    /// The broker's clock: the will's timestamp is taken when it is published.
    clock: Arc<junction_core::clock::Clock>,
}

/// An acknowledgement held until the stores have synced.
#[derive(Debug)]
pub enum Reply {
    /// PUBACK/PUBREC of a stored message: kind, packet id, reason code.
    Ack(Ack, u16, ReasonCode),
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
    vhost: Option<Authorized>,
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
    /// The write buffer, held acknowledgements, last send.
    outbox: Outbox<Reply>,
    last_recv: u64,
    /// The session state changed and must be stored again.
    dirty: bool,
    /// Messages published, delivered, acknowledged and confirmed (from CONNACK).
    counts: Option<CountsEntry>,
    generation: u64,
    kicked: Option<Takeover>,
    /// The client has published (a resource alarm stops reading from it).
    published: bool,
    /// This connection resumed a stored session (Session Present 1).
    resumed: bool,
    /// Where the search for a free match bit starts (bits go round, so a freed one is taken
    /// again as late as possible).
    next_bit: u8,
}

fn qos_of_message(m: &Message) -> u8 {
    let h = m.properties.headers.as_ref();
    match h.and_then(|h| h.get_i64(H_QOS)) {
        Some(q) => q.clamp(0, 2) as u8,
        None => u8::from(m.properties.is_persistent()),
    }
}

impl Session {
    /// Adds to the connection's message counts (once it is connected).
    #[inline]
    pub(super) fn count(&self, f: impl FnOnce(&MessageCounts)) {
        if let Some(c) = &self.counts {
            f(c.counts());
        }
    }

    /// A session for a new connection.
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
            outbox: Outbox::new(now),
            last_recv: now,
            dirty: false,
            counts: None,
            generation: 0,
            kicked: None,
            published: false,
            resumed: false,
            next_bit: 0,
        }
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.state
    }

    /// The protocol level, once CONNECT has come.
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

    /// Closes with a v5 DISCONNECT carrying `reason` (3.1.1: just closes). The will is published.
    pub fn disconnect(&mut self, reason: ReasonCode, text: &str) {
        if self.state == State::Closed {
            return;
        }
        tracing::info!(peer = %self.ctx.peer, client = %self.client_id, reason = reason.code(), text, "closing MQTT connection");
        if let Some(level) = self.level.filter(|_| self.state == State::Open) {
            codec::disconnect(level, reason, text, self.outbox.out.buf());
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
                codec::connack_refused_level(self.outbox.out.buf());
            }
            self.state = State::Closed;
            return;
        }
        self.disconnect(e.reason_code(), &e.to_string());
    }

    /// Broker shutdown.
    pub fn shutdown(&mut self) {
        self.publish_will = false;
        self.disconnect(ReasonCode::ServerShuttingDown, "server shutting down");
    }

    /// Handles one decoded packet at `now`.
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
                &vhost.vhost().name,
                &self.client_id,
                self.ctx.connection_id,
                &self.session,
            );
            self.outbox.held.want_sync();
        } else {
            self.registry
                .forget_session(&vhost.vhost().name, &self.client_id);
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
            Inbound::Connect(_) => self.disconnect(ReasonCode::ProtocolError, "second CONNECT"),
            Inbound::Publish(p) => {
                self.published = true;
                self.publish_in(p)
            }
            Inbound::PubAck(pkid) => {
                if let Some(f) = self.inflight.remove(&pkid) {
                    self.count(|c| c.add(Count::Acknowledged, 1));
                    f.queue.ack(&[f.id]);
                }
            }
            Inbound::PubRec(pkid) => {
                if let Some(f) = self.inflight.remove(&pkid) {
                    self.count(|c| c.add(Count::Acknowledged, 1));
                    f.queue.ack(&[f.id]);
                    self.session.outgoing_rel.push(pkid);
                    self.dirty = true;
                }
                let reason = if self.session.outgoing_rel.contains(&pkid) {
                    ReasonCode::Success
                } else {
                    ReasonCode::PacketIdentifierNotFound
                };
                codec::ack(self.lv(), Ack::PubRel, pkid, reason, self.outbox.out.buf());
            }
            Inbound::PubComp(pkid) => {
                self.session.outgoing_rel.retain(|p| *p != pkid);
                self.dirty = true;
            }
            Inbound::PubRel(pkid) => {
                let reason = if self.session.incoming_qos2.remove(&pkid) {
                    self.dirty = true;
                    ReasonCode::Success
                } else {
                    ReasonCode::PacketIdentifierNotFound
                };
                codec::ack(self.lv(), Ack::PubComp, pkid, reason, self.outbox.out.buf());
            }
            Inbound::Subscribe { pkid, filters, id } => self.subscribe(pkid, filters, id),
            Inbound::Unsubscribe { pkid, filters } => self.unsubscribe(pkid, filters),
            Inbound::PingReq => codec::pingresp(self.outbox.out.buf()),
            Inbound::Disconnect {
                reason,
                session_expiry,
            } => {
                if let Some(e) = session_expiry {
                    if self.session.expiry == 0 && e > 0 {
                        self.disconnect(
                            ReasonCode::ProtocolError,
                            "session expiry cannot be set on DISCONNECT when it was 0",
                        );
                        return;
                    }
                    self.session.expiry = e;
                    self.dirty = true;
                }
                self.publish_will = reason == ReasonCode::DisconnectWithWill.code();
                self.state = State::Closed;
            }
            Inbound::Auth => self.disconnect(
                ReasonCode::BadAuthenticationMethod,
                "enhanced authentication is not supported",
            ),
        }
    }

    /// The negotiated level (3.1.1 until CONNECT says otherwise).
    fn lv(&self) -> Level {
        self.level.unwrap_or(Level::V4)
    }

    fn refuse(&mut self, level: Level, code: ReasonCode, why: &str) {
        tracing::info!(peer = %self.ctx.peer, code = code.code(), why, "MQTT CONNECT refused");
        let info = ConnAckInfo {
            reason_string: Some(why.to_string()),
            ..Default::default()
        };
        codec::connack(level, code, &info, self.outbox.out.buf());
        self.state = State::Closed;
    }
}

impl driver::Session for Session {
    type Held = Reply;

    fn outbox(&mut self) -> &mut Outbox<Self::Held> {
        &mut self.outbox
    }

    fn outbox_ref(&self) -> &Outbox<Self::Held> {
        &self.outbox
    }

    fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    fn is_established(&self) -> bool {
        self.state != State::AwaitConnect
    }

    /// The stores synced: send the PUBACK/PUBRECs the sync covered.
    fn synced(&mut self) {
        let level = self.level.unwrap_or(Level::V4);
        for reply in self.outbox.held.synced() {
            match reply {
                Reply::Ack(kind, pkid, reason) => {
                    codec::ack(level, kind, pkid, reason, self.outbox.out.buf())
                }
                Reply::SubAck(pkid, codes) => {
                    codec::suback(level, pkid, &codes, self.outbox.out.buf())
                }
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
            (State::Open, Some(t)) if now >= t => {
                self.disconnect(ReasonCode::KeepAliveTimeout, "keep alive timeout")
            }
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

    fn close_by_operator(&mut self, reason: &str, _now: u64) {
        self.disconnect(ReasonCode::AdministrativeAction, reason);
    }

    fn takeover_signal(&self) -> Option<&Takeover> {
        self.kicked.as_ref()
    }

    /// Another connection took this client id.
    fn taken_over(&mut self) {
        self.disconnect(ReasonCode::SessionTakenOver, "session taken over");
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
