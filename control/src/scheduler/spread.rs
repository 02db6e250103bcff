//! Pod topology spread: `DoNotSchedule` constraints filter nodes whose
//! domain would exceed `maxSkew`; `ScheduleAnyway` ones (and, for pods
//! with a controller and no constraints of their own, the system default
//! spreading over hostname and zone) score emptier domains higher.

use super::cache::{Cache, NodeInfo};
use super::filters::{plugin, untolerated_taint, Code, Failure};
use super::pod_info::{PodInfo, SpreadConstraint};
use std::collections::{BTreeMap, HashMap};

pub const REASON_SPREAD: &str = "node(s) didn't match pod topology spread constraints";
pub const REASON_SPREAD_LABEL: &str = "node(s) didn't match pod topology spread constraints (missing required label)";

const HOSTNAME: &str = "kubernetes.io/hostname";
const ZONE: &str = "topology.kubernetes.io/zone";

fn counts_on(pod: &PodInfo, c: &SpreadConstraint, node: &NodeInfo) -> i64 {
    node.pods.iter().filter(|p| p.namespace == pod.namespace && !p.terminating && c.selector.matches(&p.labels)).count() as i64
}

/// Whether a node's domain counts for constraint `c` (node inclusion policies).
fn included(pod: &PodInfo, c: &SpreadConstraint, node: &NodeInfo) -> bool {
    (!c.honor_node_affinity || pod.matches_node_selector(&node.name, &node.labels)) && (!c.honor_taints || untolerated_taint(pod, node).is_none())
}

#[derive(Clone, Debug)]
struct HardConstraint {
    c: SpreadConstraint,
    counts: HashMap<String, i64>,
    min: i64,
    self_match: bool,
}

impl HardConstraint {
    fn refresh_min(&mut self) {
        self.min = if (self.counts.len() as i64) < self.c.min_domains { 0 } else { self.counts.values().copied().min().unwrap_or(0) };
    }
}

/// Matching pods per domain for the pod's `DoNotSchedule` constraints.
#[derive(Clone, Debug, Default)]
pub struct SpreadState {
    hard: Vec<HardConstraint>,
}

impl SpreadState {
    pub fn compute(pod: &PodInfo, cache: &Cache) -> SpreadState {
        let mut hard: Vec<HardConstraint> = pod
            .spread
            .iter()
            .filter(|c| c.hard)
            .map(|c| HardConstraint { c: c.clone(), counts: HashMap::new(), min: 0, self_match: c.selector.matches(&pod.labels) })
            .collect();
        if hard.is_empty() {
            return SpreadState::default();
        }
        for node in cache.node_list() {
            if !hard.iter().all(|h| node.labels.contains_key(&h.c.topology_key)) {
                continue;
            }
            for h in hard.iter_mut() {
                if !included(pod, &h.c, node) {
                    continue;
                }
                let value = node.labels.get(&h.c.topology_key).cloned().unwrap_or_default();
                *h.counts.entry(value).or_insert(0) += counts_on(pod, &h.c, node);
            }
        }
        for h in hard.iter_mut() {
            h.refresh_min();
        }
        SpreadState { hard }
    }

    /// Account for `other` appearing on (1) or leaving (-1) `node`.
    pub fn change(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, delta: i64) {
        if other.namespace != pod.namespace || other.terminating || !self.hard.iter().all(|h| node.labels.contains_key(&h.c.topology_key)) {
            return;
        }
        for h in self.hard.iter_mut() {
            if included(pod, &h.c, node) && h.c.selector.matches(&other.labels) {
                if let Some(v) = node.labels.get(&h.c.topology_key) {
                    *h.counts.entry(v.clone()).or_insert(0) += delta;
                }
                h.refresh_min();
            }
        }
    }

    pub fn filter(&self, node: &NodeInfo) -> Result<(), Failure> {
        for h in &self.hard {
            let Some(value) = node.labels.get(&h.c.topology_key) else {
                return Err(Failure::new(Code::Unresolvable, plugin::SPREAD, REASON_SPREAD_LABEL));
            };
            let matching = h.counts.get(value).copied().unwrap_or(0);
            if matching + i64::from(h.self_match) - h.min > h.c.max_skew {
                return Err(Failure::new(Code::Unschedulable, plugin::SPREAD, REASON_SPREAD));
            }
        }
        Ok(())
    }
}

