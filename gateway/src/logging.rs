//! The broker's log: lines on stderr, as text for people or JSON for log shippers, with a
//! filter that `junction ctl set_log_level` changes while the broker runs.

use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`).
    Json,
}

/// The installed filter, changeable at run time.
struct Installed {
    handle: reload::Handle<EnvFilter, Registry>,
    current: std::sync::Mutex<String>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Installs the process's logger with `filter` (RUST_LOG syntax) in `format`.
pub fn init(filter: &str, format: LogFormat) -> Result<(), String> {
    let parsed = EnvFilter::try_new(filter).map_err(|e| format!("invalid log filter: {e}"))?;
    let (layer, handle) = reload::Layer::new(parsed);
    let registry = tracing_subscriber::registry().with(layer);
    let installed = match format {
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init(),
    };
    installed.map_err(|e| e.to_string())?;
    let _ = INSTALLED.set(Installed {
        handle,
        current: std::sync::Mutex::new(filter.to_string()),
    });
    Ok(())
}

/// RabbitMQ's log level names, and the filter each stands for.
const LEVELS: [(&str, &str); 9] = [
    ("debug", "debug"),
    ("info", "info"),
    ("notice", "info"),
    ("warning", "warn"),
    ("warn", "warn"),
    ("error", "error"),
    ("critical", "error"),
    ("none", "off"),
    ("trace", "trace"),
];

/// Why the level could not be changed.
#[derive(Debug, PartialEq, Eq)]
pub enum LevelError {
    /// Not a level RabbitMQ or a RUST_LOG filter knows.
    Invalid(String),
    /// This process did not install the logger (a broker embedded in a test, say).
    NotInstalled,
}

/// Changes the filter to `level`: one of RabbitMQ's level names (`debug`, `info`, `warning`,
/// `error`, `critical`, `none`) or a RUST_LOG filter. Returns the filter now in force.
pub fn set_level(level: &str) -> Result<String, LevelError> {
    let filter = LEVELS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(level))
        .map(|(_, f)| f.to_string())
        .unwrap_or_else(|| level.to_string());
    if !plausible_filter(&filter) {
        return Err(LevelError::Invalid(
            "expected debug, info, warning, error, critical, none, or directives as target=level"
                .into(),
        ));
    }
    let parsed = EnvFilter::try_new(&filter).map_err(|e| LevelError::Invalid(e.to_string()))?;
    let installed = INSTALLED.get().ok_or(LevelError::NotInstalled)?;
    installed
        .handle
        .reload(parsed)
        .map_err(|_| LevelError::NotInstalled)?;
    *installed.current.lock().unwrap_or_else(|e| e.into_inner()) = filter.clone();
    Ok(filter)
}

/// Whether `filter` is made of directives `level` or `target=level` (EnvFilter takes almost
/// any text as a target, so a typo would silently log nothing).
fn plausible_filter(filter: &str) -> bool {
    let is_level = |l: &str| {
        ["trace", "debug", "info", "warn", "error", "off"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(l))
    };
    let is_target = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':' || b == b'-')
    };
    !filter.is_empty()
        && filter.split(',').all(|d| match d.rsplit_once('=') {
            Some((target, level)) => is_target(target) && is_level(level),
            None => is_level(d) || is_target(d),
        })
}

/// The filter in force, when this process installed the logger.
pub fn current() -> Option<String> {
    INSTALLED
        .get()
        .map(|i| i.current.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked() {
        assert!(plausible_filter("debug"));
        assert!(plausible_filter("info,junction_amqp=debug"));
        assert!(plausible_filter("junction_mqtt"));
        assert!(!plausible_filter("not a level!"));
        assert!(!plausible_filter("x=loud"));
        assert!(!plausible_filter(""));
    }
}
