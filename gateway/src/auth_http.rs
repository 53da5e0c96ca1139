//! The HTTP authentication backend: RabbitMQ's `rabbitmq_auth_backend_http` contract. Each
//! question becomes a GET (parameters in the query string) or POST (a form body) to one of
//! four URLs; the service answers 200 with `allow`, `allow TAG…` (logins) or `deny`.
//! Anything else — another status, another body, no answer within `request_timeout` — is a
//! refusal, logged with the reason.
//!
//! The core asks synchronously from a connection's task; requests run on a thread of their
//! own (one small runtime, each request a task), and the asking task waits for its answer
//! without holding up the others (`block_in_place` on the broker's multi-threaded runtime).

use crate::config::{AuthHttpConfig, HttpMethod};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use junction_core::auth_backend::{Answer, AuthBackend, Query};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The largest answer read from the service.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Requests waiting for the request thread at most; past it a check is refused at once.
const MAX_PENDING: usize = 4096;

/// Where one kind of question is sent: `http://host:port/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `host:port`.
    authority: String,
    /// The path, with any query string of its own.
    path: String,
}

impl Endpoint {
    /// Parses `http://host[:port][/path]` (port 80 when none).
    pub(crate) fn parse(url: &str) -> Result<Endpoint, String> {
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(if url.starts_with("https://") {
                "https is not supported; run the service on loopback or a private network".into()
            } else {
                format!("'{url}' is not an http:// URL")
            });
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("'{url}' names no host"));
        }
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && !authority.ends_with(']');
        let authority = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Endpoint {
            authority,
            path: path.to_string(),
        })
    }
}

/// `application/x-www-form-urlencoded` encoding of parameters.
fn form_encode(parameters: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in parameters.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        for (j, part) in [name, value.as_str()].into_iter().enumerate() {
            if j == 1 {
                out.push('=');
            }
            for b in part.bytes() {
                match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                        out.push(b as char)
                    }
                    b' ' => out.push('+'),
                    _ => out.push_str(&format!("%{b:02X}")),
                }
            }
        }
    }
    out
}

/// Reads the service's answer: `allow [tags…]` or `deny`, case-insensitive, surrounding
/// whitespace ignored.
fn read_answer(status: StatusCode, body: &[u8]) -> Answer {
    if status != StatusCode::OK {
        return Answer::Error(format!("the service answered {status}"));
    }
    let text = String::from_utf8_lossy(body);
    let mut words = text.split_whitespace();
    match words.next().map(str::to_ascii_lowercase).as_deref() {
        Some("allow") => Answer::Allow(words.map(str::to_string).collect()),
        Some("deny") => Answer::Deny,
        _ => Answer::Error(format!(
            "the service answered '{}', not allow or deny",
            text.trim().chars().take(80).collect::<String>()
        )),
    }
}

/// One request for the request thread.
#[derive(Debug)]
struct Job {
    endpoint: Endpoint,
    parameters: String,
    reply: std_mpsc::SyncSender<Answer>,
}

/// The HTTP backend.
#[derive(Debug)]
pub(crate) struct HttpBackend {
    user: Endpoint,
    vhost: Endpoint,
    resource: Endpoint,
    topic: Option<Endpoint>,
    timeout: Duration,
    jobs: mpsc::Sender<Job>,
    /// When an error was last logged (ms since start), so a dead service logs once a second.
    last_error_log: AtomicU64,
    started: Instant,
}

