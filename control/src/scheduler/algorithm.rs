//! One scheduling decision: filter every node, score the feasible ones,
//! pick the best (ties go to the node with fewer pods, then round-robin).
//! Pure: works on the [`Cache`] only, so it is unit-tested without an API.

use super::cache::{Cache, NodeInfo};
use super::fit_error::FitError;
use super::filters::{self, plugin, Code, Failure};
use super::interpod::{self, InterPodState};
use super::pod_info::PodInfo;
use super::resources::Resources;
use super::scores;
use super::spread::{self, SpreadState};
use std::collections::HashSet;

pub const REASON_PREFILTER_NODE_AFFINITY: &str = "node(s) didn't satisfy plugin(s) [NodeAffinity]";

/// What is computed once per pod before looking at nodes.
#[derive(Clone, Debug, Default)]
pub struct CycleState {
    pub inter: InterPodState,
    pub spread: SpreadState,
    /// Node names the pod's node affinity restricts it to (by `metadata.name`).
    pub allowed: Option<HashSet<String>>,
}

impl CycleState {
    pub fn new(pod: &PodInfo, cache: &Cache) -> CycleState {
        let allowed = pod.required_node_terms.as_ref().and_then(|terms| {
            let mut names = HashSet::new();
            for t in terms {
                names.extend(t.names_in()?);
            }
            Some(names)
        });
        CycleState { inter: InterPodState::compute(pod, cache), spread: SpreadState::compute(pod, cache), allowed }
    }
}

/// Run the filters on one node, in upstream's order; the first failing
/// one gives the reasons. Pods nominated to the node with at least the
/// pod's priority count as if they were there.
pub fn filter_node(pod: &PodInfo, node: &NodeInfo, state: &CycleState, cache: &Cache) -> Result<(), Failure> {
    if let Some(allowed) = &state.allowed {
        if !allowed.contains(&node.name) {
            return Err(Failure::new(Code::Unresolvable, plugin::NODE_AFFINITY, REASON_PREFILTER_NODE_AFFINITY));
        }
    }
    filters::node_unschedulable(pod, node)?;
    filters::node_name(pod, node)?;
    filters::taint_toleration(pod, node)?;
    filters::node_affinity(pod, node)?;
    let nominated = if cache.has_nominations() { cache.nominated_on(&node.name, pod.priority, &pod.uid) } else { Vec::new() };
    filters::node_ports(pod, node, &nominated)?;
    let mut extra = Resources::default();
    for p in &nominated {
        extra.add(&p.requests.exact);
        extra.pods += 1;
    }
    filters::resources_fit(pod, node, &extra)?;
    state.spread.filter(node)?;
    state.inter.filter(pod, node)?;
    Ok(())
}

/// Weighted sum of the scores of each feasible node.
pub fn score(pod: &PodInfo, cache: &Cache, nodes: &[&NodeInfo]) -> Vec<i64> {
    let mut total = vec![0i64; nodes.len()];
    let mut add = |scores: Vec<i64>, weight: i64| {
        for (t, s) in total.iter_mut().zip(scores) {
            *t += s * weight;
        }
    };
    add(scores::taints(pod, nodes), scores::WEIGHT_TAINTS);
    add(scores::node_affinity(pod, nodes), scores::WEIGHT_NODE_AFFINITY);
    add(scores::least_allocated(pod, nodes), scores::WEIGHT_LEAST_ALLOCATED);
    add(scores::balanced(pod, nodes), scores::WEIGHT_BALANCED);
    add(spread::scores(pod, cache, nodes), scores::WEIGHT_SPREAD);
    add(interpod::scores(pod, cache, nodes), scores::WEIGHT_INTER_POD);
    total
}

