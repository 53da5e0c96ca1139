//! The STOMP session, sans I/O: frames and clock values in, core calls and frames out.

mod error;
mod messaging;
#[cfg(test)]
mod tests;

use crate::codec::{self, encode, Command, Frame, Version};
use bytes::BytesMut;
use junction_core::auth::AuthUser;
use junction_core::authorized::Authorized;
use junction_core::message_counts::{Count, CountsEntry, MessageCounts};
use junction_core::permissions::{Identity, Permit};
use junction_core::runtime::driver;
use junction_core::runtime::{ConnectionContext, Outbox};
use junction_core::{Broker, DeliverySink, SinkEvent};
use messaging::Subscription;
use std::collections::HashMap;
use std::sync::Arc;

/// Versions this server speaks, as listed in an ERROR when negotiation fails.
pub const SUPPORTED: &str = "1.0,1.1,1.2";

/// The login used when a client sends none (RabbitMQ's `stomp.default_user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultLogin {
    /// The login used.
    pub login: String,
    /// Its passcode.
    pub passcode: String,
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for CONNECT.
    AwaitConnect,
    /// Connected.
    Open,
    /// Flush the output, then close the socket.
    Closed,
}

/// One STOMP connection.
pub struct Session {
    broker: Arc<Broker>,
    ctx: ConnectionContext,
    default_login: Option<DefaultLogin>,
    state: State,
    version: Version,
    vhost: Option<Authorized>,
    user: Option<AuthUser>,
    sink: DeliverySink,
    /// The write buffer, held acknowledgements, last send.
    outbox: Outbox<String>,
    subscriptions: HashMap<String, Subscription>,
    /// Consumer key → subscription id.
    consumers: HashMap<u64, String>,
    /// Ack id → subscription id.
    ack_index: HashMap<u64, String>,
    next_key: u64,
    next_message: u64,
    transactions: HashMap<String, Vec<Frame>>,
    /// Temp-queue name (`/temp-queue/x`'s x) → the real queue.
    temp_queues: HashMap<String, String>,
    /// Heart-beat periods in ms (0 = off): what the client sends, what we send.
    hb_in: u64,
    hb_out: u64,
    last_recv: u64,
    /// The client has sent a SEND (a resource alarm stops reading from it).
    published: bool,
    session_id: String,
    /// Messages published, delivered, acknowledged and receipted (from CONNECTED).
    counts: Option<CountsEntry>,
}

impl Session {
    /// A session for a new connection.
    pub fn new(
        ctx: ConnectionContext,
        sink: DeliverySink,
        default_login: Option<DefaultLogin>,
        now: u64,
    ) -> Session {
        Session {
            broker: ctx.broker.clone(),
            session_id: format!("session-{}", ctx.connection_id),
            ctx,
            default_login,
            state: State::AwaitConnect,
            version: Version::V1_0,
            vhost: None,
            user: None,
            sink,
            outbox: Outbox::new(now),
            subscriptions: HashMap::new(),
            consumers: HashMap::new(),
            ack_index: HashMap::new(),
            next_key: 1,
            next_message: 1,
            transactions: HashMap::new(),
            temp_queues: HashMap::new(),
            hb_in: 0,
            hb_out: 0,
            last_recv: now,
            published: false,
            counts: None,
        }
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.state
    }

    /// The version frames are decoded with (escaping rules).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The codec's limits for this connection.
    pub fn codec_limits(&self) -> codec::Limits {
        let l = &self.ctx.limits;
        codec::Limits {
            max_headers: l.stomp.max_headers,
            max_header_length: l.stomp.max_header_length,
            max_body: l.max_message_size.min(usize::MAX as u64) as usize,
        }
    }

    /// Adds to the connection's message counts (once it is connected).
    #[inline]
    pub(super) fn count(&self, f: impl FnOnce(&MessageCounts)) {
        if let Some(c) = &self.counts {
            f(c.counts());
        }
    }

    /// Sends a receipt now, or after the receipts held before it.
    fn receipt(&mut self, id: String) {
        if self.outbox.held.is_holding() {
            self.outbox.held.hold(id);
        } else {
            self.send(Frame::new(Command::Receipt).with("receipt-id", id));
        }
    }

    fn send(&mut self, f: Frame) {
        encode(&f, self.version, &mut self.outbox.out);
    }

    /// Any bytes from the client count as life.
    pub fn note_received(&mut self, now: u64) {
        self.last_recv = now;
    }

