//! Errors of the routing core, each carrying the AMQP reply code that names it on the wire.
//!
//! Adapters map these once: AMQP to channel.close with the code, STOMP to an ERROR frame,
//! MQTT to a reason code.

use thiserror::Error;

/// A failed core operation.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CoreError {
    /// 404: a named exchange, queue or vhost does not exist.
    #[error("NOT_FOUND - {0}")]
    NotFound(String),
    /// 403: the operation is not permitted for this user or on this object.
    #[error("ACCESS_REFUSED - {0}")]
    AccessRefused(String),
    /// 405: an exclusive queue owned by another connection.
    #[error("RESOURCE_LOCKED - {0}")]
    ResourceLocked(String),
    /// 406: the object exists with other settings, or a precondition fails.
    #[error("PRECONDITION_FAILED - {0}")]
    PreconditionFailed(String),
    /// 530: not allowed in this state (e.g. a vhost that is being deleted).
    #[error("NOT_ALLOWED - {0}")]
    NotAllowed(String),
    /// 540: a feature Junction does not implement.
    #[error("NOT_IMPLEMENTED - {0}")]
    NotImplemented(String),
    /// 506: a resource limit was hit.
    #[error("RESOURCE_ERROR - {0}")]
    ResourceError(String),
    /// 541: a broker-side failure (e.g. storage).
    #[error("INTERNAL_ERROR - {0}")]
    Internal(String),
}

impl CoreError {
    /// The AMQP 0-9-1 reply code.
    pub fn reply_code(&self) -> u16 {
        match self {
            CoreError::NotFound(_) => 404,
            CoreError::AccessRefused(_) => 403,
            CoreError::ResourceLocked(_) => 405,
            CoreError::PreconditionFailed(_) => 406,
            CoreError::NotAllowed(_) => 530,
            CoreError::NotImplemented(_) => 540,
            CoreError::ResourceError(_) => 506,
            CoreError::Internal(_) => 541,
        }
    }

    /// True when the AMQP spec makes this a connection-level (hard) error.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            CoreError::NotAllowed(_)
                | CoreError::NotImplemented(_)
                | CoreError::ResourceError(_)
                | CoreError::Internal(_)
        )
    }
}

/// Shorthand for core results.
pub type CoreResult<T> = Result<T, CoreError>;

/// `queue 'q' in vhost '/'`, the way RabbitMQ names things in reply texts.
pub fn describe(kind: &str, name: &str, vhost: &str) -> String {
    format!("no {kind} '{name}' in vhost '{vhost}'")
}
