//! `/api/definitions`: the broker's users, vhosts, permissions, durable exchanges and queues
//! and their bindings, as RabbitMQ's definitions JSON — exported, and imported from a file
//! RabbitMQ (3.x or 4.x) exported, users keeping their password hashes.

use super::args::table_to_json;
use super::auth::Caller;
use super::error::ApiError;
use super::request::{arguments, flag, json_body};
use super::Api;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use junction_core::exchange::is_builtin;
use junction_core::limits::{LimitScope, LimitTable};
use junction_core::storage::{Permission, UserRecord};
use junction_core::{Binding, Destination, ExchangeDef, ExchangeKind, QueueDef};
use serde_json::{json, Map, Value};

/// `GET /api/definitions` (administrators).
pub(crate) async fn export(
    State(api): State<Api>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require_administrator()?;
    let b = &api.broker;
    let users: Vec<Value> = b
        .auth()
        .users()
        .iter()
        .map(|u| super::users::describe(&api, u))
        .collect();
    let permissions: Vec<Value> = b
        .auth()
        .permissions()
        .iter()
        .map(|p| json!({"user": p.user, "vhost": p.vhost, "configure": p.configure, "write": p.write, "read": p.read}))
        .collect();
    let mut vhosts = b.vhost_list();
    vhosts.sort_by(|a, b| a.name.cmp(&b.name));
    let (mut exchanges, mut queues, mut bindings) = (Vec::new(), Vec::new(), Vec::new());
    for v in &vhosts {
        let mut names = v.exchange_names();
        names.sort();
        let mut exported: Vec<String> = Vec::new();
        for e in names.iter().filter_map(|n| v.exchange(n).ok()) {
            let d = &e.def;
            if d.durable && !is_builtin(&d.name) && !d.name.starts_with("amq.") {
                exported.push(d.name.clone());
                exchanges.push(json!({
                    "name": d.name, "vhost": v.name, "type": d.kind.as_str(), "durable": true,
                    "auto_delete": d.auto_delete, "internal": d.internal,
                    "arguments": table_to_json(&d.arguments),
                }));
            }
        }
        let mut qs = v.queues();
        qs.sort_by(|a, b| a.def.name.cmp(&b.def.name));
        let mut kept_queues: Vec<String> = Vec::new();
        for q in qs.iter().filter(|q| q.def.durable && !q.def.exclusive) {
            kept_queues.push(q.def.name.clone());
            queues.push(json!({
                "name": q.def.name, "vhost": v.name, "durable": true,
                "auto_delete": q.def.auto_delete, "arguments": table_to_json(&q.def.arguments),
            }));
        }
        let exists_after = |d: &Destination| match d {
            Destination::Queue(q) => kept_queues.contains(q),
            Destination::Exchange(e) => exported.contains(e) || is_builtin(e),
        };
        let mut explicit = v.bindings();
        explicit.sort_by(|a, b| {
            (&a.source, a.destination.name(), &a.routing_key).cmp(&(
                &b.source,
                b.destination.name(),
                &b.routing_key,
            ))
        });
        for bd in explicit.iter().filter(|bd| {
            !bd.source.is_empty()
                && (exported.contains(&bd.source) || is_builtin(&bd.source))
                && exists_after(&bd.destination)
        }) {
            let (kind, dest) = match &bd.destination {
                Destination::Queue(q) => ("queue", q),
                Destination::Exchange(e) => ("exchange", e),
            };
            bindings.push(json!({
                "source": bd.source, "vhost": v.name, "destination": dest,
                "destination_type": kind, "routing_key": bd.routing_key,
                "arguments": table_to_json(&bd.arguments),
            }));
        }
    }
    let topic_permissions: Vec<Value> = api
        .broker
        .access()
        .topic_permissions()
        .iter()
        .filter(|p| vhosts.iter().any(|v| v.name == p.vhost))
        .map(super::topic_permissions::describe)
        .collect();
    let policies: Vec<Value> = vhosts
        .iter()
        .flat_map(|v| v.policies())
        .map(|p| super::policies::describe(&p))
        .collect();
    // Vhost limits are runtime parameters in RabbitMQ's files (component "vhost-limits").
    let parameters: Vec<Value> = vhosts
        .iter()
        .filter_map(|v| {
            let limits = v.limits();
            (!limits.is_empty()).then(|| {
                json!({"vhost": v.name, "component": VHOST_LIMITS, "name": "limits", "value": limits})
            })
        })
        .collect();
    let vhosts: Vec<Value> = vhosts
        .iter()
        .map(|v| {
            let m = v.metadata();
            let mut meta = json!({"description": m.description, "tags": m.tags});
            if let Some(t) = &m.default_queue_type {
                meta["default_queue_type"] = json!(t);
            }
            json!({"name": v.name, "description": m.description, "tags": m.tags, "metadata": meta, "limits": []})
        })
        .collect();
    let version = env!("CARGO_PKG_VERSION");
    Ok(Json(json!({
        "rabbit_version": version, "rabbitmq_version": version,
        "product_name": "Junction", "product_version": version,
        "users": users, "vhosts": vhosts, "permissions": permissions,
        "topic_permissions": topic_permissions, "parameters": parameters, "global_parameters": [], "policies": policies,
        "queues": queues, "exchanges": exchanges, "bindings": bindings,
    })))
}

