//! Mutating admission plugins of pod creation, as upstream's
//! `DefaultTolerationSeconds` and `Priority` plugins: the decisions only,
//! on `serde_json::Value` pods.
//!
//! Owns: the default `not-ready`/`unreachable` NoExecute tolerations; the
//! resolution of `spec.priorityClassName` into `spec.priority` and
//! `spec.preemptionPolicy` (and the refusals upstream gives); keeping both
//! on pod updates; the "only one default PriorityClass" rule.
//! Must not: read the store — the caller (`api::plugins`) hands in the
//! PriorityClasses it found.

use super::util::{bool_of, int_of, list, str_of};
use serde_json::{json, Value};

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// `DefaultTolerationSeconds`: give a pod about to be created tolerations
/// of the not-ready and unreachable NoExecute taints for the configured
/// seconds, unless it already tolerates them (a toleration with an empty
/// key or effect counts, whatever its operator).
pub fn default_tolerations(pod: &mut Value, not_ready_seconds: i64, unreachable_seconds: i64) {
    let Some(spec) = pod.get_mut("spec").filter(|s| s.is_object()) else { return };
    let covers = |t: &Value, key: &str| {
        let k = str_of(t, "key").unwrap_or("");
        let e = str_of(t, "effect").unwrap_or("");
        (k.is_empty() || k == key) && (e.is_empty() || e == "NoExecute")
    };
    let existing = list(spec, "tolerations");
    let has_not_ready = existing.iter().any(|t| covers(t, TAINT_NOT_READY));
    let has_unreachable = existing.iter().any(|t| covers(t, TAINT_UNREACHABLE));
    let mut add = Vec::new();
    if !has_not_ready {
        add.push(json!({"key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": not_ready_seconds}));
    }
    if !has_unreachable {
        add.push(json!({"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": unreachable_seconds}));
    }
    if add.is_empty() {
        return;
    }
    match spec.get_mut("tolerations").and_then(Value::as_array_mut) {
        Some(a) => a.extend(add),
        None => spec["tolerations"] = Value::Array(add),
    }
}

/// The classes the API server creates at start and never lets go.
pub fn is_system_priority_class(name: &str) -> bool {
    super::other::SYSTEM_PRIORITY_CLASSES.iter().any(|(n, _)| *n == name)
}

/// What a pod takes from a PriorityClass.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorityClassInfo {
    pub name: String,
    pub value: i64,
    pub preemption_policy: Option<String>,
    pub global_default: bool,
}

impl PriorityClassInfo {
    pub fn from_object(pc: &Value) -> Option<Self> {
        Some(Self {
            name: pc.pointer("/metadata/name").and_then(Value::as_str)?.to_string(),
            value: int_of(pc, "value").unwrap_or(0),
            preemption_policy: str_of(pc, "preemptionPolicy").map(str::to_string),
            global_default: bool_of(pc, "globalDefault").unwrap_or(false),
        })
    }
}

/// The global default class; with several (a race between writers) the
/// one of lowest value, as upstream picks.
pub fn default_class(classes: &[PriorityClassInfo]) -> Option<&PriorityClassInfo> {
    classes.iter().filter(|c| c.global_default).min_by_key(|c| c.value)
}

/// Why `Priority` refuses a pod: the text after `pods "x" is forbidden: `.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PriorityError {
    #[error("no PriorityClass with name {0} was found")]
    UnknownClass(String),
    #[error("the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {computed} from the given PriorityClass name")]
    PriorityGiven { given: i64, computed: i64 },
    #[error("the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {computed} from the given PriorityClass name")]
    PolicyGiven { given: String, computed: String },
}

/// `Priority` on pod creation: resolve `spec.priorityClassName` (or the
/// global default class; priority 0 and PreemptLowerPriority without one)
/// into `spec.priority` and `spec.preemptionPolicy`. A pod that sets either
/// to something else than its class gives is refused.
pub fn resolve_priority(pod: &mut Value, classes: &[PriorityClassInfo]) -> Result<(), PriorityError> {
    let Some(spec) = pod.get_mut("spec").filter(|s| s.is_object()) else { return Ok(()) };
    let class_name = str_of(spec, "priorityClassName").unwrap_or("").to_string();
    let (value, policy) = if class_name.is_empty() {
        match default_class(classes) {
            Some(d) => {
                spec["priorityClassName"] = json!(d.name);
                (d.value, d.preemption_policy.clone())
            }
            None => (0, Some("PreemptLowerPriority".to_string())),
        }
    } else {
        match classes.iter().find(|c| c.name == class_name) {
            Some(c) => (c.value, c.preemption_policy.clone()),
            None => return Err(PriorityError::UnknownClass(class_name)),
        }
    };
    if let Some(given) = int_of(spec, "priority") {
        if given != value {
            return Err(PriorityError::PriorityGiven { given, computed: value });
        }
    }
    spec["priority"] = json!(value);
    if let Some(policy) = policy {
        if let Some(given) = str_of(spec, "preemptionPolicy") {
            if given != policy {
                return Err(PriorityError::PolicyGiven { given: given.to_string(), computed: policy });
            }
        }
        spec["preemptionPolicy"] = json!(policy);
    }
    Ok(())
}

/// `Priority` on pod update: what admission set at creation stays when the
/// new object leaves it out (validation refuses any other change).
pub fn keep_priority(old: &Value, new: &mut Value) {
    let Some(old_spec) = old.get("spec") else { return };
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else { return };
    for key in ["priority", "preemptionPolicy"] {
        let missing = spec.get(key).map(Value::is_null).unwrap_or(true);
        if missing {
            if let Some(v) = old_spec.get(key).filter(|v| !v.is_null()) {
                spec.insert(key.into(), v.clone());
            }
        }
    }
}

