//! Pod, pod template and container defaults (upstream `SetDefaults_Pod`,
//! `SetDefaults_PodSpec`, `SetDefaults_Container`, probes, volumes), and
//! the status a new Pod starts with.

use super::{canonical_quantities, canonical_quantity, each_mut, obj_mut, set_default, str_at};
use crate::admission::quantity::Quantity;
use crate::admission::volume::SOURCES;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// A pod template: the spec defaults, and the `creationTimestamp: null`
/// upstream prints in every template's metadata.
pub(crate) fn template(tpl: &mut Value) {
    if let Some(meta) = obj_mut(tpl, "metadata").and_then(Value::as_object_mut) {
        meta.entry("creationTimestamp").or_insert(Value::Null);
    }
    if let Some(spec) = obj_mut(tpl, "spec") {
        pod_spec(spec);
    }
}

/// `SetDefaults_PodSpec` and everything under it.
pub(crate) fn pod_spec(spec: &mut Value) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        each_mut(spec, key, container);
    }
    each_mut(spec, "volumes", volume);
}

/// What upstream's image reference parser makes of `image`'s tag: `Always`
/// pulls for `:latest` or no tag (and no digest), `IfNotPresent` otherwise,
/// including for references it cannot parse.
pub(crate) fn pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let (repo, tag) = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (name, None),
    };
    let mut parts = repo.split('/');
    let first = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    let has_domain = !rest.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()));
    let path: Vec<&str> = if has_domain { rest } else { std::iter::once(first).chain(rest).collect() };
    let valid_path = !path.is_empty()
        && path.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-'))
                && p.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        });
    let valid_tag = tag.is_none_or(|t| {
        !t.is_empty() && t.len() <= 128 && t.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    });
    if !valid_path || !valid_tag {
        return "IfNotPresent";
    }
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

fn container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    if str_at(c, "imagePullPolicy").unwrap_or("").is_empty() {
        let policy = pull_policy(str_at(c, "image").unwrap_or(""));
        if let Some(m) = c.as_object_mut() {
            m.insert("imagePullPolicy".into(), json!(policy));
        }
    }
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    if let Some(r) = obj_mut(c, "resources") {
        canonical_quantities(r, "limits");
        canonical_quantities(r, "requests");
    }
    each_mut(c, "ports", |p| set_default(p, "protocol", json!("TCP")));
    each_mut(c, "env", |e| {
        if let Some(from) = e.get_mut("valueFrom").filter(|f| f.is_object()) {
            if let Some(f) = from.get_mut("fieldRef").filter(|f| f.is_object()) {
                set_default(f, "apiVersion", json!("v1"));
            }
            if let Some(r) = from.get_mut("resourceFieldRef").filter(|r| r.is_object()) {
                set_default(r, "divisor", json!("0"));
                if let Some(d) = r.get_mut("divisor") {
                    canonical_quantity(d);
                }
            }
        }
    });
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(key).filter(|p| p.is_object()) {
            probe(p);
        }
    }
    if let Some(lc) = c.get_mut("lifecycle").filter(|l| l.is_object()) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lc.get_mut(hook).filter(|h| h.is_object()) {
                handler(h);
            }
        }
    }
}

/// Zero means unset for these probe fields.
fn set_nonzero_default(v: &mut Value, key: &str, value: i64) {
    if v.get(key).and_then(Value::as_i64).unwrap_or(0) == 0 {
        if let Some(m) = v.as_object_mut() {
            m.insert(key.to_string(), json!(value));
        }
    }
}

fn probe(p: &mut Value) {
    set_nonzero_default(p, "timeoutSeconds", 1);
    set_nonzero_default(p, "periodSeconds", 10);
    set_nonzero_default(p, "successThreshold", 1);
    set_nonzero_default(p, "failureThreshold", 3);
    handler(p);
}

fn handler(h: &mut Value) {
    if let Some(g) = h.get_mut("httpGet").filter(|g| g.is_object()) {
        if str_at(g, "path").unwrap_or("").is_empty() {
            if let Some(m) = g.as_object_mut() {
                m.insert("path".into(), json!("/"));
            }
        }
        if str_at(g, "scheme").unwrap_or("").is_empty() {
            if let Some(m) = g.as_object_mut() {
                m.insert("scheme".into(), json!("HTTP"));
            }
        }
    }
}

fn volume(v: &mut Value) {
    let Some(m) = v.as_object_mut() else { return };
    if !SOURCES.iter().any(|k| m.get(*k).is_some_and(|s| !s.is_null())) {
        m.insert("emptyDir".into(), json!({}));
    }
    for key in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = m.get_mut(key).filter(|s| s.is_object()) {
            set_default(src, "defaultMode", json!(420));
        }
    }
    if let Some(hp) = m.get_mut("hostPath").filter(|s| s.is_object()) {
        set_default(hp, "type", json!(""));
    }
    if let Some(limit) = m.get_mut("emptyDir").and_then(|e| e.get_mut("sizeLimit")) {
        canonical_quantity(limit);
    }
    if let Some(spec) = m.get_mut("ephemeral").and_then(|e| e.get_mut("volumeClaimTemplate")).and_then(|t| t.get_mut("spec")) {
        super::core::claim_spec(spec);
    }
}

