//! The management HTTP API on 15672: RabbitMQ's paths, JSON field names, status codes and
//! authentication rules, so that `rabbitmqadmin`, the `rabbitmq_http_client` crate and the
//! scripts written for RabbitMQ's management plugin work unchanged.
//!
//! One room per resource (`vhosts`, `users`, `health`, `overview`); `auth` decides who may
//! call what; `error` is the one place that turns a refusal into RabbitMQ's
//! `{"error", "reason"}` body. Every change goes through the broker's metadata commands and is
//! answered once it is durable.

mod args;
mod auth;
mod bindings;
mod channels;
mod connections;
mod console;
mod consumers;
mod definitions;
mod error;
mod exchanges;
mod health;
mod limits;
mod listing;
mod node;
mod overview;
mod permissions;
mod policies;
mod queues;
mod request;
mod stats;
mod topic_permissions;
mod users;
mod vhosts;

use crate::node::Node;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use junction_core::refusals::Refusal;
use junction_core::Broker;
use std::net::SocketAddr;
use std::sync::Arc;

/// What every handler shares: the node and its broker.
#[derive(Clone)]
pub(crate) struct Api {
    broker: Arc<Broker>,
    node: Arc<Node>,
    /// Message rates, sampled.
    stats: Arc<stats::Stats>,
}

impl Api {
    /// The API of `node`.
    pub(crate) fn new(node: Arc<Node>) -> Self {
        Api {
            broker: node.broker.clone(),
            node,
            stats: Arc::default(),
        }
    }

    /// Starts sampling message rates every `interval`; the task ends when aborted.
    pub(crate) fn sample_every(
        &self,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        self.stats.spawn(self.broker.clone(), interval)
    }
}

