//! The smaller groups: Lease (`coordination.k8s.io`), Ingress and
//! IngressClass (`networking.k8s.io`), PodDisruptionBudget (`policy`),
//! PriorityClass (`scheduling.k8s.io`), StorageClass (`storage.k8s.io`).

use super::meta::{self, SUBDOMAIN};
use super::path::Path;
use super::util::{get, immutable, int_of, invalid_raw, list, map_of, port_num_errors, push_msgs, str_of, string, too_long, Errs};
use super::workload;
use crate::field_error::{ErrorType, FieldError};
use crate::names;
use serde_json::{json, Value};

pub(crate) fn lease(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::root("spec");
    if let Some(d) = int_of(spec, "leaseDurationSeconds").filter(|d| *d <= 0) {
        errs.push(FieldError::invalid(path.child("leaseDurationSeconds"), json!(d), "must be greater than 0"));
    }
    if let Some(t) = int_of(spec, "leaseTransitions").filter(|t| *t < 0) {
        errs.push(FieldError::invalid(path.child("leaseTransitions"), json!(t), "must be greater than or equal to 0"));
    }
}

const WILDCARD_MSG: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character";
const WILDCARD_FMT: &str = r"\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

/// An Ingress host: a DNS subdomain, or `*.` and one.
fn host(h: &str, path: &Path, errs: &mut Errs) {
    if h.parse::<std::net::IpAddr>().is_ok() {
        errs.push(FieldError::invalid(path, json!(h), "must be a DNS name, not an IP address"));
    }
    if !h.contains('*') {
        push_msgs(errs, path, h, names::dns1123_subdomain(h));
        return;
    }
    let mut msgs = Vec::new();
    if h.len() > names::SUBDOMAIN_MAX_LENGTH {
        msgs.push(names::max_len_error(names::SUBDOMAIN_MAX_LENGTH));
    }
    let pattern_ok = h
        .strip_prefix("*.")
        .is_some_and(|rest| names::dns1123_subdomain(rest).iter().all(|m| m.starts_with("must be no more than")));
    if !pattern_ok {
        msgs.push(names::regex_error(WILDCARD_MSG, WILDCARD_FMT, &["*.example.com"]));
    }
    push_msgs(errs, path, h, msgs);
}

fn backend(b: &Value, path: &Path, errs: &mut Errs) {
    match (get(b, "resource"), get(b, "service")) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(path, json!(""), "cannot set both resource and service backends")),
        (Some(r), None) => {
            let p = path.child("resource");
            if string(r, "kind").is_empty() {
                errs.push(FieldError::required(p.child("kind"), "kind is required"));
            }
            if string(r, "name").is_empty() {
                errs.push(FieldError::required(p.child("name"), "name is required"));
            }
        }
        (None, Some(s)) => {
            let p = path.child("service");
            let name = string(s, "name");
            if name.is_empty() {
                errs.push(FieldError::required(p.child("name"), ""));
            } else {
                push_msgs(errs, &p.child("name"), name, names::dns1035_label(name));
            }
            let port = s.get("port").unwrap_or(&Value::Null);
            let port_name = string(port, "name");
            let port_number = int_of(port, "number").unwrap_or(0);
            match (port_name.is_empty(), port_number == 0) {
                (false, false) => errs.push(FieldError::invalid(path, json!(""), "cannot set both port name & port number")),
                (false, true) => push_msgs(errs, &p.child("port").child("name"), port_name, super::util::port_name_errors(port_name)),
                (true, false) => {
                    for msg in port_num_errors(port_number) {
                        errs.push(FieldError::invalid(p.child("port").child("number"), json!(port_number), msg));
                    }
                }
                (true, true) => errs.push(FieldError::required(path, "port name or number is required")),
            }
        }
        (None, None) => errs.push(FieldError::invalid(path, json!(""), "resource or service backend is required")),
    }
}

