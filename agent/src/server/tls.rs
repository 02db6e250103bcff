//! TLS of the kubelet endpoint.
//!
//! Serving: a self-signed certificate kept in `agent/tls/kubelet.{crt,key}`
//! (what an upstream kubelet without serving-certificate bootstrap does;
//! the API server does not verify kubelet certificates by default), made
//! with rcgen (already built for the control plane, so no new code to
//! compile). Clients: a certificate signed by the cluster CA (read from the
//! node kubeconfig) with group `system:masters` — the API server's kubelet
//! client. Node certificates share the CA and must not reach other
//! nodes' pods, so the group is checked per connection.

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, SanType};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::server::WebPkiClientVerifier;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("kubelet serving certificate: {0}")]
    Cert(String),
    #[error("kubeconfig {path}: {message} (the kubelet endpoint trusts the cluster CA named there)")]
    Kubeconfig { path: PathBuf, message: String },
}

/// Certificate lifetime of the self-signed serving certificate.
const DAYS: i64 = 365;

fn file_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::File { path: path.to_path_buf(), message: e.to_string() }
}

/// Load the serving pair from `dir`, or make one for `node` and `ips`.
pub fn serving_pair(dir: &Path, node: &str, ips: &[IpAddr]) -> Result<(String, String), TlsError> {
    let crt = dir.join("kubelet.crt");
    let key = dir.join("kubelet.key");
    if let (Ok(c), Ok(k)) = (std::fs::read_to_string(&crt), std::fs::read_to_string(&key)) {
        if still_valid(&c) {
            return Ok((c, k));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let key_pair = KeyPair::generate().map_err(|e| TlsError::Cert(e.to_string()))?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, format!("{node}@coracle"));
    let mut sans = vec![SanType::DnsName(node.to_string().try_into().map_err(|e: rcgen::Error| TlsError::Cert(e.to_string()))?)];
    sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(DAYS);
    let cert = params.self_signed(&key_pair).map_err(|e| TlsError::Cert(e.to_string()))?;
    let (c, k) = (cert.pem(), key_pair.serialize_pem());
    write_private(&key, k.as_bytes())?;
    std::fs::write(&crt, c.as_bytes()).map_err(|e| file_err(&crt, e))?;
    tracing::info!(path = %crt.display(), "kubelet serving certificate created");
    Ok((c, k))
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(|e| file_err(path, e))?;
    f.write_all(data).map_err(|e| file_err(path, e))
}

fn still_valid(pem: &str) -> bool {
    let Some(Ok(der)) = rustls_pemfile::certs(&mut pem.as_bytes()).next() else { return false };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else { return false };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Renew with a month left.
    cert.validity().not_after.timestamp() - 30 * 86400 > now
}

/// The cluster CA (PEM) from a kubeconfig's first cluster.
pub fn ca_from_kubeconfig(path: &Path) -> Result<String, TlsError> {
    let err = |message: String| TlsError::Kubeconfig { path: path.to_path_buf(), message };
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let cluster = kc.clusters.first().and_then(|c| c.cluster.as_ref()).ok_or_else(|| err("no cluster".into()))?;
    if let Some(data) = &cluster.certificate_authority_data {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|e| err(format!("certificate-authority-data: {e}")))?;
        return String::from_utf8(bytes).map_err(|e| err(format!("certificate-authority-data: {e}")));
    }
    if let Some(file) = &cluster.certificate_authority {
        return std::fs::read_to_string(file).map_err(|e| err(format!("certificate-authority {file}: {e}")));
    }
    Err(err("no certificate-authority or certificate-authority-data".into()))
}

/// TLS server config: our pair, clients must show a CA-signed certificate.
pub fn server_config(cert_pem: &str, key_pem: &str, ca_pem: &str) -> Result<rustls::ServerConfig, TlsError> {
    let e = |m: String| TlsError::Cert(m);
    let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>().map_err(|x| e(x.to_string()))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes()).map_err(|x| e(x.to_string()))?.ok_or_else(|| e("no private key".into()))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(c.map_err(|x| e(x.to_string()))?).map_err(|x| e(x.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().map_err(|x| e(x.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|x| e(x.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|x| e(x.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Common name and organizations of a DER certificate.
pub fn subject(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next().and_then(|a| a.as_str().ok()).unwrap_or("").to_string();
    let orgs = cert.subject().iter_organization().filter_map(|a| a.as_str().ok()).map(str::to_string).collect();
    Some((cn, orgs))
}

/// Who may use the endpoint: cluster admins (the API server's client).
pub fn allowed(groups: &[String]) -> bool {
    groups.iter().any(|g| g == "system:masters")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_and_reuses_a_serving_pair() {
        let dir = std::env::temp_dir().join(format!("coracle-kubelet-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (c1, k1) = serving_pair(&dir, "node-a", &[IpAddr::from([10, 0, 0, 1])]).unwrap();
        let (c2, _) = serving_pair(&dir, "node-a", &[]).unwrap();
        assert_eq!(c1, c2);
        let der = rustls_pemfile::certs(&mut c1.as_bytes()).next().unwrap().unwrap();
        assert_eq!(subject(&der).unwrap().0, "node-a@coracle");
        // A self-signed pair works as its own CA for the config.
        server_config(&c1, &k1, &c1).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(allowed(&["system:masters".to_string()]));
        assert!(!allowed(&["system:nodes".to_string()]));
    }
}
