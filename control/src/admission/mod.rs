//! Admission: upstream defaulting and validation of built-in types.
//!
//! Owns the type-specific rules the schema cannot express (names, selectors
//! matching templates, immutable fields, pod defaults). Must not touch the
//! store: it sees the new object and, on update, the old one.

use crate::field_error::FieldError;
use crate::names;
use serde_json::{json, Map, Value};

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    v.get_mut(key).and_then(Value::as_object_mut)
}

fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).map(Value::is_null).unwrap_or(true) {
        m.insert(key.to_string(), value);
    }
}

/// Fill in the defaults upstream fills in.
pub fn default(group: &str, kind: &str, obj: &mut Value) {
    match (group, kind) {
        ("", "Pod") => {
            if let Some(spec) = obj_mut(obj, "spec") {
                default_pod_spec(spec);
            }
        }
        ("apps", "Deployment") => {
            if let Some(spec) = obj_mut(obj, "spec") {
                set_default(spec, "replicas", json!(1));
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(spec, "progressDeadlineSeconds", json!(600));
                set_default(spec, "strategy", json!({"type": "RollingUpdate"}));
                if let Some(strategy) = spec.get_mut("strategy").and_then(Value::as_object_mut) {
                    set_default(strategy, "type", json!("RollingUpdate"));
                    if strategy.get("type") == Some(&json!("RollingUpdate")) {
                        set_default(strategy, "rollingUpdate", json!({}));
                        if let Some(ru) = strategy.get_mut("rollingUpdate").and_then(Value::as_object_mut) {
                            set_default(ru, "maxSurge", json!("25%"));
                            set_default(ru, "maxUnavailable", json!("25%"));
                        }
                    }
                }
                default_template(spec);
            }
        }
        ("apps", "ReplicaSet") | ("apps", "StatefulSet") | ("apps", "DaemonSet") | ("batch", "Job") => {
            if let Some(spec) = obj_mut(obj, "spec") {
                if kind != "DaemonSet" && kind != "Job" {
                    set_default(spec, "replicas", json!(1));
                }
                default_template(spec);
            }
        }
        ("", "Service") => {
            if let Some(spec) = obj_mut(obj, "spec") {
                set_default(spec, "type", json!("ClusterIP"));
                set_default(spec, "sessionAffinity", json!("None"));
                if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        set_default(p, "protocol", json!("TCP"));
                        if let Some(port) = p.get("port").cloned() {
                            set_default(p, "targetPort", port);
                        }
                    }
                }
            }
        }
        ("", "Secret") => {
            if let Some(m) = obj.as_object_mut() {
                set_default(m, "type", json!("Opaque"));
            }
        }
        ("", "Namespace") => {
            if let Some(m) = obj.as_object_mut() {
                set_default(m, "spec", json!({}));
            }
            if let Some(spec) = obj_mut(obj, "spec") {
                set_default(spec, "finalizers", json!(["kubernetes"]));
            }
        }
        _ => {}
    }
}

fn default_template(spec: &mut Map<String, Value>) {
    if let Some(pod) = spec.get_mut("template").and_then(|t| t.get_mut("spec")).and_then(Value::as_object_mut) {
        default_pod_spec(pod);
    }
}

fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    for key in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(key).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                let image = c.get("image").and_then(Value::as_str).unwrap_or("").to_string();
                let last = image.rsplit('/').next().unwrap_or("");
                let tag = if image.contains('@') { Some("digest") } else { last.split_once(':').map(|(_, t)| t) };
                let policy = if tag.is_none() || tag == Some("latest") { "Always" } else { "IfNotPresent" };
                set_default(c, "imagePullPolicy", json!(policy));
                set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
                set_default(c, "terminationMessagePolicy", json!("File"));
                set_default(c, "resources", json!({}));
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        set_default(p, "protocol", json!("TCP"));
                    }
                }
            }
        }
    }
}

