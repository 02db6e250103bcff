//! Pod `volumes` and container `volumeMounts` (upstream `ValidateVolumes`,
//! `ValidateVolumeMounts`).

use super::path::Path;
use super::util::{get, int_of, list, not_found, push_msgs, str_of, string, Errs};
use crate::field_error::FieldError;
use crate::names;
use serde_json::{json, Value};
use std::collections::HashSet;

/// Volume source fields, in the order upstream checks them (the second one
/// found is the one reported as "more than 1 volume type").
pub(crate) const SOURCES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

const HOST_PATH_TYPES: &[&str] =
    &["", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"];

const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// Validates `spec.volumes` and returns the volume names (for mounts).
pub(crate) fn volumes(spec: &Value, path: &Path, errs: &mut Errs) -> HashSet<String> {
    let mut all = HashSet::new();
    for (i, vol) in list(spec, "volumes").iter().enumerate() {
        let idx = path.index(i);
        let name = string(vol, "name");
        source(vol, &idx, errs);
        if name.is_empty() {
            errs.push(FieldError::required(idx.child("name"), ""));
        } else {
            push_msgs(errs, &idx.child("name"), name, names::dns1123_label(name));
        }
        if all.contains(name) {
            errs.push(FieldError::duplicate(idx.child("name"), json!(name)));
        } else {
            all.insert(name.to_string());
        }
    }
    all
}

fn source(vol: &Value, path: &Path, errs: &mut Errs) {
    let mut found = 0;
    for key in SOURCES {
        let Some(src) = get(vol, key) else { continue };
        if found > 0 {
            errs.push(FieldError::forbidden(path.child(key), "may not specify more than 1 volume type"));
            continue;
        }
        found += 1;
        let p = path.child(key);
        match *key {
            "hostPath" => host_path(src, &p, errs),
            "secret" => {
                if string(src, "secretName").is_empty() {
                    errs.push(FieldError::required(p.child("secretName"), ""));
                }
                mode_and_items(src, &p, errs);
            }
            "configMap" => {
                if string(src, "name").is_empty() {
                    errs.push(FieldError::required(p.child("name"), ""));
                }
                mode_and_items(src, &p, errs);
            }
            "persistentVolumeClaim" if string(src, "claimName").is_empty() => {
                errs.push(FieldError::required(p.child("claimName"), ""));
            }
            "emptyDir" => {
                if let Some(limit) = get(src, "sizeLimit") {
                    match super::quantity::Quantity::from_json(limit) {
                        Ok(q) if q.is_negative() => errs.push(FieldError::forbidden(
                            p.child("sizeLimit"),
                            "SizeLimit field must be a valid resource quantity",
                        )),
                        Ok(_) => {}
                        Err(e) => errs.push(FieldError::invalid(p.child("sizeLimit"), limit.clone(), e.to_string())),
                    }
                }
            }
            "nfs" => {
                if string(src, "server").is_empty() {
                    errs.push(FieldError::required(p.child("server"), ""));
                }
                let nfs_path = string(src, "path");
                if nfs_path.is_empty() {
                    errs.push(FieldError::required(p.child("path"), ""));
                } else if !nfs_path.starts_with('/') {
                    errs.push(FieldError::invalid(p.child("path"), json!(nfs_path), "must be an absolute path"));
                }
            }
            _ => {}
        }
    }
    if found == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
}

fn host_path(src: &Value, path: &Path, errs: &mut Errs) {
    let p = string(src, "path");
    if p.is_empty() {
        errs.push(FieldError::required(path.child("path"), ""));
        return;
    }
    no_backsteps(p, &path.child("path"), errs);
    if let Some(t) = str_of(src, "type") {
        if !HOST_PATH_TYPES.contains(&t) {
            errs.push(FieldError::not_supported(path.child("type"), json!(t), HOST_PATH_TYPES));
        }
    }
}

fn mode_and_items(src: &Value, path: &Path, errs: &mut Errs) {
    if let Some(mode) = int_of(src, "defaultMode") {
        if !(0..=0o777).contains(&mode) {
            errs.push(FieldError::invalid(path.child("defaultMode"), json!(mode), FILE_MODE_MSG));
        }
    }
    for (i, item) in list(src, "items").iter().enumerate() {
        let p = path.child("items").index(i);
        if string(item, "key").is_empty() {
            errs.push(FieldError::required(p.child("key"), ""));
        }
        let item_path = string(item, "path");
        if item_path.is_empty() {
            errs.push(FieldError::required(p.child("path"), ""));
        } else {
            local_descending_path(item_path, &p.child("path"), errs);
        }
        if let Some(mode) = int_of(item, "mode") {
            if !(0..=0o777).contains(&mode) {
                errs.push(FieldError::invalid(p.child("mode"), json!(mode), FILE_MODE_MSG));
            }
        }
    }
}

/// `must not contain '..'`
fn no_backsteps(p: &str, path: &Path, errs: &mut Errs) {
    if p.split('/').any(|part| part == "..") {
        errs.push(FieldError::invalid(path, json!(p), "must not contain '..'"));
    }
}

/// A relative path that stays below its base.
fn local_descending_path(p: &str, path: &Path, errs: &mut Errs) {
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, json!(p), "must be a relative path"));
    }
    no_backsteps(p, path, errs);
}