/// The runtime-parameter component that holds a vhost's limits.
const VHOST_LIMITS: &str = "vhost-limits";

/// A `limits` object (`{"max-connections": 10}`) as a table, checked for `scope`.
fn limits_of(
    v: Option<&Value>,
    scope: junction_core::limits::LimitScope,
    at: &str,
) -> Result<LimitTable, ApiError> {
    let mut out = LimitTable::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, n) in m {
                let n = n.as_i64().ok_or_else(|| {
                    ApiError::bad_request(format!("{at}: limit '{k}' must be an integer"))
                })?;
                out.insert(k.clone(), n);
            }
        }
        // RabbitMQ 3.x exports an empty list when there are none.
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "{at}: 'limits' must be an object"
            )))
        }
    }
    junction_core::limits::validate(scope, &out).map_err(|e| ApiError::from(e).at(at))?;
    Ok(out)
}

/// One section of a definitions file: a list of objects (absent: empty).
fn section<'a>(
    root: &'a Map<String, Value>,
    key: &str,
) -> Result<Vec<&'a Map<String, Value>>, ApiError> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_object()
                    .ok_or_else(|| ApiError::bad_request(format!("{key}[{i}] must be an object")))
            })
            .collect(),
        Some(_) => Err(ApiError::bad_request(format!("'{key}' must be a list"))),
    }
}

fn text<'a>(o: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a str, ApiError> {
    o.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request(format!("{at}: '{key}' must be a string")))
}

/// Everything a file asks for, checked before anything is applied.
struct Plan {
    vhosts: Vec<(String, junction_core::meta::VHostMetadata)>,
    users: Vec<(String, Vec<u8>, Vec<String>)>,
    user_limits: Vec<(String, LimitTable)>,
    vhost_limits: Vec<(String, LimitTable)>,
    permissions: Vec<Permission>,
    policies: Vec<junction_core::policy::Policy>,
    topic_permissions: Vec<junction_core::storage::TopicPermission>,
    exchanges: Vec<(String, ExchangeDef)>,
    queues: Vec<(String, QueueDef)>,
    bindings: Vec<(String, Binding)>,
}

