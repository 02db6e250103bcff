//! Cluster PKI: the CA, serving and client certificates, kubeconfigs.
//!
//! The CA is made on first start (valid 10 years) and kept under
//! `DATA_DIR/tls`; a second start reuses it. Leaf certificates are valid for
//! a year and re-issued in process when a third of their life is left
//! ([`needs_renewal`]), so a node never goes down on an expired certificate.

mod files;
pub mod kubeconfig;

pub use files::write_private;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("certificate {what}: {message}")]
    Cert { what: String, message: String },
}

fn cert_err(what: &str, e: impl std::fmt::Display) -> PkiError {
    PkiError::Cert { what: what.to_string(), message: e.to_string() }
}

pub const CA_DAYS: i64 = 3650;
pub const LEAF_DAYS: i64 = 365;

/// A PEM certificate with its PEM private key.
#[derive(Debug, Clone)]
pub struct CertKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// What a leaf certificate is for.
#[derive(Debug, Clone, Default)]
pub struct LeafSpec {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub server: bool,
    pub client: bool,
}

/// The cluster certificate authority.
pub struct Ca {
    pub cert_pem: String,
    key: KeyPair,
    dir: PathBuf,
}

impl Ca {
    /// Load `DIR/ca.crt` + `DIR/ca.key`, or create them.
    pub fn load_or_create(dir: &Path) -> Result<Ca, PkiError> {
        let crt = dir.join("ca.crt");
        let key = dir.join("ca.key");
        if crt.exists() && key.exists() {
            let cert_pem = files::read(&crt)?;
            let key_pem = files::read(&key)?;
            let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::File { path: key.clone(), message: e.to_string() })?;
            return Ok(Ca { cert_pem, key, dir: dir.to_path_buf() });
        }
        let key_pair = KeyPair::generate().map_err(|e| cert_err("ca", e))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("coracle-ca@{}", OffsetDateTime::now_utc().unix_timestamp()));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(CA_DAYS);
        let cert = params.self_signed(&key_pair).map_err(|e| cert_err("ca", e))?;
        files::write_private(&key, key_pair.serialize_pem().as_bytes())?;
        files::write_public(&crt, cert.pem().as_bytes())?;
        tracing::info!(path = %crt.display(), "created cluster CA");
        Ok(Ca { cert_pem: cert.pem(), key: key_pair, dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA private key in PEM (for signing tokens with the same trust root).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issue a new leaf certificate with a fresh key.
    pub fn issue(&self, spec: &LeafSpec) -> Result<CertKey, PkiError> {
        let key_pair = KeyPair::generate().map_err(|e| cert_err(&spec.common_name, e))?;
        let mut sans: Vec<SanType> = Vec::new();
        for d in &spec.dns_names {
            sans.push(SanType::DnsName(d.clone().try_into().map_err(|e| cert_err(d, e))?));
        }
        for ip in &spec.ips {
            sans.push(SanType::IpAddress(*ip));
        }
        let mut params = CertificateParams::default();
        params.subject_alt_names = sans;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.common_name.clone());
        for o in &spec.organizations {
            dn.push(DnType::OrganizationName, o.clone());
        }
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        if spec.server {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.client {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(LEAF_DAYS);
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key).map_err(|e| cert_err("ca", e))?;
        let cert = params.signed_by(&key_pair, &issuer).map_err(|e| cert_err(&spec.common_name, e))?;
        Ok(CertKey { cert_pem: cert.pem(), key_pem: key_pair.serialize_pem() })
    }

    /// Load `DIR/NAME.crt`/`.key` if still fresh and covering `spec`'s names,
    /// else issue and write a new pair.
    pub fn load_or_issue(&self, name: &str, spec: &LeafSpec) -> Result<CertKey, PkiError> {
        let crt = self.dir.join(format!("{name}.crt"));
        let key = self.dir.join(format!("{name}.key"));
        if crt.exists() && key.exists() {
            let existing = CertKey { cert_pem: files::read(&crt)?, key_pem: files::read(&key)? };
            if !needs_renewal(&existing.cert_pem) && covers(&existing.cert_pem, spec) {
                return Ok(existing);
            }
        }
        let fresh = self.issue(spec)?;
        files::write_private(&key, fresh.key_pem.as_bytes())?;
        files::write_public(&crt, fresh.cert_pem.as_bytes())?;
        tracing::info!(path = %crt.display(), cn = %spec.common_name, "issued certificate");
        Ok(fresh)
    }
}

/// Load the ECDSA P-256 key `DIR/NAME.key`, or create it (once: a second
/// start reuses it, so tokens signed before a restart stay valid).
pub fn load_or_create_signing_key(dir: &Path, name: &str) -> Result<KeyPair, PkiError> {
    let path = dir.join(format!("{name}.key"));
    if path.exists() {
        let pem = files::read(&path)?;
        return KeyPair::from_pem(&pem).map_err(|e| PkiError::File { path: path.clone(), message: e.to_string() });
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| cert_err(name, e))?;
    files::write_private(&path, key.serialize_pem().as_bytes())?;
    tracing::info!(path = %path.display(), "created service account signing key");
    Ok(key)
}

fn parse_pem_cert(pem: &str) -> Option<Vec<u8>> {
    let mut reader = std::io::BufReader::new(pem.as_bytes());
    let first = rustls_pemfile::certs(&mut reader).next()?.ok().map(|c| c.to_vec());
    first
}

/// True when less than a third of the certificate's lifetime is left (or it
/// cannot be read).
pub fn needs_renewal(cert_pem: &str) -> bool {
    let Some(der) = parse_pem_cert(cert_pem) else { return true };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else { return true };
    let nb = cert.validity().not_before.timestamp();
    let na = cert.validity().not_after.timestamp();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    now > na - (na - nb) / 3 || now < nb
}

/// Seconds until the certificate needs renewal (0 if now).
pub fn seconds_until_renewal(cert_pem: &str) -> i64 {
    let Some(der) = parse_pem_cert(cert_pem) else { return 0 };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else { return 0 };
    let nb = cert.validity().not_before.timestamp();
    let na = cert.validity().not_after.timestamp();
    let due = na - (na - nb) / 3;
    (due - OffsetDateTime::now_utc().unix_timestamp()).max(0)
}

fn covers(cert_pem: &str, spec: &LeafSpec) -> bool {
    let Some(der) = parse_pem_cert(cert_pem) else { return false };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else { return false };
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => dns.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or([0; 4]))),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or([0; 16]))),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    spec.dns_names.iter().all(|d| dns.contains(d)) && spec.ips.iter().all(|i| ips.contains(i))
}