/// Validates a container's `volumeMounts` against the pod's volume names.
pub(crate) fn mounts(container: &Value, volumes: &HashSet<String>, path: &Path, errs: &mut Errs) {
    let mut mount_points = HashSet::new();
    for (i, m) in list(container, "volumeMounts").iter().enumerate() {
        let idx = path.index(i);
        let name = string(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(idx.child("name"), ""));
        }
        if !volumes.contains(name) {
            errs.push(not_found(&idx.child("name"), name));
        }
        let mount_path = string(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(idx.child("mountPath"), ""));
        }
        if !mount_points.insert(mount_path.to_string()) {
            errs.push(FieldError::invalid(idx.child("mountPath"), json!(mount_path), "must be unique"));
        }
        let sub_path = string(m, "subPath");
        if !sub_path.is_empty() {
            // Upstream reports this at `volumeMounts.subPath`, without the index.
            local_descending_path(sub_path, &path.child("subPath"), errs);
        }
        if let Some(prop) = str_of(m, "mountPropagation") {
            const MODES: &[&str] = &["Bidirectional", "HostToContainer", "None"];
            if !MODES.contains(&prop) {
                errs.push(FieldError::not_supported(idx.child("mountPropagation"), json!(prop), MODES));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_error::aggregate;

    fn vols(spec: Value) -> String {
        let mut errs = Vec::new();
        volumes(&spec, &Path::root("spec").child("volumes"), &mut errs);
        aggregate(&errs)
    }

    #[test]
    fn volume_names_and_sources() {
        assert_eq!(vols(json!({"volumes": [{"name": "a", "emptyDir": {}}]})), "[]");
        assert_eq!(
            vols(json!({"volumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]})),
            "spec.volumes[1].name: Duplicate value: \"a\""
        );
        assert_eq!(vols(json!({"volumes": [{"name": "a"}]})), "spec.volumes[0]: Required value: must specify a volume type");
        assert_eq!(
            vols(json!({"volumes": [{"name": "a", "emptyDir": {}, "hostPath": {"path": "/x"}}]})),
            "spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"
        );
        assert_eq!(vols(json!({"volumes": [{"name": "a", "secret": {}}]})), "spec.volumes[0].secret.secretName: Required value");
        assert!(vols(json!({"volumes": [{"name": "A_b", "emptyDir": {}}]})).starts_with("spec.volumes[0].name: Invalid value: \"A_b\""));
    }

    #[test]
    fn mounts_must_reference_volumes() {
        let vols: HashSet<String> = ["data".to_string()].into_iter().collect();
        let mut errs = Vec::new();
        let c = json!({"volumeMounts": [{"name": "x", "mountPath": "/x"}, {"name": "data", "mountPath": "/x"}]});
        mounts(&c, &vols, &Path::root("spec").child("containers").index(0).child("volumeMounts"), &mut errs);
        assert_eq!(
            aggregate(&errs),
            "[spec.containers[0].volumeMounts[0].name: Not found: \"x\", spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/x\": must be unique]"
        );
    }
}
