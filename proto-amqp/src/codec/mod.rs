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

/// A basic-class content header payload (for tests and tools that build frames by hand).
pub fn properties_payload(
    body_size: u64,
    properties: &junction_core::Properties,
    out: &mut bytes::BytesMut,
) {
    properties::encode_content_header(methods::class::BASIC, body_size, properties, out);
}

#[cfg(test)]
mod tests;
