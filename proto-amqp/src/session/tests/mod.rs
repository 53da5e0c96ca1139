//! Session tests without sockets: frames and clock values in, frames out, on a broker with
//! in-memory stores and a manual clock. The end-to-end suite (tests/) covers the same paths
//! over real sockets with real clients; these pin each rule down to the frame.

mod channels;
mod confirms;
mod connection;
mod consuming;

use super::Session;
use crate::codec::{self, encode_content, encode_method_frame, Frame, Method};
use bytes::{Bytes, BytesMut};
use junction_core::clock::Clock;
use junction_core::runtime::harness::Harness;
use junction_core::runtime::{Limits, WriteBuf};
use junction_core::{Broker, BrokerOptions, FieldTable, Properties};
use std::sync::Arc;

/// A broker with in-memory stores on a manual clock.
pub(super) fn broker() -> Arc<Broker> {
    Broker::new(BrokerOptions {
        clock: Arc::new(Clock::manual()),
        ..BrokerOptions::default()
    })
    .expect("in-memory broker")
}

/// One client connection under the harness.
pub(super) struct Client {
    pub h: Harness<Session>,
    inbox: BytesMut,
}

pub(super) fn plain(user: &str, pass: &str) -> Bytes {
    Bytes::from(format!("\0{user}\0{pass}"))
}

impl Client {
    /// A connection whose protocol header was accepted (connection.start is out).
    pub(super) fn new(broker: &Arc<Broker>) -> Client {
        Self::with_limits(broker, Limits::default())
    }

    pub(super) fn with_limits(broker: &Arc<Broker>, limits: Limits) -> Client {
        Client {
            h: Harness::new(broker.clone(), limits, |ctx, tx| Session::new(ctx, tx, 0)),
            inbox: BytesMut::new(),
        }
    }

    /// A connection through start/tune/open as guest on `/` with `heartbeat` seconds.
    pub(super) fn open(broker: &Arc<Broker>, heartbeat: u16) -> Client {
        let mut c = Client::new(broker);
        assert!(matches!(c.method(), (0, Method::ConnectionStart { .. })));
        c.start_ok("PLAIN", plain("guest", "guest"));
        let (_, tune) = c.method();
        let Method::ConnectionTune {
            channel_max,
            frame_max,
            ..
        } = tune
        else {
            panic!("expected connection.tune, got {tune:?}")
        };
        c.send(
            0,
            Method::ConnectionTuneOk {
                channel_max,
                frame_max,
                heartbeat,
            },
        );
        c.send(
            0,
            Method::ConnectionOpen {
                virtual_host: "/".into(),
            },
        );
        assert_eq!(c.method(), (0, Method::ConnectionOpenOk));
        c
    }

    /// An open connection with channel 1 open.
    pub(super) fn with_channel(broker: &Arc<Broker>) -> Client {
        let mut c = Client::open(broker, 0);
        c.send(1, Method::ChannelOpen);
        assert_eq!(c.method(), (1, Method::ChannelOpenOk));
        c
    }

    pub(super) fn start_ok(&mut self, mechanism: &str, response: Bytes) {
        self.send(
            0,
            Method::ConnectionStartOk {
                client_properties: FieldTable::new(),
                mechanism: mechanism.into(),
                response,
                locale: "en_US".into(),
            },
        );
    }

    /// Sends one method frame.
    pub(super) fn send(&mut self, ch: u16, m: Method) {
        let mut out = BytesMut::new();
        encode_method_frame(ch, &m, &mut out);
        self.h.feed(&out);
    }

    /// Encodes methods (and their content) into one read, as a pipelining client does.
    pub(super) fn send_all(&mut self, frames: &[(u16, Method)]) {
        let mut out = BytesMut::new();
        for (ch, m) in frames {
            encode_method_frame(*ch, m, &mut out);
        }
        self.h.feed(&out);
    }

