//! The AMQP connection state machine, sans I/O: frames and clock values in, core calls and
//! frames out. The server task owns the socket and feeds this.

mod channel;
mod error;
mod handshake;
#[cfg(test)]
mod tests;

pub use error::{code, AmqpError, AmqpResult};

use crate::codec::{self, encode_content, encode_heartbeat, encode_method_frame, Frame, Method};
use bytes::BytesMut;
use channel::Channel;
use junction_core::auth::AuthUser;
use junction_core::authorized::Authorized;
use junction_core::message_counts::{CountsEntry, MessageCounts};
use junction_core::permissions::{Identity, Permit};
use junction_core::runtime::driver;
use junction_core::runtime::{ConnectionContext, Limits, Outbox};
use junction_core::{Broker, CoreError, DeliverySink, SinkEvent};
use std::collections::HashMap;
use std::sync::Arc;

/// How long the server waits for connection.close-ok before dropping the socket.
const CLOSE_TIMEOUT_MS: u64 = 3_000;

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for connection.start-ok.
    Starting,
    /// Waiting for connection.tune-ok.
    Tuning,
    /// Waiting for connection.open.
    Opening,
    /// Open: channels may be used.
    Open,
    /// connection.close sent; waiting for close-ok (until the deadline).
    Closing {
        /// When the socket is dropped if close-ok has not come.
        deadline: u64,
    },
    /// Done: flush output and drop the socket.
    Closed,
}

/// One AMQP connection.
pub struct Session {
    broker: Arc<Broker>,
    ctx: ConnectionContext,
    state: State,
    user: Option<AuthUser>,
    vhost: Option<Authorized>,
    frame_max: u32,
    channel_max: u16,
    /// Negotiated heart-beat in seconds (0 = off).
    heartbeat: u16,
    channels: HashMap<u16, Channel>,
    /// Consumer key → (channel, tag): where a core delivery goes.
    consumers: HashMap<u64, (u16, String)>,
    next_consumer_key: u64,
    sink: DeliverySink,
    /// The write buffer, held acknowledgements, last send.
    outbox: Outbox<(u16, Method)>,
    /// Confirms of consecutive tags on one channel not yet sent: (channel, first, last). They
    /// go out as one `multiple` ack before any other frame and at the end of each read.
    ack_run: Option<(u16, u64, u64)>,
    last_recv: u64,
    client_properties: junction_core::FieldTable,
    /// The connection has published (a resource alarm blocks it).
    published: bool,
    /// The broker's resource alarm, if raised.
    alarm: Option<Arc<str>>,
    /// connection.blocked was sent and not yet followed by connection.unblocked.
    blocked_sent: bool,
    /// Messages published, delivered, acknowledged and confirmed (from connection.open).
    counts: Option<CountsEntry>,
}

impl Session {
    /// A session for a connection whose protocol header has been accepted; connection.start is
    /// already queued for output.
    pub fn new(ctx: ConnectionContext, sink: DeliverySink, now: u64) -> Session {
        let mut s = Session {
            broker: ctx.broker.clone(),
            frame_max: ctx.limits.max_frame_size,
            channel_max: ctx.limits.amqp.channel_max,
            heartbeat: 0,
            ctx,
            state: State::Starting,
            user: None,
            vhost: None,
            channels: HashMap::new(),
            consumers: HashMap::new(),
            next_consumer_key: 1,
            sink,
            outbox: Outbox::new(now),
            ack_run: None,
            counts: None,
            last_recv: now,
            client_properties: Default::default(),
            published: false,
            alarm: None,
            blocked_sent: false,
        };
        let start = handshake::start_method(s.ctx.tls.as_deref());
        s.send(0, &start);
        s
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.state
    }

    /// The decoder limits in force.
    pub fn codec_limits(&self) -> codec::Limits {
        codec::Limits {
            frame_max: self.frame_max,
            table_depth: self.ctx.limits.amqp.max_table_depth,
        }
    }

    fn limits(&self) -> &Limits {
        &self.ctx.limits
    }

    fn send(&mut self, channel: u16, m: &Method) {
        self.flush_confirms();
        encode_method_frame(channel, m, self.outbox.out.buf());
    }

