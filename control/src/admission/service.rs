//! Services (upstream `ValidateService`, `ValidateServiceUpdate`). The
//! cluster IP and node ports are allocated, and checked against their
//! ranges, by `api::services`; here they are only checked for shape and
//! immutability.

use super::meta::{self, DNS1035};
use super::path::Path;
use super::util::{as_int, get, int_of, list, port_num_errors, port_num_or_name, push_msgs, str_of, string, Errs};
use crate::field_error::{ErrorType, FieldError};
use crate::names;
use serde_json::{json, Value};
use std::collections::HashSet;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn cluster_ip(spec: &Value) -> &str {
    match str_of(spec, "clusterIP") {
        Some(ip) if !ip.is_empty() => ip,
        _ => list(spec, "clusterIPs").first().and_then(Value::as_str).unwrap_or(""),
    }
}

fn is_headless(spec: &Value) -> bool {
    cluster_ip(spec) == "None"
}

pub(crate) fn service(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, DNS1035, errs);
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::root("spec");
    if let Some(old) = old {
        update(spec, old.get("spec").unwrap_or(&Value::Null), &path, errs);
    }
    let svc_type = string(spec, "type");
    let ports = list(spec, "ports");
    if ports.is_empty() && !is_headless(spec) && svc_type != "ExternalName" {
        errs.push(FieldError::required(path.child("ports"), ""));
    }
    match svc_type {
        "LoadBalancer" | "NodePort" if is_headless(spec) => {
            errs.push(FieldError::invalid(
                path.child("clusterIPs").index(0),
                json!("None"),
                format!("may not be set to 'None' for {svc_type} services"),
            ));
        }
        "ExternalName" => {
            if !cluster_ip(spec).is_empty() {
                errs.push(FieldError::forbidden(path.child("clusterIPs"), "may not be set for ExternalName services"));
            }
            if !list(spec, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden(path.child("ipFamilies"), "may not be set for ExternalName services"));
            }
            if get(spec, "ipFamilyPolicy").is_some() {
                errs.push(FieldError::forbidden(path.child("ipFamilyPolicy"), "may not be set for ExternalName services"));
            }
            let cname = string(spec, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(FieldError::required(path.child("externalName"), ""));
            } else {
                push_msgs(errs, &path.child("externalName"), cname, names::dns1123_subdomain(cname));
            }
        }
        _ => {}
    }
    if svc_type == "LoadBalancer" {
        for (i, p) in ports.iter().enumerate() {
            if int_of(p, "port") == Some(10250) {
                errs.push(FieldError::invalid(path.child("ports").index(i), json!(10250), "may not expose port 10250 externally since it is used by kubelet"));
            }
        }
    }
    let mut port_names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        port(p, ports.len() > 1, &mut port_names, &path.child("ports").index(i), errs);
    }
    meta::labels(spec.get("selector"), &path.child("selector"), errs);
    match string(spec, "sessionAffinity") {
        "" => errs.push(FieldError::required(path.child("sessionAffinity"), "")),
        "None" => {
            if get(spec, "sessionAffinityConfig").is_some() {
                errs.push(FieldError::forbidden(path.child("sessionAffinityConfig"), "must not be set when session affinity is None"));
            }
        }
        "ClientIP" => {
            let p = path.child("sessionAffinityConfig").child("clientIP").child("timeoutSeconds");
            match spec.get("sessionAffinityConfig").and_then(|c| super::util::at(c, &["clientIP", "timeoutSeconds"])).and_then(as_int) {
                None => errs.push(FieldError::required(p, "")),
                Some(t) if !(1..=86400).contains(&t) => {
                    errs.push(FieldError::invalid(p, json!(t), "must be in the range (0, 86400]"))
                }
                Some(_) => {}
            }
        }
        other => errs.push(FieldError::not_supported(path.child("sessionAffinity"), json!(other), &["ClientIP", "None"])),
    }
    cluster_ips(spec, &path, errs);
    for (i, ip) in list(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        if ip.parse::<std::net::IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                path.child("externalIPs").index(i),
                json!(ip),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
    match svc_type {
        "" => errs.push(FieldError::required(path.child("type"), "")),
        t if !TYPES.contains(&t) => errs.push(FieldError::not_supported(path.child("type"), json!(t), TYPES)),
        _ => {}
    }
    node_ports(spec, svc_type, &path, errs);
    let mut seen = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let key = (string(p, "protocol").to_string(), int_of(p, "port").unwrap_or(0));
        if seen.contains(&key) {
            let raw = format!(
                "core.ServicePort{{Name:\"\", Protocol:\"{}\", AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                key.0, key.1
            );
            errs.push(FieldError::new(ErrorType::Duplicate, path.child("ports").index(i), None, raw));
        } else {
            seen.push(key);
        }
    }
    traffic_policies(spec, svc_type, &path, errs);
}

