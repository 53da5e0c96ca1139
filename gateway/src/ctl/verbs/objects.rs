//! Queues, exchanges, bindings, connections, channels, consumers and policies: rabbitmqctl's
//! listings (columns named as rabbitmqctl names them) and operations, over the API's
//! `/api/queues`, `/api/exchanges`, `/api/bindings`, `/api/connections`, `/api/channels`,
//! `/api/consumers` and `/api/policies`.

use super::access::{no_vhost, objects, renamed};
use super::columns;
use crate::ctl::client::segment;
use crate::ctl::{CtlError, Ctx};
use hyper::Method;
use serde_json::{json, Map, Value};

/// Carries out `verb` if it is one of this room's.
pub(super) async fn run(ctx: &Ctx, verb: &str, a: &[String]) -> Option<Result<(), CtlError>> {
    Some(match verb {
        "list_queues" => list_queues(ctx, a).await,
        "list_exchanges" => list_exchanges(ctx, a).await,
        "list_bindings" => list_bindings(ctx, a).await,
        "list_connections" => list_connections(ctx, a).await,
        "list_channels" => list_channels(ctx, a).await,
        "list_consumers" => list_consumers(ctx, a).await,
        "close_connection" => close_connection(ctx, &a[0], &a[1]).await,
        "close_all_connections" => close_all_connections(ctx, &a[0]).await,
        "purge_queue" => purge_queue(ctx, &a[0]).await,
        "delete_queue" => delete_queue(ctx, &a[0]).await,
        "set_policy" => set_policy(ctx, a).await,
        "clear_policy" => clear_policy(ctx, &a[0]).await,
        "list_policies" => list_policies(ctx).await,
        _ => return None,
    })
}

/// The objects at `path` of the vhost (404: the vhost does not exist).
async fn of_vhost(ctx: &Ctx, base: &str) -> Result<Vec<Map<String, Value>>, CtlError> {
    let path = format!("{base}/{}", ctx.vhost_path());
    ctx.node
        .get(&path)
        .await
        .map(objects)
        .map_err(|e| e.missing(|| no_vhost(&ctx.vhost)))
}

/// The columns `list_queues` knows.
pub(crate) const QUEUE_COLUMNS: [&str; 13] = [
    "name",
    "messages",
    "messages_ready",
    "messages_unacknowledged",
    "consumers",
    "durable",
    "auto_delete",
    "exclusive",
    "arguments",
    "memory",
    "policy",
    "state",
    "type",
];

pub(crate) async fn list_queues(ctx: &Ctx, asked: &[String]) -> Result<(), CtlError> {
    let columns = columns(asked, &["name", "messages"], &QUEUE_COLUMNS)?;
    ctx.out.info(&format!(
        "Timeout: {:.1} seconds ...",
        ctx.timeout.as_secs_f64()
    ));
    ctx.out
        .info(&format!("Listing queues for vhost {} ...", ctx.vhost));
    let mut rows = of_vhost(ctx, "/api/queues").await?;
    // Every queue is on this node and online: --offline lists none.
    if ctx.inv.flag("offline") {
        rows.clear();
    }
    ctx.out.table(&columns, &rows);
    Ok(())
}

pub(crate) async fn list_exchanges(ctx: &Ctx, asked: &[String]) -> Result<(), CtlError> {
    let known = [
        "name",
        "type",
        "durable",
        "auto_delete",
        "internal",
        "arguments",
        "policy",
    ];
    let columns = columns(asked, &["name", "type"], &known)?;
    ctx.out
        .info(&format!("Listing exchanges for vhost {} ...", ctx.vhost));
    let rows = of_vhost(ctx, "/api/exchanges").await?;
    ctx.out.table(&columns, &rows);
    Ok(())
}

pub(crate) async fn list_bindings(ctx: &Ctx, asked: &[String]) -> Result<(), CtlError> {
    let known = [
        "source_name",
        "source_kind",
        "destination_name",
        "destination_kind",
        "routing_key",
        "arguments",
    ];
    let columns = columns(asked, &known, &known)?;
    ctx.out
        .info(&format!("Listing bindings for vhost {}...", ctx.vhost));
    let mut rows = renamed(
        of_vhost(ctx, "/api/bindings").await?,
        &[
            ("source", "source_name"),
            ("destination", "destination_name"),
            ("destination_type", "destination_kind"),
        ],
    );
    for r in &mut rows {
        r.insert("source_kind".into(), json!("exchange"));
    }
    ctx.out.table(&columns, &rows);
    Ok(())
}

