//! Which listeners a configuration opens: each protocol over TCP and over WebSocket, and when
//! `[tls]` is set the same again over TLS, as one list. One adapter per protocol serves all of
//! its listeners; a new protocol or transport is one more entry.

use crate::config::{Config, ListenerConfig, WsListenerConfig};
use crate::websocket::WsOptions;
use crate::BoundAddrs;
use junction_core::runtime::ProtocolAdapter;
use std::net::SocketAddr;
use std::sync::Arc;

/// How a listener carries its protocol (over TLS or not: [`ListenerSpec::tls`]).
pub(crate) enum ListenerTransport {
    Tcp,
    WebSocket(WsOptions),
}

/// One listener: a protocol, over a transport, on an address.
pub(crate) struct ListenerSpec {
    /// The name it is logged under ("AMQP", "STOMP over WebSocket", "MQTT over TLS").
    pub(crate) name: &'static str,
    pub(crate) adapter: Arc<dyn ProtocolAdapter>,
    pub(crate) transport: ListenerTransport,
    /// Whether each connection starts with a TLS handshake.
    pub(crate) tls: bool,
    pub(crate) address: SocketAddr,
    /// Where [`BoundAddrs`] reports it.
    pub(crate) bound_to: fn(&mut BoundAddrs) -> &mut Option<SocketAddr>,
}

const STOMP_SUBPROTOCOLS: &[&str] = &["v12.stomp", "v11.stomp", "v10.stomp", "stomp"];
const MQTT_SUBPROTOCOLS: &[&str] = &["mqtt", "mqttv3.1"];

type BoundTo = fn(&mut BoundAddrs) -> &mut Option<SocketAddr>;

/// The enabled client listeners of a configuration; the TLS ones only when `[tls]` is set.
pub(crate) fn listener_specs(
    cfg: &Config,
    mqtt: Arc<junction_mqtt::MqttAdapter>,
) -> Vec<ListenerSpec> {
    let amqp: Arc<dyn ProtocolAdapter> = Arc::new(junction_amqp::AmqpAdapter);
    let stomp: Arc<dyn ProtocolAdapter> = Arc::new(stomp_adapter(cfg));
    let mqtt: Arc<dyn ProtocolAdapter> = mqtt;
    let l = &cfg.listeners;
    let with_tls = cfg.tls.is_some();
    let mut specs = Vec::new();
    let mut tcp =
        |name, adapter: &Arc<dyn ProtocolAdapter>, c: &ListenerConfig, tls: bool, bound_to| {
            if c.enabled && (with_tls || !tls) {
                specs.push(ListenerSpec {
                    name,
                    adapter: adapter.clone(),
                    transport: ListenerTransport::Tcp,
                    tls,
                    address: c.socket_addr(),
                    bound_to,
                });
            }
        };
    tcp("AMQP", &amqp, &l.amqp, false, (|a| &mut a.amqp) as BoundTo);
    tcp("STOMP", &stomp, &l.stomp, false, |a| &mut a.stomp);
    tcp("MQTT", &mqtt, &l.mqtt, false, |a| &mut a.mqtt);
    tcp("AMQP over TLS", &amqp, &l.amqps, true, |a| &mut a.amqps);
    tcp("STOMP over TLS", &stomp, &l.stomps, true, |a| &mut a.stomps);
    tcp("MQTT over TLS", &mqtt, &l.mqtts, true, |a| &mut a.mqtts);
    let mut ws = |name,
                  adapter: &Arc<dyn ProtocolAdapter>,
                  c: &WsListenerConfig,
                  subprotocols,
                  tls: bool,
                  bound_to| {
        if c.enabled && (with_tls || !tls) {
            specs.push(ListenerSpec {
                name,
                adapter: adapter.clone(),
                transport: ListenerTransport::WebSocket(WsOptions {
                    path: c.path.clone(),
                    subprotocols,
                }),
                tls,
                address: c.socket_addr(),
                bound_to,
            });
        }
    };
    ws(
        "STOMP over WebSocket",
        &stomp,
        &l.stomp_ws,
        STOMP_SUBPROTOCOLS,
        false,
        (|a| &mut a.stomp_ws) as BoundTo,
    );
    ws(
        "MQTT over WebSocket",
        &mqtt,
        &l.mqtt_ws,
        MQTT_SUBPROTOCOLS,
        false,
        |a| &mut a.mqtt_ws,
    );
    ws(
        "STOMP over secure WebSocket",
        &stomp,
        &l.stomp_wss,
        STOMP_SUBPROTOCOLS,
        true,
        |a| &mut a.stomp_wss,
    );
    ws(
        "MQTT over secure WebSocket",
        &mqtt,
        &l.mqtt_wss,
        MQTT_SUBPROTOCOLS,
        true,
        |a| &mut a.mqtt_wss,
    );
    specs
}

/// The bound listeners as RabbitMQ's API names their protocols.
pub(crate) fn listed_listeners(a: &BoundAddrs) -> Vec<(&'static str, SocketAddr)> {
    [
        ("amqp", a.amqp),
        ("stomp", a.stomp),
        ("mqtt", a.mqtt),
        ("http/web-stomp", a.stomp_ws),
        ("http/web-mqtt", a.mqtt_ws),
        ("http", a.management),
        ("http/prometheus", a.prometheus),
        ("amqp/ssl", a.amqps),
        ("stomp/ssl", a.stomps),
        ("mqtt/ssl", a.mqtts),
        ("https/web-stomp", a.stomp_wss),
        ("https/web-mqtt", a.mqtt_wss),
        ("https", a.management_tls),
    ]
    .into_iter()
    .filter_map(|(p, addr)| addr.map(|addr| (p, addr)))
    .collect()
}

fn stomp_adapter(cfg: &Config) -> junction_stomp::StompAdapter {
    junction_stomp::StompAdapter {
        default_login: (!cfg.stomp.default_user.is_empty()).then(|| junction_stomp::DefaultLogin {
            login: cfg.stomp.default_user.clone(),
            passcode: cfg.stomp.default_pass.clone(),
        }),
    }
}
