//! The connection runtime: what every protocol adapter runs its sessions on — the adapter
//! trait and a connection's context, the one connection loop (`driver`), and the outbound
//! buffer. Not the routing core: the core's routing modules never import from here; the
//! runtime and the `proto-*` crates import from them.

pub mod adapter;
pub mod driver;
pub mod harness;
pub mod outbox;
pub mod write_buf;

pub use adapter::{
    AmqpLimits, ConnectionContext, Limits, MqttLimits, ProtocolAdapter, ServeError, StompLimits,
    TlsSession, Transport,
};
pub use outbox::Outbox;
pub use write_buf::WriteBuf;
