//! Codec errors, each with the AMQP reply code the connection closes with.

use thiserror::Error;

/// A frame that cannot be accepted. All of these are connection errors in AMQP 0-9-1.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// 501: bad frame type, frame end, or a frame over frame_max.
    #[error("FRAME_ERROR - {0}")]
    Frame(String),
    /// 502: a method's arguments could not be parsed.
    #[error("SYNTAX_ERROR - {text}")]
    Syntax {
        /// What was wrong.
        text: String,
        /// The class of the method concerned.
        class_id: u16,
        /// The method concerned.
        method_id: u16,
    },
    /// 540: a class/method this broker does not know.
    #[error("NOT_IMPLEMENTED - unknown method {class_id}/{method_id}")]
    UnknownMethod {
        /// The class id received.
        class_id: u16,
        /// The method id received.
        method_id: u16,
    },
    /// The peer sent something other than the AMQP 0-9-1 protocol header.
    #[error("bad protocol header")]
    BadProtocolHeader,
}

impl CodecError {
    /// The AMQP reply code the connection is closed with.
    pub fn reply_code(&self) -> u16 {
        match self {
            CodecError::Frame(_) | CodecError::BadProtocolHeader => 501,
            CodecError::Syntax { .. } => 502,
            CodecError::UnknownMethod { .. } => 540,
        }
    }

    /// The class and method the error concerns (0, 0 when none).
    pub fn ids(&self) -> (u16, u16) {
        match *self {
            CodecError::Syntax {
                class_id,
                method_id,
                ..
            }
            | CodecError::UnknownMethod {
                class_id,
                method_id,
            } => (class_id, method_id),
            _ => (0, 0),
        }
    }
}