    /// Answers a method that changed metadata: at once, or, when the change went to the
    /// metadata store (`stored`), once the store has synced — taking no further input until
    /// then, so nothing the client sends after it is answered first. `None`: no reply
    /// (`no-wait`), but the change is still made durable promptly.
    pub(super) fn reply_after_store(&mut self, ch: u16, reply: Option<Method>, stored: bool) {
        match (reply, stored) {
            (Some(m), false) => self.send(ch, &m),
            (Some(m), true) => {
                self.flush_confirms();
                self.outbox.held.hold_barrier((ch, m));
            }
            (None, true) => self.outbox.held.want_sync(),
            (None, false) => {}
        }
    }

    /// Confirms publish `tag` of channel `ch`, joining it to the run of consecutive confirms
    /// not yet sent, so a burst of publishes is confirmed with one `multiple` ack.
    pub(super) fn confirm(&mut self, ch: u16, tag: u64) {
        if let Some((rch, _, last)) = &mut self.ack_run {
            if *rch == ch && tag == *last + 1 {
                *last = tag;
                return;
            }
        }
        self.flush_confirms();
        self.ack_run = Some((ch, tag, tag));
    }

    /// Sends the pending run of confirms, if any.
    pub(super) fn flush_confirms(&mut self) {
        if let Some(run) = self.ack_run.take() {
            self.flush_ack_run(Some(run));
        }
    }

    /// Sends acks for tags `first..=last` of a channel: every earlier tag is already confirmed.
    fn flush_ack_run(&mut self, run: Option<(u16, u64, u64)>) {
        let Some((ch, first, last)) = run else { return };
        if self.channels.get(&ch).is_some_and(Channel::is_open) {
            let ack = Method::BasicAck {
                delivery_tag: last,
                multiple: last > first,
            };
            encode_method_frame(ch, &ack, self.outbox.out.buf());
        }
    }

    /// Adds to the connection's message counts (once it is open).
    #[inline]
    pub(super) fn count(&self, f: impl FnOnce(&MessageCounts)) {
        if let Some(c) = &self.counts {
            f(c.counts());
        }
    }

    /// Marks the connection as a publisher (it is blocked while an alarm is raised).
    pub(super) fn note_published(&mut self) {
        if !self.published {
            self.published = true;
            self.update_blocked();
        }
    }

    /// Sends connection.blocked / connection.unblocked to a client that asked for them, as
    /// RabbitMQ does: blocked once a publishing connection is held by an alarm.
    fn update_blocked(&mut self) {
        let blocked = self.published && self.alarm.is_some();
        if blocked && !self.blocked_sent && self.wants_blocked_notifications() {
            let reason = self.alarm.as_deref().unwrap_or_default().to_string();
            self.send(0, &Method::ConnectionBlocked { reason });
            self.blocked_sent = true;
        } else if !blocked && self.blocked_sent {
            self.send(0, &Method::ConnectionUnblocked);
            self.blocked_sent = false;
        }
    }

    fn wants_blocked_notifications(&self) -> bool {
        match self.client_properties.get("capabilities") {
            Some(junction_core::FieldValue::Table(caps)) => matches!(
                caps.get("connection.blocked"),
                Some(junction_core::FieldValue::Bool(true))
            ),
            _ => false,
        }
    }

    /// Handles one decoded frame.
    pub fn handle_frame(&mut self, frame: Frame, now: u64) {
        self.last_recv = now;
        if let State::Closing { .. } = self.state {
            if let Frame::Method {
                method: Method::ConnectionCloseOk | Method::ConnectionClose { .. },
                ..
            } = frame
            {
                if let Frame::Method {
                    method: Method::ConnectionClose { .. },
                    ..
                } = frame
                {
                    self.send(0, &Method::ConnectionCloseOk);
                }
                self.state = State::Closed;
            }
            return;
        }
        if self.state == State::Closed {
            return;
        }
        let ch = match &frame {
            Frame::Method { channel, .. }
            | Frame::Header { channel, .. }
            | Frame::Body { channel, .. } => *channel,
            Frame::Heartbeat => 0,
        };
        let result = match frame {
            Frame::Heartbeat => Ok(()),
            Frame::Method { channel: 0, method } => self.connection_method(method, now),
            Frame::Method { channel, method } if self.state == State::Open => {
                self.channel_method(channel, method)
            }
            Frame::Header { channel, header } if self.state == State::Open => {
                self.content_header(channel, header)
            }
            Frame::Body { channel, payload } if self.state == State::Open => {
                self.content_body(channel, payload)
            }
            _ => Err(AmqpError::connection(
                code::COMMAND_INVALID,
                "frame received before the connection was open",
                (0, 0),
            )),
        };
        if let Err(e) = result {
            self.fail(ch, e, now);
        }
    }

