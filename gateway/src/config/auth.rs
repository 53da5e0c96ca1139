//! The `[auth]` and `[auth_http]` sections: which backends check logins and rights
//! (RabbitMQ's `auth_backends`), and where the HTTP backend asks
//! (`rabbitmq_auth_backend_http`'s `user_path`, `vhost_path`, `resource_path`, `topic_path`).

use serde::{Deserialize, Serialize};

/// One authentication and authorisation backend.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The internal user database (users, permissions, topic permissions).
    Internal,
    /// An HTTP service, as `rabbitmq_auth_backend_http` asks one (`[auth_http]`).
    Http,
}

/// `[auth]`: the backends, tried in order for a login; the one that accepted a user decides
/// its rights.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `["internal"]` (the default), `["http"]`, or both in the order they are tried.
    pub backends: Vec<Backend>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            backends: vec![Backend::Internal],
        }
    }
}

/// How the HTTP backend sends its parameters.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum HttpMethod {
    /// In the query string (RabbitMQ's default).
    #[default]
    Get,
    /// As an `application/x-www-form-urlencoded` body (keeps passwords out of access logs).
    Post,
}

/// `[auth_http]`: the HTTP backend's service.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthHttpConfig {
    /// `get` or `post`.
    #[serde(default)]
    pub http_method: HttpMethod,
    /// Asked whether a user may log in (`username`, `password`); answers `allow [tags]`.
    pub user_path: String,
    /// Asked whether a user may open a vhost (`username`, `vhost`, `ip`).
    pub vhost_path: String,
    /// Asked about queues and exchanges (`username`, `vhost`, `resource`, `name`,
    /// `permission`).
    pub resource_path: String,
    /// Asked about routing keys of topic exchanges (`routing_key` and the resource
    /// parameters, `client_id` for MQTT); without it every key is allowed.
    #[serde(default)]
    pub topic_path: Option<String>,
    /// How long an answer is remembered, in milliseconds (`rabbitmq_auth_backend_cache`'s
    /// `cache_ttl`; 0: every check asks).
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl: u64,
    /// How long one request may take, in milliseconds; past it the check is refused.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: u64,
}

fn default_cache_ttl() -> u64 {
    15_000
}

fn default_request_timeout() -> u64 {
    5_000
}

impl AuthHttpConfig {
    /// Every configured path with its key, for checking.
    pub fn paths(&self) -> Vec<(&'static str, &str)> {
        let mut all = vec![
            ("auth_http.user_path", self.user_path.as_str()),
            ("auth_http.vhost_path", self.vhost_path.as_str()),
            ("auth_http.resource_path", self.resource_path.as_str()),
        ];
        if let Some(t) = &self.topic_path {
            all.push(("auth_http.topic_path", t.as_str()));
        }
        all
    }
}

/// Checks the two sections together: the key at fault and what is wrong.
pub(super) fn check(
    auth: &AuthConfig,
    http: Option<&AuthHttpConfig>,
) -> Result<(), (String, String)> {
    let bad = |key: &str, problem: &str| Err((key.to_string(), problem.to_string()));
    if auth.backends.is_empty() {
        return bad("auth.backends", "must name at least one backend");
    }
    let distinct: std::collections::HashSet<_> = auth.backends.iter().collect();
    if distinct.len() != auth.backends.len() {
        return bad("auth.backends", "names a backend twice");
    }
    if auth.backends == [Backend::Http, Backend::Internal] {
        return bad(
            "auth.backends",
            "the internal backend is tried first: write [\"internal\", \"http\"]",
        );
    }
    let uses_http = auth.backends.contains(&Backend::Http);
    match http {
        None if uses_http => bad("auth_http", "must be set when auth.backends names \"http\""),
        Some(_) if !uses_http => bad(
            "auth.backends",
            "must name \"http\" when [auth_http] is set",
        ),
        Some(h) => {
            for (key, url) in h.paths() {
                if let Err(problem) = crate::auth_http::Endpoint::parse(url) {
                    return bad(key, &problem);
                }
            }
            if !(1..=60_000).contains(&h.request_timeout) {
                return bad(
                    "auth_http.request_timeout",
                    "must be between 1 and 60000 (milliseconds)",
                );
            }
            Ok(())
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    fn problem(text: &str) -> (String, String) {
        match Config::parse(text) {
            Err(ConfigError::Invalid { key, problem }) => (key, problem),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    const HTTP: &str = r#"
[auth_http]
http_method = "post"
user_path = "http://127.0.0.1:8000/auth/user"
vhost_path = "http://127.0.0.1:8000/auth/vhost"
resource_path = "http://127.0.0.1:8000/auth/resource"
"#;

    #[test]
    fn the_http_backend_is_configured_as_rabbitmq_names_it() {
        let c = Config::parse(&format!(
            "[auth]\nbackends = [\"internal\", \"http\"]\n{HTTP}"
        ))
        .unwrap();
        let h = c.auth_http.unwrap();
        assert_eq!((h.cache_ttl, h.request_timeout), (15_000, 5_000));
        assert_eq!(h.topic_path, None);
        assert_eq!(problem(HTTP).0, "auth.backends", "http not named");
        assert_eq!(
            problem("[auth]\nbackends = [\"http\"]\n").0,
            "auth_http",
            "http named without its section"
        );
        assert_eq!(
            problem("[auth]\nbackends = [\"internal\", \"internal\"]\n").1,
            "names a backend twice"
        );
        let https = HTTP.replace("http://127.0.0.1:8000/auth/vhost", "https://x/auth/vhost");
        let (key, why) = problem(&format!("[auth]\nbackends = [\"http\"]\n{https}"));
        assert_eq!(key, "auth_http.vhost_path");
        assert!(why.contains("https"), "{why}");
    }
}