/// `Priority` on PriorityClass create/update: a second global default is
/// refused (`PriorityClass <other> is already marked as default. Only one
/// default can exist`).
pub fn check_single_default(pc: &Value, classes: &[PriorityClassInfo]) -> Result<(), String> {
    if bool_of(pc, "globalDefault") != Some(true) {
        return Ok(());
    }
    let name = pc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    match classes.iter().find(|c| c.global_default && c.name != name) {
        Some(other) => Err(format!("PriorityClass {} is already marked as default. Only one default can exist", other.name)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, value: i64, default: bool) -> PriorityClassInfo {
        PriorityClassInfo { name: name.into(), value, preemption_policy: Some("PreemptLowerPriority".into()), global_default: default }
    }

    #[test]
    fn default_tolerations_are_added_once() {
        let mut pod = json!({"spec": {"containers": []}});
        default_tolerations(&mut pod, 300, 200);
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 200},
            ])
        );
        let before = pod.clone();
        default_tolerations(&mut pod, 300, 200);
        assert_eq!(pod, before);
    }

    #[test]
    fn existing_tolerations_count() {
        // Tolerates everything: nothing added.
        let mut pod = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        default_tolerations(&mut pod, 300, 300);
        assert_eq!(list(&pod["spec"], "tolerations").len(), 1);
        // Own unreachable toleration (any effect): only not-ready is added.
        let mut pod = json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}]}});
        default_tolerations(&mut pod, 300, 300);
        let t = list(&pod["spec"], "tolerations");
        assert_eq!(t.len(), 2);
        assert_eq!(t[1]["key"], "node.kubernetes.io/not-ready");
        // A NoSchedule toleration of the same key does not count.
        let mut pod = json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"}]}});
        default_tolerations(&mut pod, 300, 300);
        assert_eq!(list(&pod["spec"], "tolerations").len(), 3);
    }

    #[test]
    fn priority_from_class_default_or_zero() {
        let classes = vec![class("high", 1000, false)];
        let mut pod = json!({"spec": {"priorityClassName": "high"}});
        resolve_priority(&mut pod, &classes).expect("known class");
        assert_eq!(pod["spec"]["priority"], 1000);
        assert_eq!(pod["spec"]["preemptionPolicy"], "PreemptLowerPriority");

        let mut pod = json!({"spec": {}});
        resolve_priority(&mut pod, &classes).expect("no class");
        assert_eq!(pod["spec"], json!({"priority": 0, "preemptionPolicy": "PreemptLowerPriority"}));

        let classes = vec![class("high", 1000, false), class("std", 10, true)];
        let mut pod = json!({"spec": {}});
        resolve_priority(&mut pod, &classes).expect("default class");
        assert_eq!(pod["spec"], json!({"priorityClassName": "std", "priority": 10, "preemptionPolicy": "PreemptLowerPriority"}));
    }

    #[test]
    fn priority_refusals_use_upstream_words() {
        let mut pod = json!({"spec": {"priorityClassName": "foo"}});
        assert_eq!(resolve_priority(&mut pod, &[]).err().map(|e| e.to_string()).as_deref(), Some("no PriorityClass with name foo was found"));
        let mut pod = json!({"spec": {"priority": 5}});
        assert_eq!(resolve_priority(&mut pod, &[]).err().map(|e| e.to_string()).as_deref(), Some("the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name"));
        // The same value as computed is accepted.
        let mut pod = json!({"spec": {"priority": 0}});
        assert!(resolve_priority(&mut pod, &[]).is_ok());
        let mut never = class("never", 7, false);
        never.preemption_policy = Some("Never".into());
        let mut pod = json!({"spec": {"priorityClassName": "never", "preemptionPolicy": "PreemptLowerPriority"}});
        assert_eq!(
            resolve_priority(&mut pod, &[never.clone()]).err().map(|e| e.to_string()).as_deref(),
            Some("the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided in pod spec; priority admission controller computed Never from the given PriorityClass name")
        );
        let mut pod = json!({"spec": {"priorityClassName": "never"}});
        resolve_priority(&mut pod, &[never]).expect("class with Never");
        assert_eq!(pod["spec"]["preemptionPolicy"], "Never");
    }

    #[test]
    fn updates_keep_what_creation_set() {
        let old = json!({"spec": {"priority": 1000, "preemptionPolicy": "Never"}});
        let mut new = json!({"spec": {"containers": []}});
        keep_priority(&old, &mut new);
        assert_eq!(new["spec"]["priority"], 1000);
        assert_eq!(new["spec"]["preemptionPolicy"], "Never");
        let mut changed = json!({"spec": {"priority": 3}});
        keep_priority(&old, &mut changed);
        assert_eq!(changed["spec"]["priority"], 3);
    }

    #[test]
    fn one_default_class_only() {
        let classes = vec![class("a", 1, true)];
        let b = json!({"metadata": {"name": "b"}, "value": 2, "globalDefault": true});
        assert_eq!(check_single_default(&b, &classes).err().as_deref(), Some("PriorityClass a is already marked as default. Only one default can exist"));
        let a = json!({"metadata": {"name": "a"}, "value": 1, "globalDefault": true});
        assert!(check_single_default(&a, &classes).is_ok());
        let c = json!({"metadata": {"name": "c"}, "value": 2});
        assert!(check_single_default(&c, &classes).is_ok());
        assert_eq!(default_class(&[class("x", 5, true), class("y", 3, true)]).map(|c| c.name.as_str()), Some("y"));
    }
}
