//! STOMP 1.0/1.1/1.2 codec: bytes ⇄ frames, pure functions with no I/O.
//!
//! A frame is a command line, header lines, an empty line, a body and a NUL. Lines end with LF
//! or CRLF; EOLs between frames are heart-beats. Header values are escaped in 1.1 (`\n \c \\`)
//! and 1.2 (also `\r`), never in CONNECT/CONNECTED frames and never in 1.0.

mod decode;
mod encode;

pub use decode::decode;
pub use encode::encode;

use bytes::Bytes;
use thiserror::Error;

/// STOMP protocol versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// STOMP 1.0.
    V1_0,
    /// STOMP 1.1.
    V1_1,
    /// STOMP 1.2.
    V1_2,
}

impl Version {
    /// The version as `accept-version` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// A version from its spelling.
    pub fn parse(s: &str) -> Option<Version> {
        match s.trim() {
            "1.0" => Some(Version::V1_0),
            "1.1" => Some(Version::V1_1),
            "1.2" => Some(Version::V1_2),
            _ => None,
        }
    }
}

/// Frame commands, client and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// CONNECT.
    Connect,
    /// STOMP (1.1+ spelling of CONNECT).
    Stomp,
    /// SEND.
    Send,
    /// SUBSCRIBE.
    Subscribe,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// ACK.
    Ack,
    /// NACK.
    Nack,
    /// BEGIN.
    Begin,
    /// COMMIT.
    Commit,
    /// ABORT.
    Abort,
    /// DISCONNECT.
    Disconnect,
    /// CONNECTED.
    Connected,
    /// MESSAGE.
    Message,
    /// RECEIPT.
    Receipt,
    /// ERROR.
    Error,
}

impl Command {
    /// A command from its line.
    pub fn parse(s: &[u8]) -> Option<Command> {
        Some(match s {
            b"CONNECT" => Command::Connect,
            b"STOMP" => Command::Stomp,
            b"SEND" => Command::Send,
            b"SUBSCRIBE" => Command::Subscribe,
            b"UNSUBSCRIBE" => Command::Unsubscribe,
            b"ACK" => Command::Ack,
            b"NACK" => Command::Nack,
            b"BEGIN" => Command::Begin,
            b"COMMIT" => Command::Commit,
            b"ABORT" => Command::Abort,
            b"DISCONNECT" => Command::Disconnect,
            b"CONNECTED" => Command::Connected,
            b"MESSAGE" => Command::Message,
            b"RECEIPT" => Command::Receipt,
            b"ERROR" => Command::Error,
            _ => return None,
        })
    }

    /// Every command, client and server.
    pub const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Connected,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    /// True when `partial`, the start of a command line with no LF yet, can still become a
    /// command (an optional CR may end it): random bytes are refused before a line ends.
    pub fn may_start(partial: &[u8]) -> bool {
        let partial = partial.strip_suffix(b"\r").unwrap_or(partial);
        Command::ALL
            .iter()
            .any(|c| c.as_str().as_bytes().starts_with(partial))
    }

    /// The command's line.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Connected => "CONNECTED",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// CONNECT, STOMP and CONNECTED headers are never escaped.
    fn escapes(self, v: Version) -> bool {
        v != Version::V1_0
            && !matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }
}

/// One frame. Headers keep their order; lookups take the first of repeated names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The command.
    pub command: Command,
    /// The headers, in order (repeated ones kept).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl Frame {
    /// A frame with no headers and no body.
    pub fn new(command: Command) -> Frame {
        Frame {
            command,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Adds a header.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Frame {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// What the decoder produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame.
    Frame(Frame),
    /// One or more EOLs between frames.
    HeartBeat,
}

/// What the decoder enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Headers per frame.
    pub max_headers: usize,
    /// Bytes per header line.
    pub max_header_length: usize,
    /// Body bytes.
    pub max_body: usize,
}

/// A frame that cannot be accepted; the session answers with an ERROR frame and closes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    #[error("unknown command '{0}'")]
    /// A command line STOMP does not define.
    UnknownCommand(String),
    #[error("too many headers (limit {0})")]
    /// More headers than allowed.
    TooManyHeaders(usize),
    #[error("header line too long (limit {0} bytes)")]
    /// A header line longer than allowed.
    HeaderTooLong(usize),
    #[error("malformed header line")]
    /// A header line without a colon.
    MalformedHeader,
    #[error("undefined escape sequence in header")]
    /// An escape sequence STOMP does not define.
    BadEscape,
    #[error("invalid content-length")]
    /// A content-length that is not a number.
    BadContentLength,
    #[error("body too large (limit {0} bytes)")]
    /// A body larger than allowed.
    BodyTooLarge(usize),
    #[error("frame body not terminated by NUL")]
    /// The frame does not end with NUL.
    MissingNul,
    #[error("header is not valid UTF-8")]
    /// The frame is not UTF-8.
    NotUtf8,
}

#[cfg(test)]
mod tests;
