//! The claims of service account tokens, as upstream writes them, and
//! their checks that need no lookups (issuer, audience, time).
//!
//! Two shapes: bound tokens (TokenRequest, projected volumes) carry a
//! `kubernetes.io` claim and expire; legacy tokens (Secrets of type
//! `kubernetes.io/service-account-token`) have issuer
//! `kubernetes/serviceaccount`, flat claims, and never expire. Whether the
//! objects they name still exist is [`super::authenticate`]'s business.

use serde_json::{json, Map, Value};

/// Issuer of legacy (secret-based) tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// Clock skew allowed on `exp` and `nbf` (upstream's JWT leeway).
pub const LEEWAY_SECONDS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjRef {
    pub name: String,
    pub uid: String,
}

/// Whose token it is and what it is bound to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Binding {
    pub namespace: String,
    pub service_account: ObjRef,
    pub pod: Option<ObjRef>,
    pub secret: Option<ObjRef>,
    pub node: Option<ObjRef>,
}

impl Binding {
    /// `system:serviceaccount:NS:NAME`
    pub fn username(&self) -> String {
        username(&self.namespace, &self.service_account.name)
    }
}

pub fn username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The groups of a service account's user.
pub fn groups(namespace: &str) -> Vec<String> {
    vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{namespace}"), "system:authenticated".into()]
}

/// What a bound token says about its time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lifetime {
    pub issued_at: i64,
    pub expires_at: i64,
    /// Extended tokens: when clients should have refreshed them.
    pub warn_after: Option<i64>,
}

fn obj_ref(r: &ObjRef) -> Value {
    json!({"name": r.name, "uid": r.uid})
}

/// Claims of a bound token (keys in the order upstream's encoder writes them).
pub fn bound(issuer: &str, audiences: &[String], b: &Binding, life: Lifetime, jti: &str) -> Value {
    let mut k8s = Map::new();
    k8s.insert("namespace".into(), json!(b.namespace));
    if let Some(n) = &b.node {
        k8s.insert("node".into(), obj_ref(n));
    }
    if let Some(p) = &b.pod {
        k8s.insert("pod".into(), obj_ref(p));
    }
    if let Some(s) = &b.secret {
        k8s.insert("secret".into(), obj_ref(s));
    }
    k8s.insert("serviceaccount".into(), obj_ref(&b.service_account));
    if let Some(w) = life.warn_after {
        k8s.insert("warnafter".into(), json!(w));
    }
    json!({
        "aud": audiences,
        "exp": life.expires_at,
        "iat": life.issued_at,
        "iss": issuer,
        "jti": jti,
        "kubernetes.io": k8s,
        "nbf": life.issued_at,
        "sub": b.username(),
    })
}

/// Claims of a legacy token stored in Secret `secret_name`.
pub fn legacy(namespace: &str, sa: &ObjRef, secret_name: &str) -> Value {
    json!({
        "iss": LEGACY_ISSUER,
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/secret.name": secret_name,
        "kubernetes.io/serviceaccount/service-account.name": sa.name,
        "kubernetes.io/serviceaccount/service-account.uid": sa.uid,
        "sub": username(namespace, &sa.name),
    })
}

