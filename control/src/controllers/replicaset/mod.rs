//! The ReplicaSet controller: keeps `spec.replicas` pods of each
//! ReplicaSet in existence, as kube-controller-manager's does.
//!
//! A sync claims the active pods of the set (adopting matching orphans,
//! releasing pods that stopped matching), creates missing pods from the
//! template in slow-start batches (1, 2, 4, ...) or deletes the surplus in
//! upstream's order, then writes the status. Pods are named
//! `<set>-<5 random characters>`; the names are chosen here, so the pods
//! a sync waits to see are known before they are created (see
//! [`expectations`]). It never touches pods controlled by another owner,
//! and never writes anything but pods, its own events and the set's
//! status.

pub mod claim;
mod expectations;
pub mod status;
mod victims;

use crate::controllers::util::api_message as message;
use super::events::EventType;
use super::informer::{Change, Informer};
use super::queue::{Key, Queue};
use super::{run_workers, util, Context, Error, Requeue};
use expectations::{Expectations, Seen};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use status::ManageFailure;
use std::sync::Arc;
use std::time::Duration;

const COMPONENT: &str = "replicaset-controller";
/// At most this many pods are created or deleted in one sync.
const BURST_REPLICAS: usize = 500;
/// Longest generated-name prefix, as the API server truncates it.
const MAX_PREFIX: usize = 58;

struct Controller {
    ctx: Context,
    sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
    expectations: Expectations,
}

pub fn start(ctx: &Context) {
    let sets = ctx.informers.get::<ReplicaSet>();
    let pods = ctx.informers.get::<Pod>();
    let queue = Queue::new();
    sets.feed(&ctx.tasks, queue.clone(), |rs| vec![Key::of(rs)]);
    let by_selector = sets.clone();
    pods.feed(&ctx.tasks, queue.clone(), move |p| sets_of_pod(&by_selector, p));
    let c = Arc::new(Controller { ctx: ctx.clone(), sets, pods, expectations: Expectations::default() });

    let mut changes = c.pods.subscribe();
    let observer = c.clone();
    ctx.tasks.spawn(async move {
        loop {
            let (pod, seen) = match changes.recv().await {
                Ok(Change::Applied(p)) => {
                    let seen = if p.metadata.deletion_timestamp.is_some() { Seen::Terminating } else { Seen::Alive };
                    (p, seen)
                }
                Ok(Change::Deleted(p)) => (p, Seen::Absent),
                Ok(Change::Resync) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            if let Some(r) = util::controller_of(&pod.metadata).filter(|r| r.kind == "ReplicaSet") {
                let key = Key::new(pod.metadata.namespace.as_deref(), &r.name);
                observer.expectations.observed(&key, pod.metadata.name.as_deref().unwrap_or(""), seen);
            }
        }
    });

    let run_ctx = ctx.clone();
    ctx.tasks.spawn(async move {
        c.sets.ready().await;
        c.pods.ready().await;
        tracing::info!(controller = "replicaset", "caches synced; starting workers");
        run_workers(&run_ctx, "replicaset", queue, 4, move |key| {
            let c = c.clone();
            async move { reconcile(&c, key).await }
        });
    });
}

/// The sets to look at when `p` changes: its controller, or for an
/// orphan the sets that could adopt it.
fn sets_of_pod(sets: &Informer<ReplicaSet>, p: &Pod) -> Vec<Key> {
    let ns = p.metadata.namespace.as_deref();
    if let Some(r) = util::controller_of(&p.metadata) {
        return if r.kind == "ReplicaSet" { vec![Key::new(ns, &r.name)] } else { Vec::new() };
    }
    if p.metadata.deletion_timestamp.is_some() {
        return Vec::new();
    }
    sets.list_in(ns.unwrap_or(""))
        .iter()
        .filter(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| util::selector(&s.selector))
                .map(|sel| !sel.is_empty() && util::labels_match(&sel, p.metadata.labels.as_ref()))
                .unwrap_or(false)
        })
        .map(|rs| Key::of(rs.as_ref()))
        .collect()
}

