//! `apps/v1` defaults (upstream `SetDefaults_Deployment`, `_ReplicaSet`,
//! `_DaemonSet`, `_StatefulSet`).

use super::pod::template;
use super::{each_mut, obj_mut, set_default, str_at};
use serde_json::{json, Value};

fn spec_template(spec: &mut Value) {
    if let Some(t) = obj_mut(spec, "template") {
        template(t);
    }
}

pub(crate) fn deployment(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else { return };
    set_default(spec, "replicas", json!(1));
    if let Some(strategy) = obj_mut(spec, "strategy") {
        set_default(strategy, "type", json!("RollingUpdate"));
        if str_at(strategy, "type") == Some("RollingUpdate") {
            if let Some(r) = obj_mut(strategy, "rollingUpdate") {
                set_default(r, "maxUnavailable", json!("25%"));
                set_default(r, "maxSurge", json!("25%"));
            }
        }
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    spec_template(spec);
}

pub(crate) fn replica_set(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else { return };
    set_default(spec, "replicas", json!(1));
    spec_template(spec);
}

pub(crate) fn daemon_set(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else { return };
    if let Some(strategy) = obj_mut(spec, "updateStrategy") {
        set_default(strategy, "type", json!("RollingUpdate"));
        if str_at(strategy, "type") == Some("RollingUpdate") {
            if let Some(r) = obj_mut(strategy, "rollingUpdate") {
                set_default(r, "maxUnavailable", json!(1));
                set_default(r, "maxSurge", json!(0));
            }
        }
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    spec_template(spec);
}

pub(crate) fn stateful_set(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else { return };
    set_default(spec, "podManagementPolicy", json!("OrderedReady"));
    if let Some(strategy) = obj_mut(spec, "updateStrategy") {
        if str_at(strategy, "type").unwrap_or("").is_empty() {
            if let Some(m) = strategy.as_object_mut() {
                m.insert("type".into(), json!("RollingUpdate"));
            }
            set_default(strategy, "rollingUpdate", json!({}));
        }
        if str_at(strategy, "type") == Some("RollingUpdate") {
            if let Some(r) = strategy.get_mut("rollingUpdate").filter(|r| r.is_object()) {
                set_default(r, "partition", json!(0));
            }
        }
    }
    if let Some(policy) = obj_mut(spec, "persistentVolumeClaimRetentionPolicy") {
        set_default(policy, "whenDeleted", json!("Retain"));
        set_default(policy, "whenScaled", json!("Retain"));
    }
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    spec_template(spec);
    each_mut(spec, "volumeClaimTemplates", super::core::persistent_volume_claim);
}

#[cfg(test)]
mod tests {
    use crate::admission::default;
    use serde_json::json;

    #[test]
    fn minimal_deployment_is_defaulted_like_upstream() {
        let mut d = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
                }
            }
        });
        default("apps", "Deployment", &mut d);
        assert_eq!(
            d,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {
                    "progressDeadlineSeconds": 600,
                    "replicas": 1,
                    "revisionHistoryLimit": 10,
                    "selector": {"matchLabels": {"app": "web"}},
                    "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
                    "template": {
                        "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                        "spec": {
                            "containers": [{
                                "image": "nginx",
                                "imagePullPolicy": "Always",
                                "name": "nginx",
                                "resources": {},
                                "terminationMessagePath": "/dev/termination-log",
                                "terminationMessagePolicy": "File"
                            }],
                            "dnsPolicy": "ClusterFirst",
                            "restartPolicy": "Always",
                            "schedulerName": "default-scheduler",
                            "securityContext": {},
                            "terminationGracePeriodSeconds": 30
                        }
                    }
                }
            })
        );
    }

    #[test]
    fn replica_set_defaults() {
        let mut rs = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:1"}]}}}});
        default("apps", "ReplicaSet", &mut rs);
        assert_eq!(rs["spec"]["replicas"], json!(1));
        assert_eq!(rs["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], json!("IfNotPresent"));
        assert!(rs["spec"].get("strategy").is_none());
    }

    #[test]
    fn recreate_gets_no_rolling_update() {
        let mut d = json!({"spec": {"strategy": {"type": "Recreate"}}});
        default("apps", "Deployment", &mut d);
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn daemon_set_and_stateful_set() {
        let mut ds = json!({"spec": {}});
        default("apps", "DaemonSet", &mut ds);
        assert_eq!(ds["spec"]["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}));
        assert_eq!(ds["spec"]["revisionHistoryLimit"], json!(10));

        let mut sts = json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}]}});
        default("apps", "StatefulSet", &mut sts);
        let spec = &sts["spec"];
        assert_eq!(spec["podManagementPolicy"], json!("OrderedReady"));
        assert_eq!(spec["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
        assert_eq!(spec["persistentVolumeClaimRetentionPolicy"], json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
        assert_eq!(spec["replicas"], json!(1));
        assert_eq!(spec["revisionHistoryLimit"], json!(10));
        assert_eq!(spec["volumeClaimTemplates"][0]["spec"]["volumeMode"], json!("Filesystem"));
        assert_eq!(spec["volumeClaimTemplates"][0]["status"], json!({"phase": "Pending"}));

        let mut sts = json!({"spec": {"updateStrategy": {"type": "OnDelete"}}});
        default("apps", "StatefulSet", &mut sts);
        assert_eq!(sts["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
    }
}