/// The API's routes.
fn router(api: Api) -> Router {
    Router::new()
        .route("/", get(console::page))
        .route("/console/{*path}", get(console::asset))
        .route("/api/overview", get(overview::overview))
        .route("/api/whoami", get(users::whoami))
        .route("/api/vhosts", get(vhosts::list))
        .route(
            "/api/vhosts/{name}",
            get(vhosts::show).put(vhosts::put).delete(vhosts::delete),
        )
        .route("/api/users", get(users::list))
        .route("/api/users/{name}/permissions", get(permissions::of_user))
        .route("/api/vhosts/{name}/permissions", get(permissions::of_vhost))
        .route("/api/vhosts/{name}/connections", get(connections::of_vhost))
        .route("/api/connections", get(connections::list))
        .route("/api/channels", get(channels::list))
        .route("/api/channels/{name}", get(channels::show))
        .route("/api/vhosts/{name}/channels", get(channels::of_vhost))
        .route(
            "/api/connections/{name}/channels",
            get(channels::of_connection),
        )
        .route(
            "/api/connections/{name}",
            get(connections::show).delete(connections::close),
        )
        .route("/api/permissions", get(permissions::list))
        .route(
            "/api/permissions/{vhost}/{user}",
            get(permissions::show)
                .put(permissions::put)
                .delete(permissions::delete),
        )
        .route(
            "/api/users/{name}",
            get(users::show).put(users::put).delete(users::delete),
        )
        .route("/api/queues", get(queues::list_all))
        .route("/api/queues/{vhost}", get(queues::list))
        .route(
            "/api/queues/{vhost}/{name}",
            get(queues::show).put(queues::put).delete(queues::delete),
        )
        .route(
            "/api/queues/{vhost}/{name}/contents",
            axum::routing::delete(queues::purge),
        )
        .route(
            "/api/queues/{vhost}/{name}/get",
            axum::routing::post(queues::get),
        )
        .route(
            "/api/queues/{vhost}/{name}/bindings",
            get(bindings::of_queue),
        )
        .route("/api/exchanges", get(exchanges::list_all))
        .route("/api/exchanges/{vhost}", get(exchanges::list))
        .route(
            "/api/exchanges/{vhost}/{name}",
            get(exchanges::show)
                .put(exchanges::put)
                .delete(exchanges::delete),
        )
        .route(
            "/api/exchanges/{vhost}/{name}/publish",
            axum::routing::post(exchanges::publish),
        )
        .route(
            "/api/exchanges/{vhost}/{name}/route",
            axum::routing::post(exchanges::route),
        )
        .route(
            "/api/exchanges/{vhost}/{name}/bindings/{side}",
            get(bindings::of_exchange),
        )
        .route("/api/bindings", get(bindings::list_all))
        .route("/api/bindings/{vhost}", get(bindings::list))
        .route(
            "/api/bindings/{vhost}/e/{source}/{kind}/{destination}",
            get(bindings::list_between).post(bindings::create),
        )
        .route(
            "/api/bindings/{vhost}/e/{source}/{kind}/{destination}/{props}",
            get(bindings::show).delete(bindings::delete),
        )
        .route(
            "/api/definitions",
            get(definitions::export).post(definitions::import),
        )
        .route("/api/health/checks/alarms", get(health::alarms))
        .route("/api/health/checks/local-alarms", get(health::alarms))
        .route(
            "/api/health/checks/virtual-hosts",
            get(health::virtual_hosts),
        )
        .route(
            "/api/health/checks/port-listener/{port}",
            get(health::port_listener),
        )
        .route("/api/aliveness-test/{vhost}", get(health::aliveness))
        .route("/api/topic-permissions", get(topic_permissions::list))
        .route(
            "/api/topic-permissions/{vhost}/{user}",
            get(topic_permissions::show)
                .put(topic_permissions::put)
                .delete(topic_permissions::delete),
        )
        .route(
            "/api/users/{name}/topic-permissions",
            get(topic_permissions::of_user),
        )
        .route(
            "/api/vhosts/{name}/topic-permissions",
            get(topic_permissions::of_vhost),
        )
        .route("/api/vhost-limits", get(limits::vhosts))
        .route("/api/vhost-limits/{vhost}", get(limits::of_vhost))
        .route(
            "/api/vhost-limits/{vhost}/{name}",
            axum::routing::put(limits::put_vhost).delete(limits::delete_vhost),
        )
        .route("/api/user-limits", get(limits::users))
        .route("/api/user-limits/{user}", get(limits::of_user))
        .route(
            "/api/user-limits/{user}/{name}",
            axum::routing::put(limits::put_user).delete(limits::delete_user),
        )
        .route("/api/consumers", get(consumers::list_all))
        .route("/api/consumers/{vhost}", get(consumers::list))
        .route("/api/policies", get(policies::list_all))
        .route("/api/policies/{vhost}", get(policies::list))
        .route(
            "/api/policies/{vhost}/{name}",
            get(policies::show)
                .put(policies::put)
                .delete(policies::delete),
        )
        .route("/api/nodes", get(node::list))
        .route("/api/nodes/{name}", get(node::show))
        .route("/api/junction/app", get(node::app).put(node::set_app))
        .route(
            "/api/junction/log-level",
            axum::routing::put(node::set_log_level),
        )
        .route("/api/junction/environment", get(node::environment))
        .route(
            "/api/junction/reload-certificates",
            axum::routing::post(node::reload_certificates),
        )
        .route(
            "/api/junction/memory-high-watermark",
            axum::routing::put(node::set_memory_watermark),
        )
        .route(
            "/api/junction/disk-free-limit",
            axum::routing::put(node::set_disk_free_limit),
        )
        .fallback(error::not_found)
        .layer(middleware::from_fn_with_state(api.clone(), count_refusals))
        .with_state(api)
}

/// Counts every refused request by kind, and logs the first of a burst.
async fn count_refusals(State(api): State<Api>, req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    // Scripts (the console) handle a 401 themselves: no browser login dialog for them.
    let from_script = req.headers().contains_key("x-requested-with");
    let mut response = next.run(req).await;
    if from_script {
        response
            .headers_mut()
            .remove(axum::http::header::WWW_AUTHENTICATE);
    }
    let kind = match response.status() {
        StatusCode::BAD_REQUEST => Some(Refusal::ManagementBadRequest),
        StatusCode::UNAUTHORIZED => Some(Refusal::ManagementLogin),
        StatusCode::FORBIDDEN => Some(Refusal::ManagementForbidden),
        _ => None,
    };
    if let Some(kind) = kind {
        if api.broker.refusals().count(kind) {
            tracing::warn!(%method, path, status = response.status().as_u16(), "management request refused");
        }
    }
    response
}

/// Serves the API on `listener` until the task is aborted.
pub(crate) async fn serve<L>(listener: L, api: Api)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    use axum::serve::ListenerExt;
    // A tap that does nothing makes the connection's address available as ConnectInfo for
    // any listener, the HTTPS one included.
    let listener = listener.tap_io(|_| {});
    let app = router(api).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "management listener stopped");
    }
}
