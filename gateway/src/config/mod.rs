//! The configuration file (TOML) and its embedded defaults.

mod auth;
mod listeners;
mod tls;

pub use auth::{AuthConfig, AuthHttpConfig, Backend, HttpMethod};
pub use listeners::{ListenerConfig, Listeners, WsListenerConfig};
pub use tls::{CertLoginFrom, SanType, TlsConfig, Verify};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A configuration problem, named by key.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    /// The file is not valid TOML, or has unknown keys or wrong types.
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    #[error("config key '{key}': {problem}")]
    /// A value is out of range.
    Invalid {
        /// The key, as written in the file (`limits.channel_max`).
        key: String,
        /// What is wrong with its value.
        problem: String,
    },
}

/// A user created at start (added to those already stored).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The user's name.
    pub name: String,
    /// Its password (hashed when it is stored).
    pub password: String,
    #[serde(default)]
    /// Its tags.
    pub tags: Vec<String>,
    /// Vhosts the user may open; `["*"]` for all.
    #[serde(default = "all_vhosts")]
    pub vhosts: Vec<String>,
}

fn all_vhosts() -> Vec<String> {
    vec!["*".into()]
}

/// STOMP settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StompConfig {
    /// Login used when CONNECT carries none (RabbitMQ's `stomp.default_user`); empty = refuse.
    pub default_user: String,
    /// The passcode of `default_user`.
    pub default_pass: String,
}

impl Default for StompConfig {
    fn default() -> Self {
        StompConfig {
            default_user: "guest".into(),
            default_pass: "guest".into(),
        }
    }
}

/// MQTT settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Messages a clean session keeps for a client that does not keep up; the oldest beyond
    /// it are dropped (Mosquitto's `max_queued_messages`). 0 = no limit.
    pub max_queued_messages: usize,
    /// Subscriptions one MQTT session may hold (0 = no limit).
    pub max_subscriptions: usize,
    /// Retained messages one vhost may hold (0 = no limit); past it a retained publish to a
    /// new topic is delivered but not retained (MQTT 5 QoS ≥ 1: PUBACK 0x97, not published).
    pub max_retained_messages: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        let mqtt = junction_core::runtime::Limits::default().mqtt;
        MqttConfig {
            max_queued_messages: mqtt.max_queued_messages,
            max_subscriptions: mqtt.max_subscriptions,
            max_retained_messages: junction_mqtt::registry::DEFAULT_MAX_RETAINED,
        }
    }
}

/// Protocol limits.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest frame accepted (AMQP frame_max, STOMP frame, MQTT packet), in bytes.
    pub max_frame_size: u32,
    /// Largest message body, in bytes.
    pub max_message_size: u64,
    /// AMQP channels per connection.
    pub channel_max: u16,
    /// Heart-beat the server proposes, in seconds (0 = off).
    pub heartbeat: u16,
    /// Deliveries buffered per connection before back-pressure.
    pub delivery_buffer: usize,
    /// Milliseconds from accept to a logged-in session (RabbitMQ's `handshake_timeout`).
    pub handshake_timeout: u64,
    /// Client connections over every listener at once; 0 = as many as the file-descriptor
    /// limit allows after a reserve for the stores.
    pub max_connections: usize,
    /// Milliseconds each failed login costs its peer address (0 = no delay): past
    /// `failed_login_burst` recent failures, new connections from that address wait before
    /// their login is looked at, one per delay.
    pub failed_login_delay: u64,
    /// Failed logins a peer address may make at once before the delay applies.
    pub failed_login_burst: u64,
    /// New connections a second one peer address may open, over every listener (0 = no
    /// limit); beyond it a connection is closed at accept.
    pub connection_rate_per_peer: u64,
    /// Connections a peer address may open at once before `connection_rate_per_peer` applies.
    pub connection_rate_burst: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = junction_core::runtime::Limits::default();
        LimitsConfig {
            max_frame_size: l.max_frame_size,
            max_message_size: l.max_message_size,
            channel_max: l.amqp.channel_max,
            heartbeat: l.heartbeat,
            delivery_buffer: l.delivery_buffer,
            handshake_timeout: l.handshake_timeout.as_millis() as u64,
            max_connections: 0,
            failed_login_delay: 1000,
            failed_login_burst: 5,
            connection_rate_per_peer: 0,
            connection_rate_burst: 20,
        }
    }
}

