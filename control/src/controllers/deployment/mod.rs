//! The Deployment controller: rolls a Deployment's pod template out
//! through ReplicaSets named `<deployment>-<pod-template-hash>`, as
//! kube-controller-manager's does, so `kubectl rollout
//! status|history|undo|restart|pause|resume` and `kubectl scale` behave
//! as on any cluster.
//!
//! A sync claims the ReplicaSets matching the selector (adopting orphans,
//! releasing sets that stopped matching), then: a deployment being
//! deleted only gets its status; a paused one or one just resized is only
//! scaled (proportionally across active sets mid-rollout); otherwise the
//! strategy ([`rollout`]) takes a step. It writes ReplicaSets, its own
//! status and annotations and events; never pods.

mod annotations;
mod arith;
mod hash;
mod rollout;
mod status;
mod sync;

use super::events::EventType;
use super::informer::Informer;
use super::queue::{Key, Queue};
use super::replicaset::claim;
use super::{run_workers, util, Context, Error, Requeue};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use std::collections::HashMap;
use std::sync::Arc;
use sync::Sync;

const COMPONENT: &str = "deployment-controller";

pub struct Controller {
    ctx: Context,
    deployments: Informer<Deployment>,
    sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
}

pub fn start(ctx: &Context) {
    let deployments = ctx.informers.get::<Deployment>();
    let sets = ctx.informers.get::<ReplicaSet>();
    let pods = ctx.informers.get::<Pod>();
    let queue = Queue::new();
    deployments.feed(&ctx.tasks, queue.clone(), |d| vec![Key::of(d)]);
    let by_selector = deployments.clone();
    sets.feed(&ctx.tasks, queue.clone(), move |rs| deployments_of_set(&by_selector, rs));
    let (d2, s2) = (deployments.clone(), sets.clone());
    pods.feed(&ctx.tasks, queue.clone(), move |p| recreate_deployment_of_pod(&d2, &s2, p));
    let c = Arc::new(Controller { ctx: ctx.clone(), deployments, sets, pods });
    let run_ctx = ctx.clone();
    ctx.tasks.spawn(async move {
        c.deployments.ready().await;
        c.sets.ready().await;
        c.pods.ready().await;
        tracing::info!(controller = "deployment", "caches synced; starting workers");
        run_workers(&run_ctx, "deployment", queue, 4, move |key| {
            let c = c.clone();
            async move { reconcile(&c, key).await }
        });
    });
}

fn selects(d: &Deployment, labels: Option<&std::collections::BTreeMap<String, String>>) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| util::selector(&s.selector))
        .map(|sel| !sel.is_empty() && util::labels_match(&sel, labels))
        .unwrap_or(false)
}

/// The deployment controlling `rs`, or for an orphan those that could adopt it.
fn deployments_of_set(deployments: &Informer<Deployment>, rs: &ReplicaSet) -> Vec<Key> {
    let ns = rs.metadata.namespace.as_deref();
    if let Some(r) = util::controller_of(&rs.metadata) {
        return if r.kind == "Deployment" { vec![Key::new(ns, &r.name)] } else { Vec::new() };
    }
    deployments
        .list_in(ns.unwrap_or(""))
        .iter()
        .filter(|d| selects(d, rs.metadata.labels.as_ref()))
        .map(|d| Key::of(d.as_ref()))
        .collect()
}

/// A Recreate rollout waits for old pods to be gone: their changes
/// matter to it.
fn recreate_deployment_of_pod(deployments: &Informer<Deployment>, sets: &Informer<ReplicaSet>, p: &Pod) -> Vec<Key> {
    let ns = p.metadata.namespace.as_deref();
    let Some(r) = util::controller_of(&p.metadata).filter(|r| r.kind == "ReplicaSet") else { return Vec::new() };
    let Some(rs) = sets.get(ns, &r.name) else { return Vec::new() };
    let Some(dr) = util::controller_of(&rs.metadata).filter(|r| r.kind == "Deployment") else { return Vec::new() };
    match deployments.get(ns, &dr.name) {
        Some(d) if arith::is_recreate(&d) => vec![Key::new(ns, &dr.name)],
        _ => Vec::new(),
    }
}

async fn reconcile(c: &Controller, key: Key) -> Result<Requeue, Error> {
    tracing::debug!(deployment = %key, "sync");
    let Some(d) = c.deployments.get_key(&key) else { return Ok(None) };
    let d = (*d).clone();
    let ns = key.ns().to_string();
    let Some(spec) = d.spec.as_ref() else { return Ok(None) };
    let selects_all = spec.selector.match_labels.as_ref().map(|m| m.is_empty()).unwrap_or(true)
        && spec.selector.match_expressions.as_ref().map(|m| m.is_empty()).unwrap_or(true);
    let now = c.ctx.clock.now();
    let mut s = Sync { c, d: d.clone(), sets: Vec::new(), pods: HashMap::new(), now, requeue: None };
    if selects_all {
        s.c.ctx.events
            .publish(&d, COMPONENT, EventType::Warning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
            .await;
        let mut st = d.status.clone().unwrap_or_default();
        if st.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
            st.observed_generation = d.metadata.generation;
            s.write_status(st).await?;
        }
        return Ok(None);
    }
    let Some(sel) = util::selector(&spec.selector) else {
        tracing::warn!(deployment = %key, "invalid selector; not syncing");
        return Ok(None);
    };

    let sets_api: Api<ReplicaSet> = Api::namespaced(c.ctx.client.clone(), &ns);
    let owner = claim::Owner { reference: util::controller_ref(&d), namespace: ns.clone(), deleting: d.metadata.deletion_timestamp.is_some() };
    let (fresh_api, name, uid) = (Api::<Deployment>::namespaced(c.ctx.client.clone(), &ns), key.name.clone(), d.metadata.uid.clone());
    let can_adopt: claim::CanAdopt = Box::new(move || {
        Box::pin(async move {
            let fresh = fresh_api.get(&name).await?;
            Ok(fresh.metadata.uid == uid && fresh.metadata.deletion_timestamp.is_none())
        })
    });
    let owned = claim::claim(&sets_api, &owner, c.sets.list_in(&ns), |rs| util::labels_match(&sel, rs.metadata.labels.as_ref()), can_adopt).await?;
    s.sets = owned.iter().map(|r| (**r).clone()).collect();
    let uids: Vec<String> = s.sets.iter().filter_map(|r| r.metadata.uid.clone()).collect();
    for p in c.pods.list_in(&ns) {
        if let Some(r) = util::controller_of(&p.metadata).filter(|r| uids.contains(&r.uid)) {
            s.pods.entry(r.uid.clone()).or_default().push(p.clone());
        }
    }

    if d.metadata.deletion_timestamp.is_some() {
        let split = s.sets_and_sync_revision(false).await?;
        s.sync_status(&split).await?;
        return Ok(None);
    }
    s.check_paused_conditions().await?;
    let paused = s.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    if paused || s.is_scaling_event().await? {
        let split = s.sets_and_sync_revision(false).await?;
        s.scale(&split).await?;
        if paused {
            s.cleanup(&split).await?;
        }
        s.sync_status(&split).await?;
        return Ok(None);
    }
    if arith::is_recreate(&s.d) {
        s.rollout_recreate().await?;
    } else {
        s.rollout_rolling().await?;
    }
    Ok(s.requeue)
}
