//! The node's heartbeat: Lease `kube-node-lease/NAME`, renewed every 10 s
//! (a quarter of its 40 s duration), owned by the Node so it goes when the
//! Node does.

use crate::Context;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};
use std::sync::Arc;
use std::time::Duration;

pub const NAMESPACE: &str = "kube-node-lease";
pub const DURATION_SECONDS: i32 = 40;
pub const RENEW_INTERVAL: Duration = Duration::from_secs(10);

/// `lease` with this node's holder, duration, owner and a fresh renewTime.
pub fn renewed(mut lease: Lease, node: &str, node_uid: &str) -> Lease {
    lease.metadata.name = Some(node.to_string());
    lease.metadata.namespace = Some(NAMESPACE.to_string());
    let owner = OwnerReference { api_version: "v1".into(), kind: "Node".into(), name: node.to_string(), uid: node_uid.to_string(), ..Default::default() };
    let mut owners: Vec<OwnerReference> = lease.metadata.owner_references.take().unwrap_or_default();
    owners.retain(|o| !(o.kind == "Node" && o.api_version == "v1"));
    owners.push(owner);
    lease.metadata.owner_references = Some(owners);
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = Some(node.to_string());
    spec.lease_duration_seconds = Some(DURATION_SECONDS);
    spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
    lease
}

async fn renew(api: &Api<Lease>, node: &str, uid: &str, last: Option<Lease>) -> Result<Lease, kube::Error> {
    let current = match last {
        Some(l) => Some(l),
        None => api.get_opt(node).await?,
    };
    match current {
        None => {
            let lease = renewed(Lease { metadata: ObjectMeta::default(), spec: None }, node, uid);
            api.create(&PostParams::default(), &lease).await
        }
        Some(l) => api.replace(node, &PostParams::default(), &renewed(l, node, uid)).await,
    }
}

/// Renews the lease forever. A conflict or failure drops what it knew of
/// the lease, so the next try starts from the stored one.
pub async fn run(ctx: Arc<Context>, node_uid: String) {
    let api: Api<Lease> = Api::namespaced(ctx.client.clone(), NAMESPACE);
    let node = ctx.cfg.node_name.clone();
    let mut last: Option<Lease> = None;
    let mut failures = 0u32;
    loop {
        let res = tokio::time::timeout(Duration::from_secs(10), renew(&api, &node, &node_uid, last.take())).await;
        let wait = match res {
            Ok(Ok(l)) => {
                if failures > 0 {
                    tracing::info!(node = %node, "node lease renewed again");
                }
                failures = 0;
                last = Some(l);
                RENEW_INTERVAL
            }
            Ok(Err(e)) => {
                failures += 1;
                tracing::warn!(node = %node, error = %e, "node lease renewal failed");
                // Upstream retries fast at first, then backs off up to 7 s.
                Duration::from_millis(200 * 2u64.pow(failures.min(5))).min(Duration::from_secs(7))
            }
            Err(_) => {
                failures += 1;
                tracing::warn!(node = %node, "node lease renewal timed out");
                Duration::from_secs(1)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renewed_lease_names_its_holder_and_owner() {
        let l = renewed(Lease { metadata: ObjectMeta::default(), spec: None }, "n1", "uid-1");
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(v["metadata"]["namespace"], "kube-node-lease");
        assert_eq!(v["spec"]["holderIdentity"], "n1");
        assert_eq!(v["spec"]["leaseDurationSeconds"], 40);
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "Node");
        assert_eq!(v["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        // Renewing again keeps one owner reference (the new uid).
        let l2 = renewed(l, "n1", "uid-2");
        assert_eq!(l2.metadata.owner_references.as_ref().map(Vec::len), Some(1));
        assert!(v["spec"]["renewTime"].as_str().unwrap().ends_with('Z'));
    }
}
