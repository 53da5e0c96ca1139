//! How `junction ctl` reaches a node: HTTP/1.1 to its management API, with basic credentials
//! or the local credential. One request per connection; every call has a deadline.

use super::CtlError;
use crate::local_credential;
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::time::Duration;

/// How the client proves who it is.
#[derive(Debug, Clone)]
pub(crate) enum Credentials {
    /// A user's name and password (HTTP basic).
    User(String, String),
    /// The local credential of the node's data directory.
    Local(String),
}

impl Credentials {
    fn header(&self) -> String {
        match self {
            Credentials::User(u, p) => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            ),
            Credentials::Local(secret) => format!("{} {secret}", local_credential::SCHEME),
        }
    }
}

/// A node's management API.
#[derive(Debug, Clone)]
pub(crate) struct NodeClient {
    /// `host:port`.
    authority: String,
    /// The path prefix the API is served under (empty for `/`).
    prefix: String,
    credentials: Credentials,
    timeout: Duration,
}

/// Percent-encodes one path segment (a vhost `/` becomes `%2F`).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl NodeClient {
    /// A client of the API at `url` (`http://host:port[/prefix]`).
    pub(crate) fn new(
        url: &str,
        credentials: Credentials,
        timeout: Duration,
    ) -> Result<NodeClient, CtlError> {
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err(CtlError::Usage(format!(
                "{url}: HTTPS is not supported yet; use the node's plain HTTP listener on loopback"
            )));
        } else {
            return Err(CtlError::Usage(format!(
                "--node {url}: expected http://HOST:PORT"
            )));
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(CtlError::Usage(format!("--node {url}: no host")));
        }
        let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
        }) {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(NodeClient {
            authority,
            prefix: prefix.to_string(),
            credentials,
            timeout,
        })
    }

    /// The same node, as user `name` with `password`.
    pub(crate) fn as_user(&self, name: &str, password: &str) -> NodeClient {
        NodeClient {
            credentials: Credentials::User(name.into(), password.into()),
            ..self.clone()
        }
    }

    /// Where the client goes, for messages.
    pub(crate) fn address(&self) -> String {
        format!("http://{}{}", self.authority, self.prefix)
    }

    /// Sends one request; the status and the JSON body (`Null` when empty).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Result<(StatusCode, Value), CtlError> {
        tokio::time::timeout(self.timeout, self.exchange(method, path, body, headers))
            .await
            .map_err(|_| {
                CtlError::Unreachable(format!(
                    "no answer from {} within {} s",
                    self.address(),
                    self.timeout.as_secs()
                ))
            })?
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Result<(StatusCode, Value), CtlError> {
        let unreachable =
            |e: &dyn std::fmt::Display| CtlError::Unreachable(format!("{}: {e}", self.address()));
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| unreachable(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(connection);
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::AUTHORIZATION, self.credentials.header())
            .header(hyper::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| CtlError::Failed(format!("cannot build the request: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(&e))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(&e))?
            .to_bytes();
        let value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok((status, value))
    }

    /// A request that must succeed: a refusal becomes [`CtlError::Failed`] with the API's
    /// reason (401 says how to authenticate).
    pub(crate) async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CtlError> {
        let (status, value) = self.call(method, path, body, &[]).await?;
        if status.is_success() {
            return Ok(value);
        }
        Err(refusal(status, &value))
    }

    /// `GET path`, which must succeed.
    pub(crate) async fn get(&self, path: &str) -> Result<Value, CtlError> {
        self.expect(Method::GET, path, None).await
    }

    /// `PUT path` with `body`, which must succeed.
    pub(crate) async fn put(&self, path: &str, body: &Value) -> Result<Value, CtlError> {
        self.expect(Method::PUT, path, Some(body)).await
    }

    /// `DELETE path`, which must succeed.
    pub(crate) async fn delete(&self, path: &str) -> Result<Value, CtlError> {
        self.expect(Method::DELETE, path, None).await
    }
}

/// What a refused request says, as an error of `junction ctl`.
pub(crate) fn refusal(status: StatusCode, body: &Value) -> CtlError {
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string());
    match status {
        StatusCode::UNAUTHORIZED => CtlError::Failed(format!(
            "the node refused the credentials ({reason}); on the broker's machine run as the \
             data directory's owner, or pass --username and --password of an administrator"
        )),
        StatusCode::NOT_FOUND => CtlError::NotFound(reason),
        _ => CtlError::Failed(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("/"), "%2F");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        assert_eq!(segment("q-1.x_y~"), "q-1.x_y~");
    }

    #[test]
    fn node_urls() {
        let c = Credentials::User("a".into(), "b".into());
        let t = Duration::from_secs(1);
        let n = NodeClient::new("http://127.0.0.1:15672", c.clone(), t).unwrap();
        assert_eq!(n.address(), "http://127.0.0.1:15672");
        let n = NodeClient::new("http://h:1/api-root/", c.clone(), t).unwrap();
        assert_eq!(n.address(), "http://h:1/api-root");
        assert_eq!(
            NodeClient::new("http://h", c.clone(), t).unwrap().address(),
            "http://h:80"
        );
        assert!(matches!(
            NodeClient::new("ftp://h", c, t),
            Err(CtlError::Usage(_))
        ));
    }
}
