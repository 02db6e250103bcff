//! Core kinds other than Pod: Service, Secret, Namespace, volumes, Node.

use super::{canonical_quantities, each_mut, obj_mut, set_default, str_at};
use crate::admission::core::BASE64;
use base64::Engine;
use serde_json::{json, Value};

/// `SetDefaults_Service`, plus the IP family fields the service registry
/// fills in (the cluster IP itself is allocated elsewhere).
pub(crate) fn service(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else { return };
    set_default(spec, "sessionAffinity", json!("None"));
    match str_at(spec, "sessionAffinity") {
        Some("None") => {
            if let Some(m) = spec.as_object_mut() {
                m.remove("sessionAffinityConfig");
            }
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                if let Some(m) = spec.as_object_mut() {
                    m.insert("sessionAffinityConfig".into(), json!({"clientIP": {"timeoutSeconds": 10800}}));
                }
            }
        }
        _ => {}
    }
    set_default(spec, "type", json!("ClusterIP"));
    each_mut(spec, "ports", |p| {
        set_default(p, "protocol", json!("TCP"));
        let unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(n) => n.as_i64() == Some(0),
        };
        if unset {
            if let (Some(port), Some(m)) = (p.get("port").cloned(), p.as_object_mut()) {
                m.insert("targetPort".into(), port);
            }
        }
    });
    let svc_type = str_at(spec, "type").unwrap_or("").to_string();
    let has_external_ips = spec.get("externalIPs").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    let externally_accessible =
        matches!(svc_type.as_str(), "LoadBalancer" | "NodePort") || (svc_type == "ClusterIP" && has_external_ips);
    if externally_accessible && str_at(spec, "externalTrafficPolicy").unwrap_or("").is_empty() {
        if let Some(m) = spec.as_object_mut() {
            m.insert("externalTrafficPolicy".into(), json!("Cluster"));
        }
    }
    if matches!(svc_type.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if svc_type == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if svc_type != "ExternalName" {
        cluster_ips(spec);
    }
}

/// Keeps `clusterIP` and `clusterIPs[0]` in step and fills the IP family
/// fields of a single-stack IPv4 cluster.
fn cluster_ips(spec: &mut Value) {
    let ip = str_at(spec, "clusterIP").unwrap_or("").to_string();
    let first = spec.get("clusterIPs").and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_str).map(str::to_string);
    let Some(m) = spec.as_object_mut() else { return };
    match (ip.is_empty(), first) {
        (false, None) => {
            m.insert("clusterIPs".into(), json!([ip]));
        }
        (true, Some(f)) => {
            m.insert("clusterIP".into(), json!(f));
        }
        _ => {}
    }
    let headless = m.get("clusterIP").and_then(Value::as_str) == Some("None");
    let has_selector = m.get("selector").and_then(Value::as_object).is_some_and(|s| !s.is_empty());
    if m.get("ipFamilyPolicy").is_none_or(Value::is_null) {
        let policy = if headless && !has_selector { "RequireDualStack" } else { "SingleStack" };
        m.insert("ipFamilyPolicy".into(), json!(policy));
    }
    if m.get("ipFamilies").and_then(Value::as_array).is_none_or(Vec::is_empty) {
        m.insert("ipFamilies".into(), json!(["IPv4"]));
    }
}

/// Type `Opaque`; `stringData` is folded into `data` (base64), as the
/// conversion upstream does before anything is stored.
pub(crate) fn secret(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    if let Some(Value::Object(string_data)) = m.remove("stringData") {
        let data = m.entry("data").or_insert_with(|| json!({}));
        if data.is_null() {
            *data = json!({});
        }
        if let Some(data) = data.as_object_mut() {
            for (k, v) in string_data {
                if let Some(s) = v.as_str() {
                    data.insert(k, json!(BASE64.encode(s.as_bytes())));
                }
            }
        }
    }
    if str_at(obj, "type").unwrap_or("").is_empty() {
        if let Some(m) = obj.as_object_mut() {
            m.insert("type".into(), json!("Opaque"));
        }
    }
}