    /// Sends raw bytes.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        self.h.feed(bytes);
    }

    /// basic.publish with its header and body.
    pub(super) fn publish(
        &mut self,
        ch: u16,
        exchange: &str,
        key: &str,
        props: Properties,
        body: &str,
    ) {
        self.publish_with(ch, exchange, key, false, props, body);
    }

    pub(super) fn publish_with(
        &mut self,
        ch: u16,
        exchange: &str,
        key: &str,
        mandatory: bool,
        props: Properties,
        body: &str,
    ) {
        let mut out = BytesMut::new();
        encode_method_frame(
            ch,
            &Method::BasicPublish {
                exchange: exchange.into(),
                routing_key: key.into(),
                mandatory,
                immediate: false,
            },
            &mut out,
        );
        let mut wb = WriteBuf::new();
        encode_content(
            ch,
            60,
            &props,
            &Bytes::copy_from_slice(body.as_bytes()),
            131_072,
            &mut wb,
        );
        out.extend_from_slice(&wb.take_vec());
        self.h.feed(&out);
    }

    /// Every frame the session wrote since the last call.
    pub(super) fn frames(&mut self) -> Vec<Frame> {
        self.inbox.extend_from_slice(&self.h.take_output());
        let limits = codec::Limits {
            frame_max: 1 << 20,
            table_depth: 16,
        };
        let mut out = Vec::new();
        while let Some(f) = codec::decode(&mut self.inbox, &limits).expect("server frames decode") {
            out.push(f);
        }
        out
    }

    /// The methods among [`Client::frames`].
    pub(super) fn methods(&mut self) -> Vec<(u16, Method)> {
        self.frames()
            .into_iter()
            .filter_map(|f| match f {
                Frame::Method { channel, method } => Some((channel, method)),
                _ => None,
            })
            .collect()
    }

    /// Exactly one method, and nothing else, was written.
    pub(super) fn method(&mut self) -> (u16, Method) {
        let frames = self.frames();
        match <[Frame; 1]>::try_from(frames) {
            Ok([Frame::Method { channel, method }]) => (channel, method),
            Ok(other) => panic!("expected one method, got {other:?}"),
            Err(frames) => panic!("expected one method, got {frames:?}"),
        }
    }

    /// Declares a queue on channel 1 and checks the reply.
    pub(super) fn declare(&mut self, name: &str, durable: bool) {
        self.send(1, declare(name, durable));
        assert!(
            matches!(self.method(), (1, Method::QueueDeclareOk { ref queue, .. }) if queue == name)
        );
    }

    /// basic.consume on channel 1, returning the consumer tag.
    pub(super) fn consume(&mut self, queue: &str, no_ack: bool) -> String {
        self.send(
            1,
            Method::BasicConsume {
                queue: queue.into(),
                consumer_tag: String::new(),
                no_local: false,
                no_ack,
                exclusive: false,
                no_wait: false,
                arguments: FieldTable::new(),
            },
        );
        match self.method() {
            (1, Method::BasicConsumeOk { consumer_tag }) => consumer_tag,
            other => panic!("expected consume-ok, got {other:?}"),
        }
    }
}

pub(super) fn declare(name: &str, durable: bool) -> Method {
    Method::QueueDeclare {
        queue: name.into(),
        passive: false,
        durable,
        exclusive: false,
        auto_delete: false,
        no_wait: false,
        arguments: FieldTable::new(),
    }
}

/// The reply code of a channel.close or connection.close, if `m` is one.
pub(super) fn close_code(m: &Method) -> Option<u16> {
    match m {
        Method::ChannelClose { reply_code, .. } | Method::ConnectionClose { reply_code, .. } => {
            Some(*reply_code)
        }
        _ => None,
    }
}

/// Deliveries among frames: (delivery tag, redelivered, body).
pub(super) fn deliveries(frames: &[Frame]) -> Vec<(u64, bool, Bytes)> {
    let mut out = Vec::new();
    let mut current = None;
    for f in frames {
        match f {
            Frame::Method {
                method:
                    Method::BasicDeliver {
                        delivery_tag,
                        redelivered,
                        ..
                    },
                ..
            } => current = Some((*delivery_tag, *redelivered)),
            Frame::Body { payload, .. } => {
                if let Some((tag, r)) = current.take() {
                    out.push((tag, r, payload.clone()));
                }
            }
            _ => {}
        }
    }
    out
}

pub(super) fn persistent() -> Properties {
    Properties {
        delivery_mode: Some(2),
        ..Properties::default()
    }
}
