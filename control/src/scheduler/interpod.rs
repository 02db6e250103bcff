//! Inter-pod affinity and anti-affinity: the pod's required terms and the
//! required anti-affinity of pods already placed (a filter), and preferred
//! terms both ways (a score). Topology domains are any node label.
//!
//! The counts are per (topology key, value) so preemption can take pods
//! away and put them back without recounting the cluster.

use super::cache::{Cache, NodeInfo};
use super::filters::{plugin, Code, Failure};
use super::labels::Labels;
use super::pod_info::PodInfo;
use std::collections::HashMap;

pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const REASON_EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";

type Pair = (String, String);

/// Counts for filtering one pod.
#[derive(Clone, Debug, Default)]
pub struct InterPodState {
    /// Placed pods matching all the pod's required affinity terms, per domain.
    affinity: HashMap<Pair, i64>,
    /// Placed pods matching one of the pod's required anti-affinity terms, per domain.
    anti: HashMap<Pair, i64>,
    /// Placed pods whose required anti-affinity terms select the pod, per domain.
    existing_anti: HashMap<Pair, i64>,
    /// The pod's own labels match all its affinity terms.
    self_affinity: bool,
}

fn matches_all(terms: &[super::pod_info::AffinityTerm], pod: &PodInfo, ns: &HashMap<String, Labels>) -> bool {
    terms.iter().all(|t| t.matches(pod, ns))
}

impl InterPodState {
    pub fn compute(pod: &PodInfo, cache: &Cache) -> InterPodState {
        let mut s = InterPodState { self_affinity: matches_all(&pod.affinity, pod, &cache.ns_labels), ..Default::default() };
        let own_terms = !pod.affinity.is_empty() || !pod.anti_affinity.is_empty();
        for node in cache.node_list() {
            if !own_terms && node.anti_affinity_pods == 0 {
                continue;
            }
            for other in &node.pods {
                s.update(pod, other, &node.labels, &cache.ns_labels, own_terms, 1);
            }
        }
        s
    }

    fn update(&mut self, pod: &PodInfo, other: &PodInfo, labels: &Labels, ns: &HashMap<String, Labels>, own_terms: bool, delta: i64) {
        let bump = |m: &mut HashMap<Pair, i64>, key: &str| {
            if let Some(v) = labels.get(key) {
                let e = m.entry((key.to_string(), v.clone())).or_insert(0);
                *e += delta;
                if *e == 0 {
                    m.remove(&(key.to_string(), v.clone()));
                }
            }
        };
        for t in &other.anti_affinity {
            if t.matches(pod, ns) {
                bump(&mut self.existing_anti, &t.topology_key);
            }
        }
        if !own_terms {
            return;
        }
        if !pod.affinity.is_empty() && matches_all(&pod.affinity, other, ns) {
            for t in &pod.affinity {
                bump(&mut self.affinity, &t.topology_key);
            }
        }
        for t in &pod.anti_affinity {
            if t.matches(other, ns) {
                bump(&mut self.anti, &t.topology_key);
            }
        }
    }

    /// Account for `other` appearing on (delta 1) or leaving (delta -1) a node with `labels`.
    pub fn change(&mut self, pod: &PodInfo, other: &PodInfo, labels: &Labels, ns: &HashMap<String, Labels>, delta: i64) {
        let own = !pod.affinity.is_empty() || !pod.anti_affinity.is_empty();
        self.update(pod, other, labels, ns, own, delta);
    }

