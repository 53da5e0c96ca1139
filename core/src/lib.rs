//! junction-core: the protocol-neutral routing core of Junction.
//!
//! Broker → VHost → {Exchange, Queue, Binding}, AMQP 0-9-1's model. Adapters publish into
//! vhosts and register consumers with bounded sinks; the core never learns which protocol is on
//! the other side.

pub mod access;
pub mod auth;
pub mod auth_backend;
pub mod authorized;
pub mod broker;
pub mod channels;
pub mod clock;
pub mod connection_id;
pub mod connections;
pub mod consumer;
mod dead_letter;
pub mod error;
pub mod exchange;
pub mod id_hash;
pub mod limits;
pub mod login_throttle;
pub mod message;
pub mod message_counts;
pub mod meta;
pub mod peer_rate;
pub mod permissions;
pub mod policy;
pub mod queue;
pub mod queue_args;
pub mod refusals;
pub mod runtime;
mod spare;
pub mod storage;
pub mod store;
pub mod topic;
pub mod value;
pub mod vhost;

pub use broker::{Broker, BrokerOptions};
pub use consumer::{
    same_queue, sink, ConsumerSpec, Credit, Delivery, DeliveryQueue, DeliveryReceiver,
    DeliverySink, Notices, SinkEvent,
};
pub use error::{CoreError, CoreResult};
pub use exchange::{Binding, Destination, ExchangeCounters, ExchangeDef, ExchangeKind, MATCH_BIT};
pub use message::{Message, Properties, SharedProperties};
pub use queue::{Enqueued, Fetched, Queue, QueueCounters, QueueDef, QueueSnapshot};
pub use value::{FieldTable, FieldValue};
pub use vhost::{DeclaredQueue, Routed, VHost};

#[cfg(test)]
mod consumer_tests;
#[cfg(test)]
mod match_bits_tests;
#[cfg(test)]
mod paging_tests;
#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod stats_tests;
#[cfg(test)]
mod tests;
