//! junction-mqtt: the MQTT 3.1.1 and 5.0 adapter (RabbitMQ MQTT plugin and Mosquitto
//! compatible). Topics meet AMQP and STOMP traffic on `amq.topic`.

pub mod codec;
pub mod headers;
pub mod registry;
pub mod server;
pub mod session;
pub mod topic;

pub use server::MqttAdapter;
