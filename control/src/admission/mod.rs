//! Built-in admission: defaulting and validation of the common built-in
//! Kubernetes kinds, on `serde_json::Value` objects, as the upstream API
//! server does them.
//!
//! Owns: upstream's decode-time defaults (`SetDefaults_*`) and the few
//! create-time fill-ins users see on every object ([`default`]); the
//! field-level validation of create and update with upstream's field paths
//! and messages ([`validate`]); resource quantities ([`parse_quantity`]) and
//! cron schedules ([`parse_cron`]) for the scheduler and CronJob controller.
//! Must not: read or write the store, allocate anything (names from
//! `generateName`, uids, cluster IPs, node ports), check authorization, or
//! validate against OpenAPI schemas — a missing or mistyped field reads as
//! its zero value here, never as a panic.

mod apps;
mod batch;
mod container;
mod core;
mod cron;
mod defaults;
mod gorepr;
mod meta;
mod other;
mod path;
mod persistent_volume;
mod pod;
mod pod_update;
pub mod plugins;
mod quantity;
mod rbac;
mod service;
pub mod service_account;
mod util;
mod volume;
mod workload;

pub use cron::{parse_cron, CronError, CronSchedule};
pub use quantity::{parse_quantity, Quantity, QuantityError, QuantityFormat};

use crate::field_error::FieldError;
use serde_json::Value;

/// Fills in upstream's defaults for an object of `group` (`""` for core)
/// and `kind`. Call it on every object decoded from a client, before
/// [`validate`]. A Job's generated selector needs `metadata.uid` set first.
/// A Namespace or Pod without `status.phase` is treated as new (it gets its
/// initial phase, and a Namespace the `kubernetes` finalizer).
pub fn default(group: &str, kind: &str, obj: &mut Value) {
    defaults::apply(group, kind, obj);
}

/// Validates an object about to be created (`old` is `None`) or to replace
/// `old`. Both should have been defaulted. Unknown kinds get the metadata
/// checks only (name as a DNS-1123 subdomain).
pub fn validate(group: &str, kind: &str, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    type Validator = fn(&Value, Option<&Value>, &mut util::Errs);
    let validator: Validator = match (group, kind) {
        ("", "Pod") => core::pod,
        ("", "PodTemplate") => core::pod_template,
        ("", "Service") => service::service,
        ("", "ConfigMap") => core::config_map,
        ("", "Secret") => core::secret,
        ("", "Namespace") => core::namespace,
        ("", "Node") => core::node,
        ("", "PersistentVolume") => persistent_volume::volume,
        ("", "PersistentVolumeClaim") => persistent_volume::claim,
        ("apps", "Deployment") => apps::deployment,
        ("apps", "ReplicaSet") => apps::replica_set,
        ("apps", "DaemonSet") => apps::daemon_set,
        ("apps", "StatefulSet") => apps::stateful_set,
        ("batch", "Job") => batch::job,
        ("batch", "CronJob") => batch::cron_job,
        ("rbac.authorization.k8s.io", "Role") => rbac::role,
        ("rbac.authorization.k8s.io", "ClusterRole") => rbac::cluster_role,
        ("rbac.authorization.k8s.io", "RoleBinding") => rbac::role_binding,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => rbac::cluster_role_binding,
        ("coordination.k8s.io", "Lease") => other::lease,
        ("networking.k8s.io", "Ingress") => other::ingress,
        ("networking.k8s.io", "IngressClass") => other::ingress_class,
        ("policy", "PodDisruptionBudget") => other::pod_disruption_budget,
        ("scheduling.k8s.io", "PriorityClass") => other::priority_class,
        ("storage.k8s.io", "StorageClass") => other::storage_class,
        _ => |obj: &Value, old: Option<&Value>, errs: &mut util::Errs| meta::object(obj, old, meta::SUBDOMAIN, errs),
    };
    validator(obj, old, &mut errs);
    // Upstream's generic create path checks the name is a usable URL path
    // segment once the kind's own validation has passed.
    if old.is_none() && errs.is_empty() {
        meta::path_segment(obj, &mut errs);
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_error::aggregate;
    use serde_json::json;

    #[test]
    fn unknown_kinds_get_metadata_checks() {
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}});
        assert_eq!(
            aggregate(&validate("example.com", "Widget", &obj, None)),
            "metadata.name: Required value: name or generateName is required"
        );
        let obj = json!({"metadata": {"name": "ok", "labels": {"a": "b"}}});
        assert!(validate("example.com", "Widget", &obj, None).is_empty());
    }

    #[test]
    fn rbac_names_are_path_segments_only() {
        let role = json!({"metadata": {"name": "a/b"}, "rules": []});
        assert_eq!(aggregate(&validate("rbac.authorization.k8s.io", "Role", &role, None)), "metadata.name: Invalid value: \"a/b\": may not contain '/'");
    }

    #[test]
    fn service_names_are_dns1035_labels() {
        let mut svc = json!({"metadata": {"name": "1web"}, "spec": {"ports": [{"port": 80}]}});
        default("", "Service", &mut svc);
        let out = aggregate(&validate("", "Service", &svc, None));
        assert!(out.starts_with("metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters"), "{out}");
    }

    #[test]
    fn malformed_objects_do_not_panic() {
        let weird = [json!(null), json!("x"), json!([1]), json!({"metadata": 3, "spec": "no"}), json!({"spec": {"template": 5, "containers": {"a": 1}}})];
        let kinds = [
            ("", "Pod"), ("", "Service"), ("", "ConfigMap"), ("", "Secret"), ("", "Namespace"), ("", "Node"),
            ("", "PersistentVolume"), ("", "PersistentVolumeClaim"), ("", "PodTemplate"), ("apps", "Deployment"),
            ("apps", "ReplicaSet"), ("apps", "DaemonSet"), ("apps", "StatefulSet"), ("batch", "Job"), ("batch", "CronJob"),
            ("rbac.authorization.k8s.io", "RoleBinding"), ("networking.k8s.io", "Ingress"), ("policy", "PodDisruptionBudget"),
            ("scheduling.k8s.io", "PriorityClass"), ("storage.k8s.io", "StorageClass"), ("coordination.k8s.io", "Lease"),
        ];
        for (group, kind) in kinds {
            for w in &weird {
                let mut obj = w.clone();
                default(group, kind, &mut obj);
                let _ = validate(group, kind, &obj, None);
                let _ = validate(group, kind, &obj, Some(w));
            }
        }
    }
}
