//! Defaults of RBAC bindings, StorageClass and PriorityClass.

use super::{each_mut, obj_mut, set_default, str_at};
use serde_json::{json, Value};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// `roleRef.apiGroup` and each subject's `apiGroup` by its kind.
pub(crate) fn binding(obj: &mut Value) {
    if let Some(r) = obj_mut(obj, "roleRef") {
        if str_at(r, "apiGroup").unwrap_or("").is_empty() {
            if let Some(m) = r.as_object_mut() {
                m.insert("apiGroup".into(), json!(RBAC_GROUP));
            }
        }
    }
    each_mut(obj, "subjects", |s| {
        if str_at(s, "apiGroup").unwrap_or("").is_empty() && matches!(str_at(s, "kind"), Some("User" | "Group")) {
            if let Some(m) = s.as_object_mut() {
                m.insert("apiGroup".into(), json!(RBAC_GROUP));
            }
        }
    });
}

pub(crate) fn storage_class(obj: &mut Value) {
    set_default(obj, "reclaimPolicy", json!("Delete"));
    set_default(obj, "volumeBindingMode", json!("Immediate"));
}

pub(crate) fn priority_class(obj: &mut Value) {
    set_default(obj, "preemptionPolicy", json!("PreemptLowerPriority"));
}

#[cfg(test)]
mod tests {
    use crate::admission::default;
    use serde_json::json;

    #[test]
    fn binding_groups() {
        let mut b = json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "User", "name": "a"}, {"kind": "ServiceAccount", "name": "d"}]});
        default("rbac.authorization.k8s.io", "RoleBinding", &mut b);
        assert_eq!(b["roleRef"]["apiGroup"], json!("rbac.authorization.k8s.io"));
        assert_eq!(b["subjects"][0]["apiGroup"], json!("rbac.authorization.k8s.io"));
        assert!(b["subjects"][1].get("apiGroup").is_none());
    }

    #[test]
    fn storage_and_priority_classes() {
        let mut sc = json!({"provisioner": "x"});
        default("storage.k8s.io", "StorageClass", &mut sc);
        assert_eq!(sc, json!({"provisioner": "x", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}));
        let mut pc = json!({"value": 1});
        default("scheduling.k8s.io", "PriorityClass", &mut pc);
        assert_eq!(pc["preemptionPolicy"], json!("PreemptLowerPriority"));
    }
}
