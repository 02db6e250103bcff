//! The collector's reconcile of one uid: collect a dependent whose owners
//! are all gone, finish a foreground deletion once the blocking dependents
//! are gone, release the dependents of an object deleted with `orphan`.
//! Every write is checked against the live object first (the graph may lag
//! behind) and carries the uid or resourceVersion it was decided on.

use super::decide::{decide, Action, OwnerState};
use super::discovery::Served;
use super::graph::{Node, Owner, Seen};
use super::Gc;
use crate::controllers::queue::Key;
use crate::controllers::{Error, Requeue};
use crate::controllers::events::EventType;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PartialObjectMeta, Preconditions};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long to wait before looking again at an object whose owner's kind
/// the API does not serve (discovery may catch up, e.g. a new CRD).
const UNRESOLVABLE_RETRY: Duration = Duration::from_secs(30);

pub async fn reconcile(gc: Arc<Gc>, key: Key) -> Result<Requeue, Error> {
    gc.wait_synced().await;
    let uid = key.name;
    let Some(node) = gc.graph().get(&uid).cloned() else { return Ok(None) };
    if node.deleting && node.orphan {
        return orphan_dependents(&gc, &uid, &node).await;
    }
    if node.deleting_dependents() {
        return deleting_dependents(&gc, &uid, &node).await;
    }
    if node.deleting || node.owners.is_empty() {
        return Ok(None);
    }
    attempt_to_delete(&gc, &uid, &node).await
}

fn api(gc: &Gc, res: &Served, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace.filter(|_| res.namespaced) {
        Some(ns) => Api::namespaced_with(gc.client.clone(), ns, &res.ar),
        None => Api::all_with(gc.client.clone(), &res.ar),
    }
}

/// The live metadata of the node's object, if it is still that object.
async fn live(gc: &Gc, uid: &str, node: &Node) -> Result<Option<PartialObjectMeta<DynamicObject>>, Error> {
    let got = api(gc, &node.res, node.namespace.as_deref()).get_metadata_opt(&node.name).await?;
    Ok(got.filter(|m| m.metadata.uid.as_deref() == Some(uid)))
}

fn ignore_gone(r: Result<(), Error>) -> Result<(), Error> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

