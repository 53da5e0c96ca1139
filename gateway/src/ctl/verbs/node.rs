//! The node as a whole: `status`, `ping`, `await_startup`, `start_app`/`stop_app`,
//! `set_log_level`, `environment`, `report`, and definitions export/import. Status comes from
//! RabbitMQ's `/api/nodes/{name}` and `/api/overview`; what RabbitMQ does over Erlang
//! distribution comes from Junction's `/api/junction/*`.

use super::access::objects;
use super::objects::{
    list_bindings, list_channels, list_connections, list_consumers, list_exchanges, list_policies,
    list_queues, QUEUE_COLUMNS,
};
use crate::ctl::client::segment;
use crate::ctl::{CtlError, Ctx};
use hyper::Method;
use serde_json::{json, Map, Value};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Carries out `verb` if it is one of this room's.
pub(super) async fn run(ctx: &Ctx, verb: &str, a: &[String]) -> Option<Result<(), CtlError>> {
    Some(match verb {
        "status" => status(ctx).await,
        "ping" => ping(ctx).await,
        "await_startup" => await_startup(ctx).await,
        "start_app" => switch_app(ctx, true).await,
        "stop_app" => switch_app(ctx, false).await,
        "set_log_level" => set_log_level(ctx, &a[0]).await,
        "set_vm_memory_high_watermark" => set_memory_watermark(ctx, a).await,
        "set_disk_free_limit" => set_disk_free_limit(ctx, &a[0]).await,
        "reload_certificates" => reload_certificates(ctx).await,
        "environment" => environment(ctx).await,
        "report" => report(ctx).await,
        "export_definitions" => export_definitions(ctx, &a[0]).await,
        "import_definitions" => import_definitions(ctx, &a[0]).await,
        _ => return None,
    })
}

/// The name of the node the API answers for.
async fn node_name(ctx: &Ctx) -> Result<String, CtlError> {
    let overview = ctx.node.get("/api/overview").await?;
    Ok(overview
        .get("node")
        .and_then(Value::as_str)
        .unwrap_or("junction@localhost")
        .to_string())
}

fn gb(v: &Value) -> String {
    format!("{:.4} gb", v.as_f64().unwrap_or(0.0) / 1e9)
}

fn text(v: Option<&Value>) -> String {
    v.map(crate::ctl::output::cell).unwrap_or_default()
}

async fn status(ctx: &Ctx) -> Result<(), CtlError> {
    let name = node_name(ctx).await?;
    let node = ctx
        .node
        .get(&format!("/api/nodes/{}", segment(&name)))
        .await?;
    let overview = ctx.node.get("/api/overview").await?;
    let vhosts = objects(ctx.node.get("/api/vhosts").await?).len();
    if ctx.out.json {
        let mut all = node.as_object().cloned().unwrap_or_default();
        all.insert(
            "totals".into(),
            json!({
                "virtual_host_count": vhosts,
                "objects": overview.get("object_totals"),
                "messages": overview.get("queue_totals"),
            }),
        );
        ctx.out.document(&Value::Object(all));
        return Ok(());
    }
    let j = node.get("junction").cloned().unwrap_or_default();
    let f = |k: &str| text(node.get(k));
    let mut s = String::new();
    s += &format!("Status of node {name} ...\nRuntime\n\n");
    s += &format!("OS PID: {}\nOS: {}\n", f("os_pid"), std::env::consts::OS);
    let uptime = node.get("uptime").and_then(Value::as_u64).unwrap_or(0) / 1000;
    s += &format!("Uptime (seconds): {uptime}\n");
    s += &format!(
        "Junction version: {}\nNode name: {name}\n",
        f("rabbitmq_version")
    );
    s += &format!(
        "Accepting client connections: {}\nLog level: {}\n",
        text(j.get("accepting_clients")),
        text(j.get("log_level"))
    );
    s += &format!(
        "\nData directory\n\nNode data directory: {}\n",
        f("data_dir")
    );
    s += "\nAlarms\n\n";
    let mut alarms = Vec::new();
    if node.get("mem_alarm") == Some(&json!(true)) {
        alarms.push("Memory alarm");
    }
    if node.get("disk_free_alarm") == Some(&json!(true)) {
        alarms.push("Free disk space alarm");
    }
    if alarms.is_empty() {
        s += "(none)\n";
    }
    for a in alarms {
        s += &format!("{a} on node {name}\n");
    }
    s += &format!(
        "\nMemory\n\nTotal memory used: {}\nCalculation strategy: rss\nMemory high watermark setting: computed to: {}\n",
        gb(&node["mem_used"]),
        gb(&node["mem_limit"])
    );
    s += &format!(
        "\nFile Descriptors\n\nTotal: {}, limit: {}\nSockets: {}\n",
        f("fd_used"),
        f("fd_total"),
        f("sockets_used")
    );
    s += &format!(
        "\nFree Disk Space\n\nLow free disk space watermark: {}\nFree disk space: {}\n",
        gb(&node["disk_free_limit"]),
        gb(&node["disk_free"])
    );
    let totals = &overview["object_totals"];
    let q = &overview["queue_totals"];
    s += &format!(
        "\nTotals\n\nConnection count: {}\nChannel count: {}\nQueue count: {}\nVirtual host count: {vhosts}\nMessages: {} ({} ready, {} unacknowledged)\n",
        text(totals.get("connections")),
        text(totals.get("channels")),
        text(totals.get("queues")),
        text(q.get("messages")),
        text(q.get("messages_ready")),
        text(q.get("messages_unacknowledged")),
    );
    s += "\nConnections by protocol\n\n";
    match j.get("connections_by_protocol").and_then(Value::as_object) {
        Some(m) if !m.is_empty() => {
            for (p, n) in m {
                s += &format!("{p}: {n}\n");
            }
        }
        _ => s += "(none)\n",
    }
    let mqtt = &j["mqtt"];
    s += &format!(
        "\nMQTT\n\nSessions: {} ({} connected)\nRetained messages: {}\n",
        text(mqtt.get("sessions")),
        text(mqtt.get("sessions_connected")),
        text(mqtt.get("retained_messages")),
    );
    let store = &j["store"];
    s += &format!(
        "\nStore\n\nMessage log segments: {}\nMessage log bytes: {}\nRecovery at start (seconds): {}\nDamaged stretches skipped at start: {}\nTorn tails cut at start: {}\n",
        text(store.get("segments")),
        text(store.get("bytes")),
        text(store.get("recovery_seconds")),
        text(store.get("damaged_stretches_skipped")),
        text(store.get("torn_tails_cut")),
    );
    s += "\nListeners\n\n";
    for l in node["listeners"].as_array().into_iter().flatten() {
        s += &format!(
            "Interface: {}, port: {}, protocol: {}\n",
            text(l.get("ip_address")),
            text(l.get("port")),
            text(l.get("protocol"))
        );
    }
    print!("{s}");
    Ok(())
}

