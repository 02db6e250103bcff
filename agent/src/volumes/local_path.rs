//! The built-in local-path provisioner (k3s' `rancher.io/local-path`): a
//! default StorageClass `local-path` (WaitForFirstConsumer, reclaim
//! Delete), created at agent start when missing; a PersistentVolume per
//! claim of that class, provisioned by the agent of the node where the
//! first pod using the claim runs (our scheduler does no volume binding),
//! as a hostPath directory `DATA_DIR/storage/pvc-UID_NS_NAME` with node
//! affinity to that node; the claim and volume bound to each other (the PV
//! controller's job, which the control plane does not run); and, once the
//! claim is gone, the volume released: its directory and the PV deleted
//! (reclaim policy Delete) or kept as `Released` (Retain).
//!
//! It only ever deletes directories under `DATA_DIR/storage`, and only of
//! PVs it provisioned for this node that no pod here still uses.

use super::{api_message, host_path, is_not_found, VolumeError};
use crate::context::Context;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const CLASS: &str = "local-path";
pub const PROVISIONER: &str = "rancher.io/local-path";
const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
const SELECTED_NODE: &str = "local.path.provisioner/selected-node";
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// `DATA_DIR/storage`: where provisioned volumes live.
pub fn storage_dir(ctx: &Context) -> PathBuf {
    ctx.cfg.data_dir.join("storage")
}

/// The StorageClass made at start when missing.
pub fn default_class() -> StorageClass {
    let v = json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    });
    serde_json::from_value(v).unwrap_or_default()
}

/// Creates the `local-path` StorageClass unless it exists.
pub async fn ensure_class(client: &kube::Client) -> Result<(), String> {
    let api: Api<StorageClass> = Api::all(client.clone());
    match api.get_opt(CLASS).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => match api.create(&PostParams::default(), &default_class()).await {
            Ok(_) => {
                tracing::info!(storageclass = CLASS, provisioner = PROVISIONER, "created the default StorageClass");
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(format!("cannot create StorageClass {CLASS}: {}", api_message(&e))),
        },
        Err(e) => Err(format!("cannot read StorageClass {CLASS}: {}", api_message(&e))),
    }
}

/// The class a claim asks for: its own, or the default class when unset.
async fn claim_class(client: &kube::Client, pvc: &PersistentVolumeClaim) -> Result<Option<StorageClass>, String> {
    let api: Api<StorageClass> = Api::all(client.clone());
    match pvc.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()) {
        Some("") => Ok(None),
        Some(name) => api.get_opt(name).await.map_err(|e| format!("cannot read StorageClass {name}: {}", api_message(&e))),
        None => {
            let list = api.list(&Default::default()).await.map_err(|e| format!("cannot list StorageClasses: {}", api_message(&e)))?;
            Ok(list.items.into_iter().find(|c| {
                let a = c.metadata.annotations.as_ref();
                a.and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION)).map(String::as_str) == Some("true")
            }))
        }
    }
}

/// The directory of a claim's volume.
pub fn volume_dir(storage: &Path, pvc: &PersistentVolumeClaim) -> PathBuf {
    let m = &pvc.metadata;
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    storage.join(format!("pvc-{}_{}_{}", s(&m.uid), s(&m.namespace), s(&m.name)))
}

/// The PV this provisioner makes for `pvc` of `class` on `node`.
pub fn volume_for(pvc: &PersistentVolumeClaim, class: &StorageClass, node: &str, dir: &Path) -> Result<PersistentVolume, String> {
    let spec = pvc.spec.clone().unwrap_or_default();
    if spec.volume_mode.as_deref() == Some("Block") {
        return Err("the local-path provisioner makes Filesystem volumes only (volumeMode: Block requested)".into());
    }
    let storage = spec.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage")).cloned();
    let Some(storage) = storage else { return Err("the claim requests no storage".into()) };
    let m = &pvc.metadata;
    let v = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": format!("pvc-{}", m.uid.clone().unwrap_or_default()),
            "annotations": {PROVISIONED_BY: PROVISIONER, SELECTED_NODE: node},
        },
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": spec.access_modes.clone().unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
            "persistentVolumeReclaimPolicy": class.reclaim_policy.clone().unwrap_or_else(|| "Delete".into()),
            "storageClassName": class.metadata.name.clone().unwrap_or_default(),
            "volumeMode": "Filesystem",
            "hostPath": {"path": dir.display().to_string(), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]}
            ]}},
            "claimRef": {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "namespace": m.namespace, "name": m.name, "uid": m.uid,
            },
        },
    });
    serde_json::from_value(v).map_err(|e| format!("cannot build the PersistentVolume: {e}"))
}