async fn attempt_to_delete(gc: &Gc, uid: &str, node: &Node) -> Result<Requeue, Error> {
    let Some(obj) = live(gc, uid, node).await? else { return Ok(None) };
    if obj.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let refs: Vec<OwnerReference> = obj.metadata.owner_references.clone().unwrap_or_default();
    let mut owners = Vec::with_capacity(refs.len());
    for r in &refs {
        let owner = Owner::from(r);
        match owner_state(gc, &owner, uid, node).await? {
            Verdict::Known(state) => owners.push((owner, state)),
            Verdict::NotServed => {
                tracing::info!(object = %node.name, namespace = node.namespace.as_deref().unwrap_or(""), owner_kind = %owner.kind,
                    owner_api_version = %owner.api_version, "owner kind is not served; looking again later");
                return Ok(Some(UNRESOLVABLE_RETRY));
            }
            Verdict::Invalid => {
                // Upstream: such an object is never collected; say why.
                let message = invalid_ref_message(&owner, node.namespace.as_deref());
                tracing::warn!(object = %node.name, kind = %node.res.ar.kind, %message, "cluster-scoped object with a namespaced owner");
                gc.events.publish_ref(reference(uid, node), COMPONENT, EventType::Warning, "OwnerRefInvalidNamespace", &message).await;
                return Ok(None);
            }
        }
    }
    let (has_dependents, a_dependent_waits) = {
        let g = gc.graph();
        let deps = g.dependents_of(uid);
        (!deps.is_empty(), deps.iter().any(|(_, d)| d.deleting_dependents()))
    };
    let has = |f: &str| obj.metadata.finalizers.iter().flatten().any(|x| x == f);
    let action = decide(&owners, has_dependents, a_dependent_waits, has("orphan"), has("foregroundDeletion"));
    let rv = obj.metadata.resource_version.clone();
    let target = api(gc, &node.res, node.namespace.as_deref());
    match action {
        Action::Nothing => Ok(None),
        Action::DropRefs(drop) => {
            let kept: Vec<&OwnerReference> = refs.iter().filter(|r| !drop.contains(&r.uid)).collect();
            tracing::info!(kind = %node.res.ar.kind, object = %node.name, namespace = node.namespace.as_deref().unwrap_or(""),
                dropped = drop.len(), "removing references to missing or deleting owners");
            ignore_gone(set_owner_refs(&target, &node.name, &kept, rv).await)?;
            Ok(None)
        }
        Action::Delete { policy, unblock } => {
            if unblock {
                let unblocked: Vec<OwnerReference> = refs.iter().cloned().map(|mut r| {
                    r.block_owner_deletion = r.block_owner_deletion.map(|_| false);
                    r
                }).collect();
                ignore_gone(set_owner_refs(&target, &node.name, &unblocked.iter().collect::<Vec<_>>(), rv).await)?;
            }
            tracing::info!(kind = %node.res.ar.kind, object = %node.name, namespace = node.namespace.as_deref().unwrap_or(""),
                uid, policy = ?policy, "deleting object whose owners are gone");
            let dp = DeleteParams {
                propagation_policy: Some(policy),
                preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
                ..DeleteParams::default()
            };
            match target.delete(&node.name, &dp).await {
                Ok(_) => Ok(None),
                // Gone already, or replaced by another object of that name.
                Err(e) => {
                    let e = Error::from(e);
                    if e.is_not_found() || e.is_conflict() {
                        Ok(None)
                    } else {
                        Err(e)
                    }
                }
            }
        }
    }
}

/// What an owner reference turned out to be.
enum Verdict {
    Known(OwnerState),
    /// The API does not serve the owner's kind (yet: a CRD may come).
    NotServed,
    /// A cluster-scoped object names a namespaced owner.
    Invalid,
}

const COMPONENT: &str = "garbage-collector-controller";

fn reference(uid: &str, node: &Node) -> ObjectReference {
    ObjectReference {
        api_version: Some(node.res.ar.api_version.clone()),
        kind: Some(node.res.ar.kind.clone()),
        name: Some(node.name.clone()),
        namespace: node.namespace.clone(),
        uid: Some(uid.to_string()),
        ..ObjectReference::default()
    }
}

fn invalid_ref_message(owner: &Owner, namespace: Option<&str>) -> String {
    format!(
        "ownerRef [{}/{}, namespace: {}, name: {}, uid: {}] does not exist in namespace {:?}",
        owner.api_version,
        owner.kind,
        namespace.unwrap_or(""),
        owner.name,
        owner.uid,
        namespace.unwrap_or("")
    )
}

/// Verify one owner: from the graph when it shows the owner, else from the
/// API (by name, compared by uid).
async fn owner_state(gc: &Gc, owner: &Owner, dep_uid: &str, dependent: &Node) -> Result<Verdict, Error> {
    let ns = dependent.namespace.as_deref();
    let elsewhere = {
        let g = gc.graph();
        match g.seen(owner, ns) {
            Seen::Solid => return Ok(Verdict::Known(OwnerState::Solid)),
            Seen::Waiting => return Ok(Verdict::Known(OwnerState::Waiting)),
            Seen::Unknown => g.get(&owner.uid).map(|n| n.res.namespaced && n.namespace.as_deref() != ns && n.name == owner.name).unwrap_or(false),
        }
    };
    if gc.is_absent(&owner.uid) {
        return Ok(Verdict::Known(OwnerState::Dangling));
    }
    let Some(res) = gc.catalog().resolve(&owner.api_version, &owner.kind) else { return Ok(Verdict::NotServed) };
    if res.namespaced && ns.is_none() {
        return Ok(Verdict::Invalid);
    }
    let got = api(gc, &res, ns).get_metadata_opt(&owner.name).await?;
    Ok(Verdict::Known(match got {
        Some(m) if m.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
            let fg = m.metadata.finalizers.iter().flatten().any(|f| f == "foregroundDeletion");
            if m.metadata.deletion_timestamp.is_some() && fg {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            }
        }
        _ => {
            if elsewhere {
                // The owner lives in another namespace: the reference is treated as missing.
                let message = invalid_ref_message(owner, ns);
                gc.events.publish_ref(reference(dep_uid, dependent), COMPONENT, EventType::Warning, "OwnerRefInvalidNamespace", &message).await;
            }
            gc.mark_absent(&owner.uid);
            OwnerState::Dangling
        }
    }))
}