/// The `kubernetes.io/metadata.name` label; and for a new namespace (one
/// without a status phase yet) the `kubernetes` finalizer and phase Active.
pub(crate) fn namespace(obj: &mut Value) {
    let name = obj.get("metadata").and_then(|m| str_at(m, "name")).unwrap_or("").to_string();
    if !name.is_empty() {
        if let Some(labels) = obj_mut(obj, "metadata").and_then(|m| obj_mut(m, "labels")).and_then(Value::as_object_mut) {
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    let is_new = obj.get("status").and_then(|s| str_at(s, "phase")).unwrap_or("").is_empty();
    if !is_new {
        return;
    }
    if let Some(spec) = obj_mut(obj, "spec") {
        set_default(spec, "finalizers", json!([]));
        if let Some(f) = spec.get_mut("finalizers").and_then(Value::as_array_mut) {
            if !f.iter().any(|x| x == "kubernetes") {
                f.push(json!("kubernetes"));
            }
        }
    }
    if let Some(status) = obj_mut(obj, "status") {
        set_default(status, "phase", json!("Active"));
    }
}

/// `SetDefaults_PersistentVolumeClaimSpec`.
pub(crate) fn claim_spec(spec: &mut Value) {
    set_default(spec, "volumeMode", json!("Filesystem"));
    if let Some(r) = spec.get_mut("resources").filter(|r| r.is_object()) {
        canonical_quantities(r, "requests");
        canonical_quantities(r, "limits");
    }
}

/// A claim (also each StatefulSet claim template): spec defaults and phase Pending.
pub(crate) fn persistent_volume_claim(obj: &mut Value) {
    if let Some(spec) = obj_mut(obj, "spec") {
        claim_spec(spec);
    }
    if let Some(status) = obj_mut(obj, "status") {
        set_default(status, "phase", json!("Pending"));
    }
}

pub(crate) fn persistent_volume(obj: &mut Value) {
    if let Some(spec) = obj_mut(obj, "spec") {
        set_default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        set_default(spec, "volumeMode", json!("Filesystem"));
        canonical_quantities(spec, "capacity");
    }
    if let Some(status) = obj_mut(obj, "status") {
        set_default(status, "phase", json!("Pending"));
    }
}

/// Allocatable defaults to capacity.
pub(crate) fn node(obj: &mut Value) {
    let Some(status) = obj.get_mut("status").filter(|s| s.is_object()) else { return };
    if let Some(cap) = status.get("capacity").filter(|c| c.is_object()).cloned() {
        set_default(status, "allocatable", cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_defaults() {
        let mut s = json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
        service(&mut s);
        assert_eq!(
            s,
            json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                "sessionAffinity": "None", "type": "ClusterIP", "internalTrafficPolicy": "Cluster",
                "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]}})
        );
        let mut s = json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": "http"}]}});
        service(&mut s);
        assert_eq!(s["spec"]["externalTrafficPolicy"], json!("Cluster"));
        assert_eq!(s["spec"]["ports"][0]["targetPort"], json!("http"));
        let mut s = json!({"spec": {"type": "ExternalName", "externalName": "example.com"}});
        service(&mut s);
        assert_eq!(s, json!({"spec": {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"}}));
        let mut s = json!({"spec": {"clusterIP": "None"}});
        service(&mut s);
        assert_eq!(s["spec"]["ipFamilyPolicy"], json!("RequireDualStack"));
        assert_eq!(s["spec"]["clusterIPs"], json!(["None"]));
    }

    #[test]
    fn secret_folds_string_data() {
        let mut s = json!({"stringData": {"user": "admin"}, "data": {"x": "eA=="}});
        secret(&mut s);
        assert_eq!(s, json!({"data": {"x": "eA==", "user": "YWRtaW4="}, "type": "Opaque"}));
    }

    #[test]
    fn namespace_defaults() {
        let mut ns = json!({"metadata": {"name": "team-a"}});
        namespace(&mut ns);
        assert_eq!(
            ns,
            json!({"metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        );
        let mut terminating = json!({"metadata": {"name": "x"}, "spec": {"finalizers": []}, "status": {"phase": "Terminating"}});
        namespace(&mut terminating);
        assert_eq!(terminating["spec"]["finalizers"], json!([]));
    }

    #[test]
    fn volume_defaults() {
        let mut pvc = json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}}});
        persistent_volume_claim(&mut pvc);
        assert_eq!(
            pvc,
            json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"},
                "status": {"phase": "Pending"}})
        );
        let mut pv = json!({"spec": {"capacity": {"storage": "5Gi"}}});
        persistent_volume(&mut pv);
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], json!("Retain"));
        assert_eq!(pv["status"]["phase"], json!("Pending"));
    }
}
