//! Pod specs and pod templates (upstream `ValidatePodSpec`,
//! `ValidatePodTemplateSpec`, `ValidateTolerations`).

use super::container;
use super::meta;
use super::path::Path;
use super::util::{get, int_of, list, one_of, push_msgs, str_of, string, Errs};
use super::volume;
use crate::field_error::FieldError;
use crate::names;
use serde_json::{json, Value};
use std::collections::HashSet;

pub(crate) const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// A pod template at `path` (`spec.template`): its labels and annotations
/// (reported at `spec.template.labels`, as upstream does) and its spec.
/// `extra_volumes` are names that count as volumes (StatefulSet claims).
pub(crate) fn template(tpl: Option<&Value>, path: &Path, extra_volumes: &[String], errs: &mut Errs) {
    let tpl = tpl.unwrap_or(&Value::Null);
    let meta = tpl.get("metadata").unwrap_or(&Value::Null);
    meta::labels(meta.get("labels"), &path.child("labels"), errs);
    meta::annotations(meta.get("annotations"), &path.child("annotations"), errs);
    let spec_path = path.child("spec");
    spec(tpl.get("spec").unwrap_or(&Value::Null), &spec_path, extra_volumes, errs);
    if !list(tpl.get("spec").unwrap_or(&Value::Null), "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(spec_path.child("ephemeralContainers"), "ephemeral containers not allowed in pod template"));
    }
}

/// The labels of a pod template (`spec.template.metadata.labels`).
pub(crate) fn template_labels(tpl: Option<&Value>) -> Option<&Value> {
    tpl.and_then(|t| super::util::at(t, &["metadata", "labels"]))
}

/// The restart policy of a pod template (`""` when unset).
pub(crate) fn template_restart_policy(tpl: Option<&Value>) -> &str {
    tpl.and_then(|t| super::util::at(t, &["spec", "restartPolicy"])).and_then(Value::as_str).unwrap_or("")
}

/// `ValidatePodSpec`.
pub(crate) fn spec(spec: &Value, path: &Path, extra_volumes: &[String], errs: &mut Errs) {
    let mut vols = volume::volumes(spec, &path.child("volumes"), errs);
    vols.extend(extra_volumes.iter().cloned());
    let names_ = containers(spec, &vols, &path.child("containers"), errs);
    init_containers(spec, &vols, names_, &path.child("initContainers"), errs);
    one_of(str_of(spec, "restartPolicy"), RESTART_POLICIES, &path.child("restartPolicy"), errs);
    one_of(str_of(spec, "dnsPolicy"), DNS_POLICIES, &path.child("dnsPolicy"), errs);
    if str_of(spec, "dnsPolicy") == Some("None") && get(spec, "dnsConfig").is_none() {
        errs.push(FieldError::required(path.child("dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"));
    }
    meta::labels(spec.get("nodeSelector"), &path.child("nodeSelector"), errs);
    for key in ["serviceAccountName", "nodeName", "priorityClassName"] {
        let v = string(spec, key);
        if !v.is_empty() {
            push_msgs(errs, &path.child(key), v, names::dns1123_subdomain(v));
        }
    }
    if let Some(ads) = int_of(spec, "activeDeadlineSeconds") {
        if !(1..=i64::from(i32::MAX)).contains(&ads) {
            errs.push(FieldError::invalid(path.child("activeDeadlineSeconds"), json!(ads), "must be between 1 and 2147483647, inclusive"));
        }
    }
    for key in ["hostname", "subdomain"] {
        let v = string(spec, key);
        if !v.is_empty() {
            push_msgs(errs, &path.child(key), v, names::dns1123_label(v));
        }
    }
    tolerations(spec, &path.child("tolerations"), errs);
}

/// Validates `containers` and returns their names.
fn containers(spec: &Value, vols: &HashSet<String>, path: &Path, errs: &mut Errs) -> HashSet<String> {
    let mut all = HashSet::new();
    let cs = list(spec, "containers");
    if cs.is_empty() {
        errs.push(FieldError::required(path, ""));
        return all;
    }
    for (i, c) in cs.iter().enumerate() {
        let idx = path.index(i);
        container::common(c, vols, &idx, errs);
        let name = string(c, "name");
        if !all.insert(name.to_string()) {
            errs.push(FieldError::duplicate(idx.child("name"), json!(name)));
        }
        container::probes_and_lifecycle(c, &idx, errs);
        if get(c, "restartPolicy").is_some() {
            errs.push(FieldError::forbidden(idx.child("restartPolicy"), "may not be set for non-init containers"));
        }
    }
    all
}

fn init_containers(spec: &Value, vols: &HashSet<String>, mut all: HashSet<String>, path: &Path, errs: &mut Errs) {
    for (i, c) in list(spec, "initContainers").iter().enumerate() {
        let idx = path.index(i);
        container::common(c, vols, &idx, errs);
        let name = string(c, "name");
        if !all.insert(name.to_string()) {
            errs.push(FieldError::duplicate(idx.child("name"), json!(name)));
        }
        match str_of(c, "restartPolicy") {
            Some("Always") => container::probes_and_lifecycle(c, &idx, errs),
            other => {
                if let Some(p) = other {
                    errs.push(FieldError::not_supported(idx.child("restartPolicy"), json!(p), &["Always"]));
                }
                for key in ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"] {
                    if get(c, key).is_some() {
                        errs.push(FieldError::forbidden(idx.child(key), "may not be set for init containers without restartPolicy=Always"));
                    }
                }
            }
        }
    }
}

