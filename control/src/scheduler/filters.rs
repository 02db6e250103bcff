//! The per-node filters that need no cluster-wide state, in upstream's
//! order (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity,
//! NodePorts, NodeResourcesFit), with the reasons users see in
//! `0/N nodes are available: ...`.

use super::cache::NodeInfo;
use super::labels::tolerated;
use super::pod_info::{HostPort, PodInfo};
use super::resources::Resources;
use k8s_openapi::api::core::v1::Taint;
use std::collections::HashMap;

/// How bad a node's failure is: `Unresolvable` ones cannot be fixed by
/// evicting pods, so preemption skips those nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Unschedulable,
    Unresolvable,
}

/// Which filter failed (bits), so a waiting pod is retried only on the
/// cluster changes that may help it.
pub mod plugin {
    pub const NODE_UNSCHEDULABLE: u16 = 1;
    pub const NODE_NAME: u16 = 1 << 1;
    pub const TAINTS: u16 = 1 << 2;
    pub const NODE_AFFINITY: u16 = 1 << 3;
    pub const PORTS: u16 = 1 << 4;
    pub const RESOURCES: u16 = 1 << 5;
    pub const SPREAD: u16 = 1 << 6;
    pub const INTER_POD: u16 = 1 << 7;
    /// No node at all, or preemption waiting for victims to go.
    pub const OTHER: u16 = 1 << 8;
}

/// Why a node cannot take the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: Code,
    pub reasons: Vec<String>,
    pub plugin: u16,
}

impl Failure {
    pub fn new(code: Code, plugin: u16, reason: impl Into<String>) -> Failure {
        Failure { code, reasons: vec![reason.into()], plugin }
    }
}

pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";
pub const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const REASON_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";

/// `spec.unschedulable` (cordon), unless the pod tolerates the
/// `node.kubernetes.io/unschedulable:NoSchedule` taint.
pub fn node_unschedulable(pod: &PodInfo, node: &NodeInfo) -> Result<(), Failure> {
    if !node.unschedulable {
        return Ok(());
    }
    let taint = Taint { key: "node.kubernetes.io/unschedulable".into(), value: None, effect: "NoSchedule".into(), time_added: None };
    if tolerated(&pod.tolerations, &taint) {
        return Ok(());
    }
    Err(Failure::new(Code::Unresolvable, plugin::NODE_UNSCHEDULABLE, REASON_UNSCHEDULABLE))
}

pub fn node_name(pod: &PodInfo, node: &NodeInfo) -> Result<(), Failure> {
    if pod.node_name.is_empty() || pod.node_name == node.name {
        return Ok(());
    }
    Err(Failure::new(Code::Unresolvable, plugin::NODE_NAME, REASON_NODE_NAME))
}

/// The first NoSchedule/NoExecute taint the pod does not tolerate.
pub fn taint_toleration(pod: &PodInfo, node: &NodeInfo) -> Result<(), Failure> {
    match untolerated_taint(pod, node) {
        None => Ok(()),
        Some(t) => Err(Failure::new(
            Code::Unresolvable,
            plugin::TAINTS,
            format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value.as_deref().unwrap_or("")),
        )),
    }
}

pub fn untolerated_taint<'a>(pod: &PodInfo, node: &'a NodeInfo) -> Option<&'a Taint> {
    node.taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|t| !tolerated(&pod.tolerations, t))
}

pub fn node_affinity(pod: &PodInfo, node: &NodeInfo) -> Result<(), Failure> {
    if pod.matches_node_selector(&node.name, &node.labels) {
        return Ok(());
    }
    Err(Failure::new(Code::Unresolvable, plugin::NODE_AFFINITY, REASON_NODE_AFFINITY))
}

fn port_conflict(used: &HashMap<HostPort, u32>, want: &HostPort) -> bool {
    if want.ip == "0.0.0.0" {
        used.keys().any(|u| u.protocol == want.protocol && u.port == want.port)
    } else {
        used.contains_key(want) || used.contains_key(&HostPort { ip: "0.0.0.0".into(), ..want.clone() })
    }
}