async fn ping(ctx: &Ctx) -> Result<(), CtlError> {
    ctx.out.info(&format!("Will ping {}.", ctx.node.address()));
    node_name(ctx).await?;
    ctx.out.line("Ping succeeded");
    Ok(())
}

/// Waits until the node's client listeners run, or `--timeout` (default 300 s) passes.
async fn await_startup(ctx: &Ctx) -> Result<(), CtlError> {
    let limit = match ctx.inv.opt("timeout") {
        Some(_) => ctx.timeout,
        None => Duration::from_secs(300),
    };
    let deadline = Instant::now() + limit;
    let last = loop {
        let error = match ctx.node.get("/api/junction/app").await {
            Ok(v) if v.get("running") == Some(&json!(true)) => return Ok(()),
            Ok(_) => CtlError::Unreachable("the node runs but does not accept clients".into()),
            Err(e @ CtlError::Unreachable(_)) => e,
            Err(e) => return Err(e),
        };
        if Instant::now() >= deadline {
            break error;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    Err(CtlError::Unreachable(format!(
        "the node did not start within {} s: {}",
        limit.as_secs(),
        match last {
            CtlError::Unreachable(m) => m,
            _ => String::new(),
        }
    )))
}

async fn reload_certificates(ctx: &Ctx) -> Result<(), CtlError> {
    let name = node_name(ctx).await?;
    ctx.out
        .info(&format!("Reloading TLS certificates on node {name} ..."));
    ctx.node
        .expect(Method::POST, "/api/junction/reload-certificates", None)
        .await
        .map(drop)
}

async fn switch_app(ctx: &Ctx, running: bool) -> Result<(), CtlError> {
    let name = node_name(ctx).await?;
    ctx.out.info(&if running {
        format!("Starting node {name} ...")
    } else {
        format!("Stopping junction application on node {name} ...")
    });
    ctx.node
        .put("/api/junction/app", &json!({ "running": running }))
        .await
        .map(drop)
}

async fn set_log_level(ctx: &Ctx, level: &str) -> Result<(), CtlError> {
    ctx.out
        .info(&format!("Setting log level to \"{level}\" ..."));
    ctx.node
        .put("/api/junction/log-level", &json!({ "level": level }))
        .await
        .map(drop)
}

/// A size as rabbitmqctl takes it: bytes, or a number with a unit (`kB`, `MB`, `GB` are
/// powers of 1000; `k`/`KiB`, `M`/`MiB`, `G`/`GiB` powers of 1024).
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let factor: f64 = match unit.trim() {
        "" => 1.0,
        "kB" | "KB" => 1e3,
        "k" | "K" | "KiB" | "kiB" => 1024.0,
        "MB" => 1e6,
        "M" | "MiB" => 1024.0 * 1024.0,
        "GB" => 1e9,
        "G" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let n: f64 = number.parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some((n * factor) as u64)
}

async fn set_memory_watermark(ctx: &Ctx, a: &[String]) -> Result<(), CtlError> {
    let body = match a {
        [fraction] => {
            let f: f64 = fraction
                .parse()
                .ok()
                .filter(|f| (0.0..=1.0).contains(f))
                .ok_or_else(|| {
                    CtlError::Usage(format!("'{fraction}': expected a fraction between 0 and 1"))
                })?;
            ctx.out.info(&format!(
                "Setting memory threshold on {} to {f} ...",
                ctx.node.address()
            ));
            json!({ "fraction": f })
        }
        [kind, size] if kind == "absolute" => {
            let bytes = parse_size(size).ok_or_else(|| {
                CtlError::Usage(format!("'{size}': expected a size such as 512MiB"))
            })?;
            ctx.out.info(&format!(
                "Setting memory threshold on {} to {bytes} bytes ...",
                ctx.node.address()
            ));
            json!({ "bytes": bytes })
        }
        _ => {
            return Err(CtlError::Usage(
                "expected <fraction> or absolute <bytes>".into(),
            ))
        }
    };
    ctx.node
        .put("/api/junction/memory-high-watermark", &body)
        .await
        .map(drop)
}

async fn set_disk_free_limit(ctx: &Ctx, size: &str) -> Result<(), CtlError> {
    let bytes = parse_size(size)
        .ok_or_else(|| CtlError::Usage(format!("'{size}': expected a size such as 50MB")))?;
    ctx.out.info(&format!(
        "Setting disk free limit on {} to {bytes} bytes ...",
        ctx.node.address()
    ));
    ctx.node
        .put("/api/junction/disk-free-limit", &json!({ "bytes": bytes }))
        .await
        .map(drop)
}

/// JSON without its nulls (TOML has none).
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        v => v,
    }
}

