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
    /// MQTT 3.1.1 (protocol level 4).
    V4,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

/// MQTT 5 publish properties (empty for 3.1.1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PubProps {
    /// Payload format indicator (1: UTF-8).
    pub payload_format: Option<u8>,
    /// Message expiry interval, seconds.
    pub expiry: Option<u32>,
    /// Topic alias.
    pub topic_alias: Option<u16>,
    /// Response topic (request/response).
    pub response_topic: Option<String>,
    /// Correlation data (request/response).
    pub correlation_data: Option<Bytes>,
    /// User properties, in order.
    pub user_properties: Vec<(String, String)>,
    /// Subscription identifiers of the matching subscriptions.
    pub subscription_ids: Vec<usize>,
    /// Content type.
    pub content_type: Option<String>,
}

/// A will message from CONNECT.
#[derive(Debug, Clone, PartialEq)]
pub struct Will {
    /// The topic the will is published to.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
    /// Its QoS.
    pub qos: u8,
    /// Whether it is retained.
    pub retain: bool,
    /// Seconds to wait before publishing it (v5 will delay interval).
    pub delay: u32,
    /// Its MQTT 5 properties.
    pub props: PubProps,
}

/// What CONNECT asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectInfo {
    /// The protocol level.
    pub level: Level,
    /// The client id (may be empty).
    pub client_id: String,
    /// Clean session (3.1.1) / clean start (5.0).
    pub clean_start: bool,
    /// Keep-alive, seconds.
    pub keep_alive: u16,
    /// User name and password.
    pub login: Option<(String, String)>,
    /// The will.
    pub will: Option<Will>,
    /// v5 session expiry interval (3.1.1: 0 for clean sessions, forever otherwise).
    pub session_expiry: u32,
    /// How many QoS 1/2 PUBLISHes the client takes at once.
    pub receive_maximum: u16,
    /// The largest packet the client accepts.
    pub max_packet_size: Option<u32>,
    /// The highest topic alias the client accepts.
    pub topic_alias_max: u16,
    /// Enhanced authentication method (refused).
    pub auth_method: Option<String>,
    /// MQTT 3.1 (`MQIsdp`, level 3), decoded as 3.1.1: its CONNACK has no Session Present.
    pub legacy_31: bool,
}

/// A PUBLISH in either direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    /// A resend.
    pub dup: bool,
    /// Its QoS.
    pub qos: u8,
    /// The retain flag.
    pub retain: bool,
    /// The topic (may be empty with a topic alias).
    pub topic: String,
    /// The packet id (QoS 1/2).
    pub pkid: u16,
    /// MQTT 5 properties.
    pub props: PubProps,
    /// The payload.
    pub payload: Bytes,
}

/// One filter of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FilterReq {
    /// The topic filter.
    pub filter: String,
    /// The highest QoS wanted.
    pub qos: u8,
    /// Do not receive one's own publishes (v5).
    pub no_local: bool,
    /// Keep the retain flag as published (v5).
    pub retain_as_published: bool,
    /// 0 send retained, 1 only for a new subscription, 2 never.
    pub retain_handling: u8,
}

/// A packet from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// CONNECT.
    Connect(Box<ConnectInfo>),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK of a packet id.
    PubAck(u16),
    /// PUBREC of a packet id.
    PubRec(u16),
    /// PUBREL of a packet id.
    PubRel(u16),
    /// PUBCOMP of a packet id.
    PubComp(u16),
    /// SUBSCRIBE.
    Subscribe {
        /// Its packet id.
        pkid: u16,
        /// The filters asked for.
        filters: Vec<FilterReq>,
        /// The subscription identifier (v5).
        id: Option<usize>,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        /// Its packet id.
        pkid: u16,
        /// The filters to drop.
        filters: Vec<String>,
    },
    /// PINGREQ.
    PingReq,
    /// DISCONNECT.
    Disconnect {
        /// Its reason code (v5; 0 for 3.1.1).
        reason: u8,
        /// A new session expiry interval (v5).
        session_expiry: Option<u32>,
    },
    /// MQTT 5 AUTH (enhanced authentication), which Junction does not offer.
    Auth,
}

/// Why bytes could not be taken as a packet; each maps to a v5 reason code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    #[error("malformed packet: {0}")]
    /// Bytes that are not a valid packet.
    Malformed(String),
    #[error("packet of {0} bytes exceeds the maximum packet size")]
    /// A packet larger than the maximum packet size.
    TooLarge(usize),
    #[error("protocol error: {0}")]
    /// A packet out of place.
    Protocol(String),
    #[error("unsupported protocol level {0}")]
    /// A protocol level Junction does not speak.
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
mod properties;
mod reason;

pub use decode::decode;
pub use encode::{
    ack, connack, connack_refused_level, disconnect, pingresp, publish, suback, unsuback, Ack,
    ConnAckInfo,
};
pub use reason::ReasonCode;

#[cfg(test)]
mod must_close_tests;
#[cfg(test)]
mod tests;