/// Whether a PV may be used on `node`: no node affinity, or a required
/// term that names this node's hostname (the only label it checks).
pub fn allows_node(pv: &PersistentVolume, node: &str) -> bool {
    let Some(terms) = pv.spec.as_ref().and_then(|s| s.node_affinity.as_ref()).and_then(|a| a.required.as_ref()) else {
        return true;
    };
    terms.node_selector_terms.iter().any(|t| {
        t.match_expressions.iter().flatten().all(|e| match (e.key.as_str(), e.operator.as_str()) {
            (HOSTNAME_LABEL, "In") => e.values.iter().flatten().any(|v| v == node),
            (HOSTNAME_LABEL, "NotIn") => !e.values.iter().flatten().any(|v| v == node),
            _ => true,
        })
    })
}

fn claim_error(volume: &str, ns: &str, claim: &str, why: impl std::fmt::Display) -> VolumeError {
    VolumeError::Claim { volume: volume.to_string(), cause: format!("error processing PVC {ns}/{claim}: {why}") }
}

/// Makes (or finds) the PV of `pvc` on this node and binds both.
async fn provision(ctx: &Context, pvc: &PersistentVolumeClaim, class: &StorageClass) -> Result<PersistentVolume, String> {
    let node = &ctx.cfg.node_name;
    let ns = pvc.metadata.namespace.clone().unwrap_or_default();
    let name = pvc.metadata.name.clone().unwrap_or_default();
    let uid = pvc.metadata.uid.clone().unwrap_or_default();
    let dir = volume_dir(&storage_dir(ctx), pvc);
    let want = volume_for(pvc, class, node, &dir)?;
    let pv_name = want.metadata.name.clone().unwrap_or_default();
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let pv = match pvs.get_opt(&pv_name).await.map_err(|e| format!("cannot read PersistentVolume {pv_name}: {}", api_message(&e)))? {
        Some(pv) => pv,
        None => {
            std::fs::create_dir_all(&dir)
                .and_then(|_| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)))
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            match pvs.create(&PostParams::default(), &want).await {
                Ok(pv) => {
                    tracing::info!(pv = %pv_name, claim = %format!("{ns}/{name}"), path = %dir.display(), "provisioned a local-path volume");
                    pv
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    pvs.get(&pv_name).await.map_err(|e| format!("cannot read PersistentVolume {pv_name}: {}", api_message(&e)))?
                }
                Err(e) => return Err(format!("cannot create PersistentVolume {pv_name}: {}", api_message(&e))),
            }
        }
    };
    let claim_uid = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).and_then(|r| r.uid.clone()).unwrap_or_default();
    if claim_uid != uid {
        return Err(format!("PersistentVolume {pv_name} is bound to another claim"));
    }
    if !allows_node(&pv, node) {
        return Err(format!("volume node affinity conflict: {pv_name} was provisioned on another node"));
    }
    bind(ctx, pvc, &pv).await?;
    Ok(pv)
}

/// Binds claim and volume both ways (each step skipped when done).
async fn bind(ctx: &Context, pvc: &PersistentVolumeClaim, pv: &PersistentVolume) -> Result<(), String> {
    let ns = pvc.metadata.namespace.clone().unwrap_or_default();
    let name = pvc.metadata.name.clone().unwrap_or_default();
    let pv_name = pv.metadata.name.clone().unwrap_or_default();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let pp = PatchParams::default();
    let spec = pvc.spec.clone().unwrap_or_default();
    if spec.volume_name.as_deref().unwrap_or("").is_empty() {
        let patch = json!({
            "metadata": {"annotations": {
                "pv.kubernetes.io/bind-completed": "yes",
                "pv.kubernetes.io/bound-by-controller": "yes",
                "volume.beta.kubernetes.io/storage-provisioner": PROVISIONER,
                "volume.kubernetes.io/storage-provisioner": PROVISIONER,
                "volume.kubernetes.io/selected-node": ctx.cfg.node_name,
            }},
            "spec": {"volumeName": pv_name},
        });
        pvcs.patch(&name, &pp, &Patch::Merge(&patch)).await.map_err(|e| format!("cannot bind claim {ns}/{name}: {}", api_message(&e)))?;
    }
    if pvc.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
        let pv_spec = pv.spec.clone().unwrap_or_default();
        let patch = json!({"status": {"phase": "Bound", "accessModes": pv_spec.access_modes, "capacity": pv_spec.capacity}});
        pvcs.patch_status(&name, &pp, &Patch::Merge(&patch))
            .await
            .map_err(|e| format!("cannot update the status of claim {ns}/{name}: {}", api_message(&e)))?;
        tracing::info!(claim = %format!("{ns}/{name}"), pv = %pv_name, "claim bound");
    }
    if pv.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
        let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
        pvs.patch_status(&pv_name, &pp, &Patch::Merge(&json!({"status": {"phase": "Bound"}})))
            .await
            .map_err(|e| format!("cannot update the status of PersistentVolume {pv_name}: {}", api_message(&e)))?;
    }
    Ok(())
}

