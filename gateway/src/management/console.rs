//! The web console: static files under `gateway/ui/`, embedded in the binary at build time and
//! served at `/` (the page) and `/console/...` (its scripts and stylesheet). It is a client of
//! this same API; nothing here reads the broker.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Every file of the console: its path under `/console/`, its type and its bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/style.css"),
    ),
    ("js/app.js", JS, include_str!("../../ui/js/app.js")),
    ("js/api.js", JS, include_str!("../../ui/js/api.js")),
    ("js/dom.js", JS, include_str!("../../ui/js/dom.js")),
    ("js/live.js", JS, include_str!("../../ui/js/live.js")),
    ("js/chart.js", JS, include_str!("../../ui/js/chart.js")),
    (
        "js/views/common.js",
        JS,
        include_str!("../../ui/js/views/common.js"),
    ),
    (
        "js/views/overview.js",
        JS,
        include_str!("../../ui/js/views/overview.js"),
    ),
    (
        "js/views/queues.js",
        JS,
        include_str!("../../ui/js/views/queues.js"),
    ),
    (
        "js/views/exchanges.js",
        JS,
        include_str!("../../ui/js/views/exchanges.js"),
    ),
    (
        "js/views/connections.js",
        JS,
        include_str!("../../ui/js/views/connections.js"),
    ),
    (
        "js/views/access.js",
        JS,
        include_str!("../../ui/js/views/access.js"),
    ),
    (
        "js/views/policies.js",
        JS,
        include_str!("../../ui/js/views/policies.js"),
    ),
];

const JS: &str = "text/javascript; charset=utf-8";

/// Scripts and styles from this origin only; no inline script, no external anything.
const POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; \
                      script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

fn serve(path: &str) -> Response {
    let Some((_, kind, body)) = ASSETS.iter().find(|(p, _, _)| *p == path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut res = (*body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// `GET /`: the console's page.
pub(crate) async fn page() -> Response {
    serve("index.html")
}

/// `GET /console/{*path}`: one of its files.
pub(crate) async fn asset(Path(path): Path<String>) -> Response {
    serve(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_scripts_import_is_embedded() {
        for (path, _, body) in ASSETS.iter().filter(|(p, _, _)| p.ends_with(".js")) {
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let spec = line.split(['\'', '"']).nth(1).expect("a module path");
                let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
                for piece in spec.split('/') {
                    match piece {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        p => parts.push(p),
                    }
                }
                let target = parts.join("/");
                assert!(
                    ASSETS.iter().any(|(p, _, _)| *p == target),
                    "{path} imports {spec} ({target}), which is not embedded"
                );
            }
        }
    }

    #[test]
    fn the_page_loads_its_files_from_console() {
        let (_, _, html) = ASSETS[0];
        assert!(html.contains("src=\"/console/js/app.js\""));
        assert!(html.contains("href=\"/console/style.css\""));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no CDN"
        );
    }
}
