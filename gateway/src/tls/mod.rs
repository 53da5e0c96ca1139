//! TLS for every listener, with rustls: the server configuration built from `[tls]`, swapped
//! whole when the certificate files are reloaded (SIGHUP, `junction ctl reload_certificates`)
//! so new connections get the new certificate and open ones keep theirs, and the handshake of
//! one accepted connection under the connection's handshake deadline.

mod certificate;
mod incoming;

pub(crate) use incoming::TlsIncoming;

use crate::config::{TlsConfig, Verify};
use junction_core::refusals::Refusal;
use junction_core::runtime::TlsSession;
use junction_core::Broker;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

/// Why the TLS settings could not be loaded.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("tls.{key} ({path}): {problem}")]
    File {
        /// The setting naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// rustls refused the certificates or key (a key that does not match, say).
    #[error("tls: {0}")]
    Rustls(String),
}

/// What a TLS listener negotiates with ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alpn {
    /// Nothing: the protocol is the listener's (AMQP, MQTT, STOMP, WebSocket upgrades).
    None,
    /// HTTP/1.1, for the management API.
    Http1,
}

/// The two server configurations of one certificate: without ALPN and with `http/1.1`.
struct Configs {
    stream: Arc<ServerConfig>,
    http: Arc<ServerConfig>,
}

/// The TLS settings in force, shared by every TLS listener.
pub(crate) struct TlsContext {
    settings: TlsConfig,
    current: RwLock<Configs>,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("cert_file", &self.settings.cert_file)
            .finish()
    }
}

impl TlsContext {
    /// Reads the certificate, key and CA files of `settings`.
    pub(crate) fn load(settings: TlsConfig) -> Result<TlsContext, TlsError> {
        let configs = build(&settings)?;
        Ok(TlsContext {
            settings,
            current: RwLock::new(configs),
        })
    }

    /// Reads the files again; connections accepted from now on use them. When a file is
    /// bad, the certificate in force stays (and the error says why).
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let fresh = build(&self.settings)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    fn config(&self, alpn: Alpn) -> Arc<ServerConfig> {
        let c = self.current.read().unwrap_or_else(|e| e.into_inner());
        match alpn {
            Alpn::None => c.stream.clone(),
            Alpn::Http1 => c.http.clone(),
        }
    }

    /// Runs the TLS handshake of `stream` from `peer` until `deadline`. Until the client's
    /// first bytes arrive only a ClientHello buffer exists; the configuration in force when
    /// the ClientHello is complete is used. A failure or timeout is logged, counted, and
    /// returns None (the socket is closed).
    pub(crate) async fn handshake(
        &self,
        stream: TcpStream,
        alpn: Alpn,
        deadline: Instant,
        broker: &Broker,
        peer: SocketAddr,
    ) -> Option<(TlsStream<TcpStream>, TlsSession)> {
        let handshake = async {
            let acceptor =
                tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
            let start = acceptor.await?;
            start.into_stream(self.config(alpn)).await
        };
        match tokio::time::timeout_at(deadline, handshake).await {
            Ok(Ok(tls)) => {
                let session = self.session_of(tls.get_ref().1);
                Some((tls, session))
            }
            Ok(Err(e)) => {
                if broker.refusals().count(Refusal::TlsHandshake) {
                    tracing::warn!(%peer, error = %e, "TLS handshake failed: connection closed");
                } else {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed: connection closed");
                }
                None
            }
            Err(_) => {
                junction_core::runtime::driver::handshake_expired(broker, peer);
                None
            }
        }
    }

    /// What the handshake established, with the user a verified client certificate names.
    fn session_of(&self, conn: &rustls::ServerConnection) -> TlsSession {
        let protocol = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        };
        let cipher = conn
            .negotiated_cipher_suite()
            .map(|s| {
                let suite = s.suite();
                suite
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{suite:?}"))
            })
            .unwrap_or_default();
        let names = conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| {
                certificate::names(
                    leaf,
                    self.settings.cert_login_from,
                    self.settings.cert_login_san_type,
                )
            });
        let (peer_subject, certificate_user) = match names {
            Some(n) => (Some(n.subject), n.user),
            None => (None, None),
        };
        TlsSession {
            protocol,
            cipher,
            peer_subject,
            certificate_user,
            cert_login: self.settings.cert_login,
        }
    }
}

/// Both server configurations of `settings`: TLS 1.2 and 1.3 only, on the ring provider.
fn build(settings: &TlsConfig) -> Result<Configs, TlsError> {
    let certs = certificates("cert_file", &settings.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&settings.key_file).map_err(|e| TlsError::File {
        key: "key_file",
        path: settings.key_file.clone(),
        problem: format!("no private key read: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match (settings.verify, &settings.ca_file) {
        (Verify::None, _) | (_, None) => builder.with_no_client_auth(),
        (verify, Some(ca_file)) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates("ca_file", ca_file)? {
                roots.add(ca).map_err(|e| TlsError::File {
                    key: "ca_file",
                    path: ca_file.clone(),
                    problem: e.to_string(),
                })?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = match verify {
                Verify::Peer => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let stream = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let mut http = stream.clone();
    http.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Configs {
        stream: Arc::new(stream),
        http: Arc::new(http),
    })
}

/// Every certificate of a PEM file; at least one.
fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |problem: String| TlsError::File {
        key,
        path: path.to_path_buf(),
        problem,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    Ok(certs)
}
