//! TLS clients for the tests: rustls client configurations trusting a test PKI's CA, with or
//! without a client certificate, and a connect that returns the TLS stream.

use crate::certificates::TestPki;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// TLS 1.2 and 1.3, as the broker offers.
pub const MODERN: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
/// TLS 1.2 only.
pub const TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// A client configuration that trusts `ca` (a file of `pki`) and presents the client
/// certificate `identity` (`<identity>.pem`/`.key`) when given; ALPN `alpn` when not empty.
pub fn client_config(
    pki: &TestPki,
    ca: &str,
    identity: Option<&str>,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(pki.path(ca)).expect("ca file") {
        roots.add(c.expect("ca cert")).expect("ca added");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(stem) => {
            let chain = CertificateDer::pem_file_iter(pki.path(&format!("{stem}.pem")))
                .expect("client cert")
                .collect::<Result<Vec<_>, _>>()
                .expect("client cert parses");
            let key =
                PrivateKeyDer::from_pem_file(pki.path(&format!("{stem}.key"))).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Connects to `addr` over TCP and runs the TLS handshake for `localhost`.
pub async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("server name");
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// The subject CN of the certificate the server presented on `stream`.
pub fn server_common_name(stream: &TlsStream<TcpStream>) -> Option<String> {
    let leaf = stream.get_ref().1.peer_certificates()?.first()?.clone();
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(cn.to_string())
}
