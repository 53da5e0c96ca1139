//! The `[tls]` section: the server's certificate and key, how client certificates are
//! verified, and certificate login. With it set, the TLS listeners open next to the plain ones.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Whether and how client certificates are asked for (RabbitMQ's `verify` with
/// `fail_if_no_peer_cert`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    /// No client certificate is asked for (`verify_none`).
    #[default]
    None,
    /// A client certificate is asked for and, when sent, must verify against `ca_file`; a
    /// client without one is let in (`verify_peer`, `fail_if_no_peer_cert = false`).
    Peer,
    /// Every client must send a certificate that verifies against `ca_file` (`verify_peer`,
    /// `fail_if_no_peer_cert = true`).
    Require,
}

/// Which part of a client certificate names its user (RabbitMQ's `ssl_cert_login_from`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CertLoginFrom {
    /// The subject's common name (CN).
    #[default]
    CommonName,
    /// The whole subject, as `CN=…, O=…`.
    DistinguishedName,
    /// The first subject alternative name of `cert_login_san_type`.
    SubjectAlternativeName,
}

/// The kind of subject alternative name certificate login reads
/// (RabbitMQ's `ssl_cert_login_san_type`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SanType {
    /// A DNS name.
    #[default]
    Dns,
    /// An e-mail address (rfc822Name).
    Email,
    /// A URI.
    Uri,
}

/// The `[tls]` section.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Certificate authorities client certificates are verified against (PEM).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Whether client certificates are asked for and required.
    #[serde(default)]
    pub verify: Verify,
    /// MQTT and STOMP clients that send no credentials log in as the user their verified
    /// certificate names (RabbitMQ's `ssl_cert_login`). AMQP clients choose this with the
    /// EXTERNAL mechanism, offered whenever a verified certificate names a user.
    #[serde(default)]
    pub cert_login: bool,
    /// Which part of the certificate names the user.
    #[serde(default)]
    pub cert_login_from: CertLoginFrom,
    /// The kind of SAN read when `cert_login_from = "subject_alternative_name"`.
    #[serde(default)]
    pub cert_login_san_type: SanType,
}
