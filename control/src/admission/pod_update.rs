//! What may change when a Pod is updated (upstream `ValidatePodUpdate`):
//! container images, `activeDeadlineSeconds` (only down), added
//! tolerations, a negative grace period set to 1, removed scheduling gates.

use super::path::Path;
use super::util::{get, int_of, list, semantic_eq, Errs};
use crate::field_error::FieldError;
use serde_json::{json, Map, Value};

const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Update rules for a pod's spec. The new spec has already been validated
/// on its own.
pub(crate) fn validate(new: &Value, old: &Value, errs: &mut Errs) {
    let path = Path::root("spec");
    let new_spec = new.get("spec").unwrap_or(&Value::Null);
    let old_spec = old.get("spec").unwrap_or(&Value::Null);
    for key in ["containers", "initContainers"] {
        let (n, o) = (list(new_spec, key), list(old_spec, key));
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(path.child(key), "pod updates may not add or remove containers"));
            return;
        }
        for (i, c) in n.iter().enumerate() {
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            if image.trim() != image {
                errs.push(FieldError::invalid(path.child(key).index(i).child("image"), json!(image), "must not have leading or trailing whitespace"));
            }
        }
    }
    if !active_deadline(new_spec, old_spec, &path, errs) {
        return;
    }
    only_added_tolerations(new_spec, old_spec, &path.child("tolerations"), errs);

    let mut munged = new_spec.clone();
    let Some(m) = munged.as_object_mut() else { return };
    for key in ["containers", "initContainers"] {
        if let Some(Value::Array(cs)) = m.get_mut(key) {
            for (c, oc) in cs.iter_mut().zip(list(old_spec, key)) {
                if let (Some(c), Some(image)) = (c.as_object_mut(), oc.get("image")) {
                    c.insert("image".into(), image.clone());
                }
            }
        }
    }
    copy_from_old(m, old_spec, "activeDeadlineSeconds");
    // Toleration changes were judged above.
    copy_from_old(m, old_spec, "tolerations");
    let old_grace = int_of(old_spec, "terminationGracePeriodSeconds");
    if old_grace.is_some_and(|g| g < 0) && int_of(new_spec, "terminationGracePeriodSeconds") == Some(1) {
        copy_from_old(m, old_spec, "terminationGracePeriodSeconds");
    }
    let old_gates = list(old_spec, "schedulingGates");
    if m.get("schedulingGates").and_then(Value::as_array).is_none_or(|gates| gates.iter().all(|g| old_gates.contains(g))) {
        copy_from_old(m, old_spec, "schedulingGates");
    }
    if !semantic_eq(Some(&munged), Some(old_spec)) {
        errs.push(FieldError::forbidden(
            &path,
            format!("pod updates may not change fields other than {UPDATABLE}\n{}", diff(old_spec, &munged)),
        ));
    }
}

fn copy_from_old(m: &mut Map<String, Value>, old_spec: &Value, key: &str) {
    match get(old_spec, key) {
        Some(v) => {
            m.insert(key.to_string(), v.clone());
        }
        None => {
            m.remove(key);
        }
    }
}

/// Returns false when checking should stop (as upstream returns early).
fn active_deadline(new_spec: &Value, old_spec: &Value, path: &Path, errs: &mut Errs) -> bool {
    let p = path.child("activeDeadlineSeconds");
    match (int_of(new_spec, "activeDeadlineSeconds"), int_of(old_spec, "activeDeadlineSeconds")) {
        (Some(n), old) => {
            if !(0..=i64::from(i32::MAX)).contains(&n) {
                errs.push(FieldError::invalid(&p, json!(n), "must be between 0 and 2147483647, inclusive"));
                return false;
            }
            if old.is_some_and(|o| o < n) {
                errs.push(FieldError::invalid(&p, json!(n), "must be less than or equal to previous value"));
                return false;
            }
        }
        (None, Some(_)) => {
            errs.push(FieldError::invalid(&p, Value::Null, "must not update from a positive integer to nil value"));
        }
        (None, None) => {}
    }
    true
}