/// Host ports already taken on the node (by pods there, and by pods
/// nominated there: `extra`).
pub fn node_ports(pod: &PodInfo, node: &NodeInfo, extra: &[&std::sync::Arc<PodInfo>]) -> Result<(), Failure> {
    if pod.ports.is_empty() {
        return Ok(());
    }
    let conflict = |used: &HashMap<HostPort, u32>| pod.ports.iter().any(|p| port_conflict(used, p));
    let mut bad = conflict(&node.ports);
    if !bad && extra.iter().any(|p| !p.ports.is_empty()) {
        let mut used = node.ports.clone();
        for p in extra.iter().flat_map(|p| p.ports.iter()) {
            *used.entry(p.clone()).or_insert(0) += 1;
        }
        bad = conflict(&used);
    }
    if bad {
        return Err(Failure::new(Code::Unschedulable, plugin::PORTS, REASON_PORTS));
    }
    Ok(())
}

/// Requests against allocatable minus what is already requested there
/// (plus `extra`, the requests of pods nominated to the node). Every
/// shortage is a reason.
pub fn resources_fit(pod: &PodInfo, node: &NodeInfo, extra: &Resources) -> Result<(), Failure> {
    let mut reasons = Vec::new();
    let req = &pod.requests.exact;
    let used_pods = node.requested.pods + extra.pods;
    if used_pods + 1 > node.allocatable.pods {
        reasons.push(REASON_TOO_MANY_PODS.to_string());
    }
    if !req.is_zero() {
        let short = |want: i64, alloc: i64, used: i64| want > 0 && want > alloc - used;
        if short(req.milli_cpu, node.allocatable.milli_cpu, node.requested.milli_cpu + extra.milli_cpu) {
            reasons.push("Insufficient cpu".into());
        }
        if short(req.memory, node.allocatable.memory, node.requested.memory + extra.memory) {
            reasons.push("Insufficient memory".into());
        }
        if short(req.ephemeral_storage, node.allocatable.ephemeral_storage, node.requested.ephemeral_storage + extra.ephemeral_storage) {
            reasons.push("Insufficient ephemeral-storage".into());
        }
        for (name, want) in &req.scalar {
            let alloc = node.allocatable.scalar.get(name).copied().unwrap_or(0);
            let used = node.requested.scalar.get(name).copied().unwrap_or(0) + extra.scalar.get(name).copied().unwrap_or(0);
            if short(*want, alloc, used) {
                reasons.push(format!("Insufficient {name}"));
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Failure { code: Code::Unschedulable, reasons, plugin: plugin::RESOURCES })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::pod_info::PriorityClasses;
    use serde_json::json;
    use std::sync::Arc;

    pub fn pod(spec: serde_json::Value) -> PodInfo {
        let p = serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": spec})).expect("pod");
        PodInfo::new(Arc::new(p), &PriorityClasses::default())
    }

    fn node(v: serde_json::Value) -> NodeInfo {
        let mut c = crate::scheduler::cache::Cache::default();
        let n: k8s_openapi::api::core::v1::Node = serde_json::from_value(v).expect("node");
        c.set_node(Arc::new(n));
        let n = c.node_list().next().cloned();
        n.expect("node")
    }

    fn plain_node() -> NodeInfo {
        node(json!({"metadata": {"name": "n1", "labels": {"zone": "a", "kubernetes.io/hostname": "n1"}},
            "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "2", "ephemeral-storage": "1Gi", "example.com/gpu": "1"}}}))
    }

    #[test]
    fn cordoned_nodes_refuse_unless_tolerated() {
        let mut n = plain_node();
        n.unschedulable = true;
        let p = pod(json!({"containers": []}));
        assert_eq!(node_unschedulable(&p, &n).map_err(|f| (f.code, f.reasons)), Err((Code::Unresolvable, vec![REASON_UNSCHEDULABLE.to_string()])));
        let tol = pod(json!({"containers": [], "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}));
        assert!(node_unschedulable(&tol, &n).is_ok());
        assert!(node_unschedulable(&p, &plain_node()).is_ok());
    }

    #[test]
    fn node_name_must_match_when_set() {
        assert!(node_name(&pod(json!({"containers": []})), &plain_node()).is_ok());
        assert!(node_name(&pod(json!({"containers": [], "nodeName": "n1"})), &plain_node()).is_ok());
        assert_eq!(node_name(&pod(json!({"containers": [], "nodeName": "n2"})), &plain_node()).map_err(|f| f.reasons), Err(vec![REASON_NODE_NAME.to_string()]));
    }

    #[test]
    fn taints_need_tolerations_except_prefer_no_schedule() {
        let n = node(json!({"metadata": {"name": "n1"}, "spec": {"taints": [
            {"key": "soft", "effect": "PreferNoSchedule"},
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
        ]}}));
        let p = pod(json!({"containers": []}));
        assert_eq!(taint_toleration(&p, &n).map_err(|f| (f.code, f.reasons)), Err((Code::Unresolvable, vec!["node(s) had untolerated taint {dedicated: gpu}".to_string()])));
        let some = pod(json!({"containers": [], "tolerations": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}));
        assert_eq!(taint_toleration(&some, &n).map_err(|f| f.reasons), Err(vec!["node(s) had untolerated taint {node.kubernetes.io/not-ready: }".to_string()]));
        let all = pod(json!({"containers": [], "tolerations": [{"operator": "Exists"}]}));
        assert!(taint_toleration(&all, &n).is_ok());
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let n = plain_node();
        assert!(node_affinity(&pod(json!({"containers": [], "nodeSelector": {"zone": "a"}})), &n).is_ok());
        let f = node_affinity(&pod(json!({"containers": [], "nodeSelector": {"zone": "b"}})), &n).map_err(|f| (f.code, f.reasons));
        assert_eq!(f, Err((Code::Unresolvable, vec![REASON_NODE_AFFINITY.to_string()])));
        let aff = |op: &str, vals: serde_json::Value| {
            pod(json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": op, "values": vals}]}
            ]}}}}))
        };
        assert!(node_affinity(&aff("In", json!(["a", "b"])), &n).is_ok());
        assert!(node_affinity(&aff("NotIn", json!(["a"])), &n).is_err());
        assert!(node_affinity(&aff("Exists", json!([])), &n).is_ok());
        assert!(node_affinity(&aff("DoesNotExist", json!([])), &n).is_err());
        let by_field = pod(json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
        ]}}}}));
        assert!(node_affinity(&by_field, &n).is_ok());
    }

    #[test]
    fn host_ports_conflict_by_protocol_ip_and_port() {
        let mut n = plain_node();
        n.ports.insert(HostPort { protocol: "TCP".into(), ip: "10.0.0.1".into(), port: 80 }, 1);
        let p = |ip: &str, proto: &str| pod(json!({"containers": [{"name": "c", "ports": [{"containerPort": 1, "hostPort": 80, "hostIP": ip, "protocol": proto}]}]}));
        assert_eq!(node_ports(&p("", "TCP"), &n, &[]).map_err(|f| f.reasons), Err(vec![REASON_PORTS.to_string()]));
        assert!(node_ports(&p("10.0.0.1", "TCP"), &n, &[]).is_err());
        assert!(node_ports(&p("10.0.0.2", "TCP"), &n, &[]).is_ok());
        assert!(node_ports(&p("", "UDP"), &n, &[]).is_ok());
        n.ports.insert(HostPort { protocol: "UDP".into(), ip: "0.0.0.0".into(), port: 80 }, 1);
        assert!(node_ports(&p("10.0.0.9", "UDP"), &n, &[]).is_err());
        let nominated = Arc::new(p("10.0.0.2", "TCP"));
        assert!(node_ports(&p("10.0.0.2", "TCP"), &n, &[&nominated]).is_err());
    }

    #[test]
    fn resources_every_shortage_listed() {
        let mut n = plain_node();
        let big = pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "3", "memory": "2Gi", "ephemeral-storage": "2Gi", "example.com/gpu": "2"}}}]}));
        assert_eq!(
            resources_fit(&big, &n, &Resources::default()).map_err(|f| (f.code, f.reasons)),
            Err((Code::Unschedulable, vec![
                "Insufficient cpu".to_string(),
                "Insufficient memory".into(),
                "Insufficient ephemeral-storage".into(),
                "Insufficient example.com/gpu".into()
            ]))
        );
        let small = pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}));
        assert!(resources_fit(&small, &n, &Resources::default()).is_ok());
        n.requested.milli_cpu = 1500;
        assert!(resources_fit(&small, &n, &Resources::default()).is_err());
        n.requested.milli_cpu = 0;
        let extra = Resources { milli_cpu: 1500, ..Default::default() };
        assert!(resources_fit(&small, &n, &extra).is_err());
        n.requested.pods = 2;
        assert_eq!(
            resources_fit(&pod(json!({"containers": []})), &n, &Resources::default()).map_err(|f| f.reasons),
            Err(vec![REASON_TOO_MANY_PODS.to_string()])
        );
    }
}
