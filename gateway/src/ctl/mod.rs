//! `junction ctl`: rabbitmqctl's verbs, arguments, columns and output, carried out through a
//! node's management API (the same code path as the API's own clients, not a second
//! implementation of each verb). On the broker's machine the local credential in the data
//! directory stands in for a password, as the Erlang cookie does for rabbitmqctl.
//!
//! Exit codes: 0 success, 64 usage error, 69 node not reachable, 70 refused or failed; the
//! reason goes to stderr.

mod client;
mod options;
mod output;
mod verbs;

use crate::config::Config;
use crate::local_credential;
use client::{Credentials, NodeClient};
use options::Invocation;
use output::Output;
use std::time::Duration;

/// Success.
pub const EXIT_OK: u8 = 0;
/// The command line is wrong.
pub const EXIT_USAGE: u8 = 64;
/// The node could not be reached.
pub const EXIT_UNAVAILABLE: u8 = 69;
/// The node refused, or the operation failed.
pub const EXIT_FAILED: u8 = 70;

/// Why a command did not succeed.
#[derive(Debug)]
pub(crate) enum CtlError {
    /// A wrong command line (64), with what was wrong.
    Usage(String),
    /// No node answered (69).
    Unreachable(String),
    /// The node refused or the operation failed (70).
    Failed(String),
    /// The object named does not exist (70); verbs turn it into their own words.
    NotFound(String),
}

impl CtlError {
    /// A "not found" from the API said in the verb's words (`what` names the object);
    /// any other error as it is.
    pub(crate) fn missing(self, what: impl FnOnce() -> String) -> CtlError {
        match self {
            CtlError::NotFound(_) => CtlError::Failed(what()),
            e => e,
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            CtlError::Usage(_) => EXIT_USAGE,
            CtlError::Unreachable(_) => EXIT_UNAVAILABLE,
            CtlError::Failed(_) | CtlError::NotFound(_) => EXIT_FAILED,
        }
    }

    fn message(&self) -> &str {
        match self {
            CtlError::Usage(m) | CtlError::Unreachable(m) | CtlError::Failed(m) => m,
            CtlError::NotFound(m) => m,
        }
    }
}

/// What a verb works with: the node, how to print, and the command line.
#[derive(Clone)]
pub(crate) struct Ctx {
    /// The node's API.
    pub(crate) node: NodeClient,
    /// How to print.
    pub(crate) out: Output,
    /// `-p`/`--vhost` (default `/`).
    pub(crate) vhost: String,
    /// The whole command line.
    pub(crate) inv: Invocation,
    /// `-t`/`--timeout`.
    pub(crate) timeout: Duration,
}

impl Ctx {
    /// The vhost as a path segment.
    pub(crate) fn vhost_path(&self) -> String {
        client::segment(&self.vhost)
    }

    /// The same invocation in vhost `vhost`.
    pub(crate) fn with_vhost(&self, vhost: &str) -> Ctx {
        Ctx {
            vhost: vhost.to_string(),
            ..self.clone()
        }
    }
}

/// Runs `junction ctl` with `args` (what follows `ctl`); returns the exit code.
pub fn main(args: &[String]) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error:\ncannot start: {e}");
            return EXIT_FAILED;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("Error:\n{}", e.message());
            if matches!(e, CtlError::Usage(_)) {
                eprintln!("\nRun `junction ctl help` for the list of verbs.");
            }
            e.exit_code()
        }
    }
}

async fn run(args: &[String]) -> Result<(), CtlError> {
    let inv = options::parse(args)?;
    let Some(verb) = inv.verb.clone() else {
        verbs::print_help(None);
        return Err(CtlError::Usage("no verb given".into()));
    };
    if verb == "help" {
        return verbs::print_help(inv.args.first().map(String::as_str))
            .then_some(())
            .ok_or_else(|| CtlError::Usage(format!("unknown verb '{}'", inv.args[0])));
    }
    if inv.flag("help") {
        verbs::print_help(Some(&verb));
        return Ok(());
    }
    let spec =
        verbs::find(&verb).ok_or_else(|| CtlError::Usage(format!("unknown verb '{verb}'")))?;
    spec.check_arity(&inv.args)?;
    if verb == "version" {
        println!("{}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let ctx = context(inv)?;
    verbs::run(&ctx, spec).await
}

/// The node, credentials and output settings of an invocation.
fn context(inv: Invocation) -> Result<Ctx, CtlError> {
    let mut cfg = match inv.opt("config") {
        Some(path) => Config::load(std::path::Path::new(path))
            .map_err(|e| CtlError::Usage(format!("--config {path}: {e}")))?,
        None => Config::default(),
    };
    if let Some(d) = inv.opt("data-dir") {
        cfg.data_dir = d.into();
    }
    let timeout = match inv.opt("timeout") {
        None => Duration::from_secs(60),
        Some(t) => t
            .parse::<f64>()
            .ok()
            .filter(|s| *s > 0.0 && s.is_finite())
            .map(Duration::from_secs_f64)
            .ok_or_else(|| CtlError::Usage(format!("--timeout {t}: expected seconds")))?,
    };
    let url = match inv.opt("node") {
        Some(n) => node_url(n),
        None => {
            let mut a = cfg.listeners.management.socket_addr();
            if a.ip().is_unspecified() {
                a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{a}")
        }
    };
    let credentials = match inv.opt("username") {
        Some(u) => Credentials::User(u.into(), inv.opt("password").unwrap_or("").into()),
        None => match local_credential::read(&cfg.data_dir) {
            Ok(secret) => Credentials::Local(secret),
            Err(e @ local_credential::CredentialError::TooOpen { .. }) => {
                return Err(CtlError::Failed(e.to_string()))
            }
            Err(e) => {
                return Err(CtlError::Failed(format!(
                    "{e}\nRun as the owner of the broker's data directory (--data-dir or \
                     --config tell where it is), or pass --username and --password."
                )))
            }
        },
    };
    let out = Output {
        quiet: inv.flag("quiet") || inv.flag("silent"),
        no_headers: inv.flag("silent") || inv.flag("no-table-headers"),
        json: match inv.opt("formatter") {
            None | Some("table") | Some("tsv") => false,
            Some("json") => true,
            Some(f) => {
                return Err(CtlError::Usage(format!(
                    "--formatter {f}: expected json or table"
                )))
            }
        },
    };
    Ok(Ctx {
        node: NodeClient::new(&url, credentials, timeout)?,
        out,
        vhost: inv.opt("vhost").unwrap_or("/").to_string(),
        inv,
        timeout,
    })
}

/// `--node`: a URL, `host[:port]`, or a rabbitmqctl node name `name@host` (its host's API on
/// 15672).
fn node_url(n: &str) -> String {
    if n.contains("://") {
        n.to_string()
    } else if let Some((_, host)) = n.split_once('@') {
        format!("http://{host}:15672")
    } else if n.contains(':') {
        format!("http://{n}")
    } else {
        format!("http://{n}:15672")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_become_urls() {
        assert_eq!(node_url("http://h:1"), "http://h:1");
        assert_eq!(node_url("rabbit@box"), "http://box:15672");
        assert_eq!(node_url("box:8080"), "http://box:8080");
        assert_eq!(node_url("box"), "http://box:15672");
    }
}
