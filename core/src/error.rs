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
    /// The condition's name, as RabbitMQ spells it in every protocol's error text
    /// (`NOT_FOUND`, `ACCESS_REFUSED`, …). Adapters map the variant to their own codes.
    pub fn name(&self) -> &'static str {
        match self {
            CoreError::NotFound(_) => "NOT_FOUND",
            CoreError::AccessRefused(_) => "ACCESS_REFUSED",
            CoreError::ResourceLocked(_) => "RESOURCE_LOCKED",
            CoreError::PreconditionFailed(_) => "PRECONDITION_FAILED",
            CoreError::NotAllowed(_) => "NOT_ALLOWED",
            CoreError::NotImplemented(_) => "NOT_IMPLEMENTED",
            CoreError::ResourceError(_) => "RESOURCE_ERROR",
            CoreError::Internal(_) => "INTERNAL_ERROR",
        }
    }
}

/// Shorthand for core results.
pub type CoreResult<T> = Result<T, CoreError>;

/// `queue 'q' in vhost '/'`, the way RabbitMQ names things in reply texts.
pub fn describe(kind: &str, name: &str, vhost: &str) -> String {
    format!("no {kind} '{name}' in vhost '{vhost}'")
}
