//! Users, vhosts, permissions, topic permissions and limits: rabbitmqctl's access-control
//! verbs over `/api/users`, `/api/vhosts`, `/api/permissions`, `/api/topic-permissions`,
//! `/api/vhost-limits` and `/api/user-limits`.

use super::columns;
use crate::ctl::client::{refusal, segment};
use crate::ctl::{CtlError, Ctx};
use hyper::Method;
use serde_json::{json, Map, Value};

/// Carries out `verb` if it is one of this room's.
pub(super) async fn run(ctx: &Ctx, verb: &str, a: &[String]) -> Option<Result<(), CtlError>> {
    Some(match verb {
        "list_users" => list_users(ctx).await,
        "add_user" => add_user(ctx, &a[0], &a[1]).await,
        "delete_user" => delete_user(ctx, &a[0]).await,
        "change_password" => change_password(ctx, &a[0], &a[1]).await,
        "set_user_tags" => set_user_tags(ctx, &a[0], &a[1..]).await,
        "authenticate_user" => authenticate_user(ctx, &a[0], &a[1]).await,
        "list_vhosts" => list_vhosts(ctx, a).await,
        "add_vhost" => add_vhost(ctx, &a[0]).await,
        "delete_vhost" => delete_vhost(ctx, &a[0]).await,
        "set_permissions" => set_permissions(ctx, a).await,
        "clear_permissions" => clear_permissions(ctx, &a[0]).await,
        "list_permissions" => list_permissions(ctx).await,
        "list_user_permissions" => list_user_permissions(ctx, &a[0]).await,
        "set_topic_permissions" => set_topic_permissions(ctx, a).await,
        "clear_topic_permissions" => clear_topic_permissions(ctx, a).await,
        "list_topic_permissions" => list_topic_permissions(ctx).await,
        "list_user_topic_permissions" => list_user_topic_permissions(ctx, &a[0]).await,
        "set_vhost_limits" => set_limits(ctx, Scope::Vhost, &ctx.vhost, &a[0]).await,
        "clear_vhost_limits" => clear_limits(ctx, Scope::Vhost, &ctx.vhost, "all").await,
        "list_vhost_limits" => list_limits(ctx, Scope::Vhost, Some(&ctx.vhost)).await,
        "set_user_limits" => set_limits(ctx, Scope::User, &a[0], &a[1]).await,
        "clear_user_limits" => clear_limits(ctx, Scope::User, &a[0], &a[1]).await,
        "list_user_limits" => list_limits(ctx, Scope::User, ctx.inv.opt("user")).await,
        _ => return None,
    })
}

/// The objects of a JSON array (anything else: none).
pub(crate) fn objects(v: Value) -> Vec<Map<String, Value>> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|i| match i {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Renames fields of `rows` (`from` → `to`), keeping the others.
pub(crate) fn renamed(
    mut rows: Vec<Map<String, Value>>,
    pairs: &[(&str, &str)],
) -> Vec<Map<String, Value>> {
    for r in &mut rows {
        for (from, to) in pairs {
            if let Some(v) = r.get(*from).cloned() {
                r.insert(to.to_string(), v);
            }
        }
    }
    rows
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|c| c.to_string()).collect()
}

async fn user(ctx: &Ctx, name: &str) -> Result<Value, CtlError> {
    ctx.node
        .get(&format!("/api/users/{}", segment(name)))
        .await
        .map_err(|e| e.missing(|| no_user(name)))
}

fn no_user(name: &str) -> String {
    format!("User \"{name}\" does not exist")
}

async fn list_users(ctx: &Ctx) -> Result<(), CtlError> {
    ctx.out.info("Listing users ...");
    let rows = renamed(
        objects(ctx.node.get("/api/users").await?),
        &[("name", "user")],
    );
    ctx.out.table(&cols(&["user", "tags"]), &rows);
    Ok(())
}

