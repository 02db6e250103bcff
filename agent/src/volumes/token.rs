//! Service account tokens for projected volumes, from the TokenRequest API
//! (`POST /api/v1/namespaces/NS/serviceaccounts/SA/token`), bound to the pod
//! and kept in memory until 80% of their life (or 24 hours) has passed, as
//! the kubelet's token manager does. After a restart tokens are requested
//! again. It never writes files: the projected volume does.

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Default `expirationSeconds` of a projected token source.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    pod_uid: String,
    service_account: String,
    audience: String,
    expiration_seconds: i64,
}

struct Cached {
    token: String,
    issued: SystemTime,
    expires: SystemTime,
}

impl Cached {
    /// Refresh at 80% of the life or after 24 hours, whichever is first.
    fn fresh(&self, now: SystemTime) -> bool {
        let life = self.expires.duration_since(self.issued).unwrap_or_default();
        let refresh_at = self.issued + (life * 4 / 5).min(MAX_TTL);
        now < refresh_at
    }
}

static CACHE: Mutex<Option<HashMap<Key, Cached>>> = Mutex::new(None);

fn with_cache<T>(f: impl FnOnce(&mut HashMap<Key, Cached>) -> T) -> T {
    let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// Forgets the tokens of a pod (after teardown).
pub fn forget(pod_uid: &str) {
    with_cache(|c| c.retain(|k, _| k.pod_uid != pod_uid));
}

/// A token for the pod's service account with `audience` (empty = the API
/// server's) and `expiration_seconds`, from the cache or a TokenRequest.
pub async fn get(client: &kube::Client, pod: &Pod, audience: &str, expiration_seconds: i64) -> Result<String, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone().or_else(|| s.service_account.clone()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into());
    let key = Key { pod_uid: uid.clone(), service_account: sa.clone(), audience: audience.to_string(), expiration_seconds };
    let now = SystemTime::now();
    if let Some(t) = with_cache(|c| c.get(&key).filter(|t| t.fresh(now)).map(|t| t.token.clone())) {
        return Ok(t);
    }
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: if audience.is_empty() { Vec::new() } else { vec![audience.to_string()] },
            expiration_seconds: Some(expiration_seconds),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(name.clone()),
                uid: Some(uid),
            }),
        },
        ..Default::default()
    };
    let api: kube::Api<ServiceAccount> = kube::Api::namespaced(client.clone(), &ns);
    let resp = api
        .create_token_request(&sa, &kube::api::PostParams::default(), &req)
        .await
        .map_err(|e| format!("failed to fetch token: {}", super::api_message(&e)))?;
    let status = resp.status.ok_or_else(|| "failed to fetch token: the API server answered without a token".to_string())?;
    let expires = SystemTime::UNIX_EPOCH + Duration::from_secs(status.expiration_timestamp.0.as_second().max(0) as u64);
    tracing::info!(namespace = %ns, pod = %name, serviceaccount = %sa, audience, expiration_seconds, "requested service account token");
    with_cache(|c| c.insert(key, Cached { token: status.token.clone(), issued: now, expires }));
    Ok(status.token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_at_80_percent_or_a_day() {
        let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Cached { token: String::new(), issued, expires: issued + Duration::from_secs(3600) };
        assert!(hour.fresh(issued + Duration::from_secs(2879)));
        assert!(!hour.fresh(issued + Duration::from_secs(2880)));
        let year = Cached { token: String::new(), issued, expires: issued + Duration::from_secs(365 * 86400) };
        assert!(year.fresh(issued + Duration::from_secs(86399)));
        assert!(!year.fresh(issued + Duration::from_secs(86400)));
    }
}