fn plan(root: &Map<String, Value>) -> Result<Plan, ApiError> {
    let mut p = Plan {
        vhosts: Vec::new(),
        users: Vec::new(),
        user_limits: Vec::new(),
        vhost_limits: Vec::new(),
        permissions: Vec::new(),
        policies: Vec::new(),
        topic_permissions: Vec::new(),
        exchanges: Vec::new(),
        queues: Vec::new(),
        bindings: Vec::new(),
    };
    for (i, v) in section(root, "vhosts")?.into_iter().enumerate() {
        let at = format!("vhosts[{i}]");
        let metadata = super::vhosts::metadata_of(v).map_err(|e| e.at(&at))?;
        p.vhosts.push((text(v, "name", &at)?.to_string(), metadata));
    }
    for (i, u) in section(root, "users")?.into_iter().enumerate() {
        let at = format!("users[{i}]");
        let name = text(u, "name", &at)?.to_string();
        let hash = super::users::hash_of(u)
            .map_err(|_| ApiError::bad_request(format!("{at}: a bad 'password_hash'")))?
            .ok_or_else(|| ApiError::bad_request(format!("{at}: 'password_hash' is missing")))?;
        let tags = super::users::tags_of(u.get("tags"))
            .map_err(|_| ApiError::bad_request(format!("{at}: bad 'tags'")))?;
        let limits = limits_of(u.get("limits"), LimitScope::User, &at)?;
        if !limits.is_empty() {
            p.user_limits.push((name.clone(), limits));
        }
        p.users.push((name, hash, tags));
    }
    for (i, x) in section(root, "parameters")?.into_iter().enumerate() {
        let at = format!("parameters[{i}]");
        let component = text(x, "component", &at)?;
        if component != VHOST_LIMITS {
            // Federation, shovels and the like: Junction has none of them.
            tracing::warn!(
                component,
                "definitions import: parameter skipped, not supported"
            );
            continue;
        }
        let limits = limits_of(x.get("value"), LimitScope::VHost, &at)?;
        p.vhost_limits
            .push((text(x, "vhost", &at)?.to_string(), limits));
    }
    for (i, x) in section(root, "permissions")?.into_iter().enumerate() {
        let at = format!("permissions[{i}]");
        let pattern = |key: &str| -> Result<String, ApiError> {
            let s = text(x, key, &at)?;
            junction_core::access::check_pattern(key, s).map_err(|e| ApiError::from(e).at(&at))?;
            Ok(s.to_string())
        };
        p.permissions.push(Permission {
            user: text(x, "user", &at)?.to_string(),
            vhost: text(x, "vhost", &at)?.to_string(),
            configure: pattern("configure")?,
            write: pattern("write")?,
            read: pattern("read")?,
        });
    }
    for (i, x) in section(root, "topic_permissions")?.into_iter().enumerate() {
        let at = format!("topic_permissions[{i}]");
        let field = |key: &str| text(x, key, &at).map(str::to_string);
        p.topic_permissions
            .push(junction_core::storage::TopicPermission {
                user: field("user")?,
                vhost: field("vhost")?,
                exchange: field("exchange")?,
                write: field("write")?,
                read: field("read")?,
            });
    }
    for (i, x) in section(root, "policies")?.into_iter().enumerate() {
        let at = format!("policies[{i}]");
        let policy = super::policies::parse(text(x, "vhost", &at)?, text(x, "name", &at)?, x)
            .map_err(|e| e.at(&at))?;
        policy.validate().map_err(|e| ApiError::from(e).at(&at))?;
        p.policies.push(policy);
    }
    for (i, e) in section(root, "exchanges")?.into_iter().enumerate() {
        let at = format!("exchanges[{i}]");
        let kind = text(e, "type", &at)?;
        let kind = ExchangeKind::parse(kind)
            .map_err(|_| ApiError::bad_request(format!("{at}: unknown exchange type '{kind}'")))?;
        p.exchanges.push((
            text(e, "vhost", &at)?.to_string(),
            ExchangeDef {
                name: text(e, "name", &at)?.to_string(),
                kind,
                durable: flag(e, "durable", true).map_err(|e| e.at(&at))?,
                auto_delete: flag(e, "auto_delete", false).map_err(|e| e.at(&at))?,
                internal: flag(e, "internal", false).map_err(|e| e.at(&at))?,
                arguments: arguments(e).map_err(|e| e.at(&at))?,
            },
        ));
    }
    for (i, q) in section(root, "queues")?.into_iter().enumerate() {
        let at = format!("queues[{i}]");
        p.queues.push((
            text(q, "vhost", &at)?.to_string(),
            QueueDef {
                name: text(q, "name", &at)?.to_string(),
                durable: flag(q, "durable", true).map_err(|e| e.at(&at))?,
                exclusive: false,
                auto_delete: flag(q, "auto_delete", false).map_err(|e| e.at(&at))?,
                arguments: arguments(q).map_err(|e| e.at(&at))?,
            },
        ));
    }
    for (i, b) in section(root, "bindings")?.into_iter().enumerate() {
        let at = format!("bindings[{i}]");
        let dest = text(b, "destination", &at)?.to_string();
        let destination = match text(b, "destination_type", &at)? {
            "queue" => Destination::Queue(dest),
            "exchange" => Destination::Exchange(dest),
            other => {
                return Err(ApiError::bad_request(format!(
                    "{at}: destination_type '{other}' is neither queue nor exchange"
                )))
            }
        };
        p.bindings.push((
            text(b, "vhost", &at)?.to_string(),
            Binding {
                source: text(b, "source", &at)?.to_string(),
                destination,
                routing_key: text(b, "routing_key", &at)?.to_string(),
                arguments: arguments(b).map_err(|e| e.at(&at))?,
            },
        ));
    }
    Ok(p)
}