async fn add_user(ctx: &Ctx, name: &str, password: &str) -> Result<(), CtlError> {
    ctx.out.info(&format!("Adding user \"{name}\" ..."));
    match ctx.node.get(&format!("/api/users/{}", segment(name))).await {
        Ok(_) => return Err(CtlError::Failed(format!("User \"{name}\" already exists"))),
        Err(CtlError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let path = format!("/api/users/{}", segment(name));
    ctx.node
        .put(&path, &json!({ "password": password, "tags": "" }))
        .await?;
    ctx.out.info(
        "Done. Don't forget to grant the user permissions to some virtual hosts! \
         See 'junction ctl help set_permissions' to learn more.",
    );
    Ok(())
}

async fn delete_user(ctx: &Ctx, name: &str) -> Result<(), CtlError> {
    ctx.out.info(&format!("Deleting user \"{name}\" ..."));
    ctx.node
        .delete(&format!("/api/users/{}", segment(name)))
        .await
        .map_err(|e| e.missing(|| no_user(name)))
        .map(drop)
}

async fn change_password(ctx: &Ctx, name: &str, password: &str) -> Result<(), CtlError> {
    ctx.out
        .info(&format!("Changing password for user \"{name}\" ..."));
    let u = user(ctx, name).await?;
    let body = json!({ "password": password, "tags": u.get("tags").cloned().unwrap_or(json!([])) });
    ctx.node
        .put(&format!("/api/users/{}", segment(name)), &body)
        .await
        .map(drop)
}

async fn set_user_tags(ctx: &Ctx, name: &str, tags: &[String]) -> Result<(), CtlError> {
    ctx.out.info(&format!(
        "Setting tags for user \"{name}\" to [{}] ...",
        tags.join(", ")
    ));
    user(ctx, name).await?;
    ctx.node
        .put(
            &format!("/api/users/{}", segment(name)),
            &json!({ "tags": tags.join(",") }),
        )
        .await
        .map(drop)
}

/// Tries the password against the node's authentication, as a client's login would: the
/// API's `whoami` with those credentials (a user without a management tag is still
/// authenticated: the node says so in its refusal).
async fn authenticate_user(ctx: &Ctx, name: &str, password: &str) -> Result<(), CtlError> {
    ctx.out.info(&format!("Authenticating user \"{name}\" ..."));
    let as_user = ctx.node.as_user(name, password);
    let (status, body) = as_user.call(Method::GET, "/api/whoami", None, &[]).await?;
    let reason = body.get("reason").and_then(Value::as_str).unwrap_or("");
    if status.is_success() || reason == "Not management user" {
        ctx.out.line("Success");
        return Ok(());
    }
    if status == hyper::StatusCode::UNAUTHORIZED {
        return Err(CtlError::Failed(format!(
            "failed to authenticate user \"{name}\"\nuser '{name}' - invalid credentials"
        )));
    }
    Err(refusal(status, &body))
}

async fn list_vhosts(ctx: &Ctx, asked: &[String]) -> Result<(), CtlError> {
    let known = [
        "name",
        "description",
        "tags",
        "tracing",
        "default_queue_type",
    ];
    let columns = columns(asked, &["name"], &known)?;
    ctx.out.info("Listing vhosts ...");
    let rows = objects(ctx.node.get("/api/vhosts").await?);
    ctx.out.table(&columns, &rows);
    Ok(())
}

async fn add_vhost(ctx: &Ctx, name: &str) -> Result<(), CtlError> {
    ctx.out.info(&format!("Adding vhost \"{name}\" ..."));
    let mut body = Map::new();
    for (opt, field) in [
        ("description", "description"),
        ("tags", "tags"),
        ("default-queue-type", "default_queue_type"),
    ] {
        if let Some(v) = ctx.inv.opt(opt) {
            body.insert(field.into(), Value::String(v.into()));
        }
    }
    ctx.node
        .put(
            &format!("/api/vhosts/{}", segment(name)),
            &Value::Object(body),
        )
        .await
        .map(drop)
}

async fn delete_vhost(ctx: &Ctx, name: &str) -> Result<(), CtlError> {
    ctx.out.info(&format!("Deleting vhost \"{name}\" ..."));
    ctx.node
        .delete(&format!("/api/vhosts/{}", segment(name)))
        .await
        .map_err(|e| e.missing(|| no_vhost(name)))
        .map(drop)
}

/// What a verb says of a vhost that does not exist.
pub(crate) fn no_vhost(name: &str) -> String {
    format!("Virtual host '{name}' does not exist")
}

fn vhost_missing(ctx: &Ctx) -> impl Fn(CtlError) -> CtlError + '_ {
    move |e| e.missing(|| no_vhost(&ctx.vhost))
}

async fn set_permissions(ctx: &Ctx, a: &[String]) -> Result<(), CtlError> {
    let name = &a[0];
    ctx.out.info(&format!(
        "Setting permissions for user \"{name}\" in vhost \"{}\" ...",
        ctx.vhost
    ));
    user(ctx, name).await?;
    let path = format!("/api/permissions/{}/{}", ctx.vhost_path(), segment(name));
    let body = json!({ "configure": a[1], "write": a[2], "read": a[3] });
    ctx.node
        .put(&path, &body)
        .await
        .map_err(vhost_missing(ctx))
        .map(drop)
}

async fn clear_permissions(ctx: &Ctx, name: &str) -> Result<(), CtlError> {
    ctx.out.info(&format!(
        "Clearing permissions for user \"{name}\" in vhost \"{}\" ...",
        ctx.vhost
    ));
    let path = format!("/api/permissions/{}/{}", ctx.vhost_path(), segment(name));
    match ctx.node.delete(&path).await {
        Ok(_) | Err(CtlError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn list_permissions(ctx: &Ctx) -> Result<(), CtlError> {
    ctx.out.info(&format!(
        "Listing permissions for vhost \"{}\" ...",
        ctx.vhost
    ));
    let path = format!("/api/vhosts/{}/permissions", ctx.vhost_path());
    let rows = objects(ctx.node.get(&path).await.map_err(vhost_missing(ctx))?);
    ctx.out
        .table(&cols(&["user", "configure", "write", "read"]), &rows);
    Ok(())
}

async fn list_user_permissions(ctx: &Ctx, name: &str) -> Result<(), CtlError> {
    ctx.out
        .info(&format!("Listing permissions for user \"{name}\" ..."));
    user(ctx, name).await?;
    let path = format!("/api/users/{}/permissions", segment(name));
    let rows = objects(ctx.node.get(&path).await?);
    ctx.out
        .table(&cols(&["vhost", "configure", "write", "read"]), &rows);
    Ok(())
}

async fn set_topic_permissions(ctx: &Ctx, a: &[String]) -> Result<(), CtlError> {
    let (name, exchange) = (&a[0], &a[1]);
    ctx.out.info(&format!(
        "Setting topic permissions on \"{exchange}\" for user \"{name}\" in vhost \"{}\" ...",
        ctx.vhost
    ));
    user(ctx, name).await?;
    let path = format!(
        "/api/topic-permissions/{}/{}",
        ctx.vhost_path(),
        segment(name)
    );
    let body = json!({ "exchange": exchange, "write": a[2], "read": a[3] });
    ctx.node
        .put(&path, &body)
        .await
        .map_err(vhost_missing(ctx))
        .map(drop)
}

async fn clear_topic_permissions(ctx: &Ctx, a: &[String]) -> Result<(), CtlError> {
    let name = &a[0];
    ctx.out.info(&format!(
        "Clearing topic permissions for user \"{name}\" in vhost \"{}\" ...",
        ctx.vhost
    ));
    let mut path = format!(
        "/api/topic-permissions/{}/{}",
        ctx.vhost_path(),
        segment(name)
    );
    if let Some(exchange) = a.get(1) {
        path.push_str(&format!("?exchange={}", segment(exchange)));
    }
    match ctx.node.delete(&path).await {
        Ok(_) | Err(CtlError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn list_topic_permissions(ctx: &Ctx) -> Result<(), CtlError> {
    ctx.out.info(&format!(
        "Listing topic permissions for vhost \"{}\" ...",
        ctx.vhost
    ));
    let path = format!("/api/vhosts/{}/topic-permissions", ctx.vhost_path());
    let rows = objects(ctx.node.get(&path).await.map_err(vhost_missing(ctx))?);
    ctx.out
        .table(&cols(&["user", "exchange", "write", "read"]), &rows);
    Ok(())
}

async fn list_user_topic_permissions(ctx: &Ctx, name: &str) -> Result<(), CtlError> {
    ctx.out.info(&format!(
        "Listing topic permissions for user \"{name}\" ..."
    ));
    user(ctx, name).await?;
    let path = format!("/api/users/{}/topic-permissions", segment(name));
    let rows = objects(ctx.node.get(&path).await?);
    ctx.out
        .table(&cols(&["vhost", "exchange", "write", "read"]), &rows);
    Ok(())
}

/// Whose limits.
#[derive(Clone, Copy)]
enum Scope {
    Vhost,
    User,
}

impl Scope {
    fn base(self) -> &'static str {
        match self {
            Scope::Vhost => "/api/vhost-limits",
            Scope::User => "/api/user-limits",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Scope::Vhost => "vhost",
            Scope::User => "user",
        }
    }
}

/// The limits of `name` now, as an object.
async fn limits_of(ctx: &Ctx, scope: Scope, name: &str) -> Result<Map<String, Value>, CtlError> {
    let path = format!("{}/{}", scope.base(), segment(name));
    let listed = objects(ctx.node.get(&path).await?);
    Ok(listed
        .into_iter()
        .find_map(|o| match o.get("value") {
            Some(Value::Object(m)) => Some(m.clone()),
            _ => None,
        })
        .unwrap_or_default())
}

/// `set_vhost_limits`/`set_user_limits`: the definition replaces the limits (as rabbitmqctl),
/// so a limit left out is cleared.
async fn set_limits(ctx: &Ctx, scope: Scope, name: &str, definition: &str) -> Result<(), CtlError> {
    ctx.out.info(&format!(
        "Setting {} limits to \"{definition}\" for {} \"{name}\" ...",
        scope.noun(),
        scope.noun()
    ));
    let wanted: Map<String, Value> = match serde_json::from_str(definition) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(CtlError::Usage(format!(
                "'{definition}' is not a JSON object of limits, e.g. '{{\"max-connections\": 10}}'"
            )))
        }
    };
    let old = limits_of(ctx, scope, name).await?;
    for (limit, value) in &wanted {
        let path = format!("{}/{}/{}", scope.base(), segment(name), segment(limit));
        ctx.node.put(&path, &json!({ "value": value })).await?;
    }
    for limit in old.keys().filter(|k| !wanted.contains_key(*k)) {
        let path = format!("{}/{}/{}", scope.base(), segment(name), segment(limit));
        ctx.node.delete(&path).await?;
    }
    Ok(())
}

async fn clear_limits(ctx: &Ctx, scope: Scope, name: &str, which: &str) -> Result<(), CtlError> {
    ctx.out
        .info(&format!("Clearing {} \"{name}\" limits ...", scope.noun()));
    let old = limits_of(ctx, scope, name).await?;
    for limit in old.keys().filter(|k| which == "all" || k.as_str() == which) {
        let path = format!("{}/{}/{}", scope.base(), segment(name), segment(limit));
        ctx.node.delete(&path).await?;
    }
    Ok(())
}

async fn list_limits(ctx: &Ctx, scope: Scope, name: Option<&str>) -> Result<(), CtlError> {
    match name {
        Some(name) => {
            ctx.out.info(&format!(
                "Listing limits for {} \"{name}\" ...",
                scope.noun()
            ));
            let limits = limits_of(ctx, scope, name).await?;
            ctx.out.document(&Value::Object(limits));
        }
        None => {
            ctx.out
                .info(&format!("Listing limits for all {}s ...", scope.noun()));
            let rows = objects(ctx.node.get(scope.base()).await?);
            ctx.out
                .table(&cols(&[scope.noun(), "value"]), &rows_with_json_value(rows));
        }
    }
    Ok(())
}

/// Limit rows with their `value` object printed as JSON text, as rabbitmqctl does.
fn rows_with_json_value(mut rows: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    for r in &mut rows {
        if let Some(v) = r.get("value").cloned() {
            r.insert("value".into(), Value::String(v.to_string()));
        }
    }
    rows
}