/// Subject common name and organizations of a DER certificate.
pub fn subject_of(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let cn = subject.iter_common_name().next()?.as_str().ok()?.to_string();
    let orgs = subject.iter_organization().filter_map(|o| o.as_str().ok().map(str::to_string)).collect();
    Some((cn, orgs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_reused_and_leaves_verify_names() {
        let dir = std::env::temp_dir().join(format!("coracle-pki-{}", uuid::Uuid::new_v4()));
        let ca = Ca::load_or_create(&dir).expect("ca");
        let again = Ca::load_or_create(&dir).expect("ca again");
        assert_eq!(ca.cert_pem, again.cert_pem);
        let spec = LeafSpec {
            common_name: "system:admin".into(),
            organizations: vec!["system:masters".into()],
            client: true,
            ..Default::default()
        };
        let leaf = ca.load_or_issue("admin", &spec).expect("leaf");
        assert!(!needs_renewal(&leaf.cert_pem));
        let der = parse_pem_cert(&leaf.cert_pem).expect("pem");
        assert_eq!(subject_of(&der), Some(("system:admin".into(), vec!["system:masters".into()])));
        let same = ca.load_or_issue("admin", &spec).expect("reuse");
        assert_eq!(same.cert_pem, leaf.cert_pem);
        let server = LeafSpec { common_name: "s".into(), dns_names: vec!["localhost".into()], server: true, ..Default::default() };
        let s1 = ca.load_or_issue("serving", &server).expect("serving");
        let wider = LeafSpec { dns_names: vec!["localhost".into(), "node1".into()], ..server };
        let s2 = ca.load_or_issue("serving", &wider).expect("serving again");
        assert_ne!(s1.cert_pem, s2.cert_pem, "a new SAN forces a new certificate");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
