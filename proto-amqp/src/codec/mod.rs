//! AMQP 0-9-1 codec: bytes ⇄ frames, pure functions with no I/O.

pub mod error;
pub mod frame;
pub mod methods;
pub mod properties;
pub mod types;

pub use error::CodecError;
pub use frame::{
    decode, decode_protocol_header, encode_content, encode_heartbeat, encode_method_frame, Frame,
    Limits, PROTOCOL_HEADER,
};
pub use methods::Method;
pub use properties::ContentHeader;
