//! The node lifecycle controller: watches Nodes and their Leases in
//! `kube-node-lease`. A node whose kubelet was not heard from for the
//! grace period (`--node-monitor-grace-period`) gets its conditions set to
//! Unknown (`NodeStatusUnknown`, "Kubelet stopped posting node status.")
//! and its pods marked not Ready (event `NodeNotReady`). Taints follow the
//! node: NoSchedule ones mirror its conditions and cordon
//! (TaintNodesByCondition), and the `not-ready`/`unreachable` NoExecute
//! taints mark a node whose pods the taint eviction controller may evict.
//! It also starts pod garbage collection ([`pod_gc`]).
//!
//! Owns: the Unknown node conditions, the taints above, the pods' Ready
//! condition on a lost node. Must not: delete pods (taint eviction and pod
//! GC do), or set conditions to anything but Unknown (the kubelet reports
//! them). Level-triggered: every reconcile recomputes the wanted taints
//! from the node; the only memory is when each node last showed a sign of
//! life, which a restart resets to "now" (a fresh grace period), as
//! upstream.

pub mod health;
pub mod pod_gc;
pub mod taints;
pub mod wakeup;

use super::events::EventType;
use super::queue::{Key, Queue};
use super::{run_workers, Context, Error, Requeue};
use health::Health;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use taints::Zones;
use wakeup::Wakeups;

const COMPONENT: &str = "node-controller";
const LEASE_NAMESPACE: &str = "kube-node-lease";

#[derive(Default)]
struct State {
    health: Mutex<HashMap<String, Health>>,
    /// The zones as last computed, and whether every zone was down.
    zones: Mutex<Option<Zones>>,
    wakeups: Wakeups<Key>,
}

pub fn start(ctx: &Context) {
    let st = Arc::new(State::default());
    let queue = Queue::new();
    let nodes = ctx.informers.get::<Node>();
    let leases = ctx.informers.get::<Lease>();
    let pods = ctx.informers.get::<Pod>();
    nodes.feed_self(&ctx.tasks, queue.clone());
    leases.feed(&ctx.tasks, queue.clone(), |l| {
        if l.metadata.namespace.as_deref() == Some(LEASE_NAMESPACE) {
            vec![Key::cluster(l.metadata.name.as_deref().unwrap_or_default())]
        } else {
            vec![]
        }
    });
    {
        // A pod reported Ready on a node that is not: mark it again.
        let nodes = nodes.clone();
        pods.feed(&ctx.tasks, queue.clone(), move |p| {
            let Some(node) = crate::controllers::util::pod_node(p) else { return vec![] };
            if !super::util::is_pod_ready(p) {
                return vec![];
            }
            match nodes.get(None, node) {
                Some(n) if health::ready_status(&n).is_some_and(|s| s != "True") => vec![Key::cluster(node)],
                _ => vec![],
            }
        });
    }
    let c = ctx.clone();
    let q = queue.clone();
    run_workers(ctx, "node-lifecycle", queue, 1, move |key| {
        let (c, st, q) = (c.clone(), st.clone(), q.clone());
        async move { reconcile(&c, &st, &q, key).await }
    });
    pod_gc::start(ctx);
}

async fn reconcile(ctx: &Context, st: &State, queue: &Queue, key: Key) -> Result<Requeue, Error> {
    let nodes = ctx.informers.get::<Node>();
    let leases = ctx.informers.get::<Lease>();
    let pods = ctx.informers.get::<Pod>();
    nodes.ready().await;
    leases.ready().await;
    pods.ready().await;
    let Some(cached) = nodes.get(None, &key.name) else {
        if let Ok(mut h) = st.health.lock() {
            h.remove(&key.name);
        }
        st.wakeups.forget(&key);
        update_zones(ctx, st, queue, None);
        return Ok(None);
    };
    let mut node = (*cached).clone();
    let now = ctx.clock.now();
    let heartbeat = health::condition(&node, "Ready").and_then(|c| c.last_heartbeat_time.as_ref()).map(|t| t.0);
    let renew = leases.get(Some(LEASE_NAMESPACE), &key.name).and_then(|l| l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0));
    let seen = {
        let mut h = st.health.lock().unwrap_or_else(|p| p.into_inner());
        let seen = health::observe(h.get(&key.name), heartbeat, renew, now);
        h.insert(key.name.clone(), seen.clone());
        seen
    };
    let deadline = health::deadline(&seen, health::grace_for(&node, ctx.config.node_monitor_grace_period));
    let lost = now > deadline;
    let api: Api<Node> = Api::all(ctx.client.clone());

    if lost {
        if let Some(conditions) = health::unknown_conditions(&node, now) {
            let was_ready = health::ready_status(&node) == Some("True");
            node.status.get_or_insert_with(Default::default).conditions = Some(conditions);
            node = api.replace_status(&key.name, &PostParams::default(), &node).await?;
            tracing::info!(node = key.name, "node stopped posting status; conditions set to Unknown");
            if was_ready {
                let msg = format!("Node {} status is now: NodeNotReady", key.name);
                ctx.events.publish(&node, COMPONENT, EventType::Normal, "NodeNotReady", &msg).await;
            }
        }
    }

    let ready = health::ready_status(&node).map(str::to_string);
    if ready.as_deref().is_some_and(|s| s != "True") {
        mark_pods_not_ready(ctx, &pods, &key.name).await?;
    }

    let zones = update_zones(ctx, st, queue, Some(&node));
    let existing = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let zone = taints::zone_key(&node);
    let no_execute = taints::no_execute_key(ready.as_deref(), &existing, zones.may_taint(&zone), zones.all_fully_disrupted());
    let no_schedule = taints::no_schedule_keys(&node);
    if let Some(new) = taints::new_taints(&existing, &no_schedule, no_execute, now) {
        let rv = node.metadata.resource_version.clone();
        let taints = if new.is_empty() { serde_json::Value::Null } else { serde_json::to_value(&new).map_err(|e| Error::Other(e.to_string()))? };
        let patch = serde_json::json!({"metadata": {"resourceVersion": rv}, "spec": {"taints": taints}});
        api.patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        let keys: Vec<String> = new.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect();
        tracing::info!(node = key.name, taints = ?keys, "node taints updated");
    }

    if lost {
        st.wakeups.forget(&key);
        Ok(None)
    } else {
        Ok(st.wakeups.at(&key, deadline, now, &ctx.clock))
    }
}

