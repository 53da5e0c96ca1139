//! `junction`: the broker binary; `junction ctl VERB` is its rabbitmqctl.

use anyhow::Context;
use clap::Parser;
use junction_gateway::config::Config;
use junction_gateway::logging::{self, LogFormat};
use junction_gateway::Gateway;
use std::path::PathBuf;
use std::process::ExitCode;

/// Junction: one broker for AMQP 0-9-1, STOMP and MQTT.
///
/// `junction ctl VERB [ARGS]` manages a running broker, with rabbitmqctl's verbs
/// (`junction ctl help` lists them).
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// TOML configuration file (without one, the embedded defaults are used).
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Log filter, e.g. `info` or `junction_amqp=debug` (overrides RUST_LOG and the config).
    #[arg(long)]
    log_level: Option<String>,
    /// Data directory (overrides the config).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// How log lines are written: `text` for people, `json` (one object per line) for log
    /// shippers.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("ctl") {
        return ExitCode::from(junction_gateway::ctl::main(&argv[2..]));
    }
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("junction: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut cfg = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    let filter = args
        .log_level
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .or_else(|| cfg.log_level.clone())
        .unwrap_or_else(|| "info".into());
    logging::init(&filter, args.log_format).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let gateway = Gateway::start(cfg).await?;
        serve_until_signal(&gateway).await;
        tracing::info!("shutting down");
        gateway.shutdown().await;
        Ok(())
    })
}

/// Runs until SIGINT or SIGTERM; each SIGHUP reloads the TLS certificates.
async fn serve_until_signal(gateway: &Gateway) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(mut term), Ok(mut hup)) => loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => return,
                    _ = term.recv() => return,
                    _ = hup.recv() => {
                        // The outcome is logged by the reload itself.
                        if let Ok(false) = gateway.reload_certificates() {
                            tracing::info!("SIGHUP: no [tls] section, nothing to reload");
                        }
                    }
                }
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = gateway;
        let _ = tokio::signal::ctrl_c().await;
    }
}