enum Counter<'a> {
    Selector(&'a SpreadConstraint),
    /// System default: pods of the same controller.
    Owner(&'a str),
}

/// Scores (0..=100) for `nodes` from `ScheduleAnyway` constraints.
pub fn scores(pod: &PodInfo, cache: &Cache, nodes: &[&NodeInfo]) -> Vec<i64> {
    let soft: Vec<&SpreadConstraint> = pod.spread.iter().filter(|c| !c.hard).collect();
    let mut constraints: Vec<(String, i64, Counter)> = soft.iter().map(|c| (c.topology_key.clone(), c.max_skew, Counter::Selector(c))).collect();
    let system_default = pod.spread.is_empty();
    if system_default {
        if let Some(owner) = pod.controller_uid.as_deref() {
            constraints.push((HOSTNAME.into(), 3, Counter::Owner(owner)));
            constraints.push((ZONE.into(), 5, Counter::Owner(owner)));
        }
    }
    if constraints.is_empty() {
        return vec![0; nodes.len()];
    }
    let ignored: Vec<bool> = nodes.iter().map(|n| !system_default && constraints.iter().any(|(k, _, _)| !n.labels.contains_key(k))).collect();
    let count = |counter: &Counter, n: &NodeInfo| -> Option<i64> {
        match counter {
            Counter::Selector(c) => included(pod, c, n).then(|| counts_on(pod, c, n)),
            Counter::Owner(o) => Some(i64::from(n.owners.get(*o).copied().unwrap_or(0))),
        }
    };
    let mut raw = vec![0f64; nodes.len()];
    for (key, skew, counter) in &constraints {
        if key == HOSTNAME {
            // One domain per node: no need to add up over the cluster.
            let domains = nodes.iter().zip(&ignored).filter(|(n, ig)| !**ig && n.labels.contains_key(key)).count();
            let weight = ((domains + 2) as f64).ln();
            for (i, n) in nodes.iter().enumerate() {
                if n.labels.contains_key(key) {
                    raw[i] += count(counter, n).unwrap_or(0) as f64 * weight + (*skew - 1) as f64;
                }
            }
            continue;
        }
        let mut per_domain: BTreeMap<&str, i64> = BTreeMap::new();
        for (n, ig) in nodes.iter().zip(&ignored) {
            if let (Some(v), false) = (n.labels.get(key), *ig) {
                per_domain.insert(v.as_str(), 0);
            }
        }
        let weight = ((per_domain.len() + 2) as f64).ln();
        for n in cache.node_list() {
            let Some(v) = n.labels.get(key) else { continue };
            if let Some(slot) = per_domain.get_mut(v.as_str()) {
                *slot += count(counter, n).unwrap_or(0);
            }
        }
        for (i, n) in nodes.iter().enumerate() {
            if let Some(v) = n.labels.get(key) {
                raw[i] += per_domain.get(v.as_str()).copied().unwrap_or(0) as f64 * weight + (*skew - 1) as f64;
            }
        }
    }
    let raw: Vec<i64> = raw.iter().map(|s| s.round() as i64).collect();
    let considered = || raw.iter().zip(&ignored).filter(|(_, ig)| !**ig).map(|(s, _)| *s);
    let (min, max) = (considered().min().unwrap_or(0), considered().max().unwrap_or(0));
    raw.iter()
        .zip(&ignored)
        .map(|(s, ig)| {
            if *ig {
                0
            } else if max == 0 {
                100
            } else {
                100 * (max + min - s) / max
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::pod_info::PriorityClasses;
    use serde_json::json;
    use std::sync::Arc;

    fn pod(name: &str, node: &str, spread: serde_json::Value) -> Arc<PodInfo> {
        let p = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name, "labels": {"app": "s"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs1", "controller": true}]},
            "spec": {"nodeName": node, "containers": [], "topologySpreadConstraints": spread},
        }))
        .expect("pod");
        Arc::new(PodInfo::new(Arc::new(p), &PriorityClasses::default()))
    }

    fn constraint(key: &str, when: &str) -> serde_json::Value {
        json!([{"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": when, "labelSelector": {"matchLabels": {"app": "s"}}}])
    }

    fn cluster() -> Cache {
        let mut c = Cache::default();
        for (n, zone) in [("n1", Some("a")), ("n2", Some("b")), ("n3", Some("b")), ("n4", None)] {
            let labels = match zone {
                Some(z) => json!({"kubernetes.io/hostname": n, "zone": z}),
                None => json!({"kubernetes.io/hostname": n}),
            };
            c.set_node(crate::scheduler::cache::tests::node(n, "4", labels));
        }
        c
    }

    #[test]
    fn do_not_schedule_keeps_skew() {
        let mut c = cluster();
        let p = pod("p", "", constraint("zone", "DoNotSchedule"));
        let verdicts = |c: &Cache| {
            let s = SpreadState::compute(&p, c);
            c.node_list().map(|n| s.filter(n).map_err(|f| f.reasons[0].clone())).collect::<Vec<_>>()
        };
        assert_eq!(verdicts(&c), vec![Ok(()), Ok(()), Ok(()), Err(REASON_SPREAD_LABEL.to_string())]);
        c.set_bound(pod("x1", "n2", json!([])));
        // zone a: 0, zone b: 1 -> b would be 2-0 > 1.
        assert_eq!(verdicts(&c)[..3], [Ok(()), Err(REASON_SPREAD.to_string()), Err(REASON_SPREAD.to_string())]);
        c.set_bound(pod("x2", "n1", json!([])));
        assert_eq!(verdicts(&c)[..3], [Ok(()), Ok(()), Ok(())]);
        // Preemption dry run: taking x2 away brings the skew back.
        let mut s = SpreadState::compute(&p, &c);
        let n1 = c.node("n1").expect("n1").clone();
        s.change(&p, &pod("x2", "n1", json!([])), &n1, -1);
        assert!(s.filter(c.node("n2").expect("n2")).is_err());
    }

    #[test]
    fn schedule_anyway_prefers_emptier_domains() {
        let mut c = cluster();
        c.set_bound(pod("x1", "n1", json!([])));
        c.set_bound(pod("x2", "n1", json!([])));
        c.set_bound(pod("x3", "n2", json!([])));
        let nodes: Vec<&NodeInfo> = c.node_list().collect();
        let p = pod("p", "", constraint("kubernetes.io/hostname", "ScheduleAnyway"));
        let s = scores(&p, &c, &nodes);
        assert!(s[2] > s[1] && s[1] > s[0], "{s:?}");
        assert_eq!(s[2], s[3]);
        // System default spreading by owner, for pods without constraints.
        let d = scores(&pod("p", "", json!(null)), &c, &nodes);
        assert!(d[2] > d[1] && d[1] > d[0], "{d:?}");
    }
}