    /// A decode error: close the connection with the codec's reply code.
    pub fn codec_error(&mut self, e: &codec::CodecError, now: u64) {
        self.ctx
            .broker
            .refusals()
            .count(junction_core::refusals::Refusal::MalformedFrame);
        let err = AmqpError::connection(e.reply_code(), e.to_string(), e.ids());
        self.close_connection(err, now);
    }

    fn fail(&mut self, ch: u16, e: AmqpError, now: u64) {
        if e.connection || ch == 0 || self.state != State::Open {
            self.close_connection(e, now);
        } else {
            self.close_channel_with(ch, e);
        }
    }

    /// Starts closing the connection with `e` (server-initiated connection.close).
    pub fn close_connection(&mut self, e: AmqpError, now: u64) {
        if matches!(self.state, State::Closing { .. } | State::Closed) {
            return;
        }
        self.flush_confirms();
        tracing::info!(
            peer = %self.ctx.peer,
            code = e.code,
            text = %e.text,
            "closing AMQP connection"
        );
        self.release_all();
        self.send(
            0,
            &Method::ConnectionClose {
                reply_code: e.code,
                reply_text: e.reply_text(),
                class_id: e.class_id,
                method_id: e.method_id,
            },
        );
        self.state = State::Closing {
            deadline: now + CLOSE_TIMEOUT_MS,
        };
    }

