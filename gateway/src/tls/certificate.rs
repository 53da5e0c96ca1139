//! The names in a verified client certificate: its subject, and the user name certificate
//! login takes from it (the CN, the whole subject, or a subject alternative name).

use crate::config::{CertLoginFrom, SanType};
use x509_parser::extensions::GeneralName;

/// What a client certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Names {
    /// The subject, as `CN=…, O=…`.
    pub(super) subject: String,
    /// The user name, when the chosen part is present.
    pub(super) user: Option<String>,
}

/// The names of the DER certificate `der`; None when it does not parse (rustls verified it,
/// so this is not expected).
pub(super) fn names(der: &[u8], from: CertLoginFrom, san: SanType) -> Option<Names> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject().to_string();
    let user = match from {
        CertLoginFrom::DistinguishedName => Some(subject.clone()),
        CertLoginFrom::CommonName => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string),
        CertLoginFrom::SubjectAlternativeName => cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .and_then(|ext| {
                ext.value.general_names.iter().find_map(|n| match (san, n) {
                    (SanType::Dns, GeneralName::DNSName(s))
                    | (SanType::Email, GeneralName::RFC822Name(s))
                    | (SanType::Uri, GeneralName::URI(s)) => Some(s.to_string()),
                    _ => None,
                })
            }),
    };
    Some(Names { subject, user })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType as RcSan};

    fn certificate() -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["device-7.example".to_string()]).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "device-7");
        dn.push(DnType::OrganizationName, "Fleet");
        params.distinguished_name = dn;
        params
            .subject_alt_names
            .push(RcSan::Rfc822Name("ops@example.com".try_into().unwrap()));
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn each_source_of_the_user_name() {
        let der = certificate();
        let cn = names(&der, CertLoginFrom::CommonName, SanType::Dns).unwrap();
        assert_eq!(cn.user.as_deref(), Some("device-7"));
        assert!(cn.subject.contains("CN=device-7"), "{}", cn.subject);
        assert!(cn.subject.contains("O=Fleet"), "{}", cn.subject);
        let dn = names(&der, CertLoginFrom::DistinguishedName, SanType::Dns).unwrap();
        assert_eq!(dn.user, Some(dn.subject.clone()));
        let dns = names(&der, CertLoginFrom::SubjectAlternativeName, SanType::Dns).unwrap();
        assert_eq!(dns.user.as_deref(), Some("device-7.example"));
        let email = names(&der, CertLoginFrom::SubjectAlternativeName, SanType::Email).unwrap();
        assert_eq!(email.user.as_deref(), Some("ops@example.com"));
        let uri = names(&der, CertLoginFrom::SubjectAlternativeName, SanType::Uri).unwrap();
        assert_eq!(uri.user, None, "no URI SAN in the certificate");
        assert_eq!(
            names(
                b"not a certificate",
                CertLoginFrom::CommonName,
                SanType::Dns
            ),
            None
        );
    }
}
