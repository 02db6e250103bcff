//! Joining a server (`coracle agent --server URL --token TOKEN`): the
//! agent's side of the protocol in `docs/join.md`.
//!
//! 1. The token `K10<sha256 of the CA PEM>::server:<secret>` pins the CA.
//! 2. `GET /cacerts` without verification; the answer must hash to the pin.
//! 3. `POST /coracle/v1/join` over TLS verified by that CA, `Authorization:
//!    Bearer <secret>`, body `{"nodeName": NAME}`; the server answers with a
//!    client certificate and key for `system:node:NAME` (O=system:nodes)
//!    and the cluster's DNS settings.
//! 4. Written under `DATA_DIR/agent`: `tls/server-ca.crt`,
//!    `tls/client-kubelet.{crt,key}`, `kubelet.kubeconfig` pointing at them,
//!    `join.json` (server URL, cluster DNS). A second start reuses them.
//!
//! Owns those files and the client side. Must not start the agent itself.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("join token: {0}")]
    Token(String),
    #[error("server URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("cannot reach the server at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error(
        "the server at {url} presents CA certificate sha256:{actual}, but the token pins sha256:{expected}: \
         this is not the server the token belongs to (or the connection is intercepted); refusing to join"
    )]
    CaMismatch { url: String, expected: String, actual: String },
    #[error(
        "the server at {url} refused the join token ({code} {reason}: {message}): check --token against the \
         server's token file (coracle server prints where it is; DATA_DIR/token)"
    )]
    Refused { url: String, code: u16, reason: String, message: String },
    #[error("the server at {url} answered the join request with an error: {message}")]
    Server { url: String, message: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// A parsed join token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Lowercase hex sha256 of the CA certificate PEM.
    pub ca_hash: String,
    pub user: String,
    pub secret: String,
}

/// Lowercase hex sha256 of `pem` (the bytes `/cacerts` serves).
pub fn ca_hash(pem: &str) -> String {
    Sha256::digest(pem.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses `K10<64 hex>::<user>:<secret>`.
pub fn parse_token(text: &str) -> Result<Token, JoinError> {
    let text = text.trim();
    let bad = |why: &str| JoinError::Token(format!("{why} (expected K10<sha256 of the CA>::server:<secret>, as in the server's DATA_DIR/token)"));
    let rest = text.strip_prefix("K10").ok_or_else(|| bad("does not start with K10"))?;
    let (hash, cred) = rest.split_once("::").ok_or_else(|| bad("no '::' after the CA hash"))?;
    if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad("the CA hash is not 64 hex digits"));
    }
    let (user, secret) = cred.split_once(':').ok_or_else(|| bad("no ':' between user and secret"))?;
    if user.is_empty() || secret.is_empty() {
        return Err(bad("empty user or secret"));
    }
    Ok(Token { ca_hash: hash.to_ascii_lowercase(), user: user.to_string(), secret: secret.to_string() })
}

/// What the server answers a join with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinResponse {
    pub certificate: String,
    pub key: String,
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: String,
    pub cluster_domain: String,
}

/// What a joined agent remembers (`agent/join.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Joined {
    pub server: String,
    pub node_name: String,
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: String,
    pub cluster_domain: String,
}

pub fn kubeconfig_path(agent_dir: &Path) -> PathBuf {
    agent_dir.join("kubelet.kubeconfig")
}

fn state_path(agent_dir: &Path) -> PathBuf {
    agent_dir.join("join.json")
}

/// The credentials of an earlier join to the same server as the same
/// node, if all its files are there.
pub fn existing(agent_dir: &Path, server: &str, node_name: &str) -> Option<Joined> {
    let text = std::fs::read_to_string(state_path(agent_dir)).ok()?;
    let j: Joined = serde_json::from_str(&text).ok()?;
    let tls = agent_dir.join("tls");
    let complete = kubeconfig_path(agent_dir).is_file()
        && tls.join("server-ca.crt").is_file()
        && tls.join("client-kubelet.crt").is_file()
        && tls.join("client-kubelet.key").is_file();
    (complete && j.server == server.trim_end_matches('/') && j.node_name == node_name).then_some(j)
}

fn client(url: &str, configure: impl FnOnce(&mut kube::Config)) -> Result<kube::Client, JoinError> {
    let uri: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| JoinError::Url { url: url.into(), message: e.to_string() })?;
    if uri.scheme_str() != Some("https") {
        return Err(JoinError::Url { url: url.into(), message: "must be https://HOST:PORT".into() });
    }
    let mut cfg = kube::Config::new(uri);
    cfg.connect_timeout = Some(Duration::from_secs(10));
    cfg.read_timeout = Some(Duration::from_secs(30));
    cfg.default_retry = false;
    configure(&mut cfg);
    kube::Client::try_from(cfg).map_err(|e| JoinError::Url { url: url.into(), message: e.to_string() })
}

/// Writes `path` with mode 0600 (keys) or 0644, atomically.
fn write_file(path: &Path, data: &[u8], private: bool) -> Result<(), JoinError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| JoinError::Io { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| JoinError::Io { path: dir.to_path_buf(), source })?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(io)?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// A kubeconfig that names the certificate files.
pub fn render_kubeconfig(server: &str, ca: &Path, cert: &Path, key: &Path) -> String {
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "default", "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": "default", "user": {"client-certificate": cert, "client-key": key}}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
        "current-context": "default",
        "preferences": {},
    });
    serde_yaml::to_string(&doc).unwrap_or_default()
}

