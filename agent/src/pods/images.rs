//! Images for containers: the pull policy (Always/IfNotPresent/Never,
//! defaulting from the tag), credentials from the pod's imagePullSecrets
//! (`kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg`,
//! matched by registry host and path), and the pull itself over CRI.
//!
//! Pure but for `ensure`, which talks to the runtime.

use crate::cri::{api, Cri, CriError};
use std::collections::BTreeMap;

/// The effective pull policy: the spec's, or upstream's default from the
/// reference (`:latest` or no tag and no digest pulls always).
pub fn pull_policy(policy: Option<&str>, image: &str) -> &'static str {
    match policy {
        Some("Always") => "Always",
        Some("Never") => "Never",
        Some("IfNotPresent") => "IfNotPresent",
        _ => {
            if image.contains('@') {
                return "IfNotPresent";
            }
            let last = image.rsplit('/').next().unwrap_or(image);
            match last.split_once(':') {
                Some((_, "latest")) | None => "Always",
                Some(_) => "IfNotPresent",
            }
        }
    }
}

/// (registry host, repository path) of a reference, with Docker Hub's
/// defaults: `busybox` is `docker.io`, `library/busybox`.
pub fn registry_and_path(image: &str) -> (String, String) {
    let name = image.split('@').next().unwrap_or(image);
    let (first, rest) = match name.split_once('/') {
        Some((f, r)) if f.contains('.') || f.contains(':') || f == "localhost" => (f.to_string(), r.to_string()),
        _ => ("docker.io".to_string(), if name.contains('/') { name.to_string() } else { format!("library/{name}") }),
    };
    let path = match rest.rsplit_once(':') {
        Some((p, tag)) if !tag.contains('/') => p.to_string(),
        _ => rest,
    };
    let host = if first == "index.docker.io" || first == "registry-1.docker.io" { "docker.io".to_string() } else { first };
    (host, path)
}

/// A credential for one registry key (`host[:port][/path]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cred {
    pub key: String,
    pub username: String,
    pub password: String,
    pub auth: String,
    pub identity_token: String,
}

fn parse_entries(map: &serde_json::Map<String, serde_json::Value>) -> Vec<Cred> {
    map.iter()
        .map(|(k, v)| {
            let s = |f: &str| v.get(f).and_then(|x| x.as_str()).unwrap_or("").to_string();
            Cred { key: k.clone(), username: s("username"), password: s("password"), auth: s("auth"), identity_token: s("identitytoken") }
        })
        .collect()
}

/// Credentials in one pull secret's data (by secret type); unreadable
/// secrets give none (the pull then fails with the registry's message).
pub fn creds_from_secret(type_: Option<&str>, data: &BTreeMap<String, Vec<u8>>) -> Vec<Cred> {
    let parse = |key: &str| data.get(key).and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
    match type_ {
        Some("kubernetes.io/dockercfg") => parse(".dockercfg").and_then(|v| v.as_object().map(parse_entries)).unwrap_or_default(),
        _ => parse(".dockerconfigjson")
            .and_then(|v| v.get("auths").and_then(|a| a.as_object()).map(parse_entries))
            .unwrap_or_default(),
    }
}

fn normalize_key(key: &str) -> (String, String) {
    let k = key.trim_start_matches("https://").trim_start_matches("http://");
    let (host, path) = k.split_once('/').unwrap_or((k, ""));
    let host = match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        h => h,
    };
    // Docker Hub's legacy key carries an API path, not a repository.
    let path = if host == "docker.io" && (path.starts_with("v1") || path.starts_with("v2")) { "" } else { path.trim_end_matches('/') };
    (host.to_string(), path.to_string())
}

fn host_matches(pattern: &str, host: &str) -> bool {
    if let Some(suffix) = pattern.strip_prefix("*.") {
        return host.ends_with(&format!(".{suffix}")) && host.matches('.').count() == suffix.matches('.').count() + 1;
    }
    pattern == host
}

/// The credentials that apply to `image`, most specific key first.
pub fn matching(creds: &[Cred], image: &str) -> Vec<Cred> {
    let (host, path) = registry_and_path(image);
    let mut out: Vec<(usize, Cred)> = creds
        .iter()
        .filter_map(|c| {
            let (h, p) = normalize_key(&c.key);
            let path_ok = p.is_empty() || path == p || path.starts_with(&format!("{p}/"));
            (host_matches(&h, &host) && path_ok).then(|| (p.len(), c.clone()))
        })
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0));
    out.into_iter().map(|(_, c)| c).collect()
}

