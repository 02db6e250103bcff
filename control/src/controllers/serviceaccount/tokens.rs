//! The tokens controller: a Secret of type
//! `kubernetes.io/service-account-token` naming a ServiceAccount (annotation
//! `kubernetes.io/service-account.name`) gets `token` (a legacy JWT that
//! never expires, bound to the Secret), `ca.crt` and `namespace`, and the
//! account's uid as annotation; such a Secret whose ServiceAccount does not
//! exist (or has another uid) is deleted, as upstream does.

use super::benign;
use crate::auth::claims::{self, ObjRef};
use crate::controllers::queue::{Key, Queue};
use crate::controllers::{run_workers, Context, Error, Requeue};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::ByteString;
use kube::api::{DeleteParams, PostParams, Preconditions};

const CONTROLLER: &str = "tokens-controller";
pub const TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
pub const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
pub const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
pub const TOKEN_KEY: &str = "token";
pub const CA_KEY: &str = "ca.crt";
pub const NAMESPACE_KEY: &str = "namespace";

fn is_token_secret(s: &Secret) -> bool {
    s.type_.as_deref() == Some(TOKEN_TYPE)
}

fn annotation<'a>(s: &'a Secret, key: &str) -> Option<&'a str> {
    s.metadata.annotations.as_ref().and_then(|a| a.get(key)).map(String::as_str).filter(|v| !v.is_empty())
}

pub fn start(ctx: &Context) {
    let queue = Queue::new();
    let (secrets, accounts) = (ctx.informers.get::<Secret>(), ctx.informers.get::<ServiceAccount>());
    let (tasks, q) = (ctx.tasks.clone(), queue.clone());
    ctx.tasks.spawn(async move {
        secrets.ready().await;
        accounts.ready().await;
        secrets.feed(&tasks, q.clone(), |s| if is_token_secret(s) { vec![Key::of(s)] } else { Vec::new() });
        let cache = secrets.clone();
        accounts.feed(&tasks, q, move |sa| {
            let (Some(ns), Some(name)) = (sa.metadata.namespace.as_deref(), sa.metadata.name.as_deref()) else { return Vec::new() };
            cache
                .list_in(ns)
                .iter()
                .filter(|s| is_token_secret(s) && annotation(s, SA_NAME_ANNOTATION) == Some(name))
                .map(|s| Key::of(s.as_ref()))
                .collect()
        });
    });
    let ctx2 = ctx.clone();
    run_workers(ctx, CONTROLLER, queue, 2, move |key| reconcile(ctx2.clone(), key));
}

/// Which of `ca.crt`, `namespace`, `token` the secret lacks (or, for the
/// CA, has another one).
pub fn missing(s: &Secret, ca_pem: &str) -> (bool, bool, bool) {
    let get = |k: &str| s.data.as_ref().and_then(|d| d.get(k)).map(|b| b.0.as_slice()).unwrap_or_default();
    (!ca_pem.is_empty() && get(CA_KEY) != ca_pem.as_bytes(), get(NAMESPACE_KEY).is_empty(), get(TOKEN_KEY).is_empty())
}

/// The service account the secret names, from the cache or else the API,
/// if it exists with the uid the secret recorded (if any).
async fn account_of(ctx: &Context, ns: &str, s: &Secret) -> Result<Option<ServiceAccount>, Error> {
    let Some(name) = annotation(s, SA_NAME_ANNOTATION) else { return Ok(None) };
    let sa = match ctx.informers.get::<ServiceAccount>().get(Some(ns), name) {
        Some(sa) => Some((*sa).clone()),
        None => kube::Api::<ServiceAccount>::namespaced(ctx.client.clone(), ns).get_opt(name).await?,
    };
    let want_uid = annotation(s, SA_UID_ANNOTATION);
    Ok(sa.filter(|sa| want_uid.is_none() || sa.metadata.uid.as_deref() == want_uid))
}

async fn reconcile(ctx: Context, key: Key) -> Result<Requeue, Error> {
    let secrets = ctx.informers.get::<Secret>();
    secrets.ready().await;
    ctx.informers.get::<ServiceAccount>().ready().await;
    let Some(secret) = secrets.get_key(&key) else { return Ok(None) };
    if !is_token_secret(&secret) || secret.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let ns = key.ns();
    let api = kube::Api::<Secret>::namespaced(ctx.client.clone(), ns);
    let Some(sa) = account_of(&ctx, ns, &secret).await? else {
        let dp = DeleteParams { preconditions: Some(Preconditions { uid: secret.metadata.uid.clone(), resource_version: None }), ..Default::default() };
        return match api.delete(&key.name, &dp).await {
            Ok(_) => {
                tracing::info!(controller = CONTROLLER, secret = %key, "deleted token secret of a missing service account");
                Ok(None)
            }
            Err(e) if benign(&e) => Ok(None),
            Err(e) => Err(e.into()),
        };
    };
    let Some(issuer) = crate::auth::issuer_for(&ctx.config) else { return Ok(None) };
    let (needs_ca, needs_ns, needs_token) = missing(&secret, &issuer.ca_pem);
    if !needs_ca && !needs_ns && !needs_token {
        return Ok(None);
    }
    let sa_ref = ObjRef { name: sa.metadata.name.clone().unwrap_or_default(), uid: sa.metadata.uid.clone().unwrap_or_default() };
    let mut updated = (*secret).clone();
    let data = updated.data.get_or_insert_with(Default::default);
    if needs_ca {
        data.insert(CA_KEY.into(), ByteString(issuer.ca_pem.clone().into_bytes()));
    }
    if needs_ns {
        data.insert(NAMESPACE_KEY.into(), ByteString(ns.as_bytes().to_vec()));
    }
    if needs_token {
        let token = issuer
            .sign(&claims::legacy(ns, &sa_ref, &key.name))
            .map_err(|e| Error::Other(format!("signing token for secret {key}: {e}")))?;
        data.insert(TOKEN_KEY.into(), ByteString(token.into_bytes()));
    }
    let annotations = updated.metadata.annotations.get_or_insert_with(Default::default);
    annotations.insert(SA_NAME_ANNOTATION.into(), sa_ref.name.clone());
    annotations.insert(SA_UID_ANNOTATION.into(), sa_ref.uid.clone());
    match api.replace(&key.name, &PostParams::default(), &updated).await {
        Ok(_) => {
            tracing::info!(controller = CONTROLLER, secret = %key, serviceaccount = sa_ref.name, "populated service account token secret");
            Ok(None)
        }
        Err(e) if matches!(&e, kube::Error::Api(s) if s.code == 404) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_a_token_secret_lacks() {
        let mut s = Secret { type_: Some(TOKEN_TYPE.into()), ..Default::default() };
        assert_eq!(missing(&s, "CA"), (true, true, true));
        let data = s.data.get_or_insert_with(Default::default);
        data.insert(CA_KEY.into(), ByteString(b"CA".to_vec()));
        data.insert(NAMESPACE_KEY.into(), ByteString(b"ns".to_vec()));
        data.insert(TOKEN_KEY.into(), ByteString(b"t".to_vec()));
        assert_eq!(missing(&s, "CA"), (false, false, false));
        assert_eq!(missing(&s, "NEW CA"), (true, false, false));
        assert_eq!(missing(&s, ""), (false, false, false), "no CA known: leave it");
    }
}