    fn connection_method(&mut self, method: Method, now: u64) -> AmqpResult<()> {
        let ids = method.ids();
        match (self.state, method) {
            (
                State::Starting,
                Method::ConnectionStartOk {
                    client_properties,
                    mechanism,
                    response,
                    ..
                },
            ) => {
                let user = handshake::authenticate(
                    &self.broker,
                    &mechanism,
                    &response,
                    Some(self.ctx.peer),
                    self.ctx.tls.as_deref(),
                )
                .map_err(|e| AmqpError::core_on_connection(e, ids))?;
                self.user = Some(user);
                self.client_properties = client_properties;
                let l = self.limits().clone();
                self.send(
                    0,
                    &Method::ConnectionTune {
                        channel_max: l.amqp.channel_max,
                        frame_max: l.max_frame_size,
                        heartbeat: l.heartbeat,
                    },
                );
                self.state = State::Tuning;
                Ok(())
            }
            (State::Starting, Method::ConnectionSecureOk { .. }) => Err(AmqpError::connection(
                code::ACCESS_REFUSED,
                "SASL challenge-response is not supported",
                ids,
            )),
            (
                State::Tuning,
                Method::ConnectionTuneOk {
                    channel_max,
                    frame_max,
                    heartbeat,
                },
            ) => {
                let ours = self.limits().max_frame_size;
                if frame_max != 0 && frame_max < 4096 {
                    return Err(AmqpError::connection(
                        code::NOT_ALLOWED,
                        format!("frame_max={frame_max} < 4096 min size"),
                        ids,
                    ));
                }
                if frame_max > ours {
                    return Err(AmqpError::connection(
                        code::NOT_ALLOWED,
                        format!("frame_max={frame_max} > {ours} max size"),
                        ids,
                    ));
                }
                self.frame_max = if frame_max == 0 { ours } else { frame_max };
                let ours = self.limits().amqp.channel_max;
                self.channel_max = if channel_max == 0 {
                    ours
                } else {
                    channel_max.min(ours)
                };
                self.heartbeat = heartbeat;
                self.state = State::Opening;
                Ok(())
            }
            (State::Opening, Method::ConnectionOpen { virtual_host }) => {
                let vhost = if virtual_host.is_empty() {
                    self.broker.default_vhost().to_string()
                } else {
                    virtual_host
                };
                let v = self.broker.vhost(&vhost).map_err(|_| {
                    AmqpError::connection(
                        code::NOT_ALLOWED,
                        format!("vhost {vhost} not found"),
                        ids,
                    )
                })?;
                let user = self
                    .user
                    .as_ref()
                    .map(|u| u.name.clone())
                    .unwrap_or_default();
                self.broker
                    .admit(&user, &vhost, Some(self.ctx.peer.ip()))
                    .map_err(|e| match e {
                        // RabbitMQ answers a vhost the user has no permissions in with 530.
                        CoreError::AccessRefused(why) => {
                            AmqpError::connection(code::NOT_ALLOWED, why, ids)
                        }
                        e => AmqpError::core_on_connection(e, ids),
                    })?;
                let permit = Permit::new(
                    self.broker.clone(),
                    Identity {
                        user: user.clone(),
                        vhost: vhost.clone(),
                        client_id: None,
                    },
                );
                self.vhost = Some(Authorized::new(v, permit));
                self.send(0, &Method::ConnectionOpenOk);
                self.state = State::Open;
                self.counts = Some(self.ctx.describe(
                    "AMQP 0-9-1",
                    "amqp091",
                    &user,
                    &vhost,
                    self.client_properties.clone(),
                ));
                tracing::debug!(peer = %self.ctx.peer, user, vhost, "AMQP connection open");
                Ok(())
            }
            (_, Method::ConnectionClose { .. }) => {
                self.release_all();
                self.send(0, &Method::ConnectionCloseOk);
                self.state = State::Closed;
                Ok(())
            }
            (State::Open, Method::ConnectionUpdateSecret { .. }) => {
                self.send(0, &Method::ConnectionUpdateSecretOk);
                Ok(())
            }
            (State::Open, Method::ConnectionBlocked { .. } | Method::ConnectionUnblocked) => Ok(()),
            (_, m) => {
                let _ = now;
                Err(AmqpError::connection(
                    code::COMMAND_INVALID,
                    format!("unexpected method {:?} on channel 0", m.ids()),
                    ids,
                ))
            }
        }
    }

    /// Releases every channel's consumers and unacked messages, and the connection's exclusive
    /// queues. Called on any end of the connection.
    pub fn release_all(&mut self) {
        let ids: Vec<u16> = self.channels.keys().copied().collect();
        for id in ids {
            self.release_channel(id);
        }
        self.channels.clear();
        self.broker.connection_closed(self.ctx.connection_id);
    }
}