pub(crate) async fn list_connections(ctx: &Ctx, asked: &[String]) -> Result<(), CtlError> {
    let known = [
        "pid",
        "name",
        "user",
        "vhost",
        "protocol",
        "state",
        "channels",
        "peer_host",
        "peer_port",
        "host",
        "port",
        "client_properties",
        "connected_at",
        "recv_oct",
        "send_oct",
        "type",
        "node",
    ];
    let columns = columns(asked, &["user", "peer_host", "peer_port", "state"], &known)?;
    ctx.out.info("Listing connections ...");
    // A connection has no Erlang pid here: its name identifies it (close_connection takes it).
    let rows = renamed(
        objects(ctx.node.get("/api/connections").await?),
        &[("name", "pid")],
    );
    ctx.out.table(&columns, &rows);
    Ok(())
}

pub(crate) async fn list_channels(ctx: &Ctx, asked: &[String]) -> Result<(), CtlError> {
    let known = [
        "pid",
        "name",
        "connection",
        "number",
        "user",
        "vhost",
        "consumer_count",
        "messages_unacknowledged",
        "messages_unconfirmed",
        "prefetch_count",
        "global_prefetch_count",
        "confirm",
        "transactional",
        "state",
    ];
    let defaults = ["pid", "user", "consumer_count", "messages_unacknowledged"];
    let columns = columns(asked, &defaults, &known)?;
    ctx.out.info("Listing channels ...");
    let mut rows = renamed(
        objects(ctx.node.get("/api/channels").await?),
        &[("name", "pid")],
    );
    for r in &mut rows {
        let connection = r
            .get("connection_details")
            .and_then(|d| d.get("name"))
            .cloned()
            .unwrap_or(Value::Null);
        r.insert("connection".into(), connection);
    }
    ctx.out.table(&columns, &rows);
    Ok(())
}

pub(crate) async fn list_consumers(ctx: &Ctx, asked: &[String]) -> Result<(), CtlError> {
    let known = [
        "queue_name",
        "channel_pid",
        "consumer_tag",
        "ack_required",
        "prefetch_count",
        "active",
        "activity_status",
        "arguments",
        "exclusive",
        "priority",
    ];
    let defaults = [
        "queue_name",
        "channel_pid",
        "consumer_tag",
        "ack_required",
        "prefetch_count",
        "active",
        "arguments",
    ];
    let columns = columns(asked, &defaults, &known)?;
    ctx.out
        .info(&format!("Listing consumers in vhost {} ...", ctx.vhost));
    let mut rows = of_vhost(ctx, "/api/consumers").await?;
    for r in &mut rows {
        let pick = |r: &Map<String, Value>, outer: &str| {
            r.get(outer)
                .and_then(|d| d.get("name"))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let (queue, channel) = (pick(r, "queue"), pick(r, "channel_details"));
        r.insert("queue_name".into(), queue);
        r.insert("channel_pid".into(), channel);
    }
    ctx.out.table(&columns, &rows);
    Ok(())
}

/// Asks the node to close connection `name` with `why`: Ok(false) when there is none.
async fn close_one(ctx: &Ctx, name: &str, why: &str) -> Result<bool, CtlError> {
    ctx.out
        .info(&format!("Closing connection {name}, reason: {why}..."));
    let path = format!("/api/connections/{}", segment(name));
    let (status, body) = ctx
        .node
        .call(
            Method::DELETE,
            &path,
            None,
            &[("x-reason", why.to_string())],
        )
        .await?;
    match status {
        s if s.is_success() => Ok(true),
        hyper::StatusCode::NOT_FOUND => Ok(false),
        s => Err(crate::ctl::client::refusal(s, &body)),
    }
}

async fn close_connection(ctx: &Ctx, name: &str, why: &str) -> Result<(), CtlError> {
    if close_one(ctx, name, why).await? {
        return Ok(());
    }
    Err(CtlError::Failed(format!(
        "no connection named '{name}' (list_connections name shows them)"
    )))
}

async fn close_all_connections(ctx: &Ctx, why: &str) -> Result<(), CtlError> {
    let global = ctx.inv.flag("global");
    let mut closed = 0;
    for c in objects(ctx.node.get("/api/connections").await?) {
        let vhost = c.get("vhost").and_then(Value::as_str).unwrap_or_default();
        let Some(name) = c.get("name").and_then(Value::as_str) else {
            continue;
        };
        // One that closed meanwhile is not a failure.
        if (global || vhost == ctx.vhost) && close_one(ctx, name, why).await? {
            closed += 1;
        }
    }
    ctx.out.info(&format!("Closed {closed} connections"));
    Ok(())
}

fn queue_path(ctx: &Ctx, name: &str) -> String {
    format!("/api/queues/{}/{}", ctx.vhost_path(), segment(name))
}

fn queue_missing<'a>(ctx: &'a Ctx, name: &'a str) -> impl Fn(CtlError) -> CtlError + 'a {
    move |e| e.missing(|| format!("queue '{name}' in vhost '{}' not found", ctx.vhost))
}

async fn purge_queue(ctx: &Ctx, name: &str) -> Result<(), CtlError> {
    ctx.out.info(&format!(
        "Purging queue '{name}' in vhost '{}' ...",
        ctx.vhost
    ));
    ctx.node
        .delete(&format!("{}/contents", queue_path(ctx, name)))
        .await
        .map_err(queue_missing(ctx, name))
        .map(drop)
}

async fn delete_queue(ctx: &Ctx, name: &str) -> Result<(), CtlError> {
    ctx.out.info(&format!(
        "Deleting queue '{name}' on vhost '{}' ...",
        ctx.vhost
    ));
    let path = queue_path(ctx, name);
    let before = ctx
        .node
        .get(&path)
        .await
        .map_err(queue_missing(ctx, name))?;
    let mut query = Vec::new();
    for flag in ["if-empty", "if-unused"] {
        if ctx.inv.flag(flag) {
            query.push(format!("{flag}=true"));
        }
    }
    let target = if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    };
    ctx.node
        .delete(&target)
        .await
        .map_err(queue_missing(ctx, name))?;
    let ready = before
        .get("messages_ready")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    ctx.out.line(&format!(
        "Queue was successfully deleted with {ready} ready messages"
    ));
    Ok(())
}

