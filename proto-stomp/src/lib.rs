//! junction-stomp: the STOMP 1.0/1.1/1.2 adapter (RabbitMQ STOMP plugin compatible).

pub mod codec;
pub mod destination;
pub mod headers;
pub mod server;
pub mod session;

pub use server::StompAdapter;
pub use session::DefaultLogin;