async fn environment(ctx: &Ctx) -> Result<(), CtlError> {
    let name = node_name(ctx).await?;
    let env = ctx.node.get("/api/junction/environment").await?;
    if ctx.out.json {
        ctx.out.document(&env);
        return Ok(());
    }
    ctx.out
        .info(&format!("Application environment of node {name} ..."));
    let text = toml::to_string(&without_nulls(env))
        .map_err(|e| CtlError::Failed(format!("cannot print the configuration: {e}")))?;
    print!("{text}");
    Ok(())
}

/// rabbitmqctl's report: the status, then every listing, vhost by vhost.
async fn report(ctx: &Ctx) -> Result<(), CtlError> {
    status(ctx).await?;
    for (title, verb) in [("Users", "list_users"), ("Vhosts", "list_vhosts")] {
        println!("\n{title}\n");
        super::access::run(ctx, verb, &[]).await.unwrap_or(Ok(()))?;
    }
    println!("\nConnections\n");
    list_connections(
        ctx,
        &[
            "name",
            "user",
            "vhost",
            "protocol",
            "state",
            "channels",
            "peer_host",
            "peer_port",
        ]
        .map(String::from),
    )
    .await?;
    println!("\nChannels\n");
    list_channels(ctx, &[]).await?;
    let all_queue_columns: Vec<String> = QUEUE_COLUMNS.iter().map(|c| c.to_string()).collect();
    for v in objects(ctx.node.get("/api/vhosts").await?) {
        let vhost = v.get("name").and_then(Value::as_str).unwrap_or("/");
        let in_vhost = ctx.with_vhost(vhost);
        println!("\nVirtual host {vhost}\n");
        list_queues(&in_vhost, &all_queue_columns).await?;
        list_exchanges(&in_vhost, &[]).await?;
        list_bindings(&in_vhost, &[]).await?;
        list_consumers(&in_vhost, &[]).await?;
        super::access::run(&in_vhost, "list_permissions", &[])
            .await
            .unwrap_or(Ok(()))?;
        list_policies(&in_vhost).await?;
    }
    Ok(())
}

async fn export_definitions(ctx: &Ctx, target: &str) -> Result<(), CtlError> {
    let defs = ctx.node.get("/api/definitions").await?;
    let text = serde_json::to_string_pretty(&defs).unwrap_or_default();
    if target == "-" {
        println!("{text}");
        return Ok(());
    }
    ctx.out.info(&format!(
        "Exporting definitions in JSON to a file at \"{target}\" ..."
    ));
    std::fs::File::create(target)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| CtlError::Failed(format!("cannot write {target}: {e}")))
}

async fn import_definitions(ctx: &Ctx, source: &str) -> Result<(), CtlError> {
    let mut text = String::new();
    let read = if source == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        ctx.out.info(&format!(
            "Importing definitions in JSON from a file at \"{source}\" ..."
        ));
        std::fs::File::open(source).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| CtlError::Failed(format!("cannot read {source}: {e}")))?;
    let defs: Value = serde_json::from_str(&text)
        .map_err(|e| CtlError::Failed(format!("{source} is not JSON: {e}")))?;
    ctx.node
        .expect(Method::POST, "/api/definitions", Some(&defs))
        .await?;
    ctx.out.line("Definitions imported.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_as_rabbitmqctl_reads_them() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("50MB"), Some(50_000_000));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("1.5GB"), Some(1_500_000_000));
        assert_eq!(parse_size("10 furlongs"), None);
        assert_eq!(parse_size("-1"), None);
    }
}
