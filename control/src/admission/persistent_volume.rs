//! PersistentVolumes and PersistentVolumeClaims (also the claim templates
//! of StatefulSets).

use super::meta::{self, SUBDOMAIN};
use super::path::Path;
use super::quantity::Quantity;
use super::util::{get, list, map_of, push_msgs, semantic_eq, str_of, string, Errs};
use crate::field_error::FieldError;
use crate::names;
use serde_json::{json, Value};

const ACCESS_MODES: &[&str] = &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];
const RECLAIM_POLICIES: &[&str] = &["Delete", "Recycle", "Retain"];

/// PV sources, any one of which makes a volume.
const PV_SOURCES: &[&str] = &[
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "hostPath",
    "glusterfs",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flocker",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

fn access_modes(spec: &Value, path: &Path, errs: &mut Errs) {
    let modes = list(spec, "accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required(path.child("accessModes"), "at least 1 access mode is required"));
    }
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            errs.push(FieldError::not_supported(path.child("accessModes"), json!(m), ACCESS_MODES));
        }
        if m == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(path.child("accessModes"), "may not use ReadWriteOncePod with other access modes"));
    }
}

fn volume_mode(spec: &Value, path: &Path, errs: &mut Errs) {
    if let Some(m) = str_of(spec, "volumeMode") {
        if !VOLUME_MODES.contains(&m) {
            errs.push(FieldError::not_supported(path.child("volumeMode"), json!(m), VOLUME_MODES));
        }
    }
}

fn storage_class_name(spec: &Value, path: &Path, errs: &mut Errs) {
    let name = string(spec, "storageClassName");
    if !name.is_empty() {
        push_msgs(errs, &path.child("storageClassName"), name, names::dns1123_subdomain(name));
    }
}

/// `ValidatePersistentVolumeClaimSpec` at `path`.
pub(crate) fn claim_spec(spec: &Value, path: &Path, errs: &mut Errs) {
    access_modes(spec, path, errs);
    meta::label_selector(get(spec, "selector"), &path.child("selector"), errs);
    let storage_path = path.child("resources").key("storage");
    match spec.get("resources").and_then(|r| map_of(r, "requests")).and_then(|r| r.get("storage")) {
        None => errs.push(FieldError::required(storage_path, "")),
        Some(v) => match Quantity::from_json(v) {
            Ok(q) if q.nanos() <= 0 => errs.push(FieldError::invalid(storage_path, json!(q.to_string()), super::util::NOT_POSITIVE)),
            Ok(_) => {}
            Err(e) => errs.push(FieldError::invalid(storage_path, v.clone(), e.to_string())),
        },
    }
    storage_class_name(spec, path, errs);
    volume_mode(spec, path, errs);
}

pub(crate) fn claim(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let path = Path::root("spec");
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    claim_spec(spec, &path, errs);
    if let Some(old) = old {
        claim_update(obj, old, &path, errs);
    }
}

