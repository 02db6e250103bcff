//! Node scores that need no cluster-wide state, each normalized to
//! 0..=100 over the feasible nodes: untolerated `PreferNoSchedule` taints
//! (fewer is better), preferred node affinity, least-allocated and
//! balanced resource use (with default requests for pods asking none).

use super::cache::NodeInfo;
use super::labels::tolerates;
use super::pod_info::PodInfo;

/// Upstream's default weights of the score plugins.
pub const WEIGHT_TAINTS: i64 = 3;
pub const WEIGHT_NODE_AFFINITY: i64 = 2;
pub const WEIGHT_SPREAD: i64 = 2;
pub const WEIGHT_INTER_POD: i64 = 2;
pub const WEIGHT_LEAST_ALLOCATED: i64 = 1;
pub const WEIGHT_BALANCED: i64 = 1;

/// Untolerated `PreferNoSchedule` taints, reversed: none scores 100.
pub fn taints(pod: &PodInfo, nodes: &[&NodeInfo]) -> Vec<i64> {
    let prefer: Vec<_> = pod.tolerations.iter().filter(|t| matches!(t.effect.as_deref(), None | Some("") | Some("PreferNoSchedule"))).collect();
    let raw: Vec<i64> = nodes
        .iter()
        .map(|n| n.taints.iter().filter(|t| t.effect == "PreferNoSchedule" && !prefer.iter().any(|tol| tolerates(tol, t))).count() as i64)
        .collect();
    let max = raw.iter().copied().max().unwrap_or(0);
    raw.iter().map(|c| if max == 0 { 100 } else { 100 - c * 100 / max }).collect()
}

/// Sum of the weights of matching preferred terms, scaled to the best node.
pub fn node_affinity(pod: &PodInfo, nodes: &[&NodeInfo]) -> Vec<i64> {
    if pod.preferred_node_terms.is_empty() {
        return vec![0; nodes.len()];
    }
    let raw: Vec<i64> = nodes
        .iter()
        .map(|n| pod.preferred_node_terms.iter().filter(|(_, t)| t.matches(&n.name, &n.labels)).map(|(w, _)| *w).sum())
        .collect();
    let max = raw.iter().copied().max().unwrap_or(0);
    raw.iter().map(|s| if max > 0 { s * 100 / max } else { 0 }).collect()
}

fn fractions(pod: &PodInfo, n: &NodeInfo) -> [(i64, i64); 2] {
    [
        (n.non_zero_cpu + pod.requests.non_zero_cpu, n.allocatable.milli_cpu),
        (n.non_zero_memory + pod.requests.non_zero_memory, n.allocatable.memory),
    ]
}

/// Share of CPU and memory left after placing the pod (more is better).
pub fn least_allocated(pod: &PodInfo, nodes: &[&NodeInfo]) -> Vec<i64> {
    nodes
        .iter()
        .map(|n| {
            let parts = fractions(pod, n).map(|(req, alloc)| if alloc <= 0 || req > alloc { 0 } else { (alloc - req) * 100 / alloc });
            parts.iter().sum::<i64>() / parts.len() as i64
        })
        .collect()
}

/// CPU and memory used in similar proportions (closer is better).
pub fn balanced(pod: &PodInfo, nodes: &[&NodeInfo]) -> Vec<i64> {
    nodes
        .iter()
        .map(|n| {
            let f = fractions(pod, n).map(|(req, alloc)| if alloc <= 0 { 1.0 } else { (req as f64 / alloc as f64).min(1.0) });
            let std = (f[0] - f[1]).abs() / 2.0;
            ((1.0 - std) * 100.0) as i64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::cache::Cache;
    use crate::scheduler::pod_info::PriorityClasses;
    use serde_json::json;
    use std::sync::Arc;

    fn pod(spec: serde_json::Value) -> PodInfo {
        let p = serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": spec})).expect("pod");
        PodInfo::new(Arc::new(p), &PriorityClasses::default())
    }

    fn cache(nodes: serde_json::Value) -> Cache {
        let mut c = Cache::default();
        for n in nodes.as_array().into_iter().flatten() {
            c.set_node(Arc::new(serde_json::from_value(n.clone()).expect("node")));
        }
        c
    }

    #[test]
    fn prefer_no_schedule_taints_lower_the_score() {
        let c = cache(json!([
            {"metadata": {"name": "a"}},
            {"metadata": {"name": "b"}, "spec": {"taints": [{"key": "k", "effect": "PreferNoSchedule"}]}},
            {"metadata": {"name": "c"}, "spec": {"taints": [{"key": "k", "effect": "PreferNoSchedule"}, {"key": "j", "effect": "PreferNoSchedule"}]}},
        ]));
        let nodes: Vec<&NodeInfo> = c.node_list().collect();
        assert_eq!(taints(&pod(json!({"containers": []})), &nodes), vec![100, 50, 0]);
        let tolerant = pod(json!({"containers": [], "tolerations": [{"key": "k", "operator": "Exists"}]}));
        assert_eq!(taints(&tolerant, &nodes), vec![100, 100, 0]);
    }

    #[test]
    fn preferred_node_affinity_weights() {
        let c = cache(json!([
            {"metadata": {"name": "a", "labels": {"disk": "ssd", "zone": "z1"}}},
            {"metadata": {"name": "b", "labels": {"disk": "ssd"}}},
            {"metadata": {"name": "c", "labels": {}}},
        ]));
        let nodes: Vec<&NodeInfo> = c.node_list().collect();
        let p = pod(json!({"containers": [], "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 30, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
            {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}},
        ]}}}));
        assert_eq!(node_affinity(&p, &nodes), vec![100, 75, 0]);
    }

    #[test]
    fn least_allocated_and_balanced() {
        let mut c = cache(json!([
            {"metadata": {"name": "a"}, "status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "10"}}},
            {"metadata": {"name": "b"}, "status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "10"}}},
        ]));
        let busy = pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}]}));
        c.assume(Arc::new(busy), "a");
        let nodes: Vec<&NodeInfo> = c.node_list().collect();
        let p = pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}));
        let la = least_allocated(&p, &nodes);
        // a: cpu 1/4 left (25), memory 2/4 left (50) -> 37; b: 75, 75 -> 75.
        assert_eq!(la, vec![37, 75]);
        let b = balanced(&p, &nodes);
        assert!(b[1] > b[0], "{b:?}");
        // Pods asking nothing still count the defaults (100m, 200Mi).
        let none = pod(json!({"containers": [{"name": "c"}]}));
        assert!(least_allocated(&none, &nodes)[1] < 100);
    }
}
