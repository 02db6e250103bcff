//! One container of a pod spec: name, image, ports, env, resources, probes
//! and lifecycle hooks (upstream `validateContainerCommon` and friends).

use super::path::Path;
use super::quantity::Quantity;
use super::util::{get, int_of, list, one_of, port_num_errors, port_num_or_name, push_msgs, str_of, string, Errs, NEGATIVE};
use super::volume;
use crate::field_error::FieldError;
use crate::names;
use serde_json::{json, Map, Value};
use std::collections::HashSet;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
const RELAXED_ENV_MSG: &str = "a valid environment variable name must consist only of printable ASCII characters other than '='";

/// Checks common to regular and init containers.
pub(crate) fn common(c: &Value, volumes: &HashSet<String>, path: &Path, errs: &mut Errs) {
    let name = string(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else {
        push_msgs(errs, &path.child("name"), name, names::dns1123_label(name));
    }
    if string(c, "image").is_empty() {
        errs.push(FieldError::required(path.child("image"), ""));
    }
    one_of(str_of(c, "terminationMessagePolicy"), TERMINATION_MESSAGE_POLICIES, &path.child("terminationMessagePolicy"), errs);
    ports(c, &path.child("ports"), errs);
    env(c, &path.child("env"), errs);
    env_from(c, &path.child("envFrom"), errs);
    volume::mounts(c, volumes, &path.child("volumeMounts"), errs);
    one_of(str_of(c, "imagePullPolicy"), PULL_POLICIES, &path.child("imagePullPolicy"), errs);
    resources(get(c, "resources"), &path.child("resources"), errs);
}

/// Probes and hooks, allowed on regular and sidecar containers.
pub(crate) fn probes_and_lifecycle(c: &Value, path: &Path, errs: &mut Errs) {
    if let Some(lc) = get(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = get(lc, hook) {
                handler(h, &path.child("lifecycle").child(hook), errs);
            }
        }
    }
    for (key, kind) in [("livenessProbe", Probe::Liveness), ("readinessProbe", Probe::Readiness), ("startupProbe", Probe::Startup)] {
        if let Some(p) = get(c, key) {
            probe(p, kind, &path.child(key), errs);
        }
    }
}

fn ports(c: &Value, path: &Path, errs: &mut Errs) {
    let mut all_names = HashSet::new();
    for (i, p) in list(c, "ports").iter().enumerate() {
        let idx = path.index(i);
        let name = string(p, "name");
        if !name.is_empty() {
            let msgs = super::util::port_name_errors(name);
            if !msgs.is_empty() {
                push_msgs(errs, &idx.child("name"), name, msgs);
            } else if !all_names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(idx.child("name"), json!(name)));
            }
        }
        match int_of(p, "containerPort").unwrap_or(0) {
            0 => errs.push(FieldError::required(idx.child("containerPort"), "")),
            n => {
                for msg in port_num_errors(n) {
                    errs.push(FieldError::invalid(idx.child("containerPort"), json!(n), msg));
                }
            }
        }
        if let Some(n) = int_of(p, "hostPort").filter(|n| *n != 0) {
            for msg in port_num_errors(n) {
                errs.push(FieldError::invalid(idx.child("hostPort"), json!(n), msg));
            }
        }
        match str_of(p, "protocol").unwrap_or("") {
            "" => errs.push(FieldError::required(idx.child("protocol"), "")),
            proto if !PROTOCOLS.contains(&proto) => {
                errs.push(FieldError::not_supported(idx.child("protocol"), json!(proto), PROTOCOLS))
            }
            _ => {}
        }
    }
}

/// The relaxed rule for environment variable names (on by default since 1.32).
fn env_name_errors(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push(format!("environment variable name {}", names::empty_error()));
    }
    if name.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push(RELAXED_ENV_MSG.to_string());
    }
    errs
}

fn env(c: &Value, path: &Path, errs: &mut Errs) {
    for (i, e) in list(c, "env").iter().enumerate() {
        let idx = path.index(i);
        let name = string(e, "name");
        if name.is_empty() {
            errs.push(FieldError::required(idx.child("name"), ""));
        } else {
            push_msgs(errs, &idx.child("name"), name, env_name_errors(name));
        }
        if let Some(from) = get(e, "valueFrom") {
            value_from(from, !string(e, "value").is_empty(), &idx.child("valueFrom"), errs);
        }
    }
}

const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