/// Claims are immutable except for growing the storage request of a bound
/// claim, the volume attributes class, and binding (`volumeName` set once).
fn claim_update(obj: &Value, old: &Value, path: &Path, errs: &mut Errs) {
    let new_spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let mut old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
    let mut munged = new_spec.clone();
    if string(&old_spec, "volumeName").is_empty() {
        if let (Some(o), Some(n)) = (old_spec.as_object_mut(), get(&new_spec, "volumeName")) {
            o.insert("volumeName".into(), n.clone());
        }
    }
    let bound = old.get("status").and_then(|s| str_of(s, "phase")) == Some("Bound");
    if bound {
        for spec in [&mut munged, &mut old_spec] {
            if let Some(r) = spec.get_mut("resources").and_then(Value::as_object_mut) {
                r.remove("requests");
            }
            if let Some(s) = spec.as_object_mut() {
                s.remove("volumeAttributesClassName");
            }
        }
        let storage = |v: &Value| {
            super::util::at(v, &["resources", "requests", "storage"]).and_then(|q| Quantity::from_json(q).ok())
        };
        let capacity = old.get("status").and_then(|s| super::util::at(s, &["capacity", "storage"])).and_then(|q| Quantity::from_json(q).ok());
        if let (Some(new_q), Some(cap)) = (storage(&new_spec), capacity) {
            if new_q < cap {
                errs.push(FieldError::forbidden(
                    path.child("resources").child("requests").child("storage"),
                    "field can not be less than status.capacity",
                ));
            }
        }
    }
    if !semantic_eq(Some(&munged), Some(&old_spec)) {
        errs.push(FieldError::forbidden(
            path,
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
}

pub(crate) fn volume(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let path = Path::root("spec");
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    access_modes(spec, &path, errs);
    match map_of(spec, "capacity") {
        None => errs.push(FieldError::required(path.child("capacity"), "")),
        Some(cap) if cap.is_empty() => errs.push(FieldError::required(path.child("capacity"), "")),
        Some(cap) => {
            if !cap.contains_key("storage") || cap.len() > 1 {
                errs.push(FieldError::not_supported(path.child("capacity"), Value::Object(cap.clone()), &["storage"]));
            }
            if let Some(v) = cap.get("storage") {
                match Quantity::from_json(v) {
                    Ok(q) if q.nanos() <= 0 => errs.push(FieldError::invalid(
                        path.child("capacity").key("storage"),
                        json!(q.to_string()),
                        super::util::NOT_POSITIVE,
                    )),
                    Ok(_) => {}
                    Err(e) => errs.push(FieldError::invalid(path.child("capacity").key("storage"), v.clone(), e.to_string())),
                }
            }
        }
    }
    if let Some(p) = str_of(spec, "persistentVolumeReclaimPolicy") {
        if !RECLAIM_POLICIES.contains(&p) {
            errs.push(FieldError::not_supported(path.child("persistentVolumeReclaimPolicy"), json!(p), RECLAIM_POLICIES));
        }
    }
    storage_class_name(spec, &path, errs);
    volume_mode(spec, &path, errs);
    let mut found = 0;
    for key in PV_SOURCES {
        let Some(src) = get(spec, key) else { continue };
        if found > 0 {
            errs.push(FieldError::forbidden(path.child(key), "may not specify more than 1 volume type"));
            continue;
        }
        found += 1;
        if matches!(*key, "hostPath" | "local") && string(src, "path").is_empty() {
            errs.push(FieldError::required(path.child(key).child("path"), ""));
        }
        if *key == "local" && get(spec, "nodeAffinity").is_none() {
            errs.push(FieldError::required(path.child("nodeAffinity"), "Local volume requires node affinity"));
        }
    }
    if found == 0 {
        errs.push(FieldError::required(&path, "must specify a volume type"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_error::aggregate;

    fn run(f: fn(&Value, Option<&Value>, &mut Errs), obj: Value, old: Option<Value>) -> String {
        let mut errs = Vec::new();
        f(&obj, old.as_ref(), &mut errs);
        aggregate(&errs)
    }

    fn pvc(spec: Value) -> Value {
        json!({"metadata": {"name": "data"}, "spec": spec})
    }

    #[test]
    fn claims_need_modes_and_storage() {
        assert_eq!(
            run(claim, pvc(json!({})), None),
            "[spec.accessModes: Required value: at least 1 access mode is required, spec.resources[storage]: Required value]"
        );
        assert_eq!(run(claim, pvc(json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})), None), "[]");
    }

    #[test]
    fn bound_claims_may_grow_only() {
        let spec = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "pv1"});
        let mut old = pvc(spec.clone());
        old["status"] = json!({"phase": "Bound", "capacity": {"storage": "1Gi"}});
        let mut grown = spec.clone();
        grown["resources"]["requests"]["storage"] = json!("2Gi");
        assert_eq!(run(claim, pvc(grown), Some(old.clone())), "[]");
        let mut shrunk = spec.clone();
        shrunk["resources"]["requests"]["storage"] = json!("500Mi");
        assert_eq!(run(claim, pvc(shrunk), Some(old.clone())), "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity");
        let mut modes = spec;
        modes["accessModes"] = json!(["ReadWriteMany"]);
        assert_eq!(
            run(claim, pvc(modes), Some(old)),
            "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
        );
    }

    #[test]
    fn volumes_need_capacity_and_source() {
        let pv = json!({"metadata": {"name": "pv1"}, "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/data"}}});
        assert_eq!(run(volume, pv, None), "[]");
        let pv = json!({"metadata": {"name": "pv1"}, "spec": {"accessModes": ["ReadWriteOnce"]}});
        assert_eq!(run(volume, pv, None), "[spec.capacity: Required value, spec: Required value: must specify a volume type]");
    }
}
