//! MQTT reason codes by name (MQTT 5.0 section 2.4; 3.1.1's CONNACK return codes are mapped
//! from these when encoding). The session speaks in these names; the codec puts the byte on the
//! wire.

/// A reason code Junction sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReasonCode {
    /// Success, granted QoS 0, normal disconnection.
    Success = 0x00,
    /// DISCONNECT: the client wants its will published.
    DisconnectWithWill = 0x04,
    /// PUBACK/PUBREC: accepted, but nothing subscribed to the topic.
    NoMatchingSubscribers = 0x10,
    /// Failed, with no more specific reason.
    UnspecifiedError = 0x80,
    /// The packet could not be parsed.
    MalformedPacket = 0x81,
    /// The packet broke the protocol.
    ProtocolError = 0x82,
    /// The protocol level is not supported.
    UnsupportedProtocolVersion = 0x84,
    /// The client id is not accepted.
    ClientIdentifierNotValid = 0x85,
    /// Bad user name or password.
    BadUserNameOrPassword = 0x86,
    /// Not authorized.
    NotAuthorized = 0x87,
    /// The server cannot serve the client now.
    ServerUnavailable = 0x88,
    /// The server is shutting down.
    ServerShuttingDown = 0x8B,
    /// The authentication method is not supported.
    BadAuthenticationMethod = 0x8C,
    /// Nothing came within the keep-alive.
    KeepAliveTimeout = 0x8D,
    /// Another connection took over the session.
    SessionTakenOver = 0x8E,
    /// The topic filter is not valid.
    TopicFilterInvalid = 0x8F,
    /// The topic name is not valid.
    TopicNameInvalid = 0x90,
    /// No such packet id in flight.
    PacketIdentifierNotFound = 0x92,
    /// More QoS 1/2 PUBLISHes than the receive maximum.
    ReceiveMaximumExceeded = 0x93,
    /// The topic alias is not valid.
    TopicAliasInvalid = 0x94,
    /// The packet is larger than allowed.
    PacketTooLarge = 0x95,
    /// A quota was exceeded.
    QuotaExceeded = 0x97,
    /// An operator closed the connection.
    AdministrativeAction = 0x98,
    /// The QoS is not supported.
    QosNotSupported = 0x9B,
}

impl ReasonCode {
    /// The byte on the wire.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Whether this reports a failure (0x80 and above).
    pub fn is_failure(self) -> bool {
        self.code() >= 0x80
    }
}

#[cfg(test)]
mod tests {
    use super::ReasonCode;

    #[test]
    fn codes_are_the_specs_bytes() {
        // MQTT 5.0, table 2-6.
        assert_eq!(ReasonCode::NotAuthorized.code(), 0x87);
        assert_eq!(ReasonCode::SessionTakenOver.code(), 0x8E);
        assert_eq!(ReasonCode::PacketTooLarge.code(), 0x95);
        assert!(ReasonCode::UnspecifiedError.is_failure());
        assert!(!ReasonCode::NoMatchingSubscribers.is_failure());
    }
}