fn api_error(url: &str, e: kube::Error) -> JoinError {
    match e {
        kube::Error::Api(s) if s.code == 401 || s.code == 403 => {
            JoinError::Refused { url: url.into(), code: s.code, reason: s.reason.clone(), message: s.message.clone() }
        }
        kube::Error::Api(s) => JoinError::Server { url: url.into(), message: format!("{} {}: {}", s.code, s.reason, s.message) },
        other => JoinError::Unreachable { url: url.into(), message: other.to_string() },
    }
}

/// Joins `server` as `node_name` and writes the credentials under
/// `agent_dir` (made absolute: the kubeconfig names files).
pub async fn join(server: &str, token: &str, node_name: &str, agent_dir: &Path) -> Result<Joined, JoinError> {
    let server = server.trim_end_matches('/').to_string();
    let token = parse_token(token)?;
    std::fs::create_dir_all(agent_dir).map_err(|source| JoinError::Io { path: agent_dir.to_path_buf(), source })?;
    let agent_dir = std::fs::canonicalize(agent_dir).map_err(|source| JoinError::Io { path: agent_dir.to_path_buf(), source })?;

    let insecure = client(&server, |c| c.accept_invalid_certs = true)?;
    let req = http::Request::get("/cacerts").body(Vec::new()).map_err(|e| JoinError::Url { url: server.clone(), message: e.to_string() })?;
    let ca_pem = insecure.request_text(req).await.map_err(|e| api_error(&server, e))?;
    let actual = ca_hash(&ca_pem);
    if actual != token.ca_hash {
        return Err(JoinError::CaMismatch { url: server, expected: token.ca_hash, actual });
    }
    let tls = agent_dir.join("tls");
    let ca_path = tls.join("server-ca.crt");
    write_file(&ca_path, ca_pem.as_bytes(), false)?;

    let bearer = http::HeaderValue::from_str(&format!("Bearer {}", token.secret)).map_err(|_| JoinError::Token("the secret has characters a header cannot carry".into()))?;
    let verified = client(&server, |c| {
        c.root_cert_file = Some(ca_path.clone());
        c.headers.push((http::header::AUTHORIZATION, bearer));
    })?;
    let body = serde_json::to_vec(&serde_json::json!({"nodeName": node_name})).unwrap_or_default();
    let req = http::Request::post("/coracle/v1/join")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(|e| JoinError::Url { url: server.clone(), message: e.to_string() })?;
    let resp: JoinResponse = verified.request(req).await.map_err(|e| api_error(&server, e))?;

    let cert_path = tls.join("client-kubelet.crt");
    let key_path = tls.join("client-kubelet.key");
    write_file(&key_path, resp.key.as_bytes(), true)?;
    write_file(&cert_path, resp.certificate.as_bytes(), false)?;
    write_file(&kubeconfig_path(&agent_dir), render_kubeconfig(&server, &ca_path, &cert_path, &key_path).as_bytes(), true)?;
    let joined = Joined { server, node_name: node_name.to_string(), cluster_dns: resp.cluster_dns, cluster_domain: resp.cluster_domain };
    let state = serde_json::to_vec_pretty(&joined).unwrap_or_default();
    write_file(&state_path(&agent_dir), &state, false)?;
    tracing::info!(server = %joined.server, node = node_name, kubeconfig = %kubeconfig_path(&agent_dir).display(), "joined the cluster");
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn tokens_parse() {
        let t = parse_token(&format!(" K10{}::server:s3cr3t:x\n", HASH.to_uppercase())).unwrap();
        assert_eq!(t, Token { ca_hash: HASH.into(), user: "server".into(), secret: "s3cr3t:x".into() });
    }

    #[test]
    fn bad_tokens_say_what_is_wrong() {
        let msg = |t: &str| parse_token(t).unwrap_err().to_string();
        assert!(msg("s3cr3t").contains("does not start with K10"));
        assert!(msg("K10abc::server:x").contains("64 hex"));
        assert!(msg(&format!("K10{HASH}server:x")).contains("'::'"));
        assert!(msg(&format!("K10{HASH}::server")).contains("no ':'"));
        assert!(msg(&format!("K10{HASH}::server:")).contains("empty"));
        assert!(msg("x").contains("DATA_DIR/token"));
    }

    #[test]
    fn ca_hash_is_sha256_hex_of_the_pem() {
        assert_eq!(ca_hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn credentials_are_reused_only_for_the_same_server_and_node() {
        let dir = std::env::temp_dir().join(format!("coracle-join-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(existing(&dir, "https://a:6443", "n1").is_none());
        for f in ["tls/server-ca.crt", "tls/client-kubelet.crt", "tls/client-kubelet.key"] {
            write_file(&dir.join(f), b"x", true).unwrap();
        }
        write_file(&kubeconfig_path(&dir), render_kubeconfig("https://a:6443", &dir.join("tls/server-ca.crt"), &dir.join("c"), &dir.join("k")).as_bytes(), true).unwrap();
        let j = Joined { server: "https://a:6443".into(), node_name: "n1".into(), cluster_dns: "10.43.0.10".into(), cluster_domain: "cluster.local".into() };
        write_file(&state_path(&dir), &serde_json::to_vec(&j).unwrap(), false).unwrap();
        assert_eq!(existing(&dir, "https://a:6443/", "n1"), Some(j));
        assert!(existing(&dir, "https://b:6443", "n1").is_none());
        assert!(existing(&dir, "https://a:6443", "n2").is_none());
        let kc = kube::config::Kubeconfig::read_from(kubeconfig_path(&dir)).unwrap();
        assert_eq!(kc.clusters[0].cluster.as_ref().and_then(|c| c.server.clone()).as_deref(), Some("https://a:6443"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(kubeconfig_path(&dir)).unwrap().permissions().mode() & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