/// Every old toleration must still be there (its `tolerationSeconds` may
/// change).
fn only_added_tolerations(new_spec: &Value, old_spec: &Value, path: &Path, errs: &mut Errs) {
    let new_t = list(new_spec, "tolerations");
    for old in list(old_spec, "tolerations") {
        let found = new_t.iter().any(|n| {
            let mut o = old.clone();
            if let Some(o) = o.as_object_mut() {
                match get(n, "tolerationSeconds") {
                    Some(s) => o.insert("tolerationSeconds".into(), s.clone()),
                    None => o.remove("tolerationSeconds"),
                };
            }
            semantic_eq(Some(&o), Some(n))
        });
        if !found {
            errs.push(FieldError::forbidden(path, "existing toleration can not be modified except its tolerationSeconds"));
            return;
        }
    }
    // The tolerations themselves were checked with the rest of the new spec.
}

/// A short account of what differs, in the spirit of upstream's diff.
fn diff(old: &Value, new: &Value) -> String {
    let mut out = String::from("  core.PodSpec{\n");
    let mut keys: Vec<&String> = Vec::new();
    for m in [old.as_object(), new.as_object()].into_iter().flatten() {
        for k in m.keys() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    for k in keys {
        let (o, n) = (get(old, k), get(new, k));
        if !semantic_eq(o, n) {
            let show = |v: Option<&Value>| v.map(Value::to_string).unwrap_or_else(|| "nil".to_string());
            out.push_str(&format!("- \t{k}: {},\n+ \t{k}: {},\n", show(o), show(n)));
        }
    }
    out.push_str("  }\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_error::aggregate;

    fn pod(spec: Value) -> Value {
        json!({"spec": spec})
    }

    fn base() -> Value {
        json!({
            "containers": [{"name": "a", "image": "nginx:1", "imagePullPolicy": "IfNotPresent"}],
            "restartPolicy": "Always",
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "terminationGracePeriodSeconds": 30
        })
    }

    fn check(new: Value) -> String {
        let mut errs = Vec::new();
        validate(&pod(new), &pod(base()), &mut errs);
        aggregate(&errs)
    }

    #[test]
    fn image_and_added_tolerations_may_change() {
        let mut s = base();
        s["containers"][0]["image"] = json!("nginx:2");
        s["tolerations"][0]["tolerationSeconds"] = json!(10);
        s["tolerations"] = json!([s["tolerations"][0].clone(), {"key": "other", "operator": "Exists"}]);
        s["activeDeadlineSeconds"] = json!(100);
        assert_eq!(check(s), "[]");
    }

    #[test]
    fn other_changes_are_forbidden() {
        let mut s = base();
        s["restartPolicy"] = json!("Never");
        let out = check(s);
        assert!(out.starts_with(&format!("spec: Forbidden: pod updates may not change fields other than {UPDATABLE}\n")), "{out}");
        assert!(out.contains("restartPolicy: \"Always\""), "{out}");
    }

    #[test]
    fn containers_cannot_be_added_and_tolerations_not_removed() {
        let mut s = base();
        s["containers"] = json!([s["containers"][0].clone(), {"name": "b", "image": "x"}]);
        assert_eq!(check(s), "spec.containers: Forbidden: pod updates may not add or remove containers");
        let mut s = base();
        s["tolerations"] = json!([]);
        assert!(check(s).starts_with("spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"));
    }

    #[test]
    fn active_deadline_only_decreases() {
        let mut old = base();
        old["activeDeadlineSeconds"] = json!(10);
        let mut new = base();
        new["activeDeadlineSeconds"] = json!(20);
        let mut errs = Vec::new();
        validate(&pod(new), &pod(old), &mut errs);
        assert_eq!(aggregate(&errs), "spec.activeDeadlineSeconds: Invalid value: 20: must be less than or equal to previous value");
    }
}
