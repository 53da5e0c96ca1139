//! MQTT 3.1.1 and 5.0 packets, version-neutral, on top of mqttbytes; no I/O.
//!
//! mqttbytes decodes and encodes the packets; this module picks the version from CONNECT, fills
//! the gaps (AUTH, a v5 DISCONNECT with no reason code, protocol level 3) and hands the session
//! one packet type whatever the version.

use bytes::{BufMut, Bytes, BytesMut};
use junction_core::runtime::WriteBuf;
use mqttbytes::{v4, v5, QoS};
use thiserror::Error;

/// Protocol level chosen by CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    V4,
    V5,
}

/// MQTT 5 publish properties (empty for 3.1.1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PubProps {
    pub payload_format: Option<u8>,
    pub expiry: Option<u32>,
    pub topic_alias: Option<u16>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<(String, String)>,
    pub subscription_ids: Vec<usize>,
    pub content_type: Option<String>,
}

/// A will message from CONNECT.
#[derive(Debug, Clone, PartialEq)]
pub struct Will {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// Seconds to wait before publishing it (v5 will delay interval).
    pub delay: u32,
    pub props: PubProps,
}

/// What CONNECT asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectInfo {
    pub level: Level,
    pub client_id: String,
    pub clean_start: bool,
    pub keep_alive: u16,
    pub login: Option<(String, String)>,
    pub will: Option<Will>,
    /// v5 session expiry interval (3.1.1: 0 for clean sessions, forever otherwise).
    pub session_expiry: u32,
    pub receive_maximum: u16,
    pub max_packet_size: Option<u32>,
    pub topic_alias_max: u16,
    pub auth_method: Option<String>,
    /// MQTT 3.1 (`MQIsdp`, level 3), decoded as 3.1.1: its CONNACK has no Session Present.
    pub legacy_31: bool,
}

/// A PUBLISH in either direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub dup: bool,
    pub qos: u8,
    pub retain: bool,
    pub topic: String,
    pub pkid: u16,
    pub props: PubProps,
    pub payload: Bytes,
}

/// One filter of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FilterReq {
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 0 send retained, 1 only for a new subscription, 2 never.
    pub retain_handling: u8,
}

/// A packet from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Connect(Box<ConnectInfo>),
    Publish(Publish),
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    Subscribe {
        pkid: u16,
        filters: Vec<FilterReq>,
        id: Option<usize>,
    },
    Unsubscribe {
        pkid: u16,
        filters: Vec<String>,
    },
    PingReq,
    Disconnect {
        reason: u8,
        session_expiry: Option<u32>,
    },
    /// MQTT 5 AUTH (enhanced authentication), which Junction does not offer.
    Auth,
}

/// Why bytes could not be taken as a packet; each maps to a v5 reason code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    #[error("malformed packet: {0}")]
    Malformed(String),
    #[error("packet of {0} bytes exceeds the maximum packet size")]
    TooLarge(usize),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("unsupported protocol level {0}")]
    UnsupportedLevel(u8),
}

impl CodecError {
    /// The MQTT 5 reason code for a DISCONNECT (or CONNACK) about this error.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            CodecError::Malformed(_) => ReasonCode::MalformedPacket,
            CodecError::TooLarge(_) => ReasonCode::PacketTooLarge,
            CodecError::Protocol(_) => ReasonCode::ProtocolError,
            CodecError::UnsupportedLevel(_) => ReasonCode::UnsupportedProtocolVersion,
        }
    }
}

fn qos_u8(q: QoS) -> u8 {
    q as u8
}

fn qos_of(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn map_err(e: mqttbytes::Error) -> CodecError {
    match e {
        mqttbytes::Error::PayloadSizeLimitExceeded(n) => CodecError::TooLarge(n),
        mqttbytes::Error::UnexpectedConnect => CodecError::Protocol("second CONNECT".into()),
        other => CodecError::Malformed(format!("{other:?}")),
    }
}

mod decode;
mod encode;
mod reason;

pub use decode::decode;
pub use encode::{
    ack, connack, connack_refused_level, disconnect, pingresp, publish, suback, unsuback, Ack,
    ConnAckInfo,
};
pub use reason::ReasonCode;

#[cfg(test)]
mod tests;
