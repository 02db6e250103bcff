//! Pod garbage collection, as upstream's PodGC controller:
//! - pods bound to a node that no longer exists (checked against the API
//!   after a quarantine, so a node not yet in the cache is not taken for
//!   gone) are marked Failed with a `DisruptionTarget` condition (reason
//!   `DeletionByPodGC`) and force-deleted — terminating ones included;
//! - terminating pods on a node that is not ready and carries the
//!   `node.kubernetes.io/out-of-service` taint are force-deleted;
//! - terminating pods never bound to a node are force-deleted;
//! - terminated (Succeeded/Failed) pods beyond a threshold (12500, as
//!   upstream's `--terminated-pod-gc-threshold`) are deleted, oldest first.
//!
//! Must not: delete a pod whose node exists and is healthy, or anything but
//! pods. The quarantine is upstream's 40 s, or the node monitor grace
//! period when that is shorter.

use crate::controllers::util::pod_node;
use super::health;
use super::wakeup::Wakeups;
use crate::controllers::queue::{Key, Queue};
use crate::controllers::{run_workers, Context, Error, Requeue};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const TERMINATED_POD_THRESHOLD: usize = 12_500;
const QUARANTINE: Duration = Duration::from_secs(40);
const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

#[derive(Default)]
struct State {
    /// Nodes found missing from the cache, and since when.
    missing: Mutex<HashMap<String, Timestamp>>,
    wakeups: Wakeups<Key>,
}

fn is_terminated(pod: &Pod) -> bool {
    matches!(crate::controllers::util::pod_phase(pod), "Succeeded" | "Failed")
}

/// The key of the pass over terminated pods (not a pod name: names have
/// no spaces).
fn terminated_key() -> Key {
    Key::cluster("terminated pods")
}

pub fn start(ctx: &Context) {
    let st = Arc::new(State::default());
    let queue = Queue::new();
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    {
        let nodes = nodes.clone();
        pods.feed(&ctx.tasks, queue.clone(), move |p| {
            let mut keys = Vec::new();
            let node_gone = pod_node(p).is_some_and(|n| nodes.get(None, n).is_none());
            let unbound_terminating = pod_node(p).is_none() && p.metadata.deletion_timestamp.is_some();
            if node_gone || unbound_terminating || (p.metadata.deletion_timestamp.is_some() && pod_node(p).is_some()) {
                keys.push(Key::of(p));
            }
            if is_terminated(p) {
                keys.push(terminated_key());
            }
            keys
        });
    }
    {
        let pods1 = pods.clone();
        nodes.feed(&ctx.tasks, queue.clone(), move |n| {
            let name = n.metadata.name.as_deref().unwrap_or_default();
            let out_of_service = n.spec.as_ref().and_then(|s| s.taints.as_ref()).is_some_and(|t| t.iter().any(|t| t.key == OUT_OF_SERVICE));
            pods1
                .store
                .state_filter(|p| pod_node(p) == Some(name) && (out_of_service || p.metadata.deletion_timestamp.is_some()))
                .iter()
                .map(|p| Key::of(&**p))
                .collect()
        });
        // Pods of a deleted node: the node feed only hears of it as a
        // change, so look at every pod bound to a node missing from the cache.
        let pods2 = pods.clone();
        let nodes2 = nodes.clone();
        let q = queue.clone();
        let mut rx = nodes.subscribe();
        ctx.tasks.spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(crate::controllers::informer::Change::Deleted(n)) => {
                        let name = n.metadata.name.clone().unwrap_or_default();
                        for p in pods2.store.state_filter(|p| pod_node(p) == Some(name.as_str())) {
                            q.add(Key::of(&*p));
                        }
                    }
                    Ok(crate::controllers::informer::Change::Resync) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        for p in pods2.store.state_filter(|p| pod_node(p).is_some_and(|n| nodes2.get(None, n).is_none())) {
                            q.add(Key::of(&*p));
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }
    let c = ctx.clone();
    run_workers(ctx, "pod-gc", queue, 1, move |key| {
        let (c, st) = (c.clone(), st.clone());
        async move {
            if key == terminated_key() {
                gc_terminated(&c).await.map(|_| None)
            } else {
                reconcile(&c, &st, key).await
            }
        }
    });
}

fn quarantine(ctx: &Context) -> Duration {
    QUARANTINE.min(ctx.config.node_monitor_grace_period)
}

async fn reconcile(ctx: &Context, st: &State, key: Key) -> Result<Requeue, Error> {
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    pods.ready().await;
    nodes.ready().await;
    let Some(pod) = pods.get_key(&key) else {
        st.wakeups.forget(&key);
        return Ok(None);
    };
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let Some(node_name) = pod_node(&pod).map(str::to_string) else {
        if terminating {
            tracing::info!(pod = %key, "force-deleting a terminating pod never bound to a node");
            force_delete(ctx, &pod, None).await?;
        }
        return Ok(None);
    };
    if let Some(node) = nodes.get(None, &node_name) {
        if let Ok(mut m) = st.missing.lock() {
            m.remove(&node_name);
        }
        st.wakeups.forget(&key);
        let out_of_service = node.spec.as_ref().and_then(|s| s.taints.as_ref()).is_some_and(|t| t.iter().any(|t| t.key == OUT_OF_SERVICE));
        if terminating && out_of_service && health::ready_status(&node) != Some("True") {
            tracing::info!(pod = %key, node = node_name, "force-deleting a terminating pod on an out-of-service node");
            let cond = disruption("PodGC: node is out of service", ctx.clock.now());
            force_delete(ctx, &pod, Some(cond)).await?;
        }
        return Ok(None);
    }
    let now = ctx.clock.now();
    let since = *st.missing.lock().unwrap_or_else(|p| p.into_inner()).entry(node_name.clone()).or_insert(now);
    let due = since.checked_add(jiff::SignedDuration::try_from(quarantine(ctx)).unwrap_or(jiff::SignedDuration::MAX)).unwrap_or(Timestamp::MAX);
    if now < due {
        return Ok(st.wakeups.at(&key, due, now, &ctx.clock));
    }
    st.wakeups.forget(&key);
    // The cache may lag: ask the API itself before deleting.
    let api: Api<Node> = Api::all(ctx.client.clone());
    if api.get_opt(&node_name).await?.is_some() {
        return Ok(None);
    }
    tracing::info!(pod = %key, node = node_name, "force-deleting a pod bound to a node that no longer exists");
    force_delete(ctx, &pod, Some(disruption("PodGC: node no longer exists", now))).await?;
    Ok(None)
}

fn disruption(message: &str, now: Timestamp) -> PodCondition {
    PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("DeletionByPodGC".into()),
        message: Some(message.into()),
        last_transition_time: Some(Time(now)),
        ..Default::default()
    }
}

