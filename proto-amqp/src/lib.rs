//! junction-amqp: the AMQP 0-9-1 adapter (RabbitMQ-compatible).

pub mod codec;
pub mod server;
pub mod session;

pub use server::AmqpAdapter;
