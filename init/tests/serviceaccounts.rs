//! ServiceAccounts and their tokens as kubectl users see them: the
//! `default` account and `kube-root-ca.crt` in every namespace,
//! `kubectl create token`, tokens authenticating (and being refused), the
//! API credentials mounted into pods, and legacy token Secrets.

mod common;

use common::fake_node::{FakeNode, NodeSpec};
use common::{eventually, kubectl_with, Server};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// base64url without padding (JWT parts) or standard base64.
fn b64(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The header and claims of a JWT.
fn jwt(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    let part = |p: &str| serde_json::from_slice(&b64(p)).unwrap_or_else(|e| panic!("JWT part {p}: {e}"));
    (part(parts[0]), part(parts[1]))
}

/// A kubeconfig with only the cluster and a bearer token (no client cert).
fn token_kubeconfig(s: &Server, name: &str, token: &str) -> PathBuf {
    let server = s.ok(&["config", "view", "--raw", "-o", "jsonpath={.clusters[0].cluster.server}"]);
    let ca = s.ok(&["config", "view", "--raw", "-o", "jsonpath={.clusters[0].cluster.certificate-authority-data}"]);
    let path = s.dir.join(format!("{name}.kubeconfig"));
    let cfg = format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{server}\", certificate-authority-data: \"{ca}\"}}}}]\n\
         users: [{{name: u, user: {{token: \"{}\"}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n",
        token.trim()
    );
    std::fs::write(&path, cfg).expect("write kubeconfig");
    path
}

