//! The headers Junction sets on messages published over MQTT, and the topic prefix that names
//! a queue: what the session writes and the retained store reads back.

/// The QoS the message was published with.
pub const H_QOS: &str = "x-mqtt-publish-qos";
/// The publish's retain flag.
pub const H_RETAIN: &str = "x-mqtt-retain";
/// The publishing client's id.
pub const H_CLIENT: &str = "x-mqtt-client-id";
/// The publishing user.
pub const H_USER: &str = "x-mqtt-user";
/// An MQTT 5 response topic.
pub const H_REPLY_TOPIC: &str = "x-reply-to-topic";
/// MQTT 5 correlation data.
pub const H_CORRELATION: &str = "x-correlation-id";
/// MQTT 5 user properties as the list they are (an array of `[key, value]` arrays), when a key
/// came more than once; the headers then hold each key's first value.
pub const H_USER_PROPERTIES: &str = "x-mqtt-user-properties";

/// Topics under this prefix name a queue: `$reply/Q` publishes to the default exchange with
/// routing key Q. It is the response topic MQTT clients see for an AMQP or STOMP `reply_to`.
pub const REPLY_PREFIX: &str = "$reply/";
