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
    authenticate(api, token, None).await.map(|(user, _)| user)
}

/// The user `token` authenticates for one of `audiences` (the API
/// server's when None), and which of those audiences the token has.
pub async fn authenticate(api: &ApiServer, token: &str, audiences: Option<&[String]>) -> Result<(User, Vec<String>), AuthError> {
    let issuer = issuer_for(&api.config).ok_or(AuthError::NoIssuer)?;
    let audiences = audiences.unwrap_or(&issuer.audiences);
    let raw = issuer.verify(token)?;
    let now = jiff::Timestamp::now().as_second();
    let checked = claims::check(&raw, &issuer.issuer, audiences, now)?;
    still_valid(api, &checked, token, now).await?;
    let b = &checked.binding;
    let user = User { name: b.username(), groups: claims::groups(&b.namespace), uid: Some(b.service_account.uid.clone()) };
    // Legacy tokens have no audience and count for all.
    let token_aud: Vec<String> = match raw.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => audiences.to_vec(),
    };
    Ok((user, audiences.iter().filter(|a| token_aud.contains(a)).cloned().collect()))
}

/// TokenReview: fill `status` for the token in `spec`.
pub async fn review(api: &ApiServer, review: &mut Value) {
    let token = review.pointer("/spec/token").and_then(Value::as_str).unwrap_or("").to_string();
    let wanted: Option<Vec<String>> = review
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .filter(|a: &Vec<String>| !a.is_empty());
    review["status"] = match authenticate(api, &token, wanted.as_deref()).await {
        Ok((user, audiences)) => {
            let mut info = serde_json::json!({"username": user.name, "groups": user.groups});
            if let Some(uid) = user.uid {
                info["uid"] = serde_json::json!(uid);
            }
            serde_json::json!({"authenticated": true, "user": info, "audiences": audiences})
        }
        Err(e) => serde_json::json!({"user": {}, "error": format!("[invalid bearer token, {e}]")}),
    };
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
