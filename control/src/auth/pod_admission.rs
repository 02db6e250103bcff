//! The ServiceAccount admission plugin, API server side: find the
//! ServiceAccount a new Pod runs as (refusing the pod if it does not
//! exist), then apply [`crate::admission::service_account::admit_pod`].
//!
//! Only on a server with a token issuer (`coracle server`): an API-only
//! server has no controller making `default` ServiceAccounts, and leaves
//! pods alone.

use super::keys::issuer_for;
use crate::admission::service_account::{self as plugin, DEFAULT_SERVICE_ACCOUNT};
use crate::api::status::ApiError;
use crate::api::ApiServer;
use serde_json::Value;
use std::time::Duration;

/// Lookups of the `default` ServiceAccount, which its controller may be
/// about to create (in a namespace made a moment ago).
const DEFAULT_ATTEMPTS: u32 = 10;

async fn find(api: &ApiServer, ns: &str, name: &str) -> Result<Option<Value>, ApiError> {
    let table = api.registry.table();
    let Some(res) = table.get("", "v1", "serviceaccounts") else { return Ok(None) };
    let attempts = if name == DEFAULT_SERVICE_ACCOUNT { DEFAULT_ATTEMPTS } else { 1 };
    for i in 0..attempts {
        if i > 0 {
            let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 100;
            tokio::time::sleep(Duration::from_millis(100 + jitter)).await;
        }
        if let Some(kv) = api.store.get(&res.key(Some(ns), name)).await? {
            return Ok(serde_json::from_slice(&kv.value).ok());
        }
    }
    Ok(None)
}

/// Admit a Pod about to be created in `ns`.
pub async fn admit(api: &ApiServer, ns: &str, pod: &mut Value) -> Result<(), ApiError> {
    if issuer_for(&api.config).is_none() || plugin::is_mirror_pod(pod) || !pod.is_object() {
        return Ok(());
    }
    let sa_name = plugin::service_account_name(pod);
    let Some(sa) = find(api, ns, &sa_name).await? else {
        let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        let mut e = ApiError::forbidden(format!(
            "pods \"{pod_name}\" is forbidden: error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"
        ));
        e.details = Some(serde_json::json!({"name": pod_name, "kind": "pods"}));
        return Err(e);
    };
    plugin::admit_pod(pod, &sa, &crate::api::object::random_suffix());
    Ok(())
}