pub(crate) fn ingress(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::root("spec");
    let rules = list(spec, "rules");
    let default_backend = get(spec, "defaultBackend");
    if rules.is_empty() && default_backend.is_none() {
        let raw = if spec.get("rules").is_some() { "[]networking.IngressRule{}" } else { "[]networking.IngressRule(nil)" };
        errs.push(invalid_raw(&path, raw, "either `defaultBackend` or `rules` must be specified"));
    }
    if let Some(b) = default_backend {
        backend(b, &path.child("defaultBackend"), errs);
    }
    for (i, rule) in rules.iter().enumerate() {
        let p = path.child("rules").index(i);
        let h = string(rule, "host");
        if !h.is_empty() {
            host(h, &p.child("host"), errs);
        }
        let Some(http) = get(rule, "http") else { continue };
        let hp = p.child("http").child("paths");
        let paths = list(http, "paths");
        if paths.is_empty() {
            errs.push(FieldError::required(&hp, ""));
        }
        for (j, pth) in paths.iter().enumerate() {
            let pp = hp.index(j);
            let path_str = string(pth, "path");
            match str_of(pth, "pathType") {
                None => errs.push(FieldError::required(pp.child("pathType"), "pathType must be specified")),
                Some("Exact" | "Prefix") => {
                    if !path_str.starts_with('/') {
                        errs.push(FieldError::invalid(pp.child("path"), json!(path_str), "must be an absolute path"));
                    }
                    if path_str.contains("//") {
                        errs.push(FieldError::invalid(pp.child("path"), json!(path_str), "must not contain '//'"));
                    }
                }
                Some("ImplementationSpecific") => {
                    if !path_str.is_empty() && !path_str.starts_with('/') {
                        errs.push(FieldError::invalid(pp.child("path"), json!(path_str), "must be an absolute path"));
                    }
                }
                Some(other) => errs.push(FieldError::not_supported(
                    pp.child("pathType"),
                    json!(other),
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            backend(pth.get("backend").unwrap_or(&Value::Null), &pp.child("backend"), errs);
        }
    }
    for (i, tls) in list(spec, "tls").iter().enumerate() {
        for (j, h) in list(tls, "hosts").iter().enumerate() {
            let h = h.as_str().unwrap_or("");
            let p = path.child("tls").index(i).child("hosts").index(j);
            host(h, &p, errs);
        }
    }
    let class = string(spec, "ingressClassName");
    if !class.is_empty() {
        push_msgs(errs, &path.child("ingressClassName"), class, names::dns1123_subdomain(class));
    }
}

pub(crate) fn ingress_class(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::root("spec").child("controller");
    let controller = string(spec, "controller");
    if controller.is_empty() {
        errs.push(FieldError::required(&path, ""));
    } else if controller.len() > 250 {
        errs.push(FieldError::new(ErrorType::TooLong, &path, None, "may not be more than 250 bytes"));
    }
    if let Some(old) = old {
        let old_spec = old.get("spec").unwrap_or(&Value::Null);
        immutable(get(spec, "controller"), get(old_spec, "controller"), &path, errs);
    }
}

pub(crate) fn pod_disruption_budget(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::root("spec");
    let (min, max) = (get(spec, "minAvailable"), get(spec, "maxUnavailable"));
    if min.is_some() && max.is_some() {
        errs.push(FieldError::invalid(&path, spec.clone(), "minAvailable and maxUnavailable cannot be both set"));
    }
    for (key, v) in [("minAvailable", min), ("maxUnavailable", max)] {
        if v.is_some() {
            workload::positive_int_or_percent(v, &path.child(key), errs);
            workload::not_more_than_100_percent(v, &path.child(key), errs);
        }
    }
    meta::label_selector(get(spec, "selector"), &path.child("selector"), errs);
    if let Some(p) = str_of(spec, "unhealthyPodEvictionPolicy") {
        const POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];
        if !POLICIES.contains(&p) {
            errs.push(FieldError::not_supported(path.child("unhealthyPodEvictionPolicy"), json!(p), POLICIES));
        }
    }
}

const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;
/// The built-in system priority classes and their values.
pub(crate) const SYSTEM_PRIORITY_CLASSES: &[(&str, i64)] =
    &[("system-node-critical", 2_000_001_000), ("system-cluster-critical", 2_000_000_000)];

pub(crate) fn priority_class(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let name = meta::name(obj);
    let value = int_of(obj, "value").unwrap_or(0);
    if name.starts_with("system-") {
        let problem = match SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _)| *n == name) {
            None => Some(format!("{name} is not a known system priority class")),
            Some((_, v)) if *v != value => Some(format!("value of {name} PriorityClass must be {v}")),
            Some(_) if obj.get("globalDefault").and_then(Value::as_bool) == Some(true) => {
                Some(format!("globalDefault of {name} PriorityClass must be false"))
            }
            Some(_) => None,
        };
        if let Some(p) = problem {
            errs.push(FieldError::forbidden(
                Path::root("metadata").child("name"),
                format!("priority class names with 'system-' prefix are reserved for system use only. error: {p}"),
            ));
        }
    } else if value > HIGHEST_USER_PRIORITY {
        errs.push(FieldError::forbidden(Path::root("value"), format!("maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}")));
    }
    if let Some(p) = str_of(obj, "preemptionPolicy") {
        if !matches!(p, "PreemptLowerPriority" | "Never") {
            errs.push(FieldError::not_supported(Path::root("preemptionPolicy"), json!(p), &["PreemptLowerPriority", "Never"]));
        }
    }
    if let Some(old) = old {
        if int_of(old, "value") != int_of(obj, "value") {
            errs.push(FieldError::forbidden(Path::root("value"), "may not be changed in an update."));
        }
        immutable(get(obj, "preemptionPolicy"), get(old, "preemptionPolicy"), &Path::root("preemptionPolicy"), errs);
    }
}