impl HttpBackend {
    /// The backend of `cfg`, with its request thread started.
    pub(crate) fn start(cfg: &AuthHttpConfig) -> Result<HttpBackend, String> {
        let timeout = Duration::from_millis(cfg.request_timeout);
        let (jobs, mut queue) = mpsc::channel::<Job>(MAX_PENDING);
        let method = match cfg.http_method {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the HTTP backend's runtime: {e}"))?;
        std::thread::Builder::new()
            .name("junction-auth-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = queue.recv().await {
                        let method = method.clone();
                        tokio::spawn(async move {
                            let answer = match tokio::time::timeout(
                                timeout,
                                request(&method, &job.endpoint, job.parameters),
                            )
                            .await
                            {
                                Ok(answer) => answer,
                                Err(_) => Answer::Error(format!(
                                    "no answer within {} ms",
                                    timeout.as_millis()
                                )),
                            };
                            let _ = job.reply.send(answer);
                        });
                    }
                })
            })
            .map_err(|e| format!("cannot start the HTTP backend's thread: {e}"))?;
        let endpoint = |url: &str| Endpoint::parse(url);
        Ok(HttpBackend {
            user: endpoint(&cfg.user_path)?,
            vhost: endpoint(&cfg.vhost_path)?,
            resource: endpoint(&cfg.resource_path)?,
            topic: cfg.topic_path.as_deref().map(endpoint).transpose()?,
            timeout,
            jobs,
            last_error_log: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    fn endpoint(&self, query: &Query) -> Option<&Endpoint> {
        match query {
            Query::User { .. } => Some(&self.user),
            Query::VHost { .. } => Some(&self.vhost),
            Query::Resource { .. } => Some(&self.resource),
            Query::Topic { .. } => self.topic.as_ref(),
        }
    }

    /// Sends one request and waits for its answer.
    fn send(&self, endpoint: &Endpoint, query: &Query) -> Answer {
        let (reply, answer) = std_mpsc::sync_channel(1);
        let job = Job {
            endpoint: endpoint.clone(),
            parameters: form_encode(&query.parameters()),
            reply,
        };
        if self.jobs.try_send(job).is_err() {
            return Answer::Error("too many requests waiting for the service".into());
        }
        // A little past the request's own deadline, which answers first.
        let wait = self.timeout + Duration::from_millis(500);
        let receive = || {
            answer
                .recv_timeout(wait)
                .unwrap_or_else(|_| Answer::Error("the request thread did not answer".into()))
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(receive),
            _ => receive(),
        }
    }

    fn log_error(&self, query: &Query, why: &str) {
        let now = self.started.elapsed().as_millis() as u64 + 1000;
        let last = self.last_error_log.load(Ordering::Relaxed);
        if now >= last + 1000
            && self
                .last_error_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                question = query.kind(),
                reason = why,
                "HTTP auth backend request failed; refused"
            );
        }
    }
}

impl AuthBackend for HttpBackend {
    fn name(&self) -> &str {
        "http"
    }

    fn ask(&self, query: &Query) -> Answer {
        let Some(endpoint) = self.endpoint(query) else {
            return Answer::Allow(Vec::new());
        };
        let answer = match self.send(endpoint, query) {
            // Tags come only with a login.
            Answer::Allow(_) if !matches!(query, Query::User { .. }) => Answer::Allow(Vec::new()),
            other => other,
        };
        if let Answer::Error(why) = &answer {
            self.log_error(query, why);
        }
        answer
    }

    fn checks_topics(&self) -> bool {
        self.topic.is_some()
    }
}

/// One HTTP/1.1 request on a connection of its own.
async fn request(method: &Method, endpoint: &Endpoint, parameters: String) -> Answer {
    let failed = |e: &dyn std::fmt::Display| Answer::Error(format!("{}: {e}", endpoint.authority));
    let stream = match tokio::net::TcpStream::connect(&endpoint.authority).await {
        Ok(s) => s,
        Err(e) => return failed(&e),
    };
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => return failed(&e),
        };
    tokio::spawn(connection);
    let builder = Request::builder()
        .header(hyper::header::HOST, &endpoint.authority)
        .method(method.clone());
    let built = if *method == Method::GET {
        let join = if endpoint.path.contains('?') {
            '&'
        } else {
            '?'
        };
        builder
            .uri(format!("{}{join}{parameters}", endpoint.path))
            .body(Full::new(Bytes::new()))
    } else {
        builder
            .uri(&endpoint.path)
            .header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(Full::new(Bytes::from(parameters)))
    };
    let request = match built {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    let response = match sender.send_request(request).await {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    let status = response.status();
    match Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
    {
        Ok(body) => read_answer(status, &body.to_bytes()),
        Err(e) => failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_a_default_port() {
        let e = Endpoint::parse("http://auth.local/auth/user").unwrap();
        assert_eq!(e.authority, "auth.local:80");
        assert_eq!(e.path, "/auth/user");
        let e = Endpoint::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(
            (e.authority.as_str(), e.path.as_str()),
            ("127.0.0.1:8000", "/")
        );
        assert!(Endpoint::parse("https://x/auth")
            .unwrap_err()
            .contains("https"));
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("http:///x").is_err());
    }

    #[test]
    fn parameters_are_form_encoded() {
        let p = [
            ("username", "a b".to_string()),
            ("vhost", "/".to_string()),
            ("name", "é&=".to_string()),
        ];
        assert_eq!(form_encode(&p), "username=a+b&vhost=%2F&name=%C3%A9%26%3D");
    }

    #[test]
    fn answers_are_read_as_the_contract_says() {
        assert_eq!(
            read_answer(StatusCode::OK, b"allow administrator management\n"),
            Answer::Allow(vec!["administrator".into(), "management".into()])
        );
        assert_eq!(read_answer(StatusCode::OK, b"  DENY "), Answer::Deny);
        assert_eq!(read_answer(StatusCode::OK, b"Allow"), Answer::Allow(vec![]));
        assert!(matches!(
            read_answer(StatusCode::OK, b"maybe"),
            Answer::Error(_)
        ));
        assert!(matches!(
            read_answer(StatusCode::INTERNAL_SERVER_ERROR, b"allow"),
            Answer::Error(_)
        ));
    }
}
