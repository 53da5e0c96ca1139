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
    UnspecifiedError = 0x80,
    MalformedPacket = 0x81,
    ProtocolError = 0x82,
    UnsupportedProtocolVersion = 0x84,
    ClientIdentifierNotValid = 0x85,
    BadUserNameOrPassword = 0x86,
    NotAuthorized = 0x87,
    ServerUnavailable = 0x88,
    ServerShuttingDown = 0x8B,
    BadAuthenticationMethod = 0x8C,
    KeepAliveTimeout = 0x8D,
    SessionTakenOver = 0x8E,
    TopicFilterInvalid = 0x8F,
    TopicNameInvalid = 0x90,
    PacketIdentifierNotFound = 0x92,
    ReceiveMaximumExceeded = 0x93,
    TopicAliasInvalid = 0x94,
    PacketTooLarge = 0x95,
    QuotaExceeded = 0x97,
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