/// The host directory of the claim `claim` of `pod`'s volume `volume`:
/// provisioned and bound here first when it is an unbound `local-path`
/// claim. A claim that is missing or not bound yet is a waiting error.
pub(crate) async fn claim_path(ctx: &Context, pod: &Pod, volume: &str, claim: &str) -> Result<PathBuf, VolumeError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let err = |why: String| claim_error(volume, &ns, claim, why);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let pvc = match pvcs.get_opt(claim).await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(err(format!("failed to fetch PVC from API server: persistentvolumeclaims \"{claim}\" not found"))),
        Err(e) => return Err(err(format!("failed to fetch PVC from API server: {}", api_message(&e)))),
    };
    if pvc.metadata.deletion_timestamp.is_some() {
        return Err(err(format!("can't start pod because PVC {ns}/{claim} is being deleted")));
    }
    let bound_to = pvc.spec.as_ref().and_then(|s| s.volume_name.clone()).filter(|n| !n.is_empty());
    let phase = pvc.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into());
    let pv = match bound_to {
        Some(pv_name) if phase == "Bound" => {
            let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
            match pvs.get_opt(&pv_name).await {
                Ok(Some(pv)) => pv,
                Ok(None) => return Err(err(format!("PersistentVolume \"{pv_name}\" not found"))),
                Err(e) => return Err(err(api_message(&e))),
            }
        }
        _ => {
            let class = claim_class(&ctx.client, &pvc).await.map_err(&err)?;
            match class {
                Some(c) if c.provisioner == PROVISIONER => provision(ctx, &pvc, &c).await.map_err(&err)?,
                _ => {
                    let vn = pvc.spec.as_ref().and_then(|s| s.volume_name.clone()).unwrap_or_default();
                    return Err(err(format!("PVC {ns}/{claim} has non-bound phase ({phase:?}) or empty pvc.Spec.VolumeName ({vn:?})")));
                }
            }
        }
    };
    if !allows_node(&pv, &ctx.cfg.node_name) {
        return Err(err(format!("volume node affinity conflict: {} cannot be used on node {}", pv.metadata.name.clone().unwrap_or_default(), ctx.cfg.node_name)));
    }
    let spec = pv.spec.clone().unwrap_or_default();
    let fail = |cause: String| VolumeError::SetUp { volume: volume.to_string(), cause };
    if let Some(h) = &spec.host_path {
        let path = PathBuf::from(&h.path);
        host_path::check(&path, h.type_.as_deref()).map_err(fail)?;
        if spec.storage_class_name.as_deref() == Some(CLASS) && path.starts_with(storage_dir(ctx)) {
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777));
        }
        return Ok(path);
    }
    if let Some(l) = &spec.local {
        let path = PathBuf::from(&l.path);
        if !path.exists() {
            return Err(fail(format!("path \"{}\" does not exist", l.path)));
        }
        return Ok(path);
    }
    Err(fail(format!(
        "PersistentVolume {} has a volume type this node cannot mount (hostPath and local are supported)",
        pv.metadata.name.clone().unwrap_or_default()
    )))
}

/// Whether a pod of this node still uses claim `ns/name`.
fn claim_in_use(pods: &[std::sync::Arc<Pod>], ns: &str, name: &str) -> bool {
    pods.iter().any(|p| {
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
        p.metadata.namespace.as_deref() == Some(ns)
            && phase != "Succeeded"
            && phase != "Failed"
            && p.spec.as_ref().and_then(|s| s.volumes.as_ref()).into_iter().flatten().any(|v| {
                v.persistent_volume_claim.as_ref().is_some_and(|c| c.claim_name == name)
            })
    })
}