/// A token whose signature, issuer, audience and times are good.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub binding: Binding,
    pub legacy: bool,
    pub jti: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClaimError {
    #[error("service account token has expired")]
    Expired,
    #[error("service account token is not valid yet")]
    NotYetValid,
    #[error("token audiences {0:?} is invalid for the target audiences {1:?}")]
    Audience(Vec<String>, Vec<String>),
    #[error("token issuer {0:?} is not this cluster's")]
    Issuer(String),
    #[error("service account token claim {0} is missing")]
    Missing(&'static str),
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

fn required(v: &Value, path: &[&str], what: &'static str) -> Result<String, ClaimError> {
    match str_at(v, path) {
        "" => Err(ClaimError::Missing(what)),
        s => Ok(s.to_string()),
    }
}

fn opt_ref(k8s: &Value, key: &str) -> Option<ObjRef> {
    let r = k8s.get(key)?;
    Some(ObjRef { name: str_at(r, &["name"]).to_string(), uid: str_at(r, &["uid"]).to_string() })
}

/// Check a verified token's claims against this cluster at `now` (Unix
/// seconds).
pub fn check(claims: &Value, issuer: &str, audiences: &[String], now: i64) -> Result<Checked, ClaimError> {
    let iss = str_at(claims, &["iss"]);
    if iss == LEGACY_ISSUER {
        let p = "kubernetes.io/serviceaccount/";
        let field = |k: &str| format!("{p}{k}");
        let get = |k: &str, what: &'static str| required(claims, &[field(k).as_str()], what);
        let binding = Binding {
            namespace: get("namespace", "namespace")?,
            service_account: ObjRef { name: get("service-account.name", "service-account.name")?, uid: get("service-account.uid", "service-account.uid")? },
            secret: Some(ObjRef { name: get("secret.name", "secret.name")?, uid: String::new() }),
            pod: None,
            node: None,
        };
        return Ok(Checked { binding, legacy: true, jti: None });
    }
    if iss != issuer {
        return Err(ClaimError::Issuer(iss.to_string()));
    }
    let token_aud: Vec<String> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    if !token_aud.iter().any(|a| audiences.contains(a)) {
        return Err(ClaimError::Audience(token_aud, audiences.to_vec()));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or(ClaimError::Missing("exp"))?;
    if now > exp + LEEWAY_SECONDS {
        return Err(ClaimError::Expired);
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64) {
        if now + LEEWAY_SECONDS < nbf {
            return Err(ClaimError::NotYetValid);
        }
    }
    let k8s = claims.get("kubernetes.io").ok_or(ClaimError::Missing("kubernetes.io"))?;
    let binding = Binding {
        namespace: required(k8s, &["namespace"], "kubernetes.io.namespace")?,
        service_account: ObjRef {
            name: required(k8s, &["serviceaccount", "name"], "kubernetes.io.serviceaccount.name")?,
            uid: required(k8s, &["serviceaccount", "uid"], "kubernetes.io.serviceaccount.uid")?,
        },
        pod: opt_ref(k8s, "pod"),
        secret: opt_ref(k8s, "secret"),
        node: opt_ref(k8s, "node"),
    };
    if str_at(claims, &["sub"]) != binding.username() {
        return Err(ClaimError::Missing("sub"));
    }
    let jti = claims.get("jti").and_then(Value::as_str).map(str::to_string);
    Ok(Checked { binding, legacy: false, jti })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://kubernetes.default.svc.cluster.local";

    fn binding() -> Binding {
        Binding {
            namespace: "ns1".into(),
            service_account: ObjRef { name: "default".into(), uid: "sa-uid".into() },
            pod: Some(ObjRef { name: "web".into(), uid: "pod-uid".into() }),
            node: Some(ObjRef { name: "n1".into(), uid: "node-uid".into() }),
            secret: None,
        }
    }

    fn auds() -> Vec<String> {
        vec![ISS.to_string()]
    }

    #[test]
    fn bound_claims_have_upstream_shape_and_check() {
        let life = Lifetime { issued_at: 1000, expires_at: 4600, warn_after: None };
        let c = bound(ISS, &auds(), &binding(), life, "j1");
        assert_eq!(c["sub"], "system:serviceaccount:ns1:default");
        assert_eq!(c["aud"], json!([ISS]));
        assert_eq!(c["kubernetes.io"]["pod"], json!({"name": "web", "uid": "pod-uid"}));
        assert_eq!(c["kubernetes.io"]["node"], json!({"name": "n1", "uid": "node-uid"}));
        assert_eq!(c["kubernetes.io"]["serviceaccount"], json!({"name": "default", "uid": "sa-uid"}));
        assert_eq!((c["iat"].as_i64(), c["nbf"].as_i64(), c["exp"].as_i64()), (Some(1000), Some(1000), Some(4600)));
        let checked = check(&c, ISS, &auds(), 2000).expect("valid");
        assert_eq!(checked.binding, binding());
        assert!(!checked.legacy);
        assert_eq!(checked.jti.as_deref(), Some("j1"));
    }

    #[test]
    fn expired_and_early_tokens_are_refused_with_leeway() {
        let life = Lifetime { issued_at: 1000, expires_at: 4600, warn_after: None };
        let c = bound(ISS, &auds(), &binding(), life, "j");
        assert!(check(&c, ISS, &auds(), 4600 + LEEWAY_SECONDS).is_ok());
        assert_eq!(check(&c, ISS, &auds(), 4601 + LEEWAY_SECONDS), Err(ClaimError::Expired));
        assert!(check(&c, ISS, &auds(), 1000 - LEEWAY_SECONDS).is_ok());
        assert_eq!(check(&c, ISS, &auds(), 999 - LEEWAY_SECONDS), Err(ClaimError::NotYetValid));
    }

    #[test]
    fn wrong_audience_or_issuer_is_refused() {
        let life = Lifetime { issued_at: 1000, expires_at: 4600, warn_after: None };
        let c = bound(ISS, &["vault".to_string()], &binding(), life, "j");
        assert_eq!(check(&c, ISS, &auds(), 2000), Err(ClaimError::Audience(vec!["vault".into()], auds())));
        let mut single = bound(ISS, &auds(), &binding(), life, "j");
        single["aud"] = json!(ISS);
        assert!(check(&single, ISS, &auds(), 2000).is_ok(), "a single audience string counts");
        let other = bound("https://elsewhere", &auds(), &binding(), life, "j");
        assert_eq!(check(&other, ISS, &auds(), 2000), Err(ClaimError::Issuer("https://elsewhere".into())));
        let mut no_sa = c.clone();
        no_sa["aud"] = json!([ISS]);
        no_sa["kubernetes.io"]["serviceaccount"]["uid"] = json!("");
        assert!(matches!(check(&no_sa, ISS, &auds(), 2000), Err(ClaimError::Missing(_))));
    }

    #[test]
    fn legacy_claims_never_expire() {
        let sa = ObjRef { name: "builder".into(), uid: "u1".into() };
        let c = legacy("ns1", &sa, "builder-token");
        assert_eq!(c["sub"], "system:serviceaccount:ns1:builder");
        let checked = check(&c, ISS, &auds(), i64::MAX / 2).expect("legacy");
        assert!(checked.legacy);
        assert_eq!(checked.binding.secret.map(|s| s.name), Some("builder-token".into()));
        assert_eq!(checked.binding.service_account, sa);
    }
}