/// A pod not yet finished is first marked Failed (with `condition`), as
/// no kubelet will ever do it; then it is deleted with grace period 0.
fn failed(pod: &Pod, condition: Option<PodCondition>) -> Option<Pod> {
    if is_terminated(pod) {
        return None;
    }
    let mut pod = pod.clone();
    let status = pod.status.get_or_insert_with(Default::default);
    status.phase = Some("Failed".into());
    if let Some(cond) = condition {
        let conds = status.conditions.get_or_insert_with(Vec::new);
        conds.retain(|c| c.type_ != cond.type_);
        conds.push(cond);
    }
    Some(pod)
}

async fn force_delete(ctx: &Context, pod: &Pod, condition: Option<PodCondition>) -> Result<(), Error> {
    let key = Key::of(pod);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), key.ns());
    if let Some(updated) = failed(pod, condition) {
        match api.replace_status(&key.name, &PostParams::default(), &updated).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }),
        ..Default::default()
    };
    match api.delete(&key.name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The terminated pods to delete so that at most `threshold` remain:
/// the oldest first (creation time, then namespace and name).
pub fn over_threshold(mut terminated: Vec<Arc<Pod>>, threshold: usize) -> Vec<Arc<Pod>> {
    if terminated.len() <= threshold {
        return Vec::new();
    }
    terminated.sort_by(|a, b| {
        let ka = (a.metadata.creation_timestamp.as_ref().map(|t| t.0), Key::of(&**a));
        let kb = (b.metadata.creation_timestamp.as_ref().map(|t| t.0), Key::of(&**b));
        ka.cmp(&kb)
    });
    let n = terminated.len() - threshold;
    terminated.truncate(n);
    terminated
}

async fn gc_terminated(ctx: &Context) -> Result<(), Error> {
    let pods = ctx.informers.get::<Pod>();
    pods.ready().await;
    let terminated = pods.store.state_filter(is_terminated);
    let doomed = over_threshold(terminated, TERMINATED_POD_THRESHOLD);
    if !doomed.is_empty() {
        tracing::info!(count = doomed.len(), threshold = TERMINATED_POD_THRESHOLD, "garbage-collecting terminated pods");
    }
    for pod in doomed {
        force_delete(ctx, &pod, None).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, created: &str, phase: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default", "creationTimestamp": created}, "status": {"phase": phase}}))
                .expect("pod"),
        )
    }

    #[test]
    fn oldest_terminated_pods_go_first() {
        let pods = vec![
            pod("c", "2024-01-03T00:00:00Z", "Succeeded"),
            pod("a", "2024-01-01T00:00:00Z", "Failed"),
            pod("b", "2024-01-02T00:00:00Z", "Succeeded"),
        ];
        assert!(over_threshold(pods.clone(), 3).is_empty());
        let doomed: Vec<String> = over_threshold(pods, 1).iter().map(|p| Key::of(&**p).name).collect();
        assert_eq!(doomed, vec!["a", "b"]);
    }

    #[test]
    fn running_pods_are_failed_before_deletion() {
        let running = pod("r", "2024-01-01T00:00:00Z", "Running");
        let now = Timestamp::from_second(1_700_000_000).expect("time");
        let marked = failed(&running, Some(disruption("PodGC: node no longer exists", now))).expect("marked");
        let status = marked.status.clone().unwrap_or_default();
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        let cond = status.conditions.unwrap_or_default().pop().expect("condition");
        assert_eq!((cond.type_.as_str(), cond.reason.as_deref()), ("DisruptionTarget", Some("DeletionByPodGC")));
        assert!(failed(&pod("s", "2024-01-01T00:00:00Z", "Succeeded"), None).is_none());
    }
}
