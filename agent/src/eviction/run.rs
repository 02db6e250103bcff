//! The eviction manager's loop: every [`MONITORING_INTERVAL`], if a hard
//! threshold is crossed, record `EvictionThresholdMet` on the node, rank
//! the node's active pods for the starved resource and have the first one
//! evicted (grace period 0), then wait until it is cleaned up before
//! looking again. One pod per round, as upstream.

use super::rank::{self, Candidate};
use super::signals::{self, ContainerUse, Resource};
use super::usage::{self, PodUsage};
use crate::node::eviction::{self, Signal, Threshold};
use crate::pods::failure::{self, Failure};
use crate::probes::events::{self, EventType};
use crate::quantity;
use crate::Context;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, ListParams};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the manager looks (upstream's `monitoringInterval`).
pub const MONITORING_INTERVAL: Duration = Duration::from_secs(10);

/// How long to wait for an evicted pod to be cleaned up before going on
/// (upstream's `podCleanupTimeout`).
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Grace period of a hard eviction.
pub const HARD_EVICTION_GRACE: i64 = 0;

/// Runs the eviction manager until the task is dropped.
pub async fn run(ctx: Arc<Context>) {
    let thresholds = match eviction::thresholds(ctx.cfg.eviction_hard.as_deref()) {
        Ok(t) => t,
        Err(_) => eviction::thresholds(None).unwrap_or_default(),
    };
    let pressure = crate::node::pressure(&ctx);
    loop {
        tokio::time::sleep(MONITORING_INTERVAL).await;
        let crossed = pressure.borrow().signals.clone();
        let Some(signal) = signals::first(&crossed) else { continue };
        if let Some(uid) = evict_one(&ctx, &thresholds, signal).await {
            wait_cleaned_up(&ctx, &uid).await;
        }
    }
}

fn node_reference(ctx: &Context) -> ObjectReference {
    // The kubelet names its node by name in place of a UID.
    let name = ctx.cfg.node_name.clone();
    ObjectReference { api_version: Some("v1".into()), kind: Some("Node".into()), name: Some(name.clone()), uid: Some(name), ..Default::default() }
}

fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded") | Some("Failed"))
}

/// What a pod requests of `r` (sum of its app containers), per container.
fn requests(pod: &Pod, r: Resource) -> Vec<(String, i128)> {
    let Some(name) = r.request_name() else { return Vec::new() };
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| (c.name.clone(), quantity::of_resource(c.resources.as_ref().and_then(|x| x.requests.as_ref()), name).unwrap_or(0)))
        .collect()
}

fn used(u: &PodUsage, r: Resource) -> i128 {
    match r {
        Resource::Memory => u.memory,
        Resource::EphemeralStorage => u.disk,
        Resource::Inodes => u.inodes,
        Resource::Pids => u.pids,
    }
}

/// The containers' part of the message.
fn container_uses(pod: &Pod, u: &PodUsage, r: Resource) -> Vec<ContainerUse> {
    let reqs = requests(pod, r);
    u.containers
        .iter()
        .filter_map(|c| {
            let usage = match r {
                Resource::Memory => c.memory,
                Resource::EphemeralStorage => c.disk,
                _ => return None,
            };
            let request = reqs.iter().find(|(n, _)| *n == c.name).map(|(_, q)| *q)?;
            Some(ContainerUse { name: c.name.clone(), usage, request })
        })
        .collect()
}

/// One round under pressure from `signal`: the event, the ranking, and the
/// request to fail the first pod. Returns the evicted pod's UID.
async fn evict_one(ctx: &Arc<Context>, thresholds: &[Threshold], signal: Signal) -> Option<String> {
    let r = Resource::of(signal);
    tracing::info!(signal = signal.name(), resource = r.name(), "eviction threshold met; attempting to reclaim");
    events::write(ctx, node_reference(ctx), EventType::Warning, "EvictionThresholdMet", &signals::threshold_met(signal)).await;
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let lp = ListParams::default().fields(&format!("spec.nodeName={}", ctx.cfg.node_name));
    let pods: Vec<Pod> = match api.list(&lp).await {
        Ok(l) => l.items.into_iter().filter(is_active).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the node's pods for eviction");
            return None;
        }
    };
    let mut stats = usage::container_stats(ctx).await;
    let cfg = ctx.cfg.clone();
    let measured: Vec<(Pod, PodUsage)> = tokio::task::spawn_blocking(move || {
        pods.into_iter()
            .map(|p| {
                let s = stats.remove(p.metadata.uid.as_deref().unwrap_or("")).unwrap_or_default();
                let u = usage::measure(&cfg, &p, &s);
                (p, u)
            })
            .collect()
    })
    .await
    .unwrap_or_default();
    let candidates: Vec<Candidate> = measured
        .iter()
        .map(|(p, u)| Candidate {
            uid: p.metadata.uid.clone().unwrap_or_default(),
            namespace: p.metadata.namespace.clone().unwrap_or_default(),
            name: p.metadata.name.clone().unwrap_or_default(),
            priority: rank::priority(p),
            critical: rank::is_critical(p),
            usage: used(u, r),
            request: requests(p, r).iter().map(|(_, q)| q).sum(),
        })
        .collect();
    let Some(first) = rank::order(candidates, r.ranks_by_requests()).into_iter().next() else {
        tracing::warn!(resource = r.name(), "eviction manager: no pod on the node can be evicted");
        return None;
    };
    let (pod, u) = measured.iter().find(|(p, _)| p.metadata.uid.as_deref() == Some(first.uid.as_str()))?;
    let obs = crate::node::capacity::observe(&ctx.cfg.data_dir, &ctx.cfg.agent_dir().join("containerd"));
    let message = signals::message(signal, thresholds, &obs, &container_uses(pod, u, r));
    tracing::info!(pod = %format!("{}/{}", first.namespace, first.name), usage = first.usage, request = first.request, priority = first.priority, message, "evicting pod");
    let f = Failure {
        reason: "Evicted".into(),
        message,
        grace: Some(HARD_EVICTION_GRACE),
        disruption: true,
        warning: true,
        at: jiff::Timestamp::now(),
    };
    failure::requests(ctx.cfg.agent_dir()).ask(&first.uid, f);
    Some(first.uid)
}

/// Waits until the evicted pod is terminal (or gone) in the API and none
/// of its containers runs, at most [`CLEANUP_TIMEOUT`].
async fn wait_cleaned_up(ctx: &Context, uid: &str) {
    let t0 = Instant::now();
    while t0.elapsed() < CLEANUP_TIMEOUT {
        if cleaned_up(ctx, uid).await {
            tracing::info!(uid, "evicted pod cleaned up");
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::warn!(uid, timeout = ?CLEANUP_TIMEOUT, "evicted pod not cleaned up in time; going on");
}

async fn cleaned_up(ctx: &Context, uid: &str) -> bool {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let lp = ListParams::default().fields(&format!("spec.nodeName={}", ctx.cfg.node_name));
    let terminal = match api.list(&lp).await {
        Ok(l) => !l.items.iter().any(|p| p.metadata.uid.as_deref() == Some(uid) && is_active(p)),
        Err(_) => false,
    };
    if !terminal {
        return false;
    }
    let filter = crate::cri::api::ContainerFilter {
        label_selector: [("io.kubernetes.pod.uid".to_string(), uid.to_string())].into(),
        ..Default::default()
    };
    match ctx.cri.list_containers(crate::cri::api::ListContainersRequest { filter: Some(filter) }).await {
        Ok(l) => !l.containers.iter().any(|c| c.state == crate::cri::api::ContainerState::ContainerRunning as i32),
        Err(_) => false,
    }
}
