//! What a Service's type asks for (a cluster IP, node ports, a health
//! check node port), and the fix-ups of an update before it is validated:
//! fields the new type no longer uses are dropped when the client left them
//! as they were, and allocated values the client left out are kept.

use serde_json::{json, Value};

fn spec(svc: &Value) -> &Value {
    svc.get("spec").unwrap_or(&Value::Null)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

pub fn svc_type(svc: &Value) -> &str {
    match s(spec(svc), "type") {
        "" => "ClusterIP",
        t => t,
    }
}

/// The primary cluster IP (`clusterIP`, else `clusterIPs[0]`), "" when unset.
pub fn cluster_ip(svc: &Value) -> &str {
    let sp = spec(svc);
    match s(sp, "clusterIP") {
        "" => sp.get("clusterIPs").and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_str).unwrap_or(""),
        ip => ip,
    }
}

pub fn needs_cluster_ip(svc: &Value) -> bool {
    svc_type(svc) != "ExternalName"
}

pub fn needs_node_ports(svc: &Value) -> bool {
    matches!(svc_type(svc), "NodePort" | "LoadBalancer")
}

/// Ports without a nodePort get one (a LoadBalancer may opt out).
pub fn should_allocate_node_ports(svc: &Value) -> bool {
    match svc_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => spec(svc).get("allocateLoadBalancerNodePorts").and_then(Value::as_bool).unwrap_or(true),
        _ => false,
    }
}

pub fn needs_health_check_node_port(svc: &Value) -> bool {
    svc_type(svc) == "LoadBalancer" && s(spec(svc), "externalTrafficPolicy") == "Local"
}

fn externally_accessible(svc: &Value) -> bool {
    needs_node_ports(svc)
        || (svc_type(svc) == "ClusterIP" && spec(svc).get("externalIPs").and_then(Value::as_array).is_some_and(|a| !a.is_empty()))
}

pub fn ports(svc: &Value) -> &[Value] {
    spec(svc).get("ports").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

pub fn int(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn node_ports(svc: &Value) -> Vec<i64> {
    ports(svc).iter().map(|p| int(p, "nodePort")).collect()
}

fn spec_mut(svc: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    svc.get_mut("spec").and_then(Value::as_object_mut)
}

/// Upstream's `dropTypeDependentFields`: on a type change, wipe what the
/// new type does not use, when the client did not change it too (then
/// validation tells them).
pub fn drop_type_dependent_fields(old: &Value, new: &mut Value) {
    let (o, n) = (spec(old).clone(), spec(new).clone());
    let same = |k: &str| o.get(k) == n.get(k);
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        let same_ips = cluster_ip(old) == cluster_ip(new) && (n.get("clusterIPs").is_none() || same("clusterIPs"));
        if let Some(m) = spec_mut(new) {
            if same_ips {
                m.remove("clusterIP");
                m.remove("clusterIPs");
            }
            if same("ipFamilies") {
                m.remove("ipFamilies");
            }
            if same("ipFamilyPolicy") {
                m.remove("ipFamilyPolicy");
            }
        }
    }
    if needs_node_ports(old) && !needs_node_ports(new) && node_ports(old) == node_ports(new) {
        if let Some(ports) = spec_mut(new).and_then(|m| m.get_mut("ports")).and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                p.remove("nodePort");
            }
        }
    }
    if needs_health_check_node_port(old) && !needs_health_check_node_port(new) && same("healthCheckNodePort") {
        if let Some(m) = spec_mut(new) {
            m.remove("healthCheckNodePort");
        }
    }
    if svc_type(old) == "LoadBalancer" && svc_type(new) != "LoadBalancer" {
        if let Some(m) = spec_mut(new) {
            if n.get("allocateLoadBalancerNodePorts").is_some() && same("allocateLoadBalancerNodePorts") {
                m.remove("allocateLoadBalancerNodePorts");
            }
            if same("loadBalancerClass") {
                m.remove("loadBalancerClass");
            }
        }
    }
    if externally_accessible(old) && !externally_accessible(new) && same("externalTrafficPolicy") {
        if let Some(m) = spec_mut(new) {
            m.remove("externalTrafficPolicy");
        }
    }
    if svc_type(new) == "ExternalName" && svc_type(old) != "ExternalName" && same("internalTrafficPolicy") {
        if let Some(m) = spec_mut(new) {
            m.remove("internalTrafficPolicy");
        }
    }
    if svc_type(new) != "LoadBalancer" {
        if let Some(st) = new.get_mut("status").and_then(Value::as_object_mut) {
            if st.contains_key("loadBalancer") {
                st.insert("loadBalancer".into(), json!({}));
            }
        }
    }
}

