//! The namespace controller: empties a terminating namespace of every
//! namespaced resource the API serves (custom resources included), keeps
//! upstream's deletion conditions on its status while it works, then
//! removes the `kubernetes` finalizer through `namespaces/NAME/finalize`,
//! after which the API server deletes the namespace. It also recreates a
//! system namespace that was deleted (as upstream's API server does).
//!
//! The API server owns the rest of the lifecycle (the finalizer and phase
//! Active on create, Terminating on delete, refusing new content in a
//! terminating namespace, never deleting `default`, `kube-system` and
//! `kube-public`). Must not: delete content of a namespace that is not
//! being deleted, or remove finalizers other than `kubernetes`.

pub mod conditions;
mod content;

use super::garbage_collector::discovery::discover;
use super::queue::{Key, Queue};
use super::{run_workers, Context, Error, Requeue};
use conditions::Totals;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::Duration;

const FINALIZER: &str = "kubernetes";
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

pub fn start(ctx: &Context) {
    let queue = Queue::new();
    let informer = ctx.informers.get::<Namespace>();
    informer.feed_self(&ctx.tasks, queue.clone());
    let c = ctx.clone();
    run_workers(ctx, "namespace", queue, 2, move |key| {
        let c = c.clone();
        async move { reconcile(&c, key).await }
    });
}

/// How long to wait before looking again at a namespace whose content is
/// not gone yet: quickly at first, less often the longer it takes.
fn retry_after(elapsed_secs: i64, estimate: i64) -> Duration {
    let by_age = match elapsed_secs {
        s if s < 30 => 1,
        s if s < 300 => 5,
        _ => 15,
    };
    Duration::from_secs(by_age.min(estimate.max(1)).max(1) as u64)
}

async fn reconcile(ctx: &Context, key: Key) -> Result<Requeue, Error> {
    let informer = ctx.informers.get::<Namespace>();
    if let Some(cached) = informer.get_key(&key) {
        if cached.metadata.deletion_timestamp.is_none() {
            return Ok(None);
        }
    }
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let Some(ns) = api.get_opt(&key.name).await? else {
        if SYSTEM_NAMESPACES.contains(&key.name.as_str()) {
            recreate(&api, &key.name).await?;
        }
        return Ok(None);
    };
    let Some(deleted_at) = ns.metadata.deletion_timestamp.as_ref().map(|t| t.0) else { return Ok(None) };
    let name = key.name.clone();
    let mut ns = ns;
    if ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating") {
        let patch = json!({"status": {"phase": "Terminating"}});
        ns = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    }
    let finalizers = ns.spec.as_ref().and_then(|s| s.finalizers.clone()).unwrap_or_default();
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(None);
    }

    let mut totals = Totals::default();
    let mut estimate = 0i64;
    match discover(&ctx.client).await {
        Ok(catalog) => {
            for res in catalog.preferred.iter().filter(|r| r.namespaced && r.supports("delete")) {
                let left = content::empty(&ctx.client, res, &name).await;
                if let Some(e) = left.error {
                    totals.delete_errors.push(e);
                }
                if left.remaining > 0 {
                    totals.remaining.insert(format!("{}.{}", res.ar.plural, res.ar.group), left.remaining);
                    for (f, n) in left.finalizers {
                        *totals.finalizers.entry(f).or_default() += n;
                    }
                    estimate = estimate.max(left.estimate.max(1));
                }
            }
        }
        Err(e) => totals.discovery_error = Some(e.to_string()),
    }
    let existing = ns.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    if let Some(conds) = conditions::update(&existing, &totals, ctx.clock.now()) {
        let patch = json!({"status": {"conditions": conds}});
        if let Err(e) = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            tracing::warn!(controller = "namespace", namespace = %name, error = %e, "could not update the namespace's conditions");
        }
    }
    let failed = totals.discovery_error.is_some() || !totals.delete_errors.is_empty();
    if failed || !totals.remaining.is_empty() {
        let elapsed = ctx.clock.now().duration_since(deleted_at).as_secs();
        let after = retry_after(elapsed, if failed { 1 } else { estimate });
        tracing::info!(controller = "namespace", namespace = %name, remaining = totals.remaining.values().sum::<usize>(),
            errors = totals.delete_errors.len(), retry_in_ms = after.as_millis() as u64, "namespace content not gone yet");
        return Ok(Some(after));
    }
    // Everything is gone: let the namespace go.
    let mut finalized = ns.clone();
    if let Some(spec) = finalized.spec.as_mut() {
        spec.finalizers = Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
    }
    match api.replace_subresource("finalize", &name, &PostParams::default(), &finalized).await {
        Ok(_) => {
            tracing::info!(controller = "namespace", namespace = %name, "namespace content removed; finalized");
            Ok(None)
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn recreate(api: &Api<Namespace>, name: &str) -> Result<(), Error> {
    let ns: Namespace = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
        .map_err(|e| Error::Other(e.to_string()))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {
            tracing::info!(controller = "namespace", namespace = name, "recreated system namespace");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_again_quickly_at_first() {
        assert_eq!(retry_after(0, 30), Duration::from_secs(1));
        assert_eq!(retry_after(60, 30), Duration::from_secs(5));
        assert_eq!(retry_after(600, 30), Duration::from_secs(15));
        assert_eq!(retry_after(600, 2), Duration::from_secs(2));
    }
}