/// The image's ID when the runtime has it.
pub async fn present(cri: &Cri, image: &str) -> Result<Option<String>, CriError> {
    let r = cri
        .image_status(api::ImageStatusRequest { image: Some(api::ImageSpec { image: image.into(), ..Default::default() }), verbose: false })
        .await?;
    Ok(r.image.map(|i| i.id).filter(|id| !id.is_empty()))
}

/// Pulls `image`, trying each matching credential then none; returns the
/// image reference the runtime reports. The error is the last attempt's.
pub async fn pull(cri: &Cri, image: &str, creds: &[Cred], sandbox: Option<api::PodSandboxConfig>) -> Result<String, CriError> {
    let mut attempts: Vec<Option<api::AuthConfig>> = creds
        .iter()
        .map(|c| {
            Some(api::AuthConfig {
                username: c.username.clone(),
                password: c.password.clone(),
                auth: c.auth.clone(),
                server_address: c.key.clone(),
                identity_token: c.identity_token.clone(),
                registry_token: String::new(),
            })
        })
        .collect();
    if attempts.is_empty() {
        attempts.push(None);
    }
    let mut last = None;
    for auth in attempts {
        let req = api::PullImageRequest {
            image: Some(api::ImageSpec { image: image.into(), ..Default::default() }),
            auth,
            sandbox_config: sandbox.clone(),
        };
        match cri.pull_image(req).await {
            Ok(r) => return Ok(r.image_ref),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| CriError::Connect { socket: cri.socket().to_path_buf(), message: "no pull attempted".into() }))
}

/// A CRI error as the kubelet prints gRPC errors.
pub fn grpc_message(e: &CriError) -> String {
    format!("rpc error: code = {:?} desc = {}", e.code(), e.message())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        assert_eq!(pull_policy(None, "busybox"), "Always");
        assert_eq!(pull_policy(None, "busybox:latest"), "Always");
        assert_eq!(pull_policy(None, "busybox:1.36"), "IfNotPresent");
        assert_eq!(pull_policy(None, "localhost:5000/busybox"), "Always");
        assert_eq!(pull_policy(None, "localhost:5000/busybox:1"), "IfNotPresent");
        assert_eq!(pull_policy(None, "busybox@sha256:abc"), "IfNotPresent");
        assert_eq!(pull_policy(Some("Never"), "busybox"), "Never");
    }

    #[test]
    fn references() {
        assert_eq!(registry_and_path("busybox"), ("docker.io".into(), "library/busybox".into()));
        assert_eq!(registry_and_path("me/app:1"), ("docker.io".into(), "me/app".into()));
        assert_eq!(registry_and_path("reg.io:5000/team/app:2"), ("reg.io:5000".into(), "team/app".into()));
        assert_eq!(registry_and_path("localhost/app@sha256:00"), ("localhost".into(), "app".into()));
    }

    #[test]
    fn secrets_and_matching() {
        let json = br#"{"auths":{"reg.io":{"username":"u","password":"p"},"reg.io/team":{"auth":"dTpw"},"https://index.docker.io/v1/":{"auth":"aHViOng="},"*.corp.net":{"username":"w"}}}"#;
        let data = BTreeMap::from([(".dockerconfigjson".to_string(), json.to_vec())]);
        let creds = creds_from_secret(Some("kubernetes.io/dockerconfigjson"), &data);
        assert_eq!(creds.len(), 4);
        let m = matching(&creds, "reg.io/team/app:1");
        assert_eq!(m.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["reg.io/team", "reg.io"]);
        assert_eq!(matching(&creds, "reg.io/other/app").len(), 1);
        assert_eq!(matching(&creds, "busybox")[0].key, "https://index.docker.io/v1/");
        assert_eq!(matching(&creds, "a.corp.net/x")[0].username, "w");
        assert!(matching(&creds, "b.a.corp.net/x").is_empty());
        assert!(matching(&creds, "other.io/x").is_empty());
        let cfg = BTreeMap::from([(".dockercfg".to_string(), br#"{"reg.io":{"auth":"eDp5"}}"#.to_vec())]);
        assert_eq!(creds_from_secret(Some("kubernetes.io/dockercfg"), &cfg)[0].auth, "eDp5");
        assert!(creds_from_secret(Some("kubernetes.io/dockerconfigjson"), &BTreeMap::new()).is_empty());
    }
}