fn name_rule(group: &str, kind: &str) -> fn(&str) -> Vec<String> {
    match (group, kind) {
        ("", "Namespace") => names::dns1123_label,
        ("", "Service") => names::dns1035_label,
        _ => names::dns1123_subdomain,
    }
}

/// Validate `obj` (and, on update, against `old`).
pub fn validate(group: &str, kind: &str, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::required("metadata.name", "name or generateName is required"));
    } else {
        for msg in names::path_segment_name(name).into_iter().chain(name_rule(group, kind)(name)) {
            errs.push(FieldError::invalid("metadata.name", json!(name), msg));
        }
    }
    for (field, check_values) in [("labels", true), ("annotations", false)] {
        if let Some(map) = meta.get(field).and_then(Value::as_object) {
            for (k, v) in map {
                for msg in names::qualified_name(k) {
                    errs.push(FieldError::invalid(format!("metadata.{field}"), json!(k), msg));
                }
                if check_values {
                    for msg in names::label_value(v.as_str().unwrap_or("")) {
                        errs.push(FieldError::invalid(format!("metadata.{field}"), v.clone(), msg));
                    }
                }
            }
        }
    }
    if let Some(old) = old {
        for k in ["name", "namespace", "uid"] {
            if old.pointer(&format!("/metadata/{k}")) != obj.pointer(&format!("/metadata/{k}")) {
                errs.push(FieldError::invalid(format!("metadata.{k}"), obj.pointer(&format!("/metadata/{k}")).cloned().unwrap_or(Value::Null), "field is immutable"));
            }
        }
    }
    if group == "apps" && matches!(kind, "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet") {
        validate_workload(obj, old, &mut errs);
    }
    errs
}

fn validate_workload(obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let selector = obj.pointer("/spec/selector");
    match selector {
        None | Some(Value::Null) => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => match crate::selector::LabelSelector::from_json(sel) {
            Err(e) => errs.push(FieldError::invalid("spec.selector", sel.clone(), e.to_string())),
            Ok(s) if s.is_empty() => errs.push(FieldError::invalid("spec.selector", sel.clone(), "empty selector is invalid for deployment")),
            Ok(s) => {
                let labels = obj.pointer("/spec/template/metadata/labels").and_then(Value::as_object);
                if !s.matches(labels) {
                    let shown = labels.map(|l| {
                        let items: Vec<String> = l.iter().map(|(k, v)| format!("{k:?}:{}", v)).collect();
                        format!("map[string]string{{{}}}", items.join(", "))
                    });
                    errs.push(FieldError::new(
                        crate::field_error::ErrorType::Invalid,
                        "spec.template.metadata.labels",
                        Some(json!(shown.unwrap_or_else(|| "map[string]string(nil)".into()))),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        },
    }
    if let Some(old) = old {
        if old.pointer("/spec/selector") != selector {
            errs.push(FieldError::invalid("spec.selector", selector.cloned().unwrap_or(Value::Null), "field is immutable"));
        }
    }
    if let Some(r) = obj.pointer("/spec/replicas").and_then(Value::as_i64) {
        if r < 0 {
            errs.push(FieldError::invalid("spec.replicas", json!(r), "must be greater than or equal to 0"));
        }
    }
    let containers = obj.pointer("/spec/template/spec/containers").and_then(Value::as_array);
    if containers.map(|c| c.is_empty()).unwrap_or(true) {
        errs.push(FieldError::required("spec.template.spec.containers", ""));
    }
    for (i, c) in containers.into_iter().flatten().enumerate() {
        if c.get("image").and_then(Value::as_str).map(str::is_empty).unwrap_or(true) {
            errs.push(FieldError::required(format!("spec.template.spec.containers[{i}].image"), ""));
        }
        let cname = c.get("name").and_then(Value::as_str).unwrap_or("");
        if cname.is_empty() {
            errs.push(FieldError::required(format!("spec.template.spec.containers[{i}].name"), ""));
        }
    }
}
