//! A small HTTP service speaking `rabbitmq_auth_backend_http`'s contract, for the HTTP
//! backend's tests: it runs on a thread and runtime of its own (the broker under test asks
//! it synchronously), decides with a function the test supplies, and records every request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request the service received.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The decoded parameters (query string or form body).
    pub params: BTreeMap<String, String>,
}

impl AuthRequest {
    /// A parameter's value ("" when absent).
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }
}

/// What the service answers: a status and a body.
pub type Decide = dyn Fn(&AuthRequest) -> (u16, String) + Send + Sync;

/// The running service.
pub struct AuthService {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<AuthRequest>>>,
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_form(s: &str) -> BTreeMap<String, String> {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(kv), String::new()),
        })
        .collect()
}

/// Reads one request from `s`; None when it is not one.
async fn read_request(s: &mut tokio::net::TcpStream) -> Option<AuthRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let params = if method == "POST" {
        parse_form(&body)
    } else {
        parse_form(query)
    };
    Some(AuthRequest {
        method,
        path: path.to_string(),
        params,
    })
}

impl AuthService {
    /// Starts the service on a loopback port, answering with `decide`.
    pub fn start(decide: impl Fn(&AuthRequest) -> (u16, String) + Send + Sync + 'static) -> Self {
        let decide: Arc<Decide> = Arc::new(decide);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = requests.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                while let Ok((mut s, _)) = listener.accept().await {
                    let (decide, seen) = (decide.clone(), seen.clone());
                    tokio::spawn(async move {
                        let Some(req) = read_request(&mut s).await else {
                            return;
                        };
                        let (status, body) = decide(&req);
                        seen.lock().unwrap().push(req);
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = s.write_all(reply.as_bytes()).await;
                        let _ = s.shutdown().await;
                    });
                }
            });
        });
        AuthService { addr, requests }
    }

    /// The URL of `path` on the service.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests received so far to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<AuthRequest> {
        let all = self.requests.lock().unwrap();
        all.iter().filter(|r| r.path == path).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode() {
        let p = parse_form("username=a+b&vhost=%2F&name=%C3%A9%26");
        assert_eq!(p["username"], "a b");
        assert_eq!(p["vhost"], "/");
        assert_eq!(p["name"], "é&");
    }
}