/// When persistent messages reach the disk.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FsyncConfig {
    /// Group commit: every acknowledgement of a persistent message waits for its fdatasync
    /// (or for a consumer's acknowledgement of it, when that comes first).
    Always,
    /// Never fdatasync: faster, but a crash of the machine loses acknowledged messages.
    NeverUnsafe,
}

/// The `[storage]` section.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// When the message log is synced to disk.
    pub fsync: FsyncConfig,
    /// Size of one message-log segment file, in MiB.
    pub segment_size_mib: u64,
    /// How long an unconsumed persistent message waits (gathering others) before its group
    /// commit's fdatasync, in microseconds.
    pub commit_window_us: u64,
    /// Publishers are blocked while the data directory's file system has less free space than
    /// this, in MiB (RabbitMQ's `disk_free_limit`, 50 MB by default there too).
    pub disk_free_limit_mib: u64,
    /// Publishers are also blocked while the message log takes more than this, in MiB (0 = no
    /// limit; at least twice `segment_size_mib`, as the newest segment is never reclaimed).
    pub message_log_limit_mib: u64,
    /// Ready persistent messages each durable queue keeps in memory (count and MiB of bodies);
    /// beyond either, bodies stay in the message log and are read back as consumers near them.
    pub memory_window_messages: usize,
    /// Body bytes of ready persistent messages each durable queue keeps in memory.
    pub memory_window_mib: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        let d = junction_core::store::LogOptions::default();
        StorageConfig {
            fsync: FsyncConfig::Always,
            segment_size_mib: d.segment_bytes / (1024 * 1024),
            commit_window_us: d.commit_window.as_micros() as u64,
            disk_free_limit_mib: 50,
            message_log_limit_mib: 0,
            memory_window_messages: d.memory_window.messages,
            memory_window_mib: d.memory_window.bytes >> 20,
        }
    }
}

impl StorageConfig {
    /// The message log's options from this section.
    pub fn log_options(&self) -> junction_core::store::LogOptions {
        junction_core::store::LogOptions {
            segment_bytes: self.segment_size_mib * 1024 * 1024,
            fsync: match self.fsync {
                FsyncConfig::Always => junction_core::store::FsyncPolicy::Always,
                FsyncConfig::NeverUnsafe => junction_core::store::FsyncPolicy::NeverUnsafe,
            },
            commit_window: std::time::Duration::from_micros(self.commit_window_us),
            memory_window: junction_core::storage::MemoryWindow {
                messages: self.memory_window_messages,
                bytes: self.memory_window_mib << 20,
            },
            ..junction_core::store::LogOptions::default()
        }
    }
}

/// The `[memory]` section: RabbitMQ's `vm_memory_high_watermark`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// Publishers are blocked while resident memory is above this fraction of the machine's
    /// memory (or of the cgroup's limit, when lower).
    pub high_watermark: f64,
    /// An absolute watermark in MiB; when set (> 0) it replaces the fraction.
    pub high_watermark_mib: u64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            high_watermark: 0.4,
            high_watermark_mib: 0,
        }
    }
}

/// The `[management]` section: how the management API keeps its statistics.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ManagementConfig {
    /// How often message rates are sampled, in milliseconds (RabbitMQ's
    /// `collect_statistics_interval`, 5000 by default).
    pub collect_statistics_interval: u64,
}

impl Default for ManagementConfig {
    fn default() -> Self {
        ManagementConfig {
            collect_statistics_interval: 5000,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The protocol listeners.
    pub listeners: Listeners,
    /// Where durable state is kept.
    pub data_dir: PathBuf,
    /// The message log and its limits.
    pub storage: StorageConfig,
    /// The memory high watermark.
    pub memory: MemoryConfig,
    /// The management API's statistics.
    pub management: ManagementConfig,
    /// The vhost created on first start.
    pub default_vhost: String,
    /// The user created on first start (RabbitMQ's guest/guest, loopback only).
    pub default_user: String,
    /// The password of `default_user`.
    pub default_pass: String,
    /// Users who may connect only from loopback.
    pub loopback_users: Vec<String>,
    /// Users created on an empty data directory.
    pub users: Vec<UserConfig>,
    /// What a client may send.
    pub limits: LimitsConfig,
    /// STOMP settings.
    pub stomp: StompConfig,
    /// MQTT settings.
    pub mqtt: MqttConfig,
    /// Log filter (as RUST_LOG), e.g. "info" or "junction_amqp=debug".
    pub log_level: Option<String>,
    /// TLS for the TLS listeners; none of them opens without it.
    pub tls: Option<TlsConfig>,
    /// Which backends check logins and rights.
    pub auth: AuthConfig,
    /// The HTTP backend's service, when `auth.backends` names it.
    pub auth_http: Option<AuthHttpConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: Listeners::default(),
            data_dir: PathBuf::from("junction-data"),
            storage: StorageConfig::default(),
            memory: MemoryConfig::default(),
            management: ManagementConfig::default(),
            default_vhost: "/".into(),
            default_user: "guest".into(),
            default_pass: "guest".into(),
            loopback_users: vec!["guest".into()],
            users: Vec::new(),
            limits: LimitsConfig::default(),
            stomp: StompConfig::default(),
            mqtt: MqttConfig::default(),
            log_level: None,
            tls: None,
            auth: AuthConfig::default(),
            auth_http: None,
        }
    }
}