/// One pass over this node's provisioned volumes: those whose claim is
/// gone are deleted (with their directory) or marked Released.
pub(crate) async fn reclaim(ctx: &Context, pods: &[std::sync::Arc<Pod>]) -> Result<(), String> {
    let node = &ctx.cfg.node_name;
    let storage = storage_dir(ctx);
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let list = pvs.list(&Default::default()).await.map_err(|e| format!("cannot list PersistentVolumes: {}", api_message(&e)))?;
    for pv in list.items {
        let ann = pv.metadata.annotations.clone().unwrap_or_default();
        if ann.get(PROVISIONED_BY).map(String::as_str) != Some(PROVISIONER) || ann.get(SELECTED_NODE) != Some(node) {
            continue;
        }
        let pv_name = pv.metadata.name.clone().unwrap_or_default();
        let spec = pv.spec.clone().unwrap_or_default();
        let Some(claim) = spec.claim_ref.clone() else { continue };
        let (ns, name) = (claim.namespace.clone().unwrap_or_default(), claim.name.clone().unwrap_or_default());
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
        let released = match pvcs.get_opt(&name).await {
            Ok(Some(pvc)) => pvc.metadata.uid != claim.uid,
            Ok(None) => true,
            Err(e) => {
                tracing::debug!(claim = %format!("{ns}/{name}"), error = %api_message(&e), "cannot read claim");
                false
            }
        };
        if !released {
            continue;
        }
        if spec.persistent_volume_reclaim_policy.as_deref() == Some("Delete") {
            if claim_in_use(pods, &ns, &name) {
                continue;
            }
            if let Some(h) = &spec.host_path {
                let path = PathBuf::from(&h.path);
                if path.starts_with(&storage) && path != storage && path.components().count() > storage.components().count() {
                    if let Err(e) = std::fs::remove_dir_all(&path) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            tracing::warn!(pv = %pv_name, path = %path.display(), error = %e, "cannot delete volume data");
                            continue;
                        }
                    }
                }
            }
            match pvs.delete(&pv_name, &Default::default()).await {
                Ok(_) => tracing::info!(pv = %pv_name, claim = %format!("{ns}/{name}"), "deleted released volume"),
                Err(e) if is_not_found(&e) => {}
                Err(e) => tracing::warn!(pv = %pv_name, error = %api_message(&e), "cannot delete released volume"),
            }
        } else if pv.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Released") {
            let patch = json!({"status": {"phase": "Released"}});
            if let Err(e) = pvs.patch_status(&pv_name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                tracing::warn!(pv = %pv_name, error = %api_message(&e), "cannot mark volume released");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn pvc() -> PersistentVolumeClaim {
        let mut p = PersistentVolumeClaim::default();
        p.metadata.name = Some("data".into());
        p.metadata.namespace = Some("db".into());
        p.metadata.uid = Some("1234".into());
        p.spec = Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_string(), Quantity("1Gi".into()))].into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        p
    }

    #[test]
    fn class_is_the_default_wait_for_first_consumer() {
        let c = default_class();
        assert_eq!(c.metadata.name.as_deref(), Some(CLASS));
        assert_eq!(c.provisioner, PROVISIONER);
        assert_eq!(c.volume_binding_mode.as_deref(), Some("WaitForFirstConsumer"));
        assert_eq!(c.metadata.annotations.unwrap()[DEFAULT_CLASS_ANNOTATION], "true");
    }

    #[test]
    fn volume_of_a_claim() {
        let dir = volume_dir(Path::new("/var/lib/coracle/storage"), &pvc());
        assert_eq!(dir, PathBuf::from("/var/lib/coracle/storage/pvc-1234_db_data"));
        let pv = volume_for(&pvc(), &default_class(), "node1", &dir).unwrap();
        assert_eq!(pv.metadata.name.as_deref(), Some("pvc-1234"));
        let spec = pv.spec.clone().unwrap();
        assert_eq!(spec.host_path.unwrap().path, "/var/lib/coracle/storage/pvc-1234_db_data");
        assert_eq!(spec.capacity.unwrap()["storage"].0, "1Gi");
        assert_eq!(spec.claim_ref.unwrap().uid.as_deref(), Some("1234"));
        assert_eq!(spec.persistent_volume_reclaim_policy.as_deref(), Some("Delete"));
        assert!(allows_node(&pv, "node1"));
        assert!(!allows_node(&pv, "node2"));
        assert!(allows_node(&PersistentVolume::default(), "node2"));
        let mut block = pvc();
        if let Some(s) = block.spec.as_mut() {
            s.volume_mode = Some("Block".into());
        }
        assert!(volume_for(&block, &default_class(), "n", &dir).is_err());
    }
}
