//! Why a STOMP frame was refused: one type for every refusal of an open session, which becomes
//! an ERROR frame (its `message` header and its body) in one place.

use crate::codec::Command;
use junction_core::CoreError;

/// A refused frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StompError {
    /// A header the command needs is absent.
    MissingHeader { header: String, command: Command },
    /// A transaction that was not begun, or is begun twice.
    BadTransaction { id: String, begun: bool },
    /// A server frame sent by the client.
    BadCommand(Command),
    /// SUBSCRIBE with an id the session already uses.
    DuplicateSubscription(String),
    /// An `ack` header value STOMP does not define.
    BadAckMode(String),
    /// UNSUBSCRIBE of an id the session does not have.
    NoSubscription(String),
    /// ACK/NACK of a message not awaiting acknowledgement.
    BadAckId(String),
    /// ACK/NACK with an id that is not one this server hands out.
    UnknownAckId(String),
    /// A destination that does not parse (the reason).
    BadDestination(String),
    /// What the core refused.
    Core(CoreError),
}

impl StompError {
    /// The ERROR frame's `message` header (RabbitMQ's wording).
    pub(super) fn message(&self) -> String {
        let text = match self {
            StompError::MissingHeader { header, .. } => {
                return format!("Missing '{header}' header")
            }
            StompError::BadTransaction { .. } => "Bad transaction",
            StompError::BadCommand(_) => "Bad command",
            StompError::DuplicateSubscription(_) => "Duplicated subscription identifier",
            StompError::BadAckMode(_) => "Bad ack mode",
            StompError::NoSubscription(_) => "Bad subscription",
            StompError::BadAckId(_) | StompError::UnknownAckId(_) => "Bad ack id",
            StompError::BadDestination(_) => "Bad destination",
            StompError::Core(e) => match e {
                CoreError::NotFound(_) => "not_found",
                CoreError::AccessRefused(_) => "access_refused",
                CoreError::ResourceLocked(_) => "resource_locked",
                CoreError::PreconditionFailed(_) => "precondition_failed",
                _ => "internal_error",
            },
        };
        text.to_string()
    }

    /// The ERROR frame's body: what exactly was wrong.
    pub(super) fn detail(&self) -> String {
        match self {
            StompError::MissingHeader { header, command } => {
                format!("{} frames need a '{header}' header", command.as_str())
            }
            StompError::BadTransaction { id, begun: false } => {
                format!("transaction '{id}' was not begun")
            }
            StompError::BadTransaction { id, begun: true } => {
                format!("transaction '{id}' already begun")
            }
            StompError::BadCommand(c) => format!("{} is not a client frame", c.as_str()),
            StompError::DuplicateSubscription(id) => format!("subscription '{id}' already exists"),
            StompError::BadAckMode(m) => format!("unknown ack mode '{m}'"),
            StompError::NoSubscription(id) => format!("no subscription '{id}'"),
            StompError::BadAckId(id) => format!("message '{id}' is not awaiting acknowledgement"),
            StompError::UnknownAckId(id) => format!("unknown message '{id}'"),
            StompError::BadDestination(why) => why.clone(),
            StompError::Core(e) => e.to_string(),
        }
    }
}

impl From<CoreError> for StompError {
    fn from(e: CoreError) -> Self {
        StompError::Core(e)
    }
}