    pub fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Failure> {
        if !pod.affinity.is_empty() {
            let mut exist = true;
            for t in &pod.affinity {
                match node.labels.get(&t.topology_key) {
                    None => return Err(Failure::new(Code::Unresolvable, plugin::INTER_POD, REASON_AFFINITY)),
                    Some(v) => {
                        if self.affinity.get(&(t.topology_key.clone(), v.clone())).copied().unwrap_or(0) <= 0 {
                            exist = false;
                        }
                    }
                }
            }
            // The first pod of a group with affinity to itself may go anywhere.
            let first_of_group = self.affinity.is_empty() && self.self_affinity;
            if !exist && !first_of_group {
                return Err(Failure::new(Code::Unresolvable, plugin::INTER_POD, REASON_AFFINITY));
            }
        }
        for t in &pod.anti_affinity {
            if let Some(v) = node.labels.get(&t.topology_key) {
                if self.anti.get(&(t.topology_key.clone(), v.clone())).copied().unwrap_or(0) > 0 {
                    return Err(Failure::new(Code::Unschedulable, plugin::INTER_POD, REASON_ANTI_AFFINITY));
                }
            }
        }
        if self.existing_anti.iter().any(|((k, v), n)| *n > 0 && node.labels.get(k) == Some(v)) {
            return Err(Failure::new(Code::Unschedulable, plugin::INTER_POD, REASON_EXISTING_ANTI_AFFINITY));
        }
        Ok(())
    }
}