/// Recompute the zones from the cache (with `current`, the node just
/// looked at, as it is now); when they changed, every node is looked at
/// again, and nodes coming out of a cluster-wide outage get a fresh grace
/// period (as upstream).
fn update_zones(ctx: &Context, st: &State, queue: &Queue, current: Option<&Node>) -> Zones {
    let nodes = ctx.informers.get::<Node>().list();
    let current_name = current.and_then(|n| n.metadata.name.clone());
    let view = nodes
        .iter()
        .map(|n| match (&current_name, current) {
            (Some(name), Some(c)) if n.metadata.name.as_ref() == Some(name) => c,
            _ => &**n,
        })
        .filter(|n| !n.metadata.labels.as_ref().is_some_and(|l| l.contains_key(taints::EXCLUDE_DISRUPTION)))
        .map(|n| (taints::zone_key(n), health::ready_status(n) == Some("True")));
    let zones = Zones::compute(view);
    let previous = st.zones.lock().map(|mut z| z.replace(zones.clone())).unwrap_or(None);
    if previous.as_ref() != Some(&zones) {
        if previous.as_ref().is_some_and(Zones::all_fully_disrupted) && !zones.all_fully_disrupted() {
            let now = ctx.clock.now();
            if let Ok(mut h) = st.health.lock() {
                for v in h.values_mut() {
                    v.probe = now;
                }
            }
            tracing::info!("some node is ready again; leaving cluster-wide disruption mode");
        } else if zones.all_fully_disrupted() && !nodes.is_empty() {
            tracing::info!("no node is ready: assuming a control-plane network problem, evicting nothing");
        }
        for n in &nodes {
            if n.metadata.name != current_name {
                queue.add(Key::of(&**n));
            }
        }
    }
    zones
}

/// Set the Ready condition of the pods on a node that is not ready to
/// False, as upstream's `MarkPodsNotReady`.
async fn mark_pods_not_ready(ctx: &Context, pods: &super::informer::Informer<Pod>, node: &str) -> Result<(), Error> {
    let on_node = pods.store.state_filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node));
    let mut failed = None;
    for pod in on_node {
        let Some(updated) = not_ready(&pod, ctx.clock.now()) else { continue };
        let key = Key::of(&*pod);
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), key.ns());
        match api.replace_status(&key.name, &PostParams::default(), &updated).await {
            Ok(p) => {
                tracing::info!(pod = %key, node, "pod marked not ready");
                ctx.events.publish(&p, COMPONENT, EventType::Warning, "NodeNotReady", "Node is not ready").await;
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => failed = Some(e),
        }
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// The pod with its Ready condition False, if it is not already.
fn not_ready(pod: &Pod, now: jiff::Timestamp) -> Option<Pod> {
    let mut pod = pod.clone();
    let cond = pod.status.as_mut()?.conditions.as_mut()?.iter_mut().find(|c| c.type_ == "Ready")?;
    if cond.status == "False" {
        return None;
    }
    cond.status = "False".into();
    cond.last_transition_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
    Some(pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ready_pods_are_marked_not_ready_once() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "r"}, {"type": "PodScheduled", "status": "True"}]}
        }))
        .expect("pod");
        let now = jiff::Timestamp::from_second(1_700_000_000).expect("time");
        let marked = not_ready(&pod, now).expect("changed");
        let conds = marked.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        assert_eq!(conds[0].status, "False");
        assert_eq!(conds[0].reason.as_deref(), Some("r"));
        assert_eq!(conds[1].status, "True");
        assert!(not_ready(&marked, now).is_none());
        assert!(not_ready(&Pod::default(), now).is_none());
    }
}