const MAX_PROVISIONER_PARAMETER_SIZE: usize = 256 * 1024;
const MAX_PROVISIONER_PARAMETERS: usize = 512;

pub(crate) fn storage_class(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let provisioner = string(obj, "provisioner");
    let p_path = Path::root("provisioner");
    if provisioner.is_empty() {
        errs.push(FieldError::required(&p_path, ""));
    } else {
        let lower = provisioner.to_lowercase();
        push_msgs(errs, &p_path, &lower, names::qualified_name(&lower));
    }
    let params_path = Path::root("parameters");
    if let Some(params) = map_of(obj, "parameters") {
        if params.len() > MAX_PROVISIONER_PARAMETERS {
            errs.push(FieldError::new(ErrorType::TooMany, &params_path, None, format!("must have at most {MAX_PROVISIONER_PARAMETERS} items")));
        }
        let mut total = 0;
        for (k, v) in params {
            if k.is_empty() {
                errs.push(FieldError::invalid(&params_path, json!(k), "field can not be empty."));
            }
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > MAX_PROVISIONER_PARAMETER_SIZE {
            errs.push(too_long(&params_path, MAX_PROVISIONER_PARAMETER_SIZE));
        }
    }
    if let Some(p) = str_of(obj, "reclaimPolicy").filter(|p| !p.is_empty()) {
        if !matches!(p, "Delete" | "Retain") {
            errs.push(FieldError::not_supported(Path::root("reclaimPolicy"), json!(p), &["Delete", "Retain"]));
        }
    }
    match str_of(obj, "volumeBindingMode") {
        None => errs.push(FieldError::required(Path::root("volumeBindingMode"), "")),
        Some("Immediate" | "WaitForFirstConsumer") => {}
        Some(m) => errs.push(FieldError::not_supported(Path::root("volumeBindingMode"), json!(m), &["Immediate", "WaitForFirstConsumer"])),
    }
    if let Some(old) = old {
        if !super::util::semantic_eq(get(obj, "parameters"), get(old, "parameters")) {
            errs.push(FieldError::forbidden(params_path, "updates to parameters are forbidden."));
        }
        if string(obj, "provisioner") != string(old, "provisioner") {
            errs.push(FieldError::forbidden(p_path, "updates to provisioner are forbidden."));
        }
        if string(obj, "reclaimPolicy") != string(old, "reclaimPolicy") {
            errs.push(FieldError::forbidden(Path::root("reclaimPolicy"), "updates to reclaimPolicy are forbidden."));
        }
        immutable(get(obj, "volumeBindingMode"), get(old, "volumeBindingMode"), &Path::root("volumeBindingMode"), errs);
    }
}

#[cfg(test)]
mod tests {
    use crate::admission::{default, validate};
    use crate::field_error::aggregate;
    use serde_json::{json, Value};

    fn check(group: &str, kind: &str, mut obj: Value, old: Option<Value>) -> String {
        default(group, kind, &mut obj);
        let old = old.map(|mut o| {
            default(group, kind, &mut o);
            o
        });
        aggregate(&validate(group, kind, &obj, old.as_ref()))
    }

    #[test]
    fn ingress_rules() {
        let ing = json!({"metadata": {"name": "web"}, "spec": {"rules": [{"host": "example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
        assert_eq!(check("networking.k8s.io", "Ingress", ing, None), "[]");
        let ing = json!({"metadata": {"name": "web"}, "spec": {"rules": [{"http": {"paths": [
            {"path": "api", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {}}}}, {"path": "/"}]}}]}});
        assert_eq!(
            check("networking.k8s.io", "Ingress", ing, None),
            "[spec.rules[0].http.paths[0].path: Invalid value: \"api\": must be an absolute path, spec.rules[0].http.paths[0].backend: Required value: port name or number is required, spec.rules[0].http.paths[1].pathType: Required value: pathType must be specified, spec.rules[0].http.paths[1].backend: Invalid value: \"\": resource or service backend is required]"
        );
        assert_eq!(
            check("networking.k8s.io", "Ingress", json!({"metadata": {"name": "web"}, "spec": {}}), None),
            "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"
        );
    }

    #[test]
    fn pdb_min_xor_max() {
        let pdb = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": 1, "maxUnavailable": "50%", "selector": {"matchLabels": {"app": "a"}}}});
        let out = check("policy", "PodDisruptionBudget", pdb, None);
        assert!(out.starts_with("spec: Invalid value: {"), "{out}");
        assert!(out.ends_with("minAvailable and maxUnavailable cannot be both set"), "{out}");
        let pdb = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "120%"}});
        assert_eq!(
            check("policy", "PodDisruptionBudget", pdb, None),
            "spec.minAvailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"120%\"}: must not be greater than 100%"
        );
    }

    #[test]
    fn priority_class_values() {
        assert_eq!(check("scheduling.k8s.io", "PriorityClass", json!({"metadata": {"name": "high"}, "value": 1000}), None), "[]");
        assert_eq!(
            check("scheduling.k8s.io", "PriorityClass", json!({"metadata": {"name": "huge"}, "value": 2_000_000_000i64}), None),
            "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
        );
        assert_eq!(
            check("scheduling.k8s.io", "PriorityClass", json!({"metadata": {"name": "system-mine"}, "value": 1}), None),
            "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"
        );
        assert_eq!(
            check(
                "scheduling.k8s.io",
                "PriorityClass",
                json!({"metadata": {"name": "high"}, "value": 2000}),
                Some(json!({"metadata": {"name": "high"}, "value": 1000}))
            ),
            "value: Forbidden: may not be changed in an update."
        );
    }

    #[test]
    fn storage_class_rules() {
        let sc = json!({"metadata": {"name": "local"}, "provisioner": "rancher.io/local-path", "parameters": {"a": "1"}});
        assert_eq!(check("storage.k8s.io", "StorageClass", sc.clone(), None), "[]");
        assert_eq!(check("storage.k8s.io", "StorageClass", json!({"metadata": {"name": "x"}}), None), "provisioner: Required value");
        let mut changed = sc.clone();
        changed["parameters"]["a"] = json!("2");
        assert_eq!(check("storage.k8s.io", "StorageClass", changed, Some(sc)), "parameters: Forbidden: updates to parameters are forbidden.");
    }

    #[test]
    fn lease_duration() {
        let lease = json!({"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}});
        assert_eq!(check("coordination.k8s.io", "Lease", lease, None), "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0");
    }
}
