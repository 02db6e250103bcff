//! Kubeconfig files for kubectl and in-cluster clients.

use super::{CertKey, PkiError};
use base64::Engine;
use std::path::Path;

/// A kubeconfig with one cluster, one user (client certificate), one context.
pub fn render(name: &str, server: &str, ca_pem: &str, client: &CertKey) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": name, "user": {
            "client-certificate-data": b64(&client.cert_pem),
            "client-key-data": b64(&client.key_pem),
        }}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    });
    serde_yaml::to_string(&doc).unwrap_or_default()
}

pub fn write(path: &Path, name: &str, server: &str, ca_pem: &str, client: &CertKey) -> Result<(), PkiError> {
    super::write_private(path, render(name, server, ca_pem, client).as_bytes())
}
