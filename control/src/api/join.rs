//! Joining nodes (`coracle agent --server URL --token TOKEN`): the server's
//! side of the protocol in `docs/join.md`.
//!
//! Owns the join token (`DATA_DIR/token`, `K10<sha256 of the CA PEM>::
//! server:<secret>`, made on first start), `GET /cacerts` (the CA, open to
//! anyone: the token's hash is what makes it trusted) and
//! `POST /coracle/v1/join` (bearer = the secret; answers a client
//! certificate and key for `system:node:NAME` in `system:nodes`, signed by
//! the cluster CA). Both are answered before authentication: the joining
//! agent has no credentials yet. Must not serve anything else.

use crate::api::status::ApiError;
use crate::api::{error_response, full, json_response, Body};
use crate::config::ClusterConfig;
use crate::pki::{self, Ca, LeafSpec};
use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const CACERTS_PATH: &str = "/cacerts";
pub const JOIN_PATH: &str = "/coracle/v1/join";
const MAX_BODY: usize = 64 * 1024;

/// The join endpoints' state.
pub struct Join {
    ca: Arc<Ca>,
    secret: String,
    pub token_path: PathBuf,
}

/// Lowercase hex sha256 of the CA PEM, as the token pins it.
pub fn ca_hash(pem: &str) -> String {
    Sha256::digest(pem.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The secret of a token file's text, if it is one of ours.
fn secret_of(text: &str) -> Option<String> {
    let rest = text.trim().strip_prefix("K10")?;
    let (_, cred) = rest.split_once("::")?;
    let (_, secret) = cred.split_once(':')?;
    Some(secret.to_string()).filter(|s| !s.is_empty())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Join {
    /// Reads `DATA_DIR/token`, or makes it. The secret is kept across
    /// restarts; the hash is rewritten if the CA changed.
    pub fn load_or_create(data_dir: &Path, ca: Arc<Ca>) -> Result<Join, pki::PkiError> {
        let token_path = data_dir.join("token");
        let existing = std::fs::read_to_string(&token_path).ok().and_then(|t| secret_of(&t));
        let secret = existing.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let token = format!("K10{}::server:{secret}\n", ca_hash(&ca.cert_pem));
        if std::fs::read_to_string(&token_path).ok().as_deref() != Some(token.as_str()) {
            pki::write_private(&token_path, token.as_bytes())?;
            if existing.is_none() {
                tracing::info!(path = %token_path.display(), "created the join token");
            }
        }
        Ok(Join { ca, secret, token_path })
    }

    /// Whether `path` is one of the join endpoints.
    pub fn handles(path: &str) -> bool {
        path == CACERTS_PATH || path == JOIN_PATH
    }

    pub async fn serve<B>(&self, cluster: &ClusterConfig, req: Request<B>) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match (req.uri().path(), req.method()) {
            (CACERTS_PATH, &Method::GET | &Method::HEAD) => {
                let mut resp = Response::new(full(self.ca.cert_pem.clone()));
                resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
                resp
            }
            (JOIN_PATH, &Method::POST) => match self.join(cluster, req).await {
                Ok(v) => json_response(200, &v, &crate::api::codec::Wanted::Json),
                Err(e) => error_response(&e),
            },
            (path, m) => error_response(&ApiError::method_not_allowed(format!("{m} is not allowed on {path}"))),
        }
    }

    async fn join<B>(&self, cluster: &ClusterConfig, req: Request<B>) -> Result<Value, ApiError>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let bearer = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .unwrap_or("");
        if !constant_time_eq(bearer.as_bytes(), self.secret.as_bytes()) {
            tracing::info!("join refused: wrong or missing token");
            return Err(ApiError::new(401, "Unauthorized", "the join token is not valid for this server"));
        }
        let body = Limited::new(req.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| ApiError::bad_request(format!("join request body: {e}")))?
            .to_bytes();
        let v: Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("join request: not JSON: {e}")))?;
        let name = v.get("nodeName").and_then(Value::as_str).unwrap_or("");
        let errs = crate::names::dns1123_subdomain(name);
        if name.is_empty() || !errs.is_empty() {
            return Err(ApiError::bad_request(format!("join request: nodeName {name:?} is not a valid node name: {}", errs.join("; "))));
        }
        let spec = LeafSpec {
            common_name: format!("system:node:{name}"),
            organizations: vec!["system:nodes".into()],
            client: true,
            ..Default::default()
        };
        let cert = self.ca.issue(&spec).map_err(|e| ApiError::internal(e.to_string()))?;
        tracing::info!(node = name, "node joined: issued its client certificate");
        Ok(json!({
            "apiVersion": "coracle/v1",
            "kind": "JoinResponse",
            "certificate": cert.cert_pem,
            "key": cert.key_pem,
            "clusterDNS": cluster.cluster_dns,
            "clusterDomain": cluster.cluster_domain,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    fn setup(tag: &str) -> (PathBuf, Join) {
        let dir = std::env::temp_dir().join(format!("coracle-join-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test value");
        let ca = Arc::new(Ca::load_or_create(&dir).expect("test value"));
        let j = Join::load_or_create(&dir, ca).expect("test value");
        (dir, j)
    }

    fn post(token: &str, body: &str) -> Request<Full<Bytes>> {
        Request::post(JOIN_PATH).header("authorization", format!("Bearer {token}")).body(Full::new(Bytes::from(body.to_string()))).expect("test value")
    }

    async fn body_json(r: Response<Body>) -> Value {
        serde_json::from_slice(&r.into_body().collect().await.expect("test value").to_bytes()).expect("test value")
    }

    #[tokio::test]
    async fn token_file_pins_the_ca_and_keeps_its_secret() {
        let (dir, j) = setup("token");
        let text = std::fs::read_to_string(dir.join("token")).expect("test value");
        assert_eq!(text, format!("K10{}::server:{}\n", ca_hash(&j.ca.cert_pem), j.secret));
        let again = Join::load_or_create(&dir, j.ca.clone()).expect("test value");
        assert_eq!(again.secret, j.secret);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_good_token_gets_a_node_certificate() {
        let (dir, j) = setup("good");
        let cluster = ClusterConfig::default();
        let r = j.serve(&cluster, post(&j.secret, r#"{"nodeName":"edge-1"}"#)).await;
        assert_eq!(r.status(), 200);
        let v = body_json(r).await;
        assert_eq!(v["clusterDNS"], "10.43.0.10");
        let pem = v["certificate"].as_str().expect("test value");
        let der = rustls_pemfile::certs(&mut pem.as_bytes()).next().expect("test value").expect("test value");
        let (cn, groups) = pki::subject_of(der.as_ref()).expect("test value");
        assert_eq!((cn.as_str(), groups), ("system:node:edge-1", vec!["system:nodes".to_string()]));
        let cacerts = j.serve(&cluster, Request::get(CACERTS_PATH).body(Full::new(Bytes::new())).expect("test value")).await;
        let text = cacerts.into_body().collect().await.expect("test value").to_bytes();
        assert_eq!(text, j.ca.cert_pem.as_bytes());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn wrong_tokens_and_names_are_refused() {
        let (dir, j) = setup("bad");
        let cluster = ClusterConfig::default();
        let r = j.serve(&cluster, post("nope", r#"{"nodeName":"edge-1"}"#)).await;
        assert_eq!(r.status(), 401);
        assert_eq!(body_json(r).await["message"], "the join token is not valid for this server");
        let r = j.serve(&cluster, post(&j.secret, r#"{"nodeName":"Bad_Name"}"#)).await;
        assert_eq!(r.status(), 400);
        let r = j.serve(&cluster, post(&j.secret, "garbage")).await;
        assert_eq!(r.status(), 400);
        let r = j.serve(&cluster, Request::get(JOIN_PATH).body(Full::new(Bytes::new())).expect("test value")).await;
        assert_eq!(r.status(), 405);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
