//! Errors the session answers with channel.close or connection.close.

use junction_core::CoreError;

/// AMQP reply codes used by the session.
pub mod code {
    /// The server closes the connection (shutdown, forced close).
    pub const CONNECTION_FORCED: u16 = 320;
    /// A mandatory message could not be routed (basic.return).
    pub const NO_ROUTE: u16 = 312;
    /// The user may not do this.
    pub const ACCESS_REFUSED: u16 = 403;
    /// A named entity does not exist.
    pub const NOT_FOUND: u16 = 404;
    /// An exclusive queue of another connection.
    pub const RESOURCE_LOCKED: u16 = 405;
    /// The entity exists with other settings, or a precondition failed.
    pub const PRECONDITION_FAILED: u16 = 406;
    /// A frame that does not parse.
    pub const FRAME_ERROR: u16 = 501;
    /// A method that is not valid here.
    pub const COMMAND_INVALID: u16 = 503;
    /// A channel that is not open, or a second channel.open.
    pub const CHANNEL_ERROR: u16 = 504;
    /// A frame of the wrong type at this point.
    pub const UNEXPECTED_FRAME: u16 = 505;
    /// Not allowed in this state (e.g. a vhost the user may not use).
    pub const NOT_ALLOWED: u16 = 530;
    /// Not implemented.
    pub const NOT_IMPLEMENTED: u16 = 540;
    /// A limit was reached.
    pub const RESOURCE_ERROR: u16 = 506;
    /// The server failed.
    pub const INTERNAL_ERROR: u16 = 541;
}

/// The reply code of a core error, and whether the spec makes it a connection (hard) error.
fn reply_code(e: &CoreError) -> (u16, bool) {
    match e {
        CoreError::NotFound(_) => (code::NOT_FOUND, false),
        CoreError::AccessRefused(_) => (code::ACCESS_REFUSED, false),
        CoreError::ResourceLocked(_) => (code::RESOURCE_LOCKED, false),
        CoreError::PreconditionFailed(_) => (code::PRECONDITION_FAILED, false),
        CoreError::NotAllowed(_) => (code::NOT_ALLOWED, true),
        CoreError::NotImplemented(_) => (code::NOT_IMPLEMENTED, true),
        CoreError::ResourceError(_) => (code::RESOURCE_ERROR, true),
        CoreError::Internal(_) => (code::INTERNAL_ERROR, true),
    }
}

/// A failure and where it lands: on the channel, or on the whole connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpError {
    /// Closes the connection (else the channel).
    pub connection: bool,
    /// The reply code.
    pub code: u16,
    /// The reply text.
    pub text: String,
    /// The class of the method that failed.
    pub class_id: u16,
    /// The method that failed.
    pub method_id: u16,
}

impl AmqpError {
    /// A channel error: channel.close with `code`.
    pub fn channel(code: u16, text: impl Into<String>, ids: (u16, u16)) -> Self {
        AmqpError {
            connection: false,
            code,
            text: text.into(),
            class_id: ids.0,
            method_id: ids.1,
        }
    }

    /// A connection error: connection.close with `code`.
    pub fn connection(code: u16, text: impl Into<String>, ids: (u16, u16)) -> Self {
        AmqpError {
            connection: true,
            ..Self::channel(code, text, ids)
        }
    }

    /// Maps a core error raised by the method `ids`: its reply code, on the channel or —
    /// where the spec makes it a hard error — on the connection.
    pub fn core(e: CoreError, ids: (u16, u16)) -> Self {
        let (code, hard) = reply_code(&e);
        if hard {
            Self::connection(code, e.to_string(), ids)
        } else {
            Self::channel(code, e.to_string(), ids)
        }
    }

    /// Maps a core error raised during the handshake, where every error closes the connection.
    pub fn core_on_connection(e: CoreError, ids: (u16, u16)) -> Self {
        Self::connection(reply_code(&e).0, e.to_string(), ids)
    }

    /// The reply text as sent: RabbitMQ prefixes it with the code's name.
    pub fn reply_text(&self) -> String {
        let name = match self.code {
            code::CONNECTION_FORCED => "CONNECTION_FORCED",
            code::ACCESS_REFUSED => "ACCESS_REFUSED",
            code::NOT_FOUND => "NOT_FOUND",
            code::RESOURCE_LOCKED => "RESOURCE_LOCKED",
            code::PRECONDITION_FAILED => "PRECONDITION_FAILED",
            code::FRAME_ERROR => "FRAME_ERROR",
            502 => "SYNTAX_ERROR",
            code::COMMAND_INVALID => "COMMAND_INVALID",
            code::CHANNEL_ERROR => "CHANNEL_ERROR",
            code::UNEXPECTED_FRAME => "UNEXPECTED_FRAME",
            506 => "RESOURCE_ERROR",
            code::NOT_ALLOWED => "NOT_ALLOWED",
            code::NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
            _ => "INTERNAL_ERROR",
        };
        if self.text.starts_with(name) {
            self.text.clone()
        } else {
            format!("{name} - {}", self.text)
        }
    }
}

/// Results of the session's handling.
pub type AmqpResult<T> = Result<T, AmqpError>;
