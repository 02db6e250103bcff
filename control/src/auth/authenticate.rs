//! Bearer token authentication: a service account JWT becomes the user
//! `system:serviceaccount:NS:NAME`.
//!
//! Checks, as upstream's service account authenticator does: signature,
//! issuer, audience, time ([`super::claims::check`]), then that what the
//! token names still exists: the ServiceAccount with the same uid, the
//! bound Pod/Secret/Node with the same uid (a pod being deleted for more
//! than a minute invalidates it), and for legacy tokens the Secret still
//! holding this very token. Reads the store directly (never writes).

use super::claims::{self, Checked, ObjRef};
use super::keys::issuer_for;
use crate::api::{ApiServer, User};
use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    #[error("this server issues no service account tokens")]
    NoIssuer,
    #[error(transparent)]
    Jwt(#[from] super::jwt::JwtError),
    #[error(transparent)]
    Claims(#[from] claims::ClaimError),
    #[error("service account token has been invalidated: {0}")]
    Invalidated(String),
    #[error("looking up {0}: {1}")]
    Lookup(String, String),
}

/// The user `token` authenticates, or why it does not.
pub async fn bearer(api: &ApiServer, token: &str) -> Result<User, AuthError> {
    let issuer = issuer_for(&api.config).ok_or(AuthError::NoIssuer)?;
    let raw = issuer.verify(token)?;
    let now = jiff::Timestamp::now().as_second();
    let checked = claims::check(&raw, &issuer.issuer, &issuer.audiences, now)?;
    still_valid(api, &checked, token, now).await?;
    let b = &checked.binding;
    Ok(User { name: b.username(), groups: claims::groups(&b.namespace), uid: Some(b.service_account.uid.clone()) })
}

async fn lookup(api: &ApiServer, plural: &str, ns: Option<&str>, name: &str) -> Result<Option<Value>, AuthError> {
    let table = api.registry.table();
    let res = table.get("", "v1", plural).ok_or_else(|| AuthError::Lookup(plural.into(), "not served".into()))?;
    let kv = api.store.get(&res.key(ns, name)).await.map_err(|e| AuthError::Lookup(format!("{plural} {name}"), e.to_string()))?;
    Ok(kv.and_then(|kv| serde_json::from_slice(&kv.value).ok()))
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.pointer(&format!("/metadata/{key}")).and_then(Value::as_str).unwrap_or("")
}

/// The object `r` names, if it exists with the same uid (an empty uid in
/// the token matches any). `grace`: seconds an object being deleted still
/// counts (None: not at all).
async fn alive(api: &ApiServer, plural: &str, ns: Option<&str>, r: &ObjRef, grace: Option<i64>, now: i64) -> Result<Value, AuthError> {
    let what = format!("{plural} {}", r.name);
    let obj = lookup(api, plural, ns, &r.name).await?.ok_or_else(|| AuthError::Invalidated(format!("{what} not found")))?;
    if !r.uid.is_empty() && meta_str(&obj, "uid") != r.uid {
        return Err(AuthError::Invalidated(format!("{what} uid does not match")));
    }
    let deleting = meta_str(&obj, "deletionTimestamp");
    if !deleting.is_empty() {
        let at = deleting.parse::<jiff::Timestamp>().map(|t| t.as_second()).unwrap_or(0);
        let ok = grace.is_some_and(|g| at >= now - g);
        if !ok {
            return Err(AuthError::Invalidated(format!("{what} is being deleted")));
        }
    }
    Ok(obj)
}

async fn still_valid(api: &ApiServer, c: &Checked, token: &str, now: i64) -> Result<(), AuthError> {
    let b = &c.binding;
    let ns = Some(b.namespace.as_str());
    if c.legacy {
        let secret_ref = b.secret.clone().unwrap_or_default();
        let secret = alive(api, "secrets", ns, &secret_ref, None, now).await?;
        let stored = secret.pointer("/data/token").and_then(Value::as_str).unwrap_or("");
        let matches = super::b64_decode(stored).is_some_and(|t| t == token.as_bytes());
        if !matches {
            return Err(AuthError::Invalidated(format!("secret {} holds another token", secret_ref.name)));
        }
    }
    alive(api, "serviceaccounts", ns, &b.service_account, None, now).await?;
    if c.legacy {
        return Ok(());
    }
    if let Some(p) = &b.pod {
        alive(api, "pods", ns, p, Some(claims::LEEWAY_SECONDS), now).await?;
    } else if let Some(s) = &b.secret {
        alive(api, "secrets", ns, s, Some(claims::LEEWAY_SECONDS), now).await?;
    } else if let Some(n) = &b.node {
        alive(api, "nodes", None, n, Some(claims::LEEWAY_SECONDS), now).await?;
    }
    Ok(())
}