async fn set_policy(ctx: &Ctx, a: &[String]) -> Result<(), CtlError> {
    let (name, pattern, definition) = (&a[0], &a[1], &a[2]);
    let priority: i64 = match ctx.inv.opt("priority") {
        None => 0,
        Some(p) => p
            .parse()
            .map_err(|_| CtlError::Usage(format!("--priority {p}: expected an integer")))?,
    };
    let apply_to = ctx.inv.opt("apply-to").unwrap_or("all");
    ctx.out.info(&format!(
        "Setting policy \"{name}\" for pattern \"{pattern}\" to \"{definition}\" with priority \"{priority}\" for vhost \"{}\" ...",
        ctx.vhost
    ));
    let definition: Value = match serde_json::from_str(definition) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return Err(CtlError::Usage(format!(
                "'{definition}' is not a JSON object, e.g. '{{\"max-length\": 100}}'"
            )))
        }
    };
    let path = format!("/api/policies/{}/{}", ctx.vhost_path(), segment(name));
    let body = json!({
        "pattern": pattern,
        "definition": definition,
        "priority": priority,
        "apply-to": apply_to,
    });
    ctx.node.put(&path, &body).await.map(drop)
}

async fn clear_policy(ctx: &Ctx, name: &str) -> Result<(), CtlError> {
    ctx.out.info(&format!(
        "Clearing policy \"{name}\" on vhost \"{}\" ...",
        ctx.vhost
    ));
    let path = format!("/api/policies/{}/{}", ctx.vhost_path(), segment(name));
    ctx.node
        .delete(&path)
        .await
        .map_err(|e| {
            e.missing(|| {
                format!(
                    "Parameter does not exist: policy '{name}' in vhost '{}'",
                    ctx.vhost
                )
            })
        })
        .map(drop)
}

pub(crate) async fn list_policies(ctx: &Ctx) -> Result<(), CtlError> {
    ctx.out
        .info(&format!("Listing policies for vhost \"{}\" ...", ctx.vhost));
    let mut rows = of_vhost(ctx, "/api/policies").await?;
    for r in &mut rows {
        if let Some(d) = r.get("definition").cloned() {
            r.insert("definition".into(), Value::String(d.to_string()));
        }
    }
    let columns: Vec<String> = [
        "vhost",
        "name",
        "pattern",
        "apply-to",
        "definition",
        "priority",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    ctx.out.table(&columns, &rows);
    Ok(())
}
