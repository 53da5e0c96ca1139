//! A test PKI made with rcgen: a CA, a server certificate for `localhost`/127.0.0.1, client
//! certificates it signed (one current, one expired), and a second CA nobody trusts with a
//! client certificate of its own. Written as PEM files, as an operator would have them.

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};

/// The files of a test PKI in one directory.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The directory holding every file.
    pub dir: PathBuf,
}

/// The client certificates [`TestPki::write`] makes, by file stem: `<stem>.pem`, `<stem>.key`.
pub const CLIENTS: [(&str, &str); 3] = [
    // Signed by the CA, valid now: its CN is the user certificate login logs in as.
    ("client", "cert-user"),
    // Signed by the CA, expired in 2020.
    ("expired", "cert-user"),
    // Signed by the untrusted CA.
    ("rogue", "cert-user"),
];

impl TestPki {
    /// Makes a CA, a server certificate (`server.pem`/`server.key`, SANs localhost and
    /// 127.0.0.1, CN `server_cn`), the client certificates of [`CLIENTS`] and the untrusted
    /// CA (`rogue-ca.pem`), and writes them into `dir`.
    pub fn write(dir: &Path, server_cn: &str) -> TestPki {
        std::fs::create_dir_all(dir).expect("pki dir");
        let (ca_pem, ca) = authority("Junction test CA");
        let (rogue_pem, rogue) = authority("Somebody else's CA");
        std::fs::write(dir.join("ca.pem"), ca_pem).expect("ca.pem");
        std::fs::write(dir.join("rogue-ca.pem"), rogue_pem).expect("rogue-ca.pem");
        let pki = TestPki {
            dir: dir.to_path_buf(),
        };
        pki.server(server_cn, &ca);
        for (stem, cn) in CLIENTS {
            let issuer = if stem == "rogue" { &rogue } else { &ca };
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.distinguished_name.push(DnType::CommonName, cn);
            params
                .distinguished_name
                .push(DnType::OrganizationName, "Junction tests");
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            if stem == "expired" {
                params.not_before = date_time_ymd(2019, 1, 1);
                params.not_after = date_time_ymd(2020, 1, 1);
            }
            pki.leaf(stem, params, issuer);
        }
        pki
    }

    /// Writes `server.pem`/`server.key`: CN `cn`, for localhost and 127.0.0.1, signed by `ca`.
    fn server(&self, cn: &str, ca: &Issuer<'static, KeyPair>) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string()]).expect("server params");
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.leaf("server", params, ca);
    }

    fn leaf(&self, stem: &str, params: CertificateParams, issuer: &Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, issuer).expect("signed");
        std::fs::write(self.path(&format!("{stem}.pem")), cert.pem()).expect("cert");
        std::fs::write(self.path(&format!("{stem}.key")), key.serialize_pem()).expect("key");
    }

    /// A file of the PKI.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The PEM text of a file of the PKI.
    pub fn pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("pem file")
    }
}

/// A self-signed CA: its PEM and the issuer that signs with it.
fn authority(cn: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("ca key");
    let cert = params.self_signed(&key).expect("ca cert");
    (cert.pem(), Issuer::new(params, key))
}