    /// Sends an ERROR frame and closes.
    pub fn error(&mut self, message: &str, detail: &str, receipt: Option<&str>) {
        if self.state == State::Closed {
            return;
        }
        tracing::info!(peer = %self.ctx.peer, message, detail, "STOMP error");
        let mut f = Frame::new(Command::Error)
            .with("message", message)
            .with("content-type", "text/plain")
            .with("version", SUPPORTED);
        if let Some(r) = receipt {
            f = f.with("receipt-id", r);
        }
        f.headers
            .push(("content-length".into(), detail.len().to_string()));
        f.body = bytes::Bytes::from(detail.to_string());
        self.send(f);
        self.release_all();
        self.state = State::Closed;
    }

    /// A frame that did not decode.
    pub fn codec_error(&mut self, e: &codec::CodecError) {
        self.ctx
            .broker
            .refusals()
            .count(junction_core::refusals::Refusal::MalformedFrame);
        self.error("malformed frame", &e.to_string(), None);
    }

    /// Handles one frame.
    pub fn handle_frame(&mut self, f: Frame, now: u64) {
        self.last_recv = now;
        match (self.state, f.command) {
            (State::Closed, _) => {}
            (State::AwaitConnect, Command::Connect | Command::Stomp) => self.connect(f),
            (State::AwaitConnect, _) => self.error(
                "not connected",
                "the first frame must be CONNECT or STOMP",
                None,
            ),
            (State::Open, Command::Connect | Command::Stomp) => {
                self.error("already connected", "a second CONNECT is not allowed", None)
            }
            (State::Open, Command::Disconnect) => {
                if let Some(r) = f.header("receipt") {
                    let r = r.to_string();
                    self.release_all();
                    self.receipt(r);
                } else {
                    self.release_all();
                }
                self.state = State::Closed;
            }
            (State::Open, _) => {
                let receipt = f.header("receipt").map(str::to_string);
                let send = f.command == Command::Send;
                match self.dispatch(f) {
                    Ok(()) => {
                        if let Some(r) = receipt {
                            if send {
                                self.count(|c| c.add(Count::Confirmed, 1));
                            }
                            self.receipt(r);
                        }
                    }
                    Err(e) => self.error(&e.message(), &e.detail(), receipt.as_deref()),
                }
            }
        }
    }

    fn connect(&mut self, f: Frame) {
        let accepted = f.header("accept-version").unwrap_or("1.0");
        let Some(version) = accepted.split(',').filter_map(Version::parse).max() else {
            self.error(
                "Supported protocol versions are 1.0,1.1,1.2",
                &format!("none of the versions '{accepted}' is supported"),
                None,
            );
            return;
        };
        self.version = version;
        // Credentials of the frame first; without them, the verified client certificate's
        // user when certificate login is on (RabbitMQ's `ssl_cert_login`), else the default
        // user.
        let certificate = self.ctx.tls.as_deref().and_then(|t| t.login_user());
        let login = match (f.header("login"), f.header("passcode"), certificate) {
            (Some(l), p, _) => Some((l.to_string(), Some(p.unwrap_or("").to_string()))),
            (None, _, Some(user)) => Some((user.to_string(), None)),
            (None, _, None) => self
                .default_login
                .as_ref()
                .map(|d| (d.login.clone(), Some(d.passcode.clone()))),
        };
        let Some((login, passcode)) = login else {
            self.error("Access refused", "no login given and no default user", None);
            return;
        };
        let auth = self.broker.auth();
        let peer = Some(self.ctx.peer);
        let checked = match &passcode {
            Some(p) => auth.authenticate(&login, p, peer, "STOMP"),
            None => auth.authenticate_certificate(&login, peer, "STOMP"),
        };
        let user = match checked {
            Ok(u) => u,
            Err(_) => {
                self.error(
                    "Bad CONNECT",
                    &format!("Access refused for user '{login}'"),
                    None,
                );
                return;
            }
        };
        // `host` names the vhost, as in RabbitMQ: one that does not exist is refused, never
        // quietly mapped to another vhost.
        let vhost_name = f
            .header("host")
            .unwrap_or(self.broker.default_vhost())
            .to_string();
        if self.broker.vhost(&vhost_name).is_err() {
            tracing::info!(peer = %self.ctx.peer, vhost = %vhost_name, "STOMP CONNECT to an unknown vhost refused");
            self.error(
                "Bad CONNECT",
                &format!("Virtual host '{vhost_name}' access denied"),
                None,
            );
            return;
        }
        if let Err(e) = self
            .broker
            .admit(&user.name, &vhost_name, Some(self.ctx.peer.ip()))
        {
            self.error("Access refused", &e.to_string(), None);
            return;
        }
        let vhost = match self.broker.vhost(&vhost_name) {
            Ok(v) => v,
            Err(e) => {
                self.error("Bad CONNECT", &e.to_string(), None);
                return;
            }
        };
        let (cx, cy) = parse_heartbeat(f.header("heart-beat"));
        // We take the client's wishes as they are: send every cy, expect something every cx.
        self.hb_out = cy;
        self.hb_in = cx;
        let permit = Permit::new(
            self.broker.clone(),
            Identity {
                user: user.name.clone(),
                vhost: vhost_name.clone(),
                client_id: None,
            },
        );
        self.vhost = Some(Authorized::new(vhost, permit));
        self.user = Some(user);
        self.state = State::Open;
        let mut reply = Frame::new(Command::Connected)
            .with("version", version.as_str())
            .with("server", format!("Junction/{}", env!("CARGO_PKG_VERSION")))
            .with("session", self.session_id.clone());
        if version > Version::V1_0 {
            reply = reply.with("heart-beat", format!("{cy},{cx}"));
        }
        self.send(reply);
        let user = self
            .user
            .as_ref()
            .map(|u| u.name.clone())
            .unwrap_or_default();
        self.counts = Some(self.ctx.describe(
            format!("STOMP {}", version.as_str()),
            "stomp",
            &user,
            &vhost_name,
            Default::default(),
        ));
    }

