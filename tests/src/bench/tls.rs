//! TLS for the load generator: with `--tls-ca FILE`, MQTT connections and `amqps://` URIs use
//! TLS (1.2 or 1.3, rustls on ring, the server checked against FILE as `localhost`), so the
//! same scenarios measure a broker's TLS listeners.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();

/// Trusts the CA certificates in `ca_file` for every TLS connection of this process.
pub fn use_ca(ca_file: &Path) -> anyhow::Result<()> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_file)? {
        roots.add(c?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    CONFIG
        .set(Arc::new(config))
        .map_err(|_| anyhow::anyhow!("the TLS CA is set twice"))
}

/// The TLS client configuration, when `--tls-ca` was given.
pub fn config() -> Option<Arc<ClientConfig>> {
    CONFIG.get().cloned()
}

/// A stream's two halves, boxed so plain TCP and TLS read the same.
pub type Halves = (
    Box<dyn AsyncRead + Unpin + Send>,
    Box<dyn AsyncWrite + Unpin + Send>,
);

/// Connects to `addr`, over TLS when `tls` (which needs `--tls-ca`).
pub async fn connect(addr: &str, tls: bool) -> anyhow::Result<Halves> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    if !tls {
        let (rd, wr) = stream.into_split();
        return Ok((Box::new(rd), Box::new(wr)));
    }
    let config = config().ok_or_else(|| anyhow::anyhow!("amqps:// needs --tls-ca"))?;
    let name = ServerName::try_from("localhost")?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await?;
    let (rd, wr) = tokio::io::split(stream);
    Ok((Box::new(rd), Box::new(wr)))
}