/// Where `pod` should go, or why it fits nowhere. `turn` rotates among
/// equally good nodes.
pub fn schedule(cache: &Cache, pod: &PodInfo, turn: &mut usize) -> Result<String, FitError> {
    let num_nodes = cache.num_nodes();
    if num_nodes == 0 {
        return Err(FitError::default());
    }
    let state = CycleState::new(pod, cache);
    if let Some(node) = cache.nominated_node(&pod.uid).and_then(|n| cache.node(n)) {
        if filter_node(pod, node, &state, cache).is_ok() {
            return Ok(node.name.clone());
        }
    }
    let mut feasible: Vec<&NodeInfo> = Vec::new();
    let mut failures = Vec::new();
    for node in cache.node_list() {
        match filter_node(pod, node, &state, cache) {
            Ok(()) => feasible.push(node),
            Err(f) => failures.push((node.name.clone(), f)),
        }
    }
    match feasible.len() {
        0 => return Err(FitError { num_nodes, failures, post_filter: None }),
        1 => return Ok(feasible[0].name.clone()),
        _ => {}
    }
    let totals = score(pod, cache, &feasible);
    let best = totals.iter().copied().max().unwrap_or(0);
    let top: Vec<&NodeInfo> = feasible.iter().zip(&totals).filter(|(_, s)| **s == best).map(|(n, _)| *n).collect();
    let fewest = top.iter().map(|n| n.pods.len()).min().unwrap_or(0);
    let top: Vec<&NodeInfo> = top.into_iter().filter(|n| n.pods.len() == fewest).collect();
    *turn = turn.wrapping_add(1);
    Ok(top[*turn % top.len()].name.clone())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scheduler::pod_info::PriorityClasses;
    use serde_json::json;
    use std::sync::Arc;

    pub fn pod_json(name: &str, v: serde_json::Value) -> Arc<PodInfo> {
        let mut p = json!({"metadata": {"name": name, "namespace": "default", "uid": name}, "spec": {"containers": []}});
        if let (Some(o), Some(extra)) = (p.as_object_mut(), v.as_object()) {
            for (k, val) in extra {
                match (k.as_str(), o.get_mut(k)) {
                    ("metadata" | "spec", Some(cur)) => {
                        if let (Some(c), Some(e)) = (cur.as_object_mut(), val.as_object()) {
                            c.extend(e.clone());
                        }
                    }
                    _ => {
                        o.insert(k.clone(), val.clone());
                    }
                }
            }
        }
        Arc::new(PodInfo::new(Arc::new(serde_json::from_value(p).expect("pod")), &PriorityClasses::default()))
    }

    pub fn cluster(nodes: &[(&str, &str, serde_json::Value)]) -> Cache {
        let mut c = Cache::default();
        for (name, cpu, spec) in nodes {
            let mut labels = json!({"kubernetes.io/hostname": name});
            if let Some(l) = spec.get("labels").and_then(|l| l.as_object()) {
                if let Some(m) = labels.as_object_mut() {
                    m.extend(l.clone());
                }
            }
            let n = json!({
                "metadata": {"name": name, "labels": labels},
                "spec": {"taints": spec.get("taints").cloned().unwrap_or(json!([])), "unschedulable": spec.get("unschedulable").cloned().unwrap_or(json!(false))},
                "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110", "ephemeral-storage": "50Gi"}},
            });
            c.set_node(Arc::new(serde_json::from_value(n).expect("node")));
        }
        c
    }

    fn cpu(name: &str, cpu: &str) -> Arc<PodInfo> {
        pod_json(name, json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}))
    }

    #[test]
    fn the_whole_message_for_a_pod_that_fits_nowhere() {
        let c = cluster(&[
            ("n1", "1", json!({})),
            ("n2", "8", json!({"taints": [{"key": "key", "value": "value", "effect": "NoSchedule"}]})),
            ("n3", "8", json!({"taints": [{"key": "key", "value": "value", "effect": "NoSchedule"}]})),
        ]);
        let err = schedule(&c, &cpu("p", "2"), &mut 0).expect_err("fits nowhere");
        assert_eq!(err.message(), "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {key: value}.");
        assert_eq!(schedule(&Cache::default(), &cpu("p", "2"), &mut 0).map_err(|e| e.message()), Err("no nodes available to schedule pods".to_string()));
    }

    #[test]
    fn filters_run_in_upstream_order() {
        // Cordoned and tainted and too small: the cordon is what is reported.
        let c = cluster(&[("n1", "1", json!({"unschedulable": true, "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}))]);
        let err = schedule(&c, &cpu("p", "2"), &mut 0).expect_err("fits nowhere");
        assert_eq!(err.message(), "0/1 nodes are available: 1 node(s) were unschedulable.");
    }

    #[test]
    fn picks_the_least_loaded_and_spreads_ties() {
        let mut c = cluster(&[("n1", "4", json!({})), ("n2", "4", json!({})), ("n3", "4", json!({}))]);
        c.assume(cpu("a", "2"), "n1");
        let mut turn = 0;
        let first = schedule(&c, &cpu("p", "100m"), &mut turn).expect("fits");
        assert_ne!(first, "n1");
        let mut seen: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
        for i in 0..45 {
            let p = cpu(&format!("q{i}"), "100m");
            let n = schedule(&c, &p, &mut turn).expect("fits");
            c.assume(p, &n);
            *seen.entry(n).or_insert(0) += 1;
        }
        // All three used; the loaded node gets fewer.
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen["n1"] < seen["n2"] && seen["n1"] < seen["n3"], "{seen:?}");
        assert!(seen["n2"].abs_diff(seen["n3"]) <= 1, "{seen:?}");
    }

    #[test]
    fn assumed_pods_prevent_overcommit() {
        let mut c = cluster(&[("n1", "2", json!({})), ("n2", "2", json!({}))]);
        for i in 0..4 {
            let p = cpu(&format!("p{i}"), "1");
            let n = schedule(&c, &p, &mut 0).expect("fits");
            c.assume(p, &n);
        }
        assert!(c.node_list().all(|n| n.requested.milli_cpu == 2000));
        let err = schedule(&c, &cpu("p5", "1"), &mut 0).expect_err("full");
        assert_eq!(err.message(), "0/2 nodes are available: 2 Insufficient cpu.");
    }

    #[test]
    fn prefers_preferred_affinity_and_avoids_prefer_no_schedule() {
        let c = cluster(&[
            ("n1", "4", json!({"labels": {"disk": "ssd"}, "taints": [{"key": "soft", "effect": "PreferNoSchedule"}]})),
            ("n2", "4", json!({"labels": {"disk": "hdd"}})),
            ("n3", "4", json!({"labels": {"disk": "ssd"}})),
        ]);
        let p = pod_json("p", json!({"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}
        ]}}}}));
        for _ in 0..5 {
            assert_eq!(schedule(&c, &p, &mut 0).as_deref(), Ok("n3"));
        }
    }

    #[test]
    fn match_fields_restrict_nodes_up_front() {
        let c = cluster(&[("n1", "1", json!({})), ("n2", "1", json!({})), ("n3", "1", json!({}))]);
        let p = pod_json("p", json!({"spec": {
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}
            ]}}}
        }}));
        let err = schedule(&c, &p, &mut 0).expect_err("too big");
        assert_eq!(err.message(), "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity].");
    }

    #[test]
    fn nominated_pods_hold_their_room() {
        let mut c = cluster(&[("n1", "2", json!({}))]);
        let high = pod_json("high", json!({"spec": {"priority": 100, "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}));
        c.nominate(high.clone(), "n1");
        let low = cpu("low", "1");
        assert_eq!(schedule(&c, &low, &mut 0).map_err(|e| e.message()), Err("0/1 nodes are available: 1 Insufficient cpu.".to_string()));
        assert_eq!(schedule(&c, &high, &mut 0).as_deref(), Ok("n1"));
    }

    /// 100 nodes, 3000 replica pods (default spreading by owner applies):
    /// the decisions alone must not be what limits binding to 500 pods/s.
    #[test]
    fn decides_thousands_of_pods_per_second() {
        let nodes: Vec<(String, serde_json::Value)> = (0..100).map(|i| (format!("node-{i:03}"), json!({"labels": {"topology.kubernetes.io/zone": format!("z{}", i % 3)}}))).collect();
        let refs: Vec<(&str, &str, serde_json::Value)> = nodes.iter().map(|(n, l)| (n.as_str(), "32", l.clone())).collect();
        let mut c = cluster(&refs);
        let pods: Vec<Arc<PodInfo>> = (0..3000)
            .map(|i| {
                pod_json(&format!("p{i}"), json!({
                    "metadata": {"labels": {"app": "bench"}, "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": format!("rs{}", i % 10), "controller": true}]},
                    "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}}}]}
                }))
            })
            .collect();
        let start = std::time::Instant::now();
        let mut turn = 0;
        for p in pods {
            let n = schedule(&c, &p, &mut turn).expect("fits");
            c.assume(p, &n);
        }
        let rate = 3000.0 / start.elapsed().as_secs_f64();
        eprintln!("scheduling decisions: {rate:.0} pods/s");
        let counts: Vec<usize> = c.node_list().map(|n| n.pods.len()).collect();
        assert!(counts.iter().all(|n| (25..=35).contains(n)), "{counts:?}");
        // Debug build on a shared machine; release is an order of magnitude faster.
        assert!(rate > 250.0, "{rate:.0} pods/s");
    }

    #[test]
    fn anti_affinity_spreads_replicas_one_per_node() {
        let mut c = cluster(&[("n1", "4", json!({})), ("n2", "4", json!({})), ("n3", "4", json!({}))]);
        let replica = |i: usize| {
            pod_json(&format!("r{i}"), json!({"metadata": {"labels": {"app": "r"}}, "spec": {"affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "r"}}, "topologyKey": "kubernetes.io/hostname"}]
            }}}}))
        };
        let mut nodes = std::collections::BTreeSet::new();
        for i in 0..3 {
            let p = replica(i);
            let n = schedule(&c, &p, &mut 0).expect("fits");
            c.assume(p, &n);
            nodes.insert(n);
        }
        assert_eq!(nodes.len(), 3);
        let err = schedule(&c, &replica(3), &mut 0).expect_err("no room");
        assert_eq!(err.message(), "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.");
    }
}
