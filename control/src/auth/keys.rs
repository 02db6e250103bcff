//! The service account token issuer of one server: signing key, public key
//! (as `kid` and JWK), issuer and audiences, the cluster CA, and limits.
//!
//! `coracle server` makes one at start ([`TokenIssuer::load`]) and
//! [`register`]s it under its `ClusterConfig`; the API server and the
//! controllers of that server find it with [`issuer_for`] (both hold the
//! same `Arc<ClusterConfig>`). A process without one (API-only tests) has
//! no tokens: TokenRequest fails and bearer tokens are refused.

use super::jwt::{self, JwtError};
use crate::config::ClusterConfig;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rcgen::{KeyPair, PublicKeyData};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

/// Default lifetime of a requested token (`TokenRequest` without
/// `expirationSeconds`).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Shortest token a TokenRequest may ask for.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// Longest token a TokenRequest gets (k3s' `--service-account-max-token-expiration`).
pub const MAX_EXPIRATION_SECONDS: i64 = 24 * 3600;
/// What the ServiceAccount admission plugin asks for in projected volumes;
/// pod-bound tokens asking exactly this are extended (upstream
/// `--service-account-extend-token-expiration`).
pub const WARN_ONLY_EXPIRATION_SECONDS: i64 = 3607;
/// The extended lifetime of such tokens.
pub const EXTENDED_EXPIRATION_SECONDS: i64 = 365 * 24 * 3600;
/// File of the signing key in the TLS directory.
pub const KEY_NAME: &str = "service-account";

pub struct TokenIssuer {
    key: KeyPair,
    /// `kid`: base64url SHA-256 of the public key's PKIX DER (as upstream).
    pub kid: String,
    /// `https://kubernetes.default.svc.<cluster domain>`
    pub issuer: String,
    /// Audiences tokens get by default and must have to authenticate.
    pub audiences: Vec<String>,
    /// The cluster CA certificate (PEM), for `kube-root-ca.crt` and
    /// legacy token secrets.
    pub ca_pem: String,
    /// `jwks_uri` of the discovery document.
    pub jwks_uri: String,
    pub max_expiration_seconds: i64,
}

impl TokenIssuer {
    /// Load (or create once) `TLS_DIR/service-account.key`.
    pub fn load(tls_dir: &Path, config: &ClusterConfig, ca_pem: &str, external_url: &str) -> Result<Self, crate::pki::PkiError> {
        let key = crate::pki::load_or_create_signing_key(tls_dir, KEY_NAME)?;
        Ok(Self::new(key, config, ca_pem, external_url))
    }

    pub fn new(key: KeyPair, config: &ClusterConfig, ca_pem: &str, external_url: &str) -> Self {
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(key.subject_public_key_info()));
        let issuer = format!("https://kubernetes.default.svc.{}", config.cluster_domain);
        Self {
            key,
            kid,
            audiences: vec![issuer.clone()],
            issuer,
            ca_pem: ca_pem.to_string(),
            jwks_uri: format!("{}/openid/v1/jwks", external_url.trim_end_matches('/')),
            max_expiration_seconds: MAX_EXPIRATION_SECONDS,
        }
    }

    pub fn sign(&self, claims: &Value) -> Result<String, JwtError> {
        jwt::encode(&self.key, &self.kid, claims)
    }

    /// The claims of `token` if this issuer signed it.
    pub fn verify(&self, token: &str) -> Result<Value, JwtError> {
        jwt::verify(self.key.public_key_raw(), token)
    }

    /// The public key as a JSON Web Key.
    pub fn jwk(&self) -> Value {
        // Uncompressed point: 0x04 || x || y.
        let point = self.key.public_key_raw();
        let (x, y) = point.get(1..).unwrap_or_default().split_at(point.len().saturating_sub(1) / 2);
        json!({
            "use": "sig",
            "kty": "EC",
            "kid": self.kid,
            "crv": "P-256",
            "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        })
    }
}

type Registered = Vec<(Weak<ClusterConfig>, Arc<TokenIssuer>)>;

static REGISTERED: Mutex<Registered> = Mutex::new(Vec::new());

/// Make `issuer` the token issuer of the server running with `config`.
pub fn register(config: &Arc<ClusterConfig>, issuer: Arc<TokenIssuer>) {
    let mut all = REGISTERED.lock().unwrap_or_else(|p| p.into_inner());
    all.retain(|(c, _)| c.strong_count() > 0 && !std::ptr::eq(c.as_ptr(), Arc::as_ptr(config)));
    all.push((Arc::downgrade(config), issuer));
}

/// The token issuer of the server running with `config`, if any.
pub fn issuer_for(config: &Arc<ClusterConfig>) -> Option<Arc<TokenIssuer>> {
    let all = REGISTERED.lock().unwrap_or_else(|p| p.into_inner());
    all.iter()
        .find(|(c, _)| c.upgrade().is_some_and(|c| Arc::ptr_eq(&c, config)))
        .map(|(_, i)| i.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_per_config() {
        let a = Arc::new(ClusterConfig::default());
        let b = Arc::new(ClusterConfig::default());
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        register(&a, Arc::new(TokenIssuer::new(key, &a, "CA", "https://127.0.0.1:6443")));
        assert!(issuer_for(&a).is_some());
        assert!(issuer_for(&b).is_none());
        let i = issuer_for(&a).expect("issuer");
        assert_eq!(i.issuer, "https://kubernetes.default.svc.cluster.local");
        assert_eq!(i.jwks_uri, "https://127.0.0.1:6443/openid/v1/jwks");
        let jwk = i.jwk();
        assert_eq!(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap_or("")).map(|x| x.len()), Ok(32));
        assert_eq!(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap_or("")).map(|y| y.len()), Ok(32));
        assert_eq!(jwk["kid"], json!(i.kid));
    }
}