fn value_from(from: &Value, has_value: bool, path: &Path, errs: &mut Errs) {
    let mut sources = 0;
    if let Some(f) = get(from, "fieldRef") {
        sources += 1;
        field_ref(f, &path.child("fieldRef"), errs);
    }
    if let Some(r) = get(from, "resourceFieldRef") {
        sources += 1;
        if string(r, "resource").is_empty() {
            errs.push(FieldError::required(path.child("resourceFieldRef").child("resource"), ""));
        }
    }
    for key in ["configMapKeyRef", "secretKeyRef"] {
        if let Some(r) = get(from, key) {
            sources += 1;
            let p = path.child(key);
            let name = string(r, "name");
            if !name.is_empty() {
                push_msgs(errs, &p.child("name"), name, names::dns1123_subdomain(name));
            }
            let k = string(r, "key");
            if k.is_empty() {
                errs.push(FieldError::required(p.child("key"), ""));
            } else {
                push_msgs(errs, &p.child("key"), k, names::config_map_key(k));
            }
        }
    }
    if sources == 0 {
        errs.push(FieldError::invalid(
            path,
            json!(""),
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ));
    } else if has_value {
        errs.push(FieldError::invalid(path, json!(""), "may not be specified when `value` is not empty"));
    } else if sources > 1 {
        errs.push(FieldError::invalid(path, json!(""), "may not have more than one field specified at a time"));
    }
}

fn field_ref(f: &Value, path: &Path, errs: &mut Errs) {
    let api_version = string(f, "apiVersion");
    if api_version.is_empty() {
        errs.push(FieldError::required(path.child("apiVersion"), ""));
        return;
    }
    let fp = string(f, "fieldPath");
    if fp.is_empty() {
        errs.push(FieldError::required(path.child("fieldPath"), ""));
        return;
    }
    if api_version != "v1" {
        errs.push(FieldError::invalid(
            path.child("fieldPath"),
            json!(fp),
            format!("error converting fieldPath: unsupported pod version: {api_version}"),
        ));
        return;
    }
    if let Some((base, rest)) = fp.split_once('[') {
        let subscript = rest.strip_suffix(']').and_then(|s| s.strip_prefix('\'')).and_then(|s| s.strip_suffix('\''));
        match (base, subscript) {
            ("metadata.annotations", Some(k)) => push_msgs(errs, path, &k.to_lowercase(), names::qualified_name(&k.to_lowercase())),
            ("metadata.labels", Some(k)) => push_msgs(errs, path, k, names::qualified_name(k)),
            (_, Some(_)) => errs.push(FieldError::invalid(
                path.child("fieldPath"),
                json!(fp),
                format!("error converting fieldPath: field label does not support subscript: {fp}"),
            )),
            (_, None) => errs.push(FieldError::invalid(
                path.child("fieldPath"),
                json!(fp),
                format!("error converting fieldPath: field label not supported: {fp}"),
            )),
        }
        return;
    }
    let fp = if fp == "spec.host" { "spec.nodeName" } else { fp };
    if !ENV_FIELD_PATHS.contains(&fp) {
        const CONVERTIBLE: &[&str] =
            &["metadata.annotations", "metadata.labels", "spec.restartPolicy", "spec.schedulerName", "status.phase"];
        if CONVERTIBLE.contains(&fp) {
            errs.push(FieldError::not_supported(path.child("fieldPath"), json!(fp), ENV_FIELD_PATHS));
        } else {
            errs.push(FieldError::invalid(
                path.child("fieldPath"),
                json!(fp),
                format!("error converting fieldPath: field label not supported: {fp}"),
            ));
        }
    }
}

fn env_from(c: &Value, path: &Path, errs: &mut Errs) {
    for (i, e) in list(c, "envFrom").iter().enumerate() {
        let idx = path.index(i);
        let prefix = string(e, "prefix");
        if !prefix.is_empty() {
            push_msgs(errs, &idx.child("prefix"), prefix, env_name_errors(prefix));
        }
        let mut sources = 0;
        for key in ["configMapRef", "secretRef"] {
            if let Some(r) = get(e, key) {
                sources += 1;
                let name = string(r, "name");
                if name.is_empty() {
                    errs.push(FieldError::required(idx.child(key).child("name"), ""));
                } else {
                    push_msgs(errs, &idx.child(key).child("name"), name, names::dns1123_subdomain(name));
                }
            }
        }
        if sources == 0 {
            errs.push(FieldError::invalid(path, json!(""), "must specify one of: `configMapRef` or `secretRef`"));
        } else if sources > 1 {
            errs.push(FieldError::invalid(path, json!(""), "may not have more than one field specified at a time"));
        }
    }
}

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name) && !name.starts_with("requests.") && names::qualified_name(&format!("requests.{name}")).is_empty()
}

