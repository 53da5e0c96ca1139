//! Helpers for tests of the management API: a `rabbitmq_http_client` client for a test broker,
//! RabbitMQ-style password hashes, and raw HTTP requests for status codes and bodies.

use crate::{within, TestBroker};
use rabbitmq_http_client::api::Client;
use rabbitmq_http_client::password_hashing;
use serde_json::Value;

/// The async client of RabbitMQ's API with string credentials.
pub type Api = Client<String, String, String>;

/// The API's base URL on the test broker.
pub fn endpoint(b: &TestBroker) -> String {
    format!(
        "http://{}/api",
        b.addrs.management.expect("management listener")
    )
}

/// A client of the test broker's API logged in as `user`.
pub fn client(b: &TestBroker, user: &str, pass: &str) -> Api {
    Client::new(endpoint(b), user.to_string(), pass.to_string())
}

/// A salted SHA-256 hash of `password`, computed by the client crate as RabbitMQ does.
pub fn hash(password: &str) -> String {
    let salt = password_hashing::salt();
    password_hashing::base64_encoded_salted_password_hash_sha256(&salt, password)
}

/// One raw HTTP request: status, headers and the body as JSON (`Null` when empty).
pub async fn send(
    b: &TestBroker,
    method: reqwest::Method,
    path: &str,
    auth: Option<(&str, &str)>,
    body: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = format!("http://{}{path}", b.addrs.management.expect("listener"));
    let mut req = reqwest::Client::new().request(method, url);
    if let Some((u, p)) = auth {
        req = req.basic_auth(u, Some(p));
    }
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let resp = within(req.send()).await.expect("HTTP request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = within(resp.text()).await.expect("body");
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, headers, json)
}

/// The `error` and `reason` of a refusal's JSON body.
pub fn reason_of(body: &Value) -> (&str, &str) {
    (
        body["error"].as_str().expect("error field"),
        body["reason"].as_str().expect("reason field"),
    )
}