impl Config {
    /// Reads and checks a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses and checks TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, problem: &str| {
            Err(ConfigError::Invalid {
                key: key.into(),
                problem: problem.into(),
            })
        };
        if self.limits.max_frame_size < 4096 {
            return bad("limits.max_frame_size", "must be at least 4096");
        }
        if self.limits.channel_max == 0 {
            return bad("limits.channel_max", "must be at least 1");
        }
        if !(self.memory.high_watermark > 0.0 && self.memory.high_watermark <= 1.0) {
            return bad(
                "memory.high_watermark",
                "must be a fraction above 0 and at most 1",
            );
        }
        if self.limits.handshake_timeout == 0 {
            return bad(
                "limits.handshake_timeout",
                "must be at least 1 (milliseconds)",
            );
        }
        if self.limits.connection_rate_per_peer > 0 && self.limits.connection_rate_burst == 0 {
            return bad(
                "limits.connection_rate_burst",
                "must be at least 1 when connection_rate_per_peer is set",
            );
        }
        if self.limits.delivery_buffer == 0 {
            return bad("limits.delivery_buffer", "must be at least 1");
        }
        for (key, ws) in [
            ("listeners.stomp_ws.path", &self.listeners.stomp_ws),
            ("listeners.mqtt_ws.path", &self.listeners.mqtt_ws),
            ("listeners.stomp_wss.path", &self.listeners.stomp_wss),
            ("listeners.mqtt_wss.path", &self.listeners.mqtt_wss),
        ] {
            if !ws.path.starts_with('/') {
                return bad(key, "must start with '/'");
            }
        }
        if self.default_vhost.is_empty() {
            return bad("default_vhost", "must not be empty");
        }
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", "must not be empty");
        }
        if !(1..=1024).contains(&self.storage.segment_size_mib) {
            return bad("storage.segment_size_mib", "must be between 1 and 1024");
        }
        let log_limit = self.storage.message_log_limit_mib;
        if log_limit != 0 && log_limit < 2 * self.storage.segment_size_mib {
            return bad(
                "storage.message_log_limit_mib",
                "must be 0 (no limit) or at least twice segment_size_mib",
            );
        }
        if !(100..=3_600_000).contains(&self.management.collect_statistics_interval) {
            return bad(
                "management.collect_statistics_interval",
                "must be between 100 and 3600000 (milliseconds)",
            );
        }
        if self.storage.memory_window_messages == 0 {
            return bad("storage.memory_window_messages", "must be at least 1");
        }
        if self.storage.memory_window_mib > 1 << 20 {
            return bad(
                "storage.memory_window_mib",
                "must be at most 1048576 (1 TiB)",
            );
        }
        if self.storage.commit_window_us > 1_000_000 {
            return bad("storage.commit_window_us", "must be at most 1000000 (1 s)");
        }
        if let Err((key, problem)) = auth::check(&self.auth, self.auth_http.as_ref()) {
            return bad(&key, &problem);
        }
        if let Some(tls) = &self.tls {
            if tls.verify != Verify::None && tls.ca_file.is_none() {
                return bad(
                    "tls.ca_file",
                    "must be set when tls.verify is \"peer\" or \"require\"",
                );
            }
            if tls.cert_login && tls.verify == Verify::None {
                return bad(
                    "tls.cert_login",
                    "needs tls.verify = \"peer\" or \"require\" (no certificate is asked for)",
                );
            }
        }
        for (i, u) in self.users.iter().enumerate() {
            if u.name.is_empty() {
                return bad(&format!("users[{i}].name"), "must not be empty");
            }
        }
        Ok(())
    }

    /// The core's limits from this configuration.
    pub fn core_limits(&self) -> junction_core::runtime::Limits {
        let defaults = junction_core::runtime::Limits::default();
        junction_core::runtime::Limits {
            max_frame_size: self.limits.max_frame_size,
            max_message_size: self.limits.max_message_size,
            heartbeat: self.limits.heartbeat,
            delivery_buffer: self.limits.delivery_buffer,
            handshake_timeout: std::time::Duration::from_millis(self.limits.handshake_timeout),
            amqp: junction_core::runtime::AmqpLimits {
                channel_max: self.limits.channel_max,
                ..defaults.amqp
            },
            mqtt: junction_core::runtime::MqttLimits {
                max_queued_messages: self.mqtt.max_queued_messages,
                max_subscriptions: self.mqtt.max_subscriptions,
            },
            ..defaults
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.listeners.amqp.port, 5672);
        assert_eq!(c.listeners.stomp.port, 61613);
        assert_eq!(c.listeners.mqtt.port, 1883);
    }

    #[test]
    fn tls_section_opens_its_listeners_and_is_checked() {
        let c = Config::parse(
            r#"
            [tls]
            cert_file = "server.pem"
            key_file = "server.key"
            ca_file = "ca.pem"
            verify = "require"
            cert_login = true
            cert_login_from = "subject_alternative_name"
            cert_login_san_type = "email"
            [listeners.mqtts]
            port = 18883
            "#,
        )
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.verify, Verify::Require);
        assert_eq!(tls.cert_login_from, CertLoginFrom::SubjectAlternativeName);
        assert_eq!(tls.cert_login_san_type, SanType::Email);
        assert_eq!(c.listeners.mqtts.port, 18883);
        assert_eq!(c.listeners.amqps.port, 5671);
        assert_eq!(c.listeners.stomps.port, 61614);
        assert_eq!(c.listeners.stomp_wss.port, 15673);
        assert_eq!(c.listeners.mqtt_wss.port, 15676);
        assert_eq!(c.listeners.management_tls.port, 15671);
        assert!(Config::default().tls.is_none());
        let no_ca = "[tls]\ncert_file = \"a\"\nkey_file = \"b\"\nverify = \"peer\"\n";
        let e = Config::parse(no_ca).unwrap_err().to_string();
        assert!(e.contains("tls.ca_file"), "{e}");
        let login_unverified = "[tls]\ncert_file = \"a\"\nkey_file = \"b\"\ncert_login = true\n";
        let e = Config::parse(login_unverified).unwrap_err().to_string();
        assert!(e.contains("tls.cert_login"), "{e}");
        let e = Config::parse("[tls]\ncert_file = \"a\"\nkey_file = \"b\"\nverify = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("verify"), "{e}");
    }

    #[test]
    fn full_example_parses() {
        let c = Config::parse(
            r#"
            data_dir = "/var/lib/junction"
            default_vhost = "/"
            [listeners.amqp]
            address = "127.0.0.1"
            port = 5673
            [listeners.mqtt]
            enabled = false
            [limits]
            heartbeat = 30
            [[users]]
            name = "app"
            password = "secret"
            tags = ["management"]
            "#,
        )
        .unwrap();
        assert_eq!(c.listeners.amqp.port, 5673);
        assert!(!c.listeners.mqtt.enabled);
        assert_eq!(c.listeners.stomp.port, 61613);
        assert_eq!(c.limits.heartbeat, 30);
        assert_eq!(c.users[0].vhosts, vec!["*"]);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = Config::parse("[listeners.amqp]\nprot = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("prot"), "{e}");
        let e = Config::parse("[limits]\nheartbeat = -1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("heartbeat"), "{e}");
        let e = Config::parse("[limits]\nmax_frame_size = 10\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("limits.max_frame_size"), "{e}");
        let e = Config::parse("colour = \"blue\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour"), "{e}");
        let e = Config::parse("[storage]\nsegment_size_mib = 8\nmessage_log_limit_mib = 10\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("storage.message_log_limit_mib"), "{e}");
        let e = Config::parse("[storage]\nmemory_window_messages = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("storage.memory_window_messages"), "{e}");
    }

    #[test]
    fn storage_section_reaches_the_log_options() {
        let c = Config::parse(
            "[storage]\nmemory_window_messages = 7\nmemory_window_mib = 3\nmessage_log_limit_mib = 64\n",
        )
        .unwrap();
        let o = c.storage.log_options();
        assert_eq!(
            (o.memory_window.messages, o.memory_window.bytes),
            (7, 3 << 20)
        );
        assert_eq!(c.storage.message_log_limit_mib, 64);
    }
}