/// `POST /api/definitions` (administrators): applies a definitions file. The whole file is
/// checked first, so a malformed one changes nothing; then vhosts, users, permissions, user
/// limits, topic permissions, vhost limits (`parameters` of component `vhost-limits`; other
/// components are skipped with a warning), policies, exchanges, queues and bindings are applied in that order (an entity the broker refuses —
/// a binding to a queue the file does not declare — stops the import there, with its reason).
pub(crate) async fn import(
    State(api): State<Api>,
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_administrator()?;
    let root = json_body(&body)?;
    let p = plan(&root)?;
    let b = &api.broker;
    for (v, metadata) in p.vhosts {
        if b.vhost(&v).is_err() {
            b.add_vhost(&v)?;
        }
        b.set_vhost_metadata(&v, metadata)?;
    }
    for (name, hash, tags) in p.users {
        let vhosts = b.auth().get(&name).map(|u| u.vhosts).unwrap_or_default();
        b.put_user(UserRecord {
            name,
            password_hash: hash,
            tags,
            vhosts,
        })?;
    }
    for perm in p.permissions {
        b.put_permission(perm)?;
    }
    for (user, limits) in p.user_limits {
        b.set_user_limits(&user, limits)?;
    }
    let vhost = |name: &str| {
        b.vhost(name)
            .map_err(|_| ApiError::bad_request(format!("vhost '{name}' is not defined")))
    };
    for tp in p.topic_permissions {
        b.put_topic_permission(tp)?;
    }
    for (v, limits) in p.vhost_limits {
        vhost(&v)?;
        b.set_vhost_limits(&v, limits)?;
    }
    for policy in p.policies {
        vhost(&policy.vhost.clone())?.put_policy(policy)?;
    }
    for (v, def) in p.exchanges {
        if is_builtin(&def.name) || def.name.starts_with("amq.") {
            continue;
        }
        vhost(&v)?.declare_exchange(def, false)?;
    }
    for (v, def) in p.queues {
        vhost(&v)?.declare_queue(def, false, b.next_connection_id())?;
    }
    for (v, binding) in p.bindings {
        vhost(&v)?.bind(binding, None)?;
    }
    b.sync().await?;
    tracing::info!(by = %caller.name, "definitions imported through the management API");
    Ok(StatusCode::NO_CONTENT)
}