/// Upstream's `patchAllocatedValues`: a client that leaves out the cluster
/// IP, node ports or health check node port keeps the allocated ones.
pub fn patch_allocated_values(old: &Value, new: &mut Value) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        let old_ip = s(spec(old), "clusterIP").to_string();
        let old_ips = spec(old).get("clusterIPs").cloned();
        if let Some(m) = spec_mut(new) {
            if m.get("clusterIP").and_then(Value::as_str).unwrap_or("").is_empty() && !old_ip.is_empty() {
                m.insert("clusterIP".into(), json!(old_ip));
            }
            let empty = m.get("clusterIPs").and_then(Value::as_array).is_none_or(Vec::is_empty);
            if let (true, Some(ips)) = (empty, old_ips.filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))) {
                m.insert("clusterIPs".into(), ips);
            }
        }
    }
    if needs_node_ports(old) && needs_node_ports(new) {
        let old_ports: Vec<i64> = node_ports(old).into_iter().filter(|p| *p != 0).collect();
        let used: Vec<i64> = node_ports(new).into_iter().filter(|p| *p != 0 && old_ports.contains(p)).collect();
        let by_name: Vec<(String, i64)> = ports(old).iter().map(|p| (s(p, "name").to_string(), int(p, "nodePort"))).collect();
        if let Some(ports) = spec_mut(new).and_then(|m| m.get_mut("ports")).and_then(Value::as_array_mut) {
            for p in ports.iter_mut() {
                if int(p, "nodePort") != 0 {
                    continue;
                }
                let name = s(p, "name").to_string();
                if let Some((_, np)) = by_name.iter().find(|(n, _)| *n == name) {
                    if *np != 0 && !used.contains(np) {
                        if let Some(o) = p.as_object_mut() {
                            o.insert("nodePort".into(), json!(np));
                        }
                    }
                }
            }
        }
    }
    if needs_health_check_node_port(old) && needs_health_check_node_port(new) && int(spec(new), "healthCheckNodePort") == 0 {
        let hc = int(spec(old), "healthCheckNodePort");
        if let (true, Some(m)) = (hc != 0, spec_mut(new)) {
            m.insert("healthCheckNodePort".into(), json!(hc));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaving_node_port_type_drops_unchanged_node_ports_and_traffic_policy() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.43.1.2", "externalTrafficPolicy": "Cluster",
            "ports": [{"port": 80, "nodePort": 30080}]}});
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        drop_type_dependent_fields(&old, &mut new);
        assert_eq!(new["spec"]["ports"], json!([{"port": 80}]));
        assert!(new["spec"].get("externalTrafficPolicy").is_none());
        assert_eq!(new["spec"]["clusterIP"], json!("10.43.1.2"));
    }

    #[test]
    fn to_external_name_drops_the_cluster_ip() {
        let old = json!({"spec": {"type": "ClusterIP", "clusterIP": "10.43.1.2", "clusterIPs": ["10.43.1.2"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}});
        let mut new = old.clone();
        new["spec"]["type"] = json!("ExternalName");
        drop_type_dependent_fields(&old, &mut new);
        assert_eq!(new["spec"], json!({"type": "ExternalName"}));
    }

    #[test]
    fn allocated_values_left_out_are_kept() {
        let old = json!({"spec": {"type": "LoadBalancer", "clusterIP": "10.43.1.2", "clusterIPs": ["10.43.1.2"],
            "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000,
            "ports": [{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 30081}]}});
        let mut new = json!({"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
            "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30080}]}});
        patch_allocated_values(&old, &mut new);
        assert_eq!(new["spec"]["clusterIP"], json!("10.43.1.2"));
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.43.1.2"]));
        assert_eq!(new["spec"]["healthCheckNodePort"], json!(31000));
        // 30080 is now used by port b, so port a does not get it back.
        assert!(new["spec"]["ports"][0].get("nodePort").is_none());
        assert_eq!(new["spec"]["ports"][1]["nodePort"], json!(30080));
    }
}