    /// Broker shutdown: an ERROR frame, then close.
    pub fn shutdown(&mut self) {
        self.error("Server shutdown", "the broker is shutting down", None);
    }

    /// Ends every subscription (unacked messages go back to their queues) and the connection's
    /// exclusive queues.
    pub fn release_all(&mut self) {
        let ids: Vec<String> = self.subscriptions.keys().cloned().collect();
        for id in ids {
            self.end_subscription(&id);
        }
        self.broker.connection_closed(self.ctx.connection_id);
    }
}

fn parse_heartbeat(h: Option<&str>) -> (u64, u64) {
    let Some((a, b)) = h.and_then(|h| h.split_once(',')) else {
        return (0, 0);
    };
    (a.trim().parse().unwrap_or(0), b.trim().parse().unwrap_or(0))
}

impl driver::Session for Session {
    type Held = String;

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

    /// The message store synced: send the receipts the sync covered.
    fn synced(&mut self) {
        let held: Vec<String> = self.outbox.held.synced().collect();
        for r in held {
            self.send(Frame::new(Command::Receipt).with("receipt-id", r));
        }
    }

    /// When [`Session::handle_timeout`] should next run.
    fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            // The driver bounds the wait for CONNECT with the handshake deadline.
            State::AwaitConnect | State::Closed => return None,
            State::Open => {}
        }
        let out = (self.hb_out > 0).then(|| self.outbox.last_send + self.hb_out);
        let inn = (self.hb_in > 0).then(|| self.last_recv + 2 * self.hb_in);
        match (out, inn) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends heart-beats; drops a client silent for twice its period.
    fn handle_timeout(&mut self, now: u64) {
        if self.state != State::Open {
            return;
        }
        if self.hb_in > 0 && now >= self.last_recv + 2 * self.hb_in {
            tracing::info!(peer = %self.ctx.peer, "STOMP client missed heart-beats; closing");
            self.release_all();
            self.state = State::Closed;
            return;
        }
        if self.hb_out > 0
            && now >= self.outbox.last_send + self.hb_out
            && self.outbox.out.is_empty()
        {
            self.outbox.out.buf().extend_from_slice(b"\n");
            self.outbox.last_send = now;
        }
    }

    fn handle_bytes(&mut self, buf: &mut BytesMut, now: u64) {
        self.note_received(now);
        while !self.is_closed() {
            match codec::decode(buf, &self.codec_limits(), self.version()) {
                Ok(Some(codec::Decoded::Frame(f))) => self.handle_frame(f, now),
                Ok(Some(codec::Decoded::HeartBeat)) => {}
                Ok(None) => return,
                Err(e) => {
                    self.codec_error(&e);
                    buf.clear();
                    return;
                }
            }
        }
    }

    fn has_published(&self) -> bool {
        self.published
    }

    fn peer_alive(&mut self, now: u64) {
        Session::note_received(self, now)
    }

    /// Handles a core event for one of this session's subscriptions.
    fn handle_sink_event(&mut self, ev: SinkEvent) {
        match ev {
            SinkEvent::Deliver(d) => self.deliver(d),
            SinkEvent::Cancelled { consumer } => {
                if let Some(id) = self.consumers.remove(&consumer) {
                    self.subscriptions.remove(&id);
                    self.error(
                        "Subscription cancelled",
                        &format!("the queue of subscription '{id}' was deleted"),
                        None,
                    );
                }
            }
        }
    }

    fn shutdown(&mut self, _now: u64) {
        Session::shutdown(self)
    }

    fn close_by_operator(&mut self, reason: &str, _now: u64) {
        self.error("Connection closed", reason, None);
    }
}
