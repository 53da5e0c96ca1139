//! STOMP session tests without sockets: frames and clock values in, frames out, on a broker
//! with in-memory stores and a manual clock.

mod connect;
mod messaging;

use super::{DefaultLogin, Session};
use crate::codec::{self, decode, encode, Command, Decoded, Frame, Version};
use junction_core::clock::Clock;
use junction_core::runtime::harness::Harness;
use junction_core::runtime::{Limits, WriteBuf};
use junction_core::{Broker, BrokerOptions};
use std::sync::Arc;

pub(super) fn broker() -> Arc<Broker> {
    Broker::new(BrokerOptions {
        clock: Arc::new(Clock::manual()),
        ..BrokerOptions::default()
    })
    .expect("in-memory broker")
}

/// One STOMP client under the harness.
pub(super) struct Client {
    pub h: Harness<Session>,
    inbox: bytes::BytesMut,
}

impl Client {
    pub(super) fn new(broker: &Arc<Broker>) -> Client {
        Self::with_default_login(broker, None)
    }

    pub(super) fn with_default_login(broker: &Arc<Broker>, login: Option<DefaultLogin>) -> Client {
        Client {
            h: Harness::new(broker.clone(), Limits::default(), |ctx, tx| {
                Session::new(ctx, tx, login, 0)
            }),
            inbox: bytes::BytesMut::new(),
        }
    }

    /// A client connected as guest (STOMP 1.2, no heart-beats).
    pub(super) fn connected(broker: &Arc<Broker>) -> Client {
        let mut c = Client::new(broker);
        c.send(connect("0,0"));
        let f = c.one();
        assert_eq!(f.command, Command::Connected, "{f:?}");
        c
    }

    pub(super) fn send(&mut self, f: Frame) {
        let mut out = WriteBuf::new();
        encode(&f, Version::V1_2, &mut out);
        self.h.feed(&out.take_vec());
    }

    /// Frames written since the last call (heart-beats skipped).
    pub(super) fn frames(&mut self) -> Vec<Frame> {
        self.inbox.extend_from_slice(&self.h.take_output());
        let limits = codec::Limits {
            max_headers: 1000,
            max_header_length: 1 << 16,
            max_body: 1 << 24,
        };
        let mut out = Vec::new();
        while let Some(d) = decode(&mut self.inbox, &limits, Version::V1_2).expect("decodes") {
            match d {
                Decoded::Frame(f) => out.push(f),
                Decoded::HeartBeat => {}
            }
        }
        out
    }

    /// Exactly one frame was written.
    pub(super) fn one(&mut self) -> Frame {
        let mut frames = self.frames();
        assert_eq!(frames.len(), 1, "expected one frame, got {frames:?}");
        frames.remove(0)
    }

    /// SUBSCRIBE with `id` to `dest`, acknowledged with a receipt.
    pub(super) fn subscribe(&mut self, id: &str, dest: &str, ack: &str) {
        self.send(
            Frame::new(Command::Subscribe)
                .with("id", id)
                .with("destination", dest)
                .with("ack", ack)
                .with("receipt", format!("sub-{id}")),
        );
        let r = self.one();
        assert_eq!(
            (r.command, r.header("receipt-id")),
            (Command::Receipt, Some(format!("sub-{id}").as_str())),
            "{r:?}"
        );
    }

    pub(super) fn send_to(&mut self, dest: &str, body: &str) {
        let mut f = Frame::new(Command::Send).with("destination", dest);
        f.body = bytes::Bytes::copy_from_slice(body.as_bytes());
        self.send(f);
    }
}

pub(super) fn connect(heart_beat: &str) -> Frame {
    Frame::new(Command::Connect)
        .with("accept-version", "1.2")
        .with("host", "/")
        .with("login", "guest")
        .with("passcode", "guest")
        .with("heart-beat", heart_beat)
}
