//! The ServiceAccount admission plugin's changes to a new Pod, given the
//! ServiceAccount it runs as (the lookup is the API server's:
//! `crate::auth::pod_admission`).
//!
//! Names the service account (`default` when none is given), mounts the
//! API credentials (a projected `kube-api-access-XXXXX` volume: a bound
//! token, the cluster CA and the namespace) read-only at
//! [`TOKEN_MOUNT_PATH`] in every container unless automounting is off on
//! the pod or the service account, and copies the service account's image
//! pull secrets to a pod that has none.

use serde_json::{json, Map, Value};

pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
pub const VOLUME_PREFIX: &str = "kube-api-access-";
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
/// Static pods mirrored by a kubelet carry this and are left alone.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Token lifetime asked for in the projected volume.
pub const PROJECTED_TOKEN_SECONDS: i64 = 3607;

/// The service account a new pod names (`spec.serviceAccountName`, or
/// the deprecated `spec.serviceAccount`), `default` when neither is set.
pub fn service_account_name(pod: &Value) -> String {
    let spec = pod.get("spec");
    let get = |k: &str| spec.and_then(|s| s.get(k)).and_then(Value::as_str).filter(|s| !s.is_empty());
    get("serviceAccountName").or_else(|| get("serviceAccount")).unwrap_or(DEFAULT_SERVICE_ACCOUNT).to_string()
}

pub fn is_mirror_pod(pod: &Value) -> bool {
    pod.pointer("/metadata/annotations").and_then(Value::as_object).is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION))
}

/// The projected volume upstream's plugin adds.
pub fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": PROJECTED_TOKEN_SECONDS, "path": "token"}},
                {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    })
}

/// Pod's `automountServiceAccountToken` wins, then the service account's; on by default.
fn should_automount(pod: &Value, sa: &Value) -> bool {
    pod.pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| sa.get("automountServiceAccountToken").and_then(Value::as_bool))
        .unwrap_or(true)
}

/// Apply the plugin to a new pod running as `sa`. `suffix` makes the
/// volume name (five random characters upstream).
pub fn admit_pod(pod: &mut Value, sa: &Value, suffix: &str) {
    let name = service_account_name(pod);
    let automount = should_automount(pod, sa);
    if !pod.get("spec").is_some_and(Value::is_object) {
        pod["spec"] = json!({});
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return };
    spec.insert("serviceAccountName".into(), json!(name));
    spec.insert("serviceAccount".into(), json!(name));
    if automount {
        mount_token(spec, suffix);
    }
    let has_pull_secrets = spec.get("imagePullSecrets").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    if !has_pull_secrets {
        let from_sa: Vec<Value> = sa
            .get("imagePullSecrets")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|s| json!({"name": s.get("name").cloned().unwrap_or(json!(""))})).collect())
            .unwrap_or_default();
        if !from_sa.is_empty() {
            spec.insert("imagePullSecrets".into(), Value::Array(from_sa));
        }
    }
}

fn mount_token(spec: &mut Map<String, Value>, suffix: &str) {
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .and_then(|vols| vols.iter().filter_map(|v| v.get("name").and_then(Value::as_str)).find(|n| n.starts_with(VOLUME_PREFIX)))
        .map(str::to_string);
    let volume_name = existing.clone().unwrap_or_else(|| format!("{VOLUME_PREFIX}{suffix}"));
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needed = false;
    for key in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(key).and_then(Value::as_array_mut) else { continue };
        for c in containers.iter_mut().filter(|c| c.is_object()) {
            let already = c
                .get("volumeMounts")
                .and_then(Value::as_array)
                .is_some_and(|ms| ms.iter().any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH)));
            if already {
                continue;
            }
            if !c.get("volumeMounts").is_some_and(Value::is_array) {
                c["volumeMounts"] = json!([]);
            }
            if let Some(ms) = c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                ms.push(mount.clone());
                needed = true;
            }
        }
    }
    if existing.is_none() && needed {
        if !spec.get("volumes").is_some_and(Value::is_array) {
            spec.insert("volumes".into(), json!([]));
        }
        if let Some(vols) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
            vols.push(token_volume(&volume_name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": spec})
    }

    #[test]
    fn defaults_the_account_and_mounts_the_token_everywhere() {
        let mut p = pod(json!({"initContainers": [{"name": "i"}], "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}]}));
        assert_eq!(service_account_name(&p), "default");
        admit_pod(&mut p, &json!({}), "abcde");
        assert_eq!(p["spec"]["serviceAccountName"], "default");
        assert_eq!(p["spec"]["serviceAccount"], "default");
        assert_eq!(p["spec"]["volumes"], json!([token_volume("kube-api-access-abcde")]));
        let mount = json!({"name": "kube-api-access-abcde", "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
        assert_eq!(p["spec"]["initContainers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(p["spec"]["containers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(p["spec"]["containers"][1]["volumeMounts"][1], mount);
        assert_eq!(p["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"], 3607);
    }

    #[test]
    fn automount_off_on_pod_or_account() {
        let mut p = pod(json!({"serviceAccountName": "builder", "containers": [{"name": "a"}]}));
        admit_pod(&mut p, &json!({"automountServiceAccountToken": false}), "abcde");
        assert_eq!(p["spec"]["serviceAccount"], "builder");
        assert!(p["spec"].get("volumes").is_none());
        assert!(p["spec"]["containers"][0].get("volumeMounts").is_none());
        // The pod's own setting wins over the account's.
        let mut p = pod(json!({"automountServiceAccountToken": true, "containers": [{"name": "a"}]}));
        admit_pod(&mut p, &json!({"automountServiceAccountToken": false}), "abcde");
        assert_eq!(p["spec"]["volumes"].as_array().map(Vec::len), Some(1));
        let mut p = pod(json!({"automountServiceAccountToken": false, "containers": [{"name": "a"}]}));
        admit_pod(&mut p, &json!({}), "abcde");
        assert!(p["spec"].get("volumes").is_none());
    }

    #[test]
    fn existing_mounts_and_volumes_are_kept() {
        let mut p = pod(json!({
            "serviceAccount": "legacy",
            "containers": [{"name": "a", "volumeMounts": [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]}],
        }));
        admit_pod(&mut p, &json!({"imagePullSecrets": [{"name": "reg"}]}), "abcde");
        assert_eq!(p["spec"]["serviceAccountName"], "legacy");
        assert!(p["spec"].get("volumes").is_none(), "no container needs the volume");
        assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "reg"}]));
        let mut p = pod(json!({"imagePullSecrets": [{"name": "own"}], "volumes": [{"name": "kube-api-access-zzzzz", "emptyDir": {}}], "containers": [{"name": "a"}]}));
        admit_pod(&mut p, &json!({"imagePullSecrets": [{"name": "reg"}]}), "abcde");
        assert_eq!(p["spec"]["volumes"].as_array().map(Vec::len), Some(1));
        assert_eq!(p["spec"]["containers"][0]["volumeMounts"][0]["name"], "kube-api-access-zzzzz");
        assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "own"}]));
    }
}