/// Requests must equal limits for these (they cannot be overcommitted).
fn overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !name.starts_with("hugepages-")
}

fn resource_name(name: &str, path: &Path, errs: &mut Errs) {
    push_msgs(errs, path, name, names::qualified_name(name));
    if !name.contains('/') {
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !name.starts_with("hugepages-") {
            errs.push(FieldError::invalid(path, json!(name), "must be a standard resource for containers"));
        }
    } else if !is_native_resource(name) && !is_extended_resource(name) {
        errs.push(FieldError::invalid(path, json!(name), "doesn't follow extended resource name standard"));
    }
}

/// Parses every entry of a resource list, reporting the bad ones.
fn resource_list(m: Option<&Map<String, Value>>, path: &Path, errs: &mut Errs) -> Vec<(String, Quantity)> {
    let mut out = Vec::new();
    for (name, v) in m.into_iter().flatten() {
        let p = path.key(name);
        resource_name(name, &p, errs);
        match Quantity::from_json(v) {
            Ok(q) => {
                if q.is_negative() {
                    errs.push(FieldError::invalid(&p, json!(q.to_string()), NEGATIVE));
                }
                if is_extended_resource(name) && q.milli_value() % 1000 != 0 {
                    errs.push(super::util::invalid_raw(&p, &q.to_string(), "must be an integer"));
                }
                out.push((name.clone(), q));
            }
            Err(e) => errs.push(FieldError::invalid(&p, v.clone(), e.to_string())),
        }
    }
    out
}