/// Go's `%#v` of a toleration, as upstream prints it in one message.
fn toleration_raw(t: &Value) -> String {
    let q = |k| super::gorepr::quote(string(t, k));
    let secs = match int_of(t, "tolerationSeconds") {
        Some(n) => format!("&{n}"),
        None => "(*int64)(nil)".to_string(),
    };
    format!(
        "core.Toleration{{Key:{}, Operator:{}, Value:{}, Effect:{}, TolerationSeconds:{}}}",
        q("key"),
        q("operator"),
        q("value"),
        q("effect"),
        secs
    )
}

/// `ValidateTolerations` of `spec.tolerations`.
pub(crate) fn tolerations(spec: &Value, path: &Path, errs: &mut Errs) {
    for (i, t) in list(spec, "tolerations").iter().enumerate() {
        let idx = path.index(i);
        let key = string(t, "key");
        let operator = string(t, "operator");
        if !key.is_empty() {
            push_msgs(errs, &idx.child("key"), key, names::qualified_name(key));
        }
        if key.is_empty() && operator != "Exists" {
            errs.push(FieldError::invalid(
                idx.child("operator"),
                json!(operator),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        let effect = string(t, "effect");
        if get(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(idx.child("effect"), json!(effect), "effect must be 'NoExecute' when `tolerationSeconds` is set"));
        }
        match operator {
            "" | "Equal" => {
                let value = string(t, "value");
                let msgs = names::label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(idx.child("operator"), json!(value), msgs.join(";")));
                }
            }
            "Exists" => {
                if !string(t, "value").is_empty() {
                    errs.push(super::util::invalid_raw(&idx.child("operator"), &toleration_raw(t), "value must be empty when `operator` is 'Exists'"));
                }
            }
            other => errs.push(FieldError::not_supported(idx.child("operator"), json!(other), &["Equal", "Exists"])),
        }
        if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(idx.child("effect"), json!(effect), TAINT_EFFECTS));
        }
    }
}

/// Taint effects for Node `spec.taints`.
pub(crate) fn taint_effect(effect: &str, path: &Path, errs: &mut Errs) {
    one_of(Some(effect), TAINT_EFFECTS, path, errs);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_error::aggregate;

    fn check(s: Value) -> String {
        let mut errs = Vec::new();
        spec(&s, &Path::root("spec"), &[], &mut errs);
        aggregate(&errs)
    }

    fn c(name: &str) -> Value {
        json!({"name": name, "image": "busybox", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"})
    }

    fn base() -> Value {
        json!({"containers": [c("a")], "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"})
    }

    #[test]
    fn needs_a_container() {
        assert_eq!(check(json!({"restartPolicy": "Always", "dnsPolicy": "ClusterFirst"})), "spec.containers: Required value");
        assert_eq!(check(base()), "[]");
    }

    #[test]
    fn container_names_are_unique_across_init_containers() {
        let mut s = base();
        s["initContainers"] = json!([c("a")]);
        assert_eq!(check(s), "spec.initContainers[0].name: Duplicate value: \"a\"");
        let mut s = base();
        s["containers"] = json!([c("a"), c("a")]);
        assert_eq!(check(s), "spec.containers[1].name: Duplicate value: \"a\"");
    }

    #[test]
    fn policies() {
        let mut s = base();
        s["restartPolicy"] = json!("Sometimes");
        s["dnsPolicy"] = json!("Google");
        assert_eq!(
            check(s),
            "[spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\", spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"]"
        );
    }

    #[test]
    fn volume_mounts_need_volumes() {
        let mut s = base();
        s["containers"][0]["volumeMounts"] = json!([{"name": "x", "mountPath": "/data"}]);
        assert_eq!(check(s), "spec.containers[0].volumeMounts[0].name: Not found: \"x\"");
    }

    #[test]
    fn tolerations() {
        let mut s = base();
        s["tolerations"] = json!([{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]);
        assert_eq!(
            check(s),
            "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\""
        );
        let mut s = base();
        s["tolerations"] = json!([{"key": "k", "operator": "Exists", "value": "v"}]);
        assert_eq!(
            check(s),
            "spec.tolerations[0].operator: Invalid value: core.Toleration{Key:\"k\", Operator:\"Exists\", Value:\"v\", Effect:\"\", TolerationSeconds:(*int64)(nil)}: value must be empty when `operator` is 'Exists'"
        );
    }

    #[test]
    fn template_labels_are_reported_at_template_labels() {
        let mut errs = Vec::new();
        let tpl = json!({"metadata": {"labels": {"a": "-bad-"}}, "spec": base()});
        template(Some(&tpl), &Path::root("spec").child("template"), &[], &mut errs);
        assert!(aggregate(&errs).starts_with("spec.template.labels: Invalid value: \"-bad-\""));
    }
}
