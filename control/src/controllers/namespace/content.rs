//! Emptying one resource of a terminating namespace: delete the
//! collection (or each object), then count what is left and why.

use crate::controllers::garbage_collector::discovery::Served;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PropagationPolicy};
use std::collections::BTreeMap;

/// What is left of one resource after a pass.
#[derive(Debug, Default)]
pub struct Left {
    pub remaining: usize,
    pub finalizers: BTreeMap<String, usize>,
    /// Seconds to wait for graceful deletions (pods) before looking again.
    pub estimate: i64,
    pub error: Option<String>,
}

fn background() -> DeleteParams {
    DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..DeleteParams::default() }
}

fn gvr(res: &Served) -> String {
    // As Go prints a GroupVersionResource.
    format!("{}/{}, Resource={}", res.ar.group, res.ar.version, res.ar.plural)
}

pub async fn empty(client: &kube::Client, res: &Served, namespace: &str) -> Left {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &res.ar);
    let mut left = Left::default();
    if res.supports("deletecollection") {
        if let Err(e) = api.delete_collection(&background(), &ListParams::default()).await {
            left.error = Some(e.to_string());
            return left;
        }
    } else if res.supports("list") {
        match api.list_metadata(&ListParams::default()).await {
            Ok(list) => {
                for o in list.items.iter().filter(|o| o.metadata.deletion_timestamp.is_none()) {
                    let name = o.metadata.name.clone().unwrap_or_default();
                    match api.delete(&name, &background()).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(e) => {
                            left.error = Some(e.to_string());
                            return left;
                        }
                    }
                }
            }
            Err(e) => {
                left.error = Some(e.to_string());
                return left;
            }
        }
    }
    if !res.supports("list") {
        return left;
    }
    let list = match api.list_metadata(&ListParams::default()).await {
        Ok(l) => l,
        Err(e) => {
            left.error = Some(e.to_string());
            return left;
        }
    };
    left.remaining = list.items.len();
    if left.remaining == 0 {
        return left;
    }
    for o in &list.items {
        for f in o.metadata.finalizers.iter().flatten() {
            *left.finalizers.entry(f.clone()).or_default() += 1;
        }
        left.estimate = left.estimate.max(o.metadata.deletion_grace_period_seconds.unwrap_or(0));
    }
    if left.estimate == 0 && left.finalizers.is_empty() {
        left.error = Some(format!("unexpected items still remain in namespace: {namespace} for gvr: {}", gvr(res)));
    }
    left
}