async fn set_owner_refs(api: &Api<DynamicObject>, name: &str, refs: &[&OwnerReference], rv: Option<String>) -> Result<(), Error> {
    let refs = if refs.is_empty() { Value::Null } else { json!(refs) };
    let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": rv}});
    api.patch_metadata(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

/// Drop `finalizer` from the live object (if it is still that object).
async fn remove_finalizer(gc: &Gc, uid: &str, node: &Node, finalizer: &str) -> Result<(), Error> {
    let Some(obj) = live(gc, uid, node).await? else { return Ok(()) };
    let all: Vec<String> = obj.metadata.finalizers.clone().unwrap_or_default();
    if !all.iter().any(|f| f == finalizer) {
        return Ok(());
    }
    let rest: Vec<&String> = all.iter().filter(|f| *f != finalizer).collect();
    let fins = if rest.is_empty() { Value::Null } else { json!(rest) };
    let patch = json!({"metadata": {"finalizers": fins, "resourceVersion": obj.metadata.resource_version}});
    tracing::info!(kind = %node.res.ar.kind, object = %node.name, namespace = node.namespace.as_deref().unwrap_or(""), finalizer, "removing finalizer");
    let r = api(gc, &node.res, node.namespace.as_deref()).patch_metadata(&node.name, &PatchParams::default(), &Patch::Merge(&patch)).await;
    ignore_gone(r.map(|_| ()).map_err(Error::from))
}

/// Foreground deletion: wait for the dependents that block the owner, then
/// let the owner go.
async fn deleting_dependents(gc: &Gc, uid: &str, node: &Node) -> Result<Requeue, Error> {
    let blocking = gc.graph().blocking_dependents(uid);
    if blocking.is_empty() {
        remove_finalizer(gc, uid, node, "foregroundDeletion").await?;
        return Ok(None);
    }
    for (dep, n) in blocking {
        if !n.deleting {
            gc.queue.add(Key::cluster(&dep));
        }
    }
    Ok(None)
}

/// Orphan deletion: remove the references to the owner from its
/// dependents, then let the owner go.
async fn orphan_dependents(gc: &Gc, uid: &str, node: &Node) -> Result<Requeue, Error> {
    let deps = gc.graph().dependents_of(uid);
    for (dep_uid, dep) in deps {
        let Some(obj) = live(gc, &dep_uid, &dep).await? else { continue };
        let refs = obj.metadata.owner_references.clone().unwrap_or_default();
        let kept: Vec<&OwnerReference> = refs.iter().filter(|r| r.uid != uid).collect();
        if kept.len() == refs.len() {
            continue;
        }
        tracing::info!(kind = %dep.res.ar.kind, object = %dep.name, namespace = dep.namespace.as_deref().unwrap_or(""), owner = %node.name, "orphaning dependent");
        let target = api(gc, &dep.res, dep.namespace.as_deref());
        ignore_gone(set_owner_refs(&target, &dep.name, &kept, obj.metadata.resource_version.clone()).await)?;
    }
    remove_finalizer(gc, uid, node, "orphan").await?;
    Ok(None)
}