fn seen(pods: &Informer<Pod>, ns: &str, name: &str) -> Seen {
    match pods.get(Some(ns), name) {
        None => Seen::Absent,
        Some(p) if p.metadata.deletion_timestamp.is_some() => Seen::Terminating,
        Some(_) => Seen::Alive,
    }
}

fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("because it is being terminated"))
}

async fn reconcile(c: &Controller, key: Key) -> Result<Requeue, Error> {
    tracing::debug!(replicaset = %key, "sync");
    let Some(rs) = c.sets.get_key(&key) else {
        c.expectations.forget(&key);
        return Ok(None);
    };
    let ns = key.ns().to_string();
    let Some(sel) = rs.spec.as_ref().and_then(|s| util::selector(&s.selector)) else {
        tracing::warn!(replicaset = %key, "invalid selector; not syncing");
        return Ok(None);
    };
    let now = c.ctx.clock.now();
    let pods_api: Api<Pod> = Api::namespaced(c.ctx.client.clone(), &ns);
    let sets_api: Api<ReplicaSet> = Api::namespaced(c.ctx.client.clone(), &ns);

    let candidates: Vec<Arc<Pod>> = c.pods.list_in(&ns).into_iter().filter(|p| util::is_pod_active(p)).collect();
    let owner = claim::Owner {
        reference: util::controller_ref(rs.as_ref()),
        namespace: ns.clone(),
        deleting: rs.metadata.deletion_timestamp.is_some(),
    };
    let (fresh_api, name, uid) = (sets_api.clone(), key.name.clone(), rs.metadata.uid.clone());
    let can_adopt: claim::CanAdopt = Box::new(move || {
        Box::pin(async move {
            let fresh = fresh_api.get(&name).await?;
            Ok(fresh.metadata.uid == uid && fresh.metadata.deletion_timestamp.is_none())
        })
    });
    let owned = claim::claim(&pods_api, &owner, candidates, |p| util::labels_match(&sel, p.metadata.labels.as_ref()), can_adopt).await?;
    let owned: Vec<&Pod> = owned.iter().map(|p| p.as_ref()).collect();

    let satisfied = c.expectations.satisfied(&key, |n| seen(&c.pods, &ns, n));
    let failure = if satisfied && rs.metadata.deletion_timestamp.is_none() { manage(c, &rs, &key, &owned, now).await } else { None };

    let new_status = status::calculate(&rs, &owned, failure.as_ref(), now);
    if rs.status.as_ref() != Some(&new_status) {
        let mut updated = (*rs).clone();
        updated.status = Some(new_status);
        sets_api.replace_status(&key.name, &PostParams::default(), &updated).await?;
    }
    if let Some(f) = failure {
        return Err(Error::Other(f.message));
    }
    Ok(status::next_available_in(&owned, status::min_ready_seconds(&rs), now)
        .map(|d| c.ctx.clock.max_sleep(d + Duration::from_millis(100))))
}

/// `<name>-`, cut as the API server cuts generated-name prefixes.
fn name_prefix(set: &str) -> (String, String) {
    let generate = format!("{set}-");
    let cut: String = generate.chars().take(MAX_PREFIX).collect();
    (generate, cut)
}