/// Pod-only defaults on top of the spec ones: requests default to limits,
/// service links on, host ports for host-network pods, the priority the
/// Priority admission plugin assigns when no class is named, and the
/// status of a new pod.
pub(crate) fn pod(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else { return };
    pod_spec(spec);
    for key in ["containers", "initContainers"] {
        each_mut(spec, key, requests_from_limits);
    }
    set_default(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for key in ["containers", "initContainers"] {
            each_mut(spec, key, |c| {
                each_mut(c, "ports", |p| {
                    if p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                        if let (Some(port), Some(m)) = (p.get("containerPort").cloned(), p.as_object_mut()) {
                            m.insert("hostPort".into(), port);
                        }
                    }
                })
            });
        }
    }
    let class = str_at(spec, "priorityClassName").unwrap_or("").to_string();
    let known = crate::admission::other::SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _)| *n == class);
    if class.is_empty() || known.is_some() {
        set_default(spec, "priority", json!(known.map_or(0, |(_, v)| *v)));
        set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    }
    let qos = qos_class(spec);
    if let Some(status) = obj_mut(obj, "status") {
        if str_at(status, "phase").unwrap_or("").is_empty() {
            if let Some(m) = status.as_object_mut() {
                m.insert("phase".into(), json!("Pending"));
                m.insert("qosClass".into(), json!(qos));
            }
        }
    }
}

fn requests_from_limits(c: &mut Value) {
    let Some(limits) = c.get("resources").and_then(|r| r.get("limits")).and_then(Value::as_object).cloned() else { return };
    let Some(r) = obj_mut(c, "resources") else { return };
    let Some(requests) = obj_mut(r, "requests").and_then(Value::as_object_mut) else { return };
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
}

/// upstream `GetPodQOS`: BestEffort without any cpu/memory requests or
/// limits, Guaranteed when every container limits both and requests equal
/// limits, Burstable otherwise.
pub(crate) fn qos_class(spec: &Value) -> &'static str {
    let mut requests: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut guaranteed = true;
    let empty = Map::new();
    for key in ["containers", "initContainers"] {
        for c in spec.get(key).and_then(Value::as_array).into_iter().flatten() {
            let res = c.get("resources");
            let list = |k: &str| res.and_then(|r| r.get(k)).and_then(Value::as_object).unwrap_or(&empty).clone();
            for (name, q) in list("requests") {
                add_qos(&mut requests, &name, &q);
            }
            let mut found = Vec::new();
            for (name, q) in list("limits") {
                if add_qos(&mut limits, &name, &q) {
                    found.push(name);
                }
            }
            if !(found.iter().any(|n| n == "cpu") && found.iter().any(|n| n == "memory")) {
                guaranteed = false;
            }
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed && requests.iter().any(|(name, q)| limits.get(name) != Some(q)) {
        guaranteed = false;
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Adds a non-zero cpu/memory amount; returns whether it counted.
fn add_qos(sum: &mut BTreeMap<String, Quantity>, name: &str, q: &Value) -> bool {
    if !matches!(name, "cpu" | "memory") {
        return false;
    }
    let Ok(q) = Quantity::from_json(q) else { return false };
    if q.is_zero() {
        return false;
    }
    let total = match sum.get(name) {
        Some(prev) => prev.checked_add(&q).unwrap_or(q),
        None => q,
    };
    sum.insert(name.to_string(), total);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        for (image, want) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.25", "IfNotPresent"),
            ("localhost:5000/nginx", "Always"),
            ("localhost:5000/nginx:1", "IfNotPresent"),
            ("registry.example.com/team/app:v2", "IfNotPresent"),
            ("nginx@sha256:abc", "IfNotPresent"),
            ("nginx:latest@sha256:abc", "Always"),
            ("NGINX", "IfNotPresent"),
            ("", "IfNotPresent"),
        ] {
            assert_eq!(pull_policy(image), want, "{image}");
        }
    }

    #[test]
    fn minimal_pod() {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "ports": [{"containerPort": 80}],
                "resources": {"limits": {"cpu": "0.5", "memory": "128Mi"}},
                "livenessProbe": {"httpGet": {"port": 80}}}]}});
        pod(&mut p);
        assert_eq!(
            p,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {
                    "containers": [{"name": "c", "image": "busybox:1.36", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "500m", "memory": "128Mi"}},
                        "livenessProbe": {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                            "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                        "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
                    "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "securityContext": {}, "terminationGracePeriodSeconds": 30,
                    "schedulerName": "default-scheduler", "enableServiceLinks": true, "priority": 0, "preemptionPolicy": "PreemptLowerPriority"},
                "status": {"phase": "Pending", "qosClass": "Guaranteed"}})
        );
    }

    #[test]
    fn volumes_and_host_network() {
        let mut p = json!({"spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 53}]}],
            "volumes": [{"name": "a"}, {"name": "b", "secret": {"secretName": "s"}}, {"name": "c", "hostPath": {"path": "/x"}}]}});
        pod(&mut p);
        assert_eq!(p["spec"]["containers"][0]["ports"][0]["hostPort"], json!(53));
        assert_eq!(p["spec"]["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(p["spec"]["volumes"][1]["secret"]["defaultMode"], json!(420));
        assert_eq!(p["spec"]["volumes"][2]["hostPath"]["type"], json!(""));
        assert_eq!(p["status"]["qosClass"], json!("BestEffort"));
    }

    #[test]
    fn qos_classes() {
        let burstable = json!({"containers": [{"resources": {"requests": {"cpu": "100m"}}}]});
        assert_eq!(qos_class(&burstable), "Burstable");
        let not_equal = json!({"containers": [{"resources": {"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": "200m", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&not_equal), "Burstable");
    }
}
