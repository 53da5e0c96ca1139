//! The `[listeners]` section: one listener per protocol and transport, the TLS ones next to
//! the plain ones (opened only when `[tls]` is set).

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// One listener.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerConfig {
    /// Whether the listener is started.
    pub enabled: bool,
    /// The address to bind (0.0.0.0: every IPv4 and IPv6 address).
    pub address: IpAddr,
    /// The TCP port.
    pub port: u16,
}

impl ListenerConfig {
    fn on(port: u16) -> Self {
        ListenerConfig {
            enabled: true,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
        }
    }

    /// The address and port together.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig::on(0)
    }
}

fn amqp_default() -> ListenerConfig {
    ListenerConfig::on(5672)
}
fn stomp_default() -> ListenerConfig {
    ListenerConfig::on(61613)
}
fn mqtt_default() -> ListenerConfig {
    ListenerConfig::on(1883)
}

/// A WebSocket listener (RabbitMQ's Web-STOMP / Web-MQTT).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WsListenerConfig {
    /// Whether the listener is started.
    pub enabled: bool,
    /// The address to bind.
    pub address: IpAddr,
    /// The TCP port.
    pub port: u16,
    /// The HTTP path the upgrade is accepted on.
    pub path: String,
}

impl WsListenerConfig {
    fn on(port: u16) -> Self {
        WsListenerConfig {
            enabled: true,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
            path: "/ws".into(),
        }
    }

    /// The address and port together.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }
}

impl Default for WsListenerConfig {
    fn default() -> Self {
        WsListenerConfig::on(0)
    }
}

fn stomp_ws_default() -> WsListenerConfig {
    WsListenerConfig::on(15674)
}
fn mqtt_ws_default() -> WsListenerConfig {
    WsListenerConfig::on(15675)
}
fn management_default() -> ListenerConfig {
    ListenerConfig::on(15672)
}
fn prometheus_default() -> ListenerConfig {
    ListenerConfig::on(15692)
}
fn amqps_default() -> ListenerConfig {
    ListenerConfig::on(5671)
}
fn stomps_default() -> ListenerConfig {
    ListenerConfig::on(61614)
}
fn mqtts_default() -> ListenerConfig {
    ListenerConfig::on(8883)
}
fn stomp_wss_default() -> WsListenerConfig {
    WsListenerConfig::on(15673)
}
fn mqtt_wss_default() -> WsListenerConfig {
    WsListenerConfig::on(15676)
}
fn management_tls_default() -> ListenerConfig {
    ListenerConfig::on(15671)
}

/// The listeners, one per protocol and transport.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listeners {
    #[serde(default = "amqp_default")]
    /// AMQP 0-9-1 (5672).
    pub amqp: ListenerConfig,
    #[serde(default = "stomp_default")]
    /// STOMP (61613).
    pub stomp: ListenerConfig,
    #[serde(default = "mqtt_default")]
    /// MQTT (1883).
    pub mqtt: ListenerConfig,
    #[serde(default = "stomp_ws_default")]
    /// STOMP over WebSocket (15674).
    pub stomp_ws: WsListenerConfig,
    #[serde(default = "mqtt_ws_default")]
    /// MQTT over WebSocket (15675).
    pub mqtt_ws: WsListenerConfig,
    #[serde(default = "management_default")]
    /// The management HTTP API (15672).
    pub management: ListenerConfig,
    #[serde(default = "prometheus_default")]
    /// Prometheus metrics (15692, rabbitmq_prometheus's port).
    pub prometheus: ListenerConfig,
    #[serde(default = "amqps_default")]
    /// AMQP 0-9-1 over TLS (5671), when `[tls]` is set.
    pub amqps: ListenerConfig,
    #[serde(default = "stomps_default")]
    /// STOMP over TLS (61614), when `[tls]` is set.
    pub stomps: ListenerConfig,
    #[serde(default = "mqtts_default")]
    /// MQTT over TLS (8883), when `[tls]` is set.
    pub mqtts: ListenerConfig,
    #[serde(default = "stomp_wss_default")]
    /// STOMP over secure WebSocket (15673), when `[tls]` is set.
    pub stomp_wss: WsListenerConfig,
    #[serde(default = "mqtt_wss_default")]
    /// MQTT over secure WebSocket (15676), when `[tls]` is set.
    pub mqtt_wss: WsListenerConfig,
    #[serde(default = "management_tls_default")]
    /// The management HTTP API over HTTPS (15671), when `[tls]` is set.
    pub management_tls: ListenerConfig,
}

impl Default for Listeners {
    fn default() -> Self {
        Listeners {
            amqp: amqp_default(),
            stomp: stomp_default(),
            mqtt: mqtt_default(),
            stomp_ws: stomp_ws_default(),
            mqtt_ws: mqtt_ws_default(),
            management: management_default(),
            prometheus: prometheus_default(),
            amqps: amqps_default(),
            stomps: stomps_default(),
            mqtts: mqtts_default(),
            stomp_wss: stomp_wss_default(),
            mqtt_wss: mqtt_wss_default(),
            management_tls: management_tls_default(),
        }
    }
}