/// `ValidateResourceRequirements` of a container's `resources`.
pub(crate) fn resources(r: Option<&Value>, path: &Path, errs: &mut Errs) {
    let Some(r) = r else { return };
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let limits = resource_list(r.get("limits").and_then(Value::as_object), &lim_path, errs);
    let requests = resource_list(r.get("requests").and_then(Value::as_object), &req_path, errs);
    for (name, q) in &requests {
        match limits.iter().find(|(n, _)| n == name) {
            Some((_, limit)) if q != limit && !overcommit_allowed(name) => errs.push(FieldError::invalid(
                &req_path,
                json!(q.to_string()),
                format!("must be equal to {name} limit of {limit}"),
            )),
            Some((_, limit)) if q > limit => errs.push(FieldError::invalid(
                &req_path,
                json!(q.to_string()),
                format!("must be less than or equal to {name} limit of {limit}"),
            )),
            Some(_) => {}
            None if !overcommit_allowed(name) => {
                errs.push(FieldError::required(&lim_path, "Limit must be set for non overcommitable resources"))
            }
            None => {}
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Probe {
    Liveness,
    Readiness,
    Startup,
}

fn probe(p: &Value, kind: Probe, path: &Path, errs: &mut Errs) {
    handler(p, path, errs);
    for key in ["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"] {
        super::util::nonnegative(p, key, path, errs);
    }
    if let Some(g) = int_of(p, "terminationGracePeriodSeconds") {
        if kind == Probe::Readiness {
            errs.push(FieldError::invalid(path.child("terminationGracePeriodSeconds"), json!(g), "must not be set for readinessProbes"));
        } else if g <= 0 {
            errs.push(FieldError::invalid(path.child("terminationGracePeriodSeconds"), json!(g), "must be greater than 0"));
        }
    }
    if kind != Probe::Readiness {
        if let Some(n) = int_of(p, "successThreshold").filter(|n| *n != 1) {
            errs.push(FieldError::invalid(path.child("successThreshold"), json!(n), "must be 1"));
        }
    }
}

/// A probe or lifecycle handler: exactly one of exec, httpGet, tcpSocket,
/// grpc, sleep.
fn handler(h: &Value, path: &Path, errs: &mut Errs) {
    let mut found = 0;
    for key in ["exec", "httpGet", "tcpSocket", "grpc", "sleep"] {
        let Some(action) = get(h, key) else { continue };
        let p = path.child(key);
        if found > 0 {
            errs.push(FieldError::forbidden(&p, "may not specify more than 1 handler type"));
            continue;
        }
        found += 1;
        match key {
            "exec" => {
                if list(action, "command").is_empty() {
                    errs.push(FieldError::required(p.child("command"), ""));
                }
            }
            "httpGet" => {
                if string(action, "path").is_empty() {
                    errs.push(FieldError::required(p.child("path"), ""));
                }
                port_num_or_name(get(action, "port"), &p.child("port"), errs);
                let scheme = string(action, "scheme");
                if !matches!(scheme, "HTTP" | "HTTPS") {
                    errs.push(FieldError::not_supported(p.child("scheme"), json!(scheme), &["HTTP", "HTTPS"]));
                }
            }
            "tcpSocket" => port_num_or_name(get(action, "port"), &p.child("port"), errs),
            "grpc" => {
                let port = int_of(action, "port").unwrap_or(0);
                for msg in port_num_errors(port) {
                    errs.push(FieldError::invalid(p.child("port"), json!(port), msg));
                }
            }
            _ => {
                let secs = int_of(action, "seconds").unwrap_or(0);
                if !(0..=2_147_483_647).contains(&secs) {
                    errs.push(FieldError::invalid(p.child("seconds"), json!(secs), NEGATIVE));
                }
            }
        }
    }
    if found == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_error::aggregate;

    fn check(c: Value) -> String {
        let mut errs = Vec::new();
        let path = Path::root("spec").child("containers").index(0);
        common(&c, &HashSet::new(), &path, &mut errs);
        probes_and_lifecycle(&c, &path, &mut errs);
        aggregate(&errs)
    }

    fn ok_container() -> Value {
        json!({"name": "app", "image": "nginx", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"})
    }

    fn with(extra: Value) -> Value {
        let mut c = ok_container();
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                c.insert(k.clone(), v.clone());
            }
        }
        c
    }

    #[test]
    fn name_and_image() {
        assert_eq!(check(ok_container()), "[]");
        assert_eq!(check(with(json!({"image": ""}))), "spec.containers[0].image: Required value");
        assert!(check(with(json!({"name": "App"}))).starts_with("spec.containers[0].name: Invalid value: \"App\": a lowercase RFC 1123 label"));
    }

    #[test]
    fn ports() {
        assert_eq!(
            check(with(json!({"ports": [{"containerPort": 70000, "protocol": "TCP"}]}))),
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            check(with(json!({"ports": [{"containerPort": 80, "protocol": "HTTP"}]}))),
            "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
        );
        assert_eq!(check(with(json!({"ports": [{"protocol": "TCP"}]}))), "spec.containers[0].ports[0].containerPort: Required value");
        assert_eq!(
            check(with(json!({"ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}, {"name": "http", "containerPort": 81, "protocol": "TCP"}]}))),
            "spec.containers[0].ports[1].name: Duplicate value: \"http\""
        );
    }

    #[test]
    fn env() {
        assert_eq!(check(with(json!({"env": [{"name": "A.B-c", "value": "x"}]}))), "[]");
        assert_eq!(
            check(with(json!({"env": [{"name": "A=B"}]}))),
            format!("spec.containers[0].env[0].name: Invalid value: \"A=B\": {RELAXED_ENV_MSG}")
        );
        assert_eq!(check(with(json!({"env": [{"name": ""}]}))), "spec.containers[0].env[0].name: Required value");
        assert_eq!(
            check(with(json!({"env": [{"name": "A", "valueFrom": {}}]}))),
            "spec.containers[0].env[0].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"
        );
        assert_eq!(
            check(with(json!({"env": [{"name": "A", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.nam"}}}]}))),
            "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Invalid value: \"metadata.nam\": error converting fieldPath: field label not supported: metadata.nam"
        );
        assert_eq!(check(with(json!({"env": [{"name": "A", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels['app']"}}}]}))), "[]");
    }

    #[test]
    fn resources() {
        assert_eq!(check(with(json!({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}}))), "[]");
        assert_eq!(
            check(with(json!({"resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}}))),
            "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"
        );
        assert_eq!(
            check(with(json!({"resources": {"requests": {"cpu": "-1"}}}))),
            "spec.containers[0].resources.requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0"
        );
        assert_eq!(
            check(with(json!({"resources": {"requests": {"cpu": "lots"}}}))),
            "spec.containers[0].resources.requests[cpu]: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        assert_eq!(
            check(with(json!({"resources": {"requests": {"gpu": "1"}}}))),
            "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers"
        );
        assert_eq!(
            check(with(json!({"resources": {"requests": {"example.com/dongle": "1"}}}))),
            "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources"
        );
    }

    #[test]
    fn probes() {
        assert_eq!(
            check(with(json!({"livenessProbe": {"periodSeconds": 10}}))),
            "spec.containers[0].livenessProbe: Required value: must specify a handler type"
        );
        assert_eq!(
            check(with(json!({"livenessProbe": {"httpGet": {"path": "/", "port": 8080, "scheme": "HTTP"}, "successThreshold": 2}}))),
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"
        );
        assert_eq!(check(with(json!({"readinessProbe": {"tcpSocket": {"port": "http"}, "successThreshold": 2}}))), "[]");
    }
}