fn port(p: &Value, require_name: bool, names_seen: &mut HashSet<String>, path: &Path, errs: &mut Errs) {
    let name = string(p, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else if !name.is_empty() {
        push_msgs(errs, &path.child("name"), name, names::dns1123_label(name));
        if !names_seen.insert(name.to_string()) {
            errs.push(FieldError::duplicate(path.child("name"), json!(name)));
        }
    }
    let port = int_of(p, "port").unwrap_or(0);
    for msg in port_num_errors(port) {
        errs.push(FieldError::invalid(path.child("port"), json!(port), msg));
    }
    match string(p, "protocol") {
        "" => errs.push(FieldError::required(path.child("protocol"), "")),
        proto if !PROTOCOLS.contains(&proto) => errs.push(FieldError::not_supported(path.child("protocol"), json!(proto), PROTOCOLS)),
        _ => {}
    }
    port_num_or_name(get(p, "targetPort"), &path.child("targetPort"), errs);
    if let Some(ap) = str_of(p, "appProtocol") {
        push_msgs(errs, &path.child("appProtocol"), ap, names::qualified_name(ap));
    }
}

fn node_ports(spec: &Value, svc_type: &str, path: &Path, errs: &mut Errs) {
    let mut seen = Vec::new();
    for (i, p) in list(spec, "ports").iter().enumerate() {
        let Some(np) = int_of(p, "nodePort").filter(|n| *n != 0) else { continue };
        let np_path = path.child("ports").index(i).child("nodePort");
        if svc_type == "ClusterIP" {
            errs.push(FieldError::forbidden(&np_path, "may not be used when `type` is 'ClusterIP'"));
            continue;
        }
        let key = (string(p, "protocol").to_string(), np);
        if seen.contains(&key) {
            errs.push(FieldError::duplicate(&np_path, json!(np)));
        } else {
            seen.push(key);
        }
    }
}

fn cluster_ips(spec: &Value, path: &Path, errs: &mut Errs) {
    let ips = list(spec, "clusterIPs");
    if let (Some(ip), Some(first)) = (str_of(spec, "clusterIP").filter(|s| !s.is_empty()), ips.first().and_then(Value::as_str)) {
        if ip != first {
            errs.push(FieldError::invalid(path.child("clusterIPs"), Value::Array(ips.to_vec()), "first value must match `clusterIP`"));
        }
    }
    let ip = cluster_ip(spec);
    if !ip.is_empty() && ip != "None" && ip.parse::<std::net::IpAddr>().is_err() {
        errs.push(FieldError::invalid(
            path.child("clusterIPs").index(0),
            json!(ip),
            "must be empty, 'None', or a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
    if let Some(policy) = str_of(spec, "ipFamilyPolicy") {
        const POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !POLICIES.contains(&policy) {
            errs.push(FieldError::not_supported(path.child("ipFamilyPolicy"), json!(policy), POLICIES));
        }
    }
    for (i, f) in list(spec, "ipFamilies").iter().enumerate() {
        let f = f.as_str().unwrap_or("");
        if !matches!(f, "IPv4" | "IPv6") {
            errs.push(FieldError::not_supported(path.child("ipFamilies").index(i), json!(f), &["IPv4", "IPv6"]));
        }
    }
}

fn traffic_policies(spec: &Value, svc_type: &str, path: &Path, errs: &mut Errs) {
    let externally_accessible = matches!(svc_type, "LoadBalancer" | "NodePort")
        || (svc_type == "ClusterIP" && !list(spec, "externalIPs").is_empty());
    match str_of(spec, "externalTrafficPolicy").unwrap_or("") {
        "" if externally_accessible => errs.push(FieldError::required(path.child("externalTrafficPolicy"), "")),
        "" => {}
        p if !externally_accessible => errs.push(FieldError::invalid(
            path.child("externalTrafficPolicy"),
            json!(p),
            "may only be set for externally-accessible services",
        )),
        "Cluster" | "Local" => {}
        p => errs.push(FieldError::not_supported(path.child("externalTrafficPolicy"), json!(p), &["Cluster", "Local"])),
    }
    match str_of(spec, "internalTrafficPolicy") {
        None if matches!(svc_type, "ClusterIP" | "NodePort" | "LoadBalancer") => {
            errs.push(FieldError::required(path.child("internalTrafficPolicy"), "must be specified"))
        }
        Some(p) if !matches!(p, "Cluster" | "Local") => {
            errs.push(FieldError::not_supported(path.child("internalTrafficPolicy"), json!(p), &["Cluster", "Local"]))
        }
        _ => {}
    }
    if let Some(hc) = int_of(spec, "healthCheckNodePort").filter(|n| *n != 0) {
        if !(svc_type == "LoadBalancer" && string(spec, "externalTrafficPolicy") == "Local") {
            errs.push(FieldError::invalid(
                path.child("healthCheckNodePort"),
                json!(hc),
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    }
}

/// The primary cluster IP cannot change (unless moving to or from
/// ExternalName). A client that leaves it out keeps the allocated one (the
/// API layer copies it over), so only an explicit different value counts.
fn update(spec: &Value, old: &Value, path: &Path, errs: &mut Errs) {
    if string(spec, "type") == "ExternalName" || string(old, "type") == "ExternalName" {
        return;
    }
    let (new_ip, old_ip) = (cluster_ip(spec), cluster_ip(old));
    if !new_ip.is_empty() && !old_ip.is_empty() && new_ip != old_ip {
        let ips = match list(spec, "clusterIPs") {
            [] => vec![json!(new_ip)],
            ips => ips.to_vec(),
        };
        errs.push(super::util::invalid_raw(
            &path.child("clusterIPs").index(0),
            &super::gorepr::string_slice(Some(&Value::Array(ips))),
            "may not change once set",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_error::aggregate;

    fn svc(spec: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": spec})
    }

    fn defaulted(mut spec: Value) -> Value {
        let defaults = json!({"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"});
        if let (Some(s), Some(d)) = (spec.as_object_mut(), defaults.as_object()) {
            for (k, v) in d {
                s.entry(k.clone()).or_insert(v.clone());
            }
        }
        spec
    }

    fn check(spec: Value, old: Option<Value>) -> String {
        let mut errs = Vec::new();
        service(&svc(defaulted(spec)), old.map(|o| svc(defaulted(o))).as_ref(), &mut errs);
        aggregate(&errs)
    }

    #[test]
    fn ports_required_unless_headless_or_external_name() {
        assert_eq!(check(json!({}), None), "spec.ports: Required value");
        assert_eq!(check(json!({"clusterIP": "None"}), None), "[]");
        assert_eq!(check(json!({"type": "ExternalName", "externalName": "example.com"}), None), "[]");
    }

    #[test]
    fn port_rules() {
        assert_eq!(
            check(json!({"ports": [{"port": 0, "protocol": "TCP", "targetPort": 80}]}), None),
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            check(json!({"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}, {"name": "b", "port": 81, "protocol": "TCP", "targetPort": 81}]}), None),
            "spec.ports[0].name: Required value"
        );
        assert_eq!(
            check(json!({"ports": [{"name": "a", "port": 80, "protocol": "TCP", "targetPort": 80}, {"name": "a", "port": 81, "protocol": "TCP", "targetPort": 81}]}), None),
            "spec.ports[1].name: Duplicate value: \"a\""
        );
        assert_eq!(
            check(json!({"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080}]}), None),
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
        );
    }

    #[test]
    fn type_must_be_supported() {
        assert_eq!(
            check(json!({"type": "Magic", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}), None),
            "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
        );
    }

    #[test]
    fn cluster_ip_is_immutable() {
        let old = json!({"clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"], "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]});
        let new = json!({"clusterIP": "10.0.0.6", "clusterIPs": ["10.0.0.6"], "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]});
        assert_eq!(check(new, Some(old.clone())), "spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.6\"}: may not change once set");
        let unset = json!({"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]});
        assert_eq!(check(unset, Some(old)), "[]");
    }
}