/// Create or delete pods towards `spec.replicas`; the failure, if any.
async fn manage(c: &Controller, rs: &ReplicaSet, key: &Key, owned: &[&Pod], now: jiff::Timestamp) -> Option<ManageFailure> {
    let Some(template) = rs.spec.as_ref().and_then(|s| s.template.as_ref()) else {
        tracing::warn!(replicaset = %key, "no pod template; not syncing");
        return None;
    };
    let want = usize::try_from(rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)).unwrap_or(0);
    let have = owned.len();
    let api: Api<Pod> = Api::namespaced(c.ctx.client.clone(), key.ns());
    if have < want {
        let (generate_name, prefix) = name_prefix(&key.name);
        let mut remaining = (want - have).min(BURST_REPLICAS);
        let mut batch = 1usize;
        tracing::info!(replicaset = %key, want, have, creating = remaining, "too few replicas");
        while remaining > 0 {
            let n = batch.min(remaining);
            let names: Vec<String> = (0..n).map(|_| format!("{prefix}{}", crate::api::object::random_suffix())).collect();
            c.expectations.expect_creates(key, &names);
            let creates = names.iter().map(|name| {
                let mut pod = util::pod_from_template(template, rs, &generate_name, Some(name));
                pod.metadata.generate_name = Some(generate_name.clone());
                let api = api.clone();
                async move { api.create(&PostParams::default(), &pod).await }
            });
            let results = futures_util::future::join_all(creates).await;
            let (mut failed, mut quiet_stop) = (None, false);
            for (name, result) in names.iter().zip(results) {
                match result {
                    Ok(_) => c.ctx.events.publish(rs, COMPONENT, EventType::Normal, "SuccessfulCreate", &format!("Created pod: {name}")).await,
                    Err(e) if namespace_terminating(&e) => {
                        // Every create will fail; the namespace goes away
                        // with the set (as upstream, no event or condition).
                        c.expectations.cancel(key, name);
                        quiet_stop = true;
                    }
                    Err(e) => {
                        c.expectations.cancel(key, name);
                        let msg = message(&e);
                        tracing::warn!(replicaset = %key, pod = name, error = msg, "cannot create pod");
                        c.ctx.events.publish(rs, COMPONENT, EventType::Warning, "FailedCreate", &format!("Error creating: {msg}")).await;
                        failed.get_or_insert(msg);
                    }
                }
            }
            if let Some(message) = failed {
                return Some(ManageFailure { creating: true, message });
            }
            if quiet_stop {
                return None;
            }
            remaining -= n;
            batch = batch.saturating_mul(2);
        }
    } else if have > want {
        let count = (have - want).min(BURST_REPLICAS);
        let related = related_pods(c, rs, key.ns());
        let related: Vec<&Pod> = related.iter().map(|p| p.as_ref()).collect();
        let victims = victims::pick(owned, &related, count, now);
        let names: Vec<String> = victims.iter().filter_map(|p| p.metadata.name.clone()).collect();
        tracing::info!(replicaset = %key, want, have, deleting = names.len(), "too many replicas");
        c.expectations.expect_deletes(key, &names);
        let deletes = names.iter().map(|name| {
            let api = api.clone();
            async move { api.delete(name, &DeleteParams::default()).await }
        });
        let results = futures_util::future::join_all(deletes).await;
        let mut failed = None;
        for (name, result) in names.iter().zip(results) {
            match result {
                Ok(_) => c.ctx.events.publish(rs, COMPONENT, EventType::Normal, "SuccessfulDelete", &format!("Deleted pod: {name}")).await,
                Err(kube::Error::Api(s)) if s.code == 404 => c.expectations.cancel(key, name),
                Err(e) => {
                    c.expectations.cancel(key, name);
                    let msg = message(&e);
                    tracing::warn!(replicaset = %key, pod = name, error = msg, "cannot delete pod");
                    c.ctx.events.publish(rs, COMPONENT, EventType::Warning, "FailedDelete", &format!("Error deleting: {msg}")).await;
                    failed.get_or_insert(msg);
                }
            }
        }
        if let Some(message) = failed {
            return Some(ManageFailure { creating: false, message });
        }
    }
    None
}

/// Active pods of this set and of the sets with the same controller.
fn related_pods(c: &Controller, rs: &ReplicaSet, ns: &str) -> Vec<Arc<Pod>> {
    let mut uids: Vec<String> = rs.metadata.uid.iter().cloned().collect();
    if let Some(owner) = util::controller_of(&rs.metadata) {
        uids.extend(
            c.sets
                .list_in(ns)
                .iter()
                .filter(|s| util::is_controlled_by(&s.metadata, &owner.uid))
                .filter_map(|s| s.metadata.uid.clone()),
        );
    }
    c.pods
        .list_in(ns)
        .into_iter()
        .filter(|p| util::is_pod_active(p) && util::controller_of(&p.metadata).map(|r| uids.contains(&r.uid)).unwrap_or(false))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_name_prefixes_are_cut_like_generated_names() {
        assert_eq!(name_prefix("web-5d4f8"), ("web-5d4f8-".to_string(), "web-5d4f8-".to_string()));
        let long = "a".repeat(70);
        let (generate, cut) = name_prefix(&long);
        assert_eq!(generate.len(), 71);
        assert_eq!(cut.len(), 58);
    }
}