/// Preferred (anti-)affinity both ways, and placed pods' required
/// affinity towards the pod (weight 1), summed per topology domain;
/// a node scores the sum over its labels, normalized to 0..=100.
pub fn scores(pod: &PodInfo, cache: &Cache, nodes: &[&NodeInfo]) -> Vec<i64> {
    let has_preferred = !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
    let ns = &cache.ns_labels;
    let mut domains: HashMap<Pair, i64> = HashMap::new();
    let mut add = |labels: &Labels, key: &str, w: i64| {
        if let Some(v) = labels.get(key) {
            *domains.entry((key.to_string(), v.clone())).or_insert(0) += w;
        }
    };
    for node in cache.node_list() {
        if !has_preferred && node.affinity_pods == 0 {
            continue;
        }
        for other in &node.pods {
            for (w, t) in &pod.preferred_affinity {
                if t.matches(other, ns) {
                    add(&node.labels, &t.topology_key, *w);
                }
            }
            for (w, t) in &pod.preferred_anti_affinity {
                if t.matches(other, ns) {
                    add(&node.labels, &t.topology_key, -*w);
                }
            }
            if !other.has_pod_affinity() {
                continue;
            }
            for t in &other.affinity {
                if t.matches(pod, ns) {
                    add(&node.labels, &t.topology_key, 1);
                }
            }
            for (w, t) in &other.preferred_affinity {
                if t.matches(pod, ns) {
                    add(&node.labels, &t.topology_key, *w);
                }
            }
            for (w, t) in &other.preferred_anti_affinity {
                if t.matches(pod, ns) {
                    add(&node.labels, &t.topology_key, -*w);
                }
            }
        }
    }
    if domains.is_empty() {
        return vec![0; nodes.len()];
    }
    let raw: Vec<i64> = nodes.iter().map(|n| domains.iter().filter(|((k, v), _)| n.labels.get(k) == Some(v)).map(|(_, w)| *w).sum()).collect();
    let (min, max) = (raw.iter().copied().min().unwrap_or(0), raw.iter().copied().max().unwrap_or(0));
    raw.iter().map(|s| if max > min { 100 * (s - min) / (max - min) } else { 0 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::pod_info::PriorityClasses;
    use serde_json::json;
    use std::sync::Arc;

    fn pod(name: &str, node: &str, labels: serde_json::Value, affinity: serde_json::Value) -> Arc<PodInfo> {
        let p = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [], "affinity": affinity},
        }))
        .expect("pod");
        Arc::new(PodInfo::new(Arc::new(p), &PriorityClasses::default()))
    }

    fn cluster() -> Cache {
        let mut c = Cache::default();
        for (n, zone) in [("n1", "a"), ("n2", "a"), ("n3", "b")] {
            c.set_node(crate::scheduler::cache::tests::node(n, "4", json!({"kubernetes.io/hostname": n, "zone": zone})));
        }
        c
    }

    fn term(kind: &str, required: bool, app: &str, key: &str) -> serde_json::Value {
        let t = json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key});
        if required {
            json!({kind: {"requiredDuringSchedulingIgnoredDuringExecution": [t]}})
        } else {
            json!({kind: {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm": t}]}})
        }
    }

    fn verdicts(c: &Cache, p: &PodInfo) -> Vec<Result<(), String>> {
        let s = InterPodState::compute(p, c);
        c.node_list().map(|n| s.filter(p, n).map_err(|f| f.reasons.join(","))).collect()
    }

    #[test]
    fn required_affinity_follows_matching_pods_by_zone() {
        let mut c = cluster();
        let p = pod("p", "", json!({"app": "web"}), term("podAffinity", true, "db", "zone"));
        // No db anywhere and the pod is not a db: nowhere.
        assert!(verdicts(&c, &p).iter().all(|v| v.as_ref().err().map(String::as_str) == Some(REASON_AFFINITY)));
        c.set_bound(pod("db", "n2", json!({"app": "db"}), json!({})));
        assert_eq!(verdicts(&c, &p), vec![Ok(()), Ok(()), Err(REASON_AFFINITY.to_string())]);
        // A pod matching its own affinity may start a group.
        let mut c = cluster();
        let first = pod("w", "", json!({"app": "web"}), term("podAffinity", true, "web", "zone"));
        assert!(verdicts(&c, &first).iter().all(|v| v.is_ok()));
        c.set_bound(pod("w0", "n3", json!({"app": "web"}), json!({})));
        assert_eq!(verdicts(&c, &first), vec![Err(REASON_AFFINITY.to_string()), Err(REASON_AFFINITY.to_string()), Ok(())]);
    }

    #[test]
    fn anti_affinity_both_ways() {
        let mut c = cluster();
        c.set_bound(pod("a1", "n1", json!({"app": "a"}), json!({})));
        let p = pod("p", "", json!({"app": "a"}), term("podAntiAffinity", true, "a", "kubernetes.io/hostname"));
        assert_eq!(verdicts(&c, &p), vec![Err(REASON_ANTI_AFFINITY.to_string()), Ok(()), Ok(())]);
        // A placed pod that repels app=b pods in its zone.
        c.set_bound(pod("guard", "n3", json!({"app": "g"}), term("podAntiAffinity", true, "b", "zone")));
        let b = pod("b", "", json!({"app": "b"}), json!({}));
        assert_eq!(verdicts(&c, &b), vec![Ok(()), Ok(()), Err(REASON_EXISTING_ANTI_AFFINITY.to_string())]);
        // Taking the pod away (preemption dry run) lifts it.
        let mut s = InterPodState::compute(&b, &c);
        let guard = pod("guard", "n3", json!({"app": "g"}), term("podAntiAffinity", true, "b", "zone"));
        let n3 = c.node("n3").expect("n3");
        s.change(&b, &guard, &n3.labels, &c.ns_labels, -1);
        assert!(s.filter(&b, n3).is_ok());
    }

    #[test]
    fn preferred_terms_score() {
        let mut c = cluster();
        c.set_bound(pod("db", "n3", json!({"app": "db"}), json!({})));
        let nodes: Vec<&NodeInfo> = c.node_list().collect();
        let near = pod("p", "", json!({}), term("podAffinity", false, "db", "zone"));
        assert_eq!(scores(&near, &c, &nodes), vec![0, 0, 100]);
        let far = pod("p", "", json!({}), term("podAntiAffinity", false, "db", "kubernetes.io/hostname"));
        assert_eq!(scores(&far, &c, &nodes), vec![100, 100, 0]);
        let plain = pod("p", "", json!({}), json!({}));
        assert_eq!(scores(&plain, &c, &nodes), vec![0, 0, 0]);
    }
}