/// kubectl as the token's user: (success, stdout, stderr).
fn as_token(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let out = kubectl_with(kubeconfig, args, None, &[]);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn cluster_ca(s: &Server) -> String {
    let ca = s.ok(&["config", "view", "--raw", "-o", "jsonpath={.clusters[0].cluster.certificate-authority-data}"]);
    String::from_utf8(b64(&ca)).expect("CA PEM")
}

const UNAUTHORIZED: &str = "error: You must be logged in to the server (Unauthorized)";

#[test]
fn every_namespace_gets_a_default_account_and_the_root_ca() {
    let s = Server::start("sa-defaults");
    s.ok(&["create", "namespace", "team"]);
    assert!(eventually(10, || s.kubectl(&["-n", "team", "get", "serviceaccount", "default"]).status.success()), "no default SA:\n{}", s.log());
    let ca = cluster_ca(&s);
    assert!(
        eventually(10, || s.ok(&["-n", "team", "get", "configmap", "kube-root-ca.crt", "-o", "jsonpath={.data.ca\\.crt}"]) == ca),
        "kube-root-ca.crt should hold the cluster CA"
    );
    let described = s.ok(&["-n", "team", "get", "configmap", "kube-root-ca.crt", "-o", "jsonpath={.metadata.annotations.kubernetes\\.io/description}"]);
    assert!(described.starts_with("Contains a CA bundle that can be used to verify the kube-apiserver"), "{described}");
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(eventually(10, || s.kubectl(&["-n", ns, "get", "serviceaccount", "default"]).status.success()), "{ns}");
    }

    // Deleted: made again. Edited: put back.
    let uid = s.ok(&["-n", "team", "get", "sa", "default", "-o", "jsonpath={.metadata.uid}"]);
    s.ok(&["-n", "team", "delete", "sa", "default"]);
    assert!(eventually(10, || {
        let now = s.kubectl(&["-n", "team", "get", "sa", "default", "-o", "jsonpath={.metadata.uid}"]);
        now.status.success() && String::from_utf8_lossy(&now.stdout) != uid
    }));
    s.ok(&["-n", "team", "patch", "configmap", "kube-root-ca.crt", "--type=merge", "-p", r#"{"data":{"ca.crt":"bogus"}}"#]);
    assert!(eventually(10, || s.ok(&["-n", "team", "get", "configmap", "kube-root-ca.crt", "-o", "jsonpath={.data.ca\\.crt}"]) == ca));
    s.ok(&["-n", "team", "delete", "configmap", "kube-root-ca.crt"]);
    assert!(eventually(10, || s.kubectl(&["-n", "team", "get", "configmap", "kube-root-ca.crt"]).status.success()));
}

#[test]
fn create_token_returns_a_jwt_that_authenticates_the_account() {
    let s = Server::start("sa-token");
    assert!(eventually(10, || s.kubectl(&["get", "sa", "default"]).status.success()));
    let sa_uid = s.ok(&["get", "sa", "default", "-o", "jsonpath={.metadata.uid}"]);
    let token = s.ok(&["create", "token", "default"]);
    let (header, claims) = jwt(&token);
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()), "{header}");
    let iss = "https://kubernetes.default.svc.cluster.local";
    assert_eq!(claims["iss"], iss);
    assert_eq!(claims["aud"], serde_json::json!([iss]));
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(claims["kubernetes.io"], serde_json::json!({"namespace": "default", "serviceaccount": {"name": "default", "uid": sa_uid}}));
    let (iat, exp) = (claims["iat"].as_i64().unwrap_or(0), claims["exp"].as_i64().unwrap_or(0));
    assert_eq!(exp - iat, 3600, "default lifetime is an hour: {claims}");
    assert_eq!(claims["nbf"].as_i64(), Some(iat));

    let two_hours = jwt(&s.ok(&["create", "token", "default", "--duration=2h"])).1;
    assert_eq!(two_hours["exp"].as_i64().unwrap_or(0) - two_hours["iat"].as_i64().unwrap_or(0), 7200);
    let audience = jwt(&s.ok(&["create", "token", "default", "--audience=vault"])).1;
    assert_eq!(audience["aud"], serde_json::json!(["vault"]));
    let err = s.fails(&["create", "token", "default", "--duration=1m"], None);
    assert!(
        err.contains(r#"TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"#),
        "{err}"
    );
    let err = s.fails(&["create", "token", "nobody"], None);
    assert!(err.contains(r#"serviceaccounts "nobody" not found"#), "{err}");

    // The token is a user: who it is, and (until RBAC) what it may not do.
    let kc = token_kubeconfig(&s, "sa", &token);
    let (ok, out, err) = as_token(&kc, &["auth", "whoami", "-o", "json"]);
    assert!(ok, "{err}");
    let review: Value = serde_json::from_str(&out).expect("SelfSubjectReview");
    assert_eq!(review["status"]["userInfo"]["username"], "system:serviceaccount:default:default");
    assert_eq!(review["status"]["userInfo"]["uid"], sa_uid.as_str());
    assert_eq!(
        review["status"]["userInfo"]["groups"],
        serde_json::json!(["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"])
    );
    let (ok, _, err) = as_token(&kc, &["get", "pods"]);
    assert!(!ok);
    assert!(
        err.contains(r#"Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:default:default" cannot list resource "pods" in API group "" in the namespace "default""#),
        "{err}"
    );

    // Issuer discovery, readable with the token.
    let (ok, out, err) = as_token(&kc, &["get", "--raw", "/.well-known/openid-configuration"]);
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("discovery");
    assert_eq!(doc["issuer"], iss);
    assert!(doc["jwks_uri"].as_str().is_some_and(|u| u.ends_with("/openid/v1/jwks")), "{doc}");
    let (ok, out, _) = as_token(&kc, &["get", "--raw", "/openid/v1/jwks"]);
    assert!(ok);
    let jwks: Value = serde_json::from_str(&out).expect("jwks");
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    assert_eq!((jwks["keys"][0]["kty"].as_str(), jwks["keys"][0]["crv"].as_str()), (Some("EC"), Some("P-256")));

    // TokenReview tells others the same.
    let review = |token: &str, audiences: &str| -> Value {
        let manifest = format!(
            "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec: {{token: \"{}\"{audiences}}}\n",
            token.trim()
        );
        serde_json::from_str(&s.ok_stdin(&["create", "-f", "-", "-o", "json"], &manifest)).expect("TokenReview")
    };
    let r = review(&token, "");
    assert_eq!(r["status"]["authenticated"], true, "{r}");
    assert_eq!(r["status"]["user"]["username"], "system:serviceaccount:default:default");
    assert_eq!(r["status"]["audiences"], serde_json::json!([iss]));
    let r = review(&token, ", audiences: [vault]");
    assert!(r["status"].get("authenticated").is_none_or(|a| a == false), "{r}");
    assert!(r["status"]["error"].as_str().is_some_and(|e| e.contains("audiences")), "{r}");

    // A forged token is nobody.
    let mut forged = token.trim().to_string();
    let last = forged.pop().map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
    forged.push(last);
    let (ok, _, err) = as_token(&token_kubeconfig(&s, "forged", &forged), &["auth", "whoami"]);
    assert!(!ok && err.contains(UNAUTHORIZED), "{err}");

    // The signing key is kept: a token from before a restart still works.
    let mut s = s;
    s.restart_after_kill9();
    let (ok, out, err) = as_token(&kc, &["auth", "whoami"]);
    assert!(ok && out.contains("system:serviceaccount:default:default"), "{out}{err}");
}

#[test]
fn pods_get_the_api_credentials_and_bound_tokens_die_with_their_pod() {
    let s = Server::start("sa-pods");
    let _node = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    s.ok(&["create", "namespace", "apps"]);
    // Right after the namespace: admission waits for the default account.
    s.ok_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: apps}\nspec: {nodeName: n1, containers: [{name: c, image: busybox}], initContainers: [{name: i, image: busybox}]}\n");
    let pod: Value = serde_json::from_str(&s.ok(&["-n", "apps", "get", "pod", "web", "-o", "json"])).expect("pod");
    let spec = &pod["spec"];
    assert_eq!((spec["serviceAccountName"].as_str(), spec["serviceAccount"].as_str()), (Some("default"), Some("default")));
    let vol = &spec["volumes"][0];
    let vol_name = vol["name"].as_str().unwrap_or("");
    assert!(vol_name.starts_with("kube-api-access-") && vol_name.len() == "kube-api-access-".len() + 5, "{vol}");
    assert_eq!(
        vol["projected"],
        serde_json::json!({"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]})
    );
    let mount = serde_json::json!([{"name": vol_name, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]);
    assert_eq!(spec["containers"][0]["volumeMounts"], mount);
    assert_eq!(spec["initContainers"][0]["volumeMounts"], mount);

    // Automount off (on the pod, or on its account): no credentials.
    s.ok(&["-n", "apps", "create", "serviceaccount", "quiet"]);
    s.ok(&["-n", "apps", "patch", "serviceaccount", "quiet", "-p", r#"{"automountServiceAccountToken":false}"#]);
    s.ok(&["-n", "apps", "run", "q1", "--image=busybox", "--overrides", r#"{"spec":{"serviceAccountName":"quiet"}}"#]);
    s.ok(&["-n", "apps", "run", "q2", "--image=busybox", "--overrides", r#"{"spec":{"automountServiceAccountToken":false}}"#]);
    for p in ["q1", "q2"] {
        assert_eq!(s.ok(&["-n", "apps", "get", "pod", p, "-o", "jsonpath={.spec.volumes}"]), "", "{p}");
    }
    let err = s.fails(&["-n", "apps", "run", "x", "--image=busybox", "--overrides", r#"{"spec":{"serviceAccountName":"ghost"}}"#], None);
    assert!(
        err.contains(r#"Error from server (Forbidden): pods "x" is forbidden: error looking up service account apps/ghost: serviceaccount "ghost" not found"#),
        "{err}"
    );

    // A token bound to the pod names it and its node, and lasts as long as it.
    let pod_uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let node_uid = s.ok(&["get", "node", "n1", "-o", "jsonpath={.metadata.uid}"]);
    let token = s.ok(&["-n", "apps", "create", "token", "default", "--bound-object-kind=Pod", "--bound-object-name=web"]);
    let claims = jwt(&token).1;
    assert_eq!(claims["kubernetes.io"]["pod"], serde_json::json!({"name": "web", "uid": pod_uid}));
    assert_eq!(claims["kubernetes.io"]["node"], serde_json::json!({"name": "n1", "uid": node_uid}));
    let err = s.fails(&["-n", "apps", "create", "token", "quiet", "--bound-object-kind=Pod", "--bound-object-name=web"], None);
    assert!(err.contains(r#"cannot bind token for serviceaccount "quiet" to pod running with different serviceaccount name."#), "{err}");
    let kc = token_kubeconfig(&s, "bound", &token);
    let (ok, out, err) = as_token(&kc, &["auth", "whoami"]);
    assert!(ok && out.contains("system:serviceaccount:apps:default"), "{out}{err}");
    s.ok(&["-n", "apps", "delete", "pod", "web", "--wait=true", "--timeout=20s"]);
    let (ok, _, err) = as_token(&kc, &["auth", "whoami"]);
    assert!(!ok && err.contains(UNAUTHORIZED), "a deleted pod's token must be refused: {err}");
    let err = s.fails(&["-n", "apps", "create", "token", "default", "--bound-object-kind=Pod", "--bound-object-name=web"], None);
    assert!(err.contains(r#"pods "web" not found"#), "{err}");
}

#[test]
fn legacy_token_secrets_are_filled_and_follow_their_account() {
    let s = Server::start("sa-legacy");
    s.ok(&["create", "serviceaccount", "builder"]);
    let sa_uid = s.ok(&["get", "sa", "builder", "-o", "jsonpath={.metadata.uid}"]);
    s.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Secret\nmetadata: {name: builder-token, annotations: {kubernetes.io/service-account.name: builder}}\ntype: kubernetes.io/service-account-token\n",
    );
    let get = |field: &str| s.ok(&["get", "secret", "builder-token", "-o", &format!("jsonpath={{.data.{field}}}")]);
    assert!(eventually(10, || !get("token").is_empty()), "token never filled:\n{}", s.log());
    assert_eq!(String::from_utf8(b64(&get("ca\\.crt"))).ok(), Some(cluster_ca(&s)));
    assert_eq!(b64(&get("namespace")), b"default");
    let uid_annotation = s.ok(&["get", "secret", "builder-token", "-o", "jsonpath={.metadata.annotations.kubernetes\\.io/service-account\\.uid}"]);
    assert_eq!(uid_annotation, sa_uid);
    let token = String::from_utf8(b64(&get("token"))).expect("token");
    let claims = jwt(&token).1;
    assert_eq!(claims["iss"], "kubernetes/serviceaccount");
    assert_eq!(claims["sub"], "system:serviceaccount:default:builder");
    assert_eq!(claims["kubernetes.io/serviceaccount/secret.name"], "builder-token");
    assert_eq!(claims["kubernetes.io/serviceaccount/service-account.uid"], sa_uid.as_str());
    assert!(claims.get("exp").is_none(), "legacy tokens do not expire: {claims}");
    let kc = token_kubeconfig(&s, "legacy", &token);
    let (ok, out, err) = as_token(&kc, &["auth", "whoami"]);
    assert!(ok && out.contains("system:serviceaccount:default:builder"), "{out}{err}");

    // A token bound to a Secret lives as long as the Secret.
    s.ok(&["create", "secret", "generic", "anchor", "--from-literal=k=v"]);
    let secret_uid = s.ok(&["get", "secret", "anchor", "-o", "jsonpath={.metadata.uid}"]);
    let bound = s.ok(&["create", "token", "builder", "--bound-object-kind=Secret", "--bound-object-name=anchor"]);
    assert_eq!(jwt(&bound).1["kubernetes.io"]["secret"], serde_json::json!({"name": "anchor", "uid": secret_uid}));
    let bound_kc = token_kubeconfig(&s, "secret-bound", &bound);
    assert!(as_token(&bound_kc, &["auth", "whoami"]).0);
    s.ok(&["delete", "secret", "anchor"]);
    let (ok, _, err) = as_token(&bound_kc, &["auth", "whoami"]);
    assert!(!ok && err.contains(UNAUTHORIZED), "{err}");

    // The account goes: its token secret goes, and the token stops working.
    s.ok(&["delete", "serviceaccount", "builder"]);
    assert!(eventually(10, || !s.kubectl(&["get", "secret", "builder-token"]).status.success()), "token secret should be deleted");
    let (ok, _, err) = as_token(&kc, &["auth", "whoami"]);
    assert!(!ok && err.contains(UNAUTHORIZED), "{err}");
}