impl driver::Session for Session {
    type Held = (u16, Method);

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
        !matches!(self.state, State::Starting | State::Tuning | State::Opening)
    }

    /// The store has synced: send the confirms it covered, runs of consecutive acks on a
    /// channel as one `multiple` ack.
    fn synced(&mut self) {
        self.flush_confirms();
        let mut run: Option<(u16, u64, u64)> = None;
        let held: Vec<(u16, Method)> = self.outbox.held.synced().collect();
        for (ch, m) in held {
            if let (
                Some((rch, _, last)),
                Method::BasicAck {
                    delivery_tag,
                    multiple: false,
                },
            ) = (&mut run, &m)
            {
                if *rch == ch && *delivery_tag == *last + 1 {
                    *last = *delivery_tag;
                    continue;
                }
            }
            self.flush_ack_run(run.take());
            match m {
                Method::BasicAck {
                    delivery_tag,
                    multiple: false,
                } => run = Some((ch, delivery_tag, delivery_tag)),
                m => {
                    if self.channels.get(&ch).is_some_and(Channel::is_open) {
                        self.send(ch, &m);
                    }
                }
            }
        }
        self.flush_ack_run(run);
    }

    /// When [`Session::handle_timeout`] should next be called.
    fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            State::Closing { deadline } => Some(deadline),
            State::Closed => None,
            _ if self.heartbeat == 0 => None,
            _ => {
                let hb = u64::from(self.heartbeat) * 1000;
                Some((self.outbox.last_send + hb / 2).min(self.last_recv + 2 * hb))
            }
        }
    }

    /// Heart-beats out, silent peers and unanswered closes dropped.
    fn handle_timeout(&mut self, now: u64) {
        match self.state {
            State::Closing { deadline } if now >= deadline => {
                self.state = State::Closed;
            }
            State::Closed | State::Closing { .. } => {}
            _ if self.heartbeat == 0 => {}
            _ => {
                let hb = u64::from(self.heartbeat) * 1000;
                if now >= self.last_recv + 2 * hb {
                    tracing::info!(peer = %self.ctx.peer, "missed heartbeats from client, timeout: {}s", self.heartbeat);
                    self.release_all();
                    self.state = State::Closed;
                } else if now >= self.outbox.last_send + hb / 2 && self.outbox.out.is_empty() {
                    encode_heartbeat(self.outbox.out.buf());
                    self.outbox.last_send = now;
                }
            }
        }
    }

    fn handle_bytes(&mut self, buf: &mut BytesMut, now: u64) {
        // Every complete frame in the buffer; it holds at most one read plus one partial frame
        // (bounded by frame_max).
        while !self.is_closed() && !self.outbox.held.input_barred() {
            match codec::decode(buf, &self.codec_limits()) {
                Ok(Some(frame)) => self.handle_frame(frame, now),
                Ok(None) => break,
                Err(e) => {
                    self.codec_error(&e, now);
                    buf.clear();
                    break;
                }
            }
        }
        self.flush_confirms();
    }

    /// Handles what the core pushed to this connection's consumers.
    fn handle_sink_event(&mut self, ev: SinkEvent) {
        match ev {
            SinkEvent::Deliver(d) => {
                let Some((ch, tag)) = self.consumers.get(&d.consumer).cloned() else {
                    // The consumer is gone: give the message back.
                    if d.id != 0 {
                        d.queue.reject(&[d.id], true);
                    }
                    return;
                };
                let Some(channel) = self.channels.get_mut(&ch) else {
                    if d.id != 0 {
                        d.queue.reject(&[d.id], true);
                    }
                    return;
                };
                let delivery_tag = channel.track_delivery(&d);
                self.count(|c| c.delivered(false, d.id != 0, d.redelivered));
                let m = Method::BasicDeliver {
                    consumer_tag: tag,
                    delivery_tag,
                    redelivered: d.redelivered,
                    exchange: d.message.exchange.clone(),
                    routing_key: d.message.routing_key.clone(),
                };
                self.send(ch, &m);
                encode_content(
                    ch,
                    60,
                    &d.message.properties,
                    &d.message.body,
                    self.frame_max,
                    &mut self.outbox.out,
                );
            }
            SinkEvent::Cancelled { consumer } => {
                if let Some((ch, tag)) = self.consumers.remove(&consumer) {
                    if let Some(channel) = self.channels.get_mut(&ch) {
                        channel.consumers.remove(&tag);
                        channel.report();
                    }
                    // consumer_cancel_notify: tell the client its queue went away.
                    self.send(
                        ch,
                        &Method::BasicCancel {
                            consumer_tag: tag,
                            no_wait: true,
                        },
                    );
                }
            }
        }
    }

    /// Broker shutdown: connection.close 320 CONNECTION_FORCED.
    fn shutdown(&mut self, now: u64) {
        self.close_connection(
            AmqpError::connection(
                code::CONNECTION_FORCED,
                "broker forced connection closure with reason 'shutdown'",
                (0, 0),
            ),
            now,
        );
    }

    fn close_by_operator(&mut self, reason: &str, now: u64) {
        self.close_connection(
            AmqpError::connection(code::CONNECTION_FORCED, reason, (0, 0)),
            now,
        );
    }

    fn linger_after_close(&self) -> bool {
        true
    }

    fn has_published(&self) -> bool {
        self.published
    }

    /// The broker's resource alarm changed.
    fn resource_alarm(&mut self, reason: Option<&str>) {
        self.alarm = reason.map(Arc::from);
        self.update_blocked();
    }

    /// The client's input is held back by a resource alarm: its heart-beats cannot be seen.
    fn peer_alive(&mut self, now: u64) {
        self.last_recv = now;
    }
}
