//! MQTT session tests without sockets: packets and clock values in, packets out, on a broker
//! with in-memory stores and a manual clock (which the registry's expiry reads too).

mod connect;
mod flows;
mod match_bits;
mod sessions;

use super::Session;
use crate::registry::Registry;
use crate::server::MqttAdapter;
use bytes::{Bytes, BytesMut};
use junction_core::clock::Clock;
use junction_core::runtime::driver::Session as _;
use junction_core::runtime::harness::Harness;
use junction_core::runtime::Limits;
use junction_core::{Broker, BrokerOptions};
use mqttbytes::v4::{self, Packet};
use mqttbytes::QoS;
use std::sync::Arc;

/// A broker on a manual clock and its MQTT registry (retained store tap included).
pub(super) fn broker() -> (Arc<Broker>, Arc<Registry>) {
    let b = Broker::new(BrokerOptions {
        clock: Arc::new(Clock::manual()),
        ..BrokerOptions::default()
    })
    .expect("in-memory broker");
    let registry = MqttAdapter::durable(&b).registry;
    (b, registry)
}

/// One MQTT 3.1.1 client under the harness.
pub(super) struct Client {
    pub h: Harness<Session>,
    inbox: BytesMut,
    /// Packets decoded but not yet looked at.
    pending: Vec<Packet>,
}

impl Client {
    pub(super) fn new(b: &(Arc<Broker>, Arc<Registry>)) -> Client {
        let reg = b.1.clone();
        Client {
            h: Harness::new(b.0.clone(), Limits::default(), move |ctx, tx| {
                Session::new(ctx, reg, tx, 0)
            }),
            inbox: BytesMut::new(),
            pending: Vec::new(),
        }
    }

    /// Connected with `id` (clean session as given, keep-alive off), CONNACK checked.
    pub(super) fn connected(b: &(Arc<Broker>, Arc<Registry>), id: &str, clean: bool) -> Client {
        let mut c = Client::new(b);
        let ack = c.connect(connect(id, clean, 0));
        assert_eq!(ack.code, v4::ConnectReturnCode::Success, "{ack:?}");
        c
    }

    /// Sends CONNECT and returns the CONNACK (what follows it stays for [`Client::packets`]).
    pub(super) fn connect(&mut self, p: v4::Connect) -> v4::ConnAck {
        self.send_v4(|out| p.write(out));
        match self.first() {
            Some(Packet::ConnAck(a)) => a,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// The first packet written, the rest kept for later.
    fn first(&mut self) -> Option<Packet> {
        let mut all = self.packets();
        if all.is_empty() {
            return None;
        }
        let first = all.remove(0);
        self.pending = all;
        Some(first)
    }

    /// Encodes one packet with `write` and feeds it.
    pub(super) fn send_v4(
        &mut self,
        write: impl FnOnce(&mut BytesMut) -> Result<usize, mqttbytes::Error>,
    ) {
        let mut out = BytesMut::new();
        write(&mut out).expect("encodes");
        self.h.feed(&out);
    }

    /// Packets written since the last call.
    pub(super) fn packets(&mut self) -> Vec<Packet> {
        self.inbox.extend_from_slice(&self.h.take_output());
        let mut out = std::mem::take(&mut self.pending);
        loop {
            match v4::read(&mut self.inbox, 1 << 24) {
                Ok(p) => out.push(p),
                Err(mqttbytes::Error::InsufficientBytes(_)) => return out,
                Err(e) => panic!("server packet did not decode: {e:?}"),
            }
        }
    }

    pub(super) fn subscribe(
        &mut self,
        pkid: u16,
        filter: &str,
        qos: QoS,
    ) -> Vec<v4::SubscribeReasonCode> {
        let mut s = v4::Subscribe::new(filter, qos);
        s.pkid = pkid;
        self.send_v4(|out| s.write(out));
        match self.first() {
            Some(Packet::SubAck(a)) => {
                assert_eq!(a.pkid, pkid);
                a.return_codes
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    pub(super) fn publish(
        &mut self,
        topic: &str,
        qos: QoS,
        pkid: u16,
        retain: bool,
        payload: &str,
    ) {
        let mut p = v4::Publish::new(topic, qos, payload.as_bytes().to_vec());
        p.pkid = pkid;
        p.retain = retain;
        self.send_v4(|out| p.write(out));
    }

    /// The PUBLISHes among the packets written since the last call.
    pub(super) fn publishes(&mut self) -> Vec<v4::Publish> {
        self.packets()
            .into_iter()
            .filter_map(|p| match p {
                Packet::Publish(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    /// The connection ends without DISCONNECT (as the driver's `finish` does).
    pub(super) fn drop_connection(mut self) -> Option<super::PendingWill> {
        self.h.session.finish()
    }
}

pub(super) fn connect(id: &str, clean: bool, keep_alive: u16) -> v4::Connect {
    let mut c = v4::Connect::new(id);
    c.clean_session = clean;
    c.keep_alive = keep_alive;
    c.login = Some(v4::Login::new("guest", "guest"));
    c
}

pub(super) fn payload(p: &v4::Publish) -> Bytes {
    p.payload.clone()
}
