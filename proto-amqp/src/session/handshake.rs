//! connection.start: what the server announces, and how start-ok's credentials are checked.

use crate::codec::types::{field_value, short_string};
use crate::codec::Method;
use bytes::Bytes;
use junction_core::auth::AuthUser;
use junction_core::runtime::TlsSession;
use junction_core::{Broker, CoreError, CoreResult, FieldTable, FieldValue};
use std::net::SocketAddr;

/// The capabilities RabbitMQ advertises, which clients check before using an extension.
const CAPABILITIES: [&str; 9] = [
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "consumer_priorities",
    "authentication_failure_close",
    "per_consumer_qos",
    "direct_reply_to",
];

/// connection.start as Junction sends it. EXTERNAL is offered when the TLS layer verified a
/// client certificate that names a user.
pub(super) fn start_method(tls: Option<&TlsSession>) -> Method {
    let mut caps = FieldTable::new();
    for c in CAPABILITIES {
        caps.insert(c, FieldValue::Bool(true));
    }
    let mut props = FieldTable::new();
    props.insert("capabilities", FieldValue::Table(caps));
    props.insert("cluster_name", FieldValue::string("junction"));
    props.insert("product", FieldValue::string("Junction"));
    props.insert("version", FieldValue::string(env!("CARGO_PKG_VERSION")));
    props.insert("platform", FieldValue::string("Rust"));
    props.insert(
        "information",
        FieldValue::string("Junction multi-protocol broker (AMQP 0-9-1, STOMP, MQTT)"),
    );
    Method::ConnectionStart {
        version_major: 0,
        version_minor: 9,
        server_properties: props,
        mechanisms: if certificate_user(tls).is_some() {
            Bytes::from_static(b"PLAIN AMQPLAIN EXTERNAL")
        } else {
            Bytes::from_static(b"PLAIN AMQPLAIN")
        },
        locales: Bytes::from_static(b"en_US"),
    }
}

fn certificate_user(tls: Option<&TlsSession>) -> Option<&str> {
    tls.and_then(|t| t.certificate_user.as_deref())
}

/// Checks start-ok's credentials with PLAIN (`\0user\0password`), AMQPLAIN (a table body
/// with LOGIN and PASSWORD) or EXTERNAL (the verified client certificate's user; the response
/// is ignored, as RabbitMQ's rabbitmq_auth_mechanism_ssl does).
pub(super) fn authenticate(
    broker: &Broker,
    mechanism: &str,
    response: &[u8],
    peer: Option<SocketAddr>,
    tls: Option<&TlsSession>,
) -> CoreResult<AuthUser> {
    let (user, pass) = match mechanism {
        "EXTERNAL" => {
            let Some(user) = certificate_user(tls) else {
                return Err(CoreError::AccessRefused(
                    "EXTERNAL login needs a verified TLS client certificate".to_string(),
                ));
            };
            return broker
                .auth()
                .authenticate_certificate(user, peer, "AMQP 0-9-1");
        }
        "PLAIN" => {
            let mut parts = response.split(|&b| b == 0);
            let _authzid = parts.next();
            let user = parts.next().unwrap_or_default();
            let pass = parts.next().unwrap_or_default();
            (
                String::from_utf8_lossy(user).into_owned(),
                String::from_utf8_lossy(pass).into_owned(),
            )
        }
        "AMQPLAIN" => amqplain(response)
            .ok_or_else(|| CoreError::AccessRefused("malformed AMQPLAIN response".to_string()))?,
        other => {
            return Err(CoreError::AccessRefused(format!(
                "unsupported authentication mechanism '{other}'"
            )))
        }
    };
    broker.auth().authenticate(&user, &pass, peer, "AMQP 0-9-1").map_err(|_| {
        CoreError::AccessRefused(format!(
            "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
        ))
    })
}

fn amqplain(mut body: &[u8]) -> Option<(String, String)> {
    let (mut user, mut pass) = (None, None);
    while !body.is_empty() {
        let (rest, name) = short_string(body).ok()?;
        let (rest, value) = field_value(rest, 2).ok()?;
        match name.as_str() {
            "LOGIN" => user = value.as_str().map(str::to_string),
            "PASSWORD" => pass = value.as_str().map(str::to_string),
            _ => {}
        }
        body = rest;
    }
    Some((user?, pass?))
}
