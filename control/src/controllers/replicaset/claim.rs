//! Controller references by selector, as client-go's `ControllerRefManager`:
//! an owner claims the objects it controls that still match its selector,
//! adopts matching orphans (adding itself as controller) and releases the
//! objects it controls that stopped matching (removing its reference).
//!
//! Used by the ReplicaSet controller for pods and by the Deployment
//! controller for ReplicaSets. It never touches objects controlled by
//! someone else, and every write is pinned to the resourceVersion seen.

use super::super::{util, Error};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What to do with one candidate object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Controlled by the owner and matching: it is the owner's.
    Keep,
    /// An orphan that matches: make the owner its controller.
    Adopt,
    /// Controlled by the owner but no longer matching: let it go.
    Release,
    /// Someone else's, or nothing to do with the owner.
    Ignore,
}

/// The owner's side of a claim.
pub struct Owner {
    pub reference: OwnerReference,
    pub namespace: String,
    pub deleting: bool,
}

/// The decision for `meta` (whose labels match the owner's selector or not).
pub fn decide(owner: &Owner, meta: &ObjectMeta, matches: bool) -> Decision {
    match util::controller_of(meta) {
        Some(r) if r.uid != owner.reference.uid => Decision::Ignore,
        Some(_) if matches => Decision::Keep,
        // An owner being deleted keeps what it has (the garbage collector
        // takes it from there).
        Some(_) if owner.deleting => Decision::Ignore,
        Some(_) => Decision::Release,
        None => {
            if owner.deleting || !matches || meta.deletion_timestamp.is_some() {
                return Decision::Ignore;
            }
            if meta.namespace.as_deref().unwrap_or("") != owner.namespace {
                return Decision::Ignore;
            }
            Decision::Adopt
        }
    }
}

/// A check, made at most once per claim and only when something is to be
/// adopted, that the owner still exists with the same uid and is not
/// being deleted (the cache may be behind).
pub type CanAdopt<'a> = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Result<bool, Error>> + Send + 'a>> + Send + 'a>;

/// Claim `candidates` for `owner`: returns the objects it controls after
/// adopting and releasing. Objects gone meanwhile are skipped.
pub async fn claim<K>(
    api: &kube::Api<K>,
    owner: &Owner,
    candidates: Vec<Arc<K>>,
    matches: impl Fn(&K) -> bool,
    can_adopt: CanAdopt<'_>,
) -> Result<Vec<Arc<K>>, Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let mut owned = Vec::new();
    let mut can_adopt = Some(can_adopt);
    let mut adoption_allowed = None;
    let mut first_error = None;
    for obj in candidates {
        match decide(owner, obj.meta(), matches(&obj)) {
            Decision::Keep => owned.push(obj),
            Decision::Ignore => {}
            Decision::Adopt => {
                if adoption_allowed.is_none() {
                    let check = match can_adopt.take() {
                        Some(f) => f().await?,
                        None => false,
                    };
                    adoption_allowed = Some(check);
                }
                if adoption_allowed != Some(true) {
                    continue;
                }
                let mut refs = obj.meta().owner_references.clone().unwrap_or_default();
                refs.push(owner.reference.clone());
                match write_refs(api, obj.meta(), refs).await {
                    Ok(adopted) => {
                        tracing::info!(kind = %K::kind(&()), name = ?obj.meta().name, owner = owner.reference.name, "adopted");
                        owned.push(Arc::new(adopted));
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            Decision::Release => {
                let refs: Vec<OwnerReference> =
                    obj.meta().owner_references.iter().flatten().filter(|r| r.uid != owner.reference.uid).cloned().collect();
                match write_refs(api, obj.meta(), refs).await {
                    Ok(_) => tracing::info!(kind = %K::kind(&()), name = ?obj.meta().name, owner = owner.reference.name, "released"),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(owned),
    }
}

/// Set `ownerReferences` of the object, pinned to the version seen.
async fn write_refs<K>(api: &kube::Api<K>, meta: &ObjectMeta, refs: Vec<OwnerReference>) -> Result<K, Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let name = meta.name.clone().unwrap_or_default();
    let refs = if refs.is_empty() { serde_json::Value::Null } else { json!(refs) };
    let patch = json!({"metadata": {"resourceVersion": meta.resource_version, "ownerReferences": refs}});
    Ok(api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(deleting: bool) -> Owner {
        Owner {
            reference: OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "web".into(),
                uid: "u1".into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            },
            namespace: "default".into(),
            deleting,
        }
    }

    fn meta(controller: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some("p".into()),
            namespace: Some("default".into()),
            owner_references: controller.map(|uid| {
                vec![OwnerReference { uid: uid.into(), controller: Some(true), name: "x".into(), kind: "ReplicaSet".into(), api_version: "apps/v1".into(), block_owner_deletion: None }]
            }),
            ..Default::default()
        }
    }

    #[test]
    fn claims_follow_the_controller_ref_manager_rules() {
        let o = owner(false);
        assert_eq!(decide(&o, &meta(Some("u1")), true), Decision::Keep);
        assert_eq!(decide(&o, &meta(Some("u1")), false), Decision::Release);
        assert_eq!(decide(&o, &meta(Some("u2")), true), Decision::Ignore, "someone else's");
        assert_eq!(decide(&o, &meta(None), true), Decision::Adopt);
        assert_eq!(decide(&o, &meta(None), false), Decision::Ignore);
        let mut gone = meta(None);
        gone.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(decide(&o, &gone, true), Decision::Ignore, "no adopting what is being deleted");
        let mut elsewhere = meta(None);
        elsewhere.namespace = Some("other".into());
        assert_eq!(decide(&o, &elsewhere, true), Decision::Ignore);
        let d = owner(true);
        assert_eq!(decide(&d, &meta(None), true), Decision::Ignore, "an owner being deleted adopts nothing");
        assert_eq!(decide(&d, &meta(Some("u1")), false), Decision::Ignore, "nor releases");
    }
}
