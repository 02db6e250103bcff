//! Preemption: when a pod fits nowhere, find a node where evicting pods of
//! lower priority makes it fit, evicting as few and as unimportant pods as
//! possible. Pure decision logic; the runner deletes the victims and
//! nominates the node.

use super::algorithm::{filter_node, CycleState};
use super::cache::{Cache, NodeInfo};
use super::filters::{plugin, Code, Failure};
use super::fit_error::{nodes_unavailable, FitError, NOT_HELPFUL, NO_VICTIMS};
use super::pod_info::PodInfo;
use std::cmp::Reverse;
use std::sync::Arc;

pub const NOT_ELIGIBLE_NEVER: &str = "preemption: not eligible due to preemptionPolicy=Never.";
pub const NOT_ELIGIBLE_TERMINATING: &str = "preemption: not eligible due to a terminating pod on the nominated node.";

#[derive(Clone, Debug)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
}

#[derive(Clone, Debug)]
pub enum Preemption {
    /// Evict these pods from this node, then the pod fits there.
    Candidate(Candidate),
    /// Preemption cannot help; this goes after the filter reasons.
    Failed(String),
}

fn change(state: &mut CycleState, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, cache: &Cache, delta: i64) {
    state.inter.change(pod, other, &node.labels, &cache.ns_labels, delta);
    state.spread.change(pod, other, node, delta);
}

/// The fewest, least important lower-priority pods to evict from `node`.
fn select_victims(cache: &Cache, pod: &PodInfo, node: &NodeInfo, state: &CycleState) -> Result<Vec<Arc<PodInfo>>, Failure> {
    let mut potential: Vec<Arc<PodInfo>> = node.pods.iter().filter(|p| p.priority < pod.priority).cloned().collect();
    if potential.is_empty() {
        return Err(Failure::new(Code::Unresolvable, plugin::OTHER, NO_VICTIMS));
    }
    let mut n = node.clone();
    let mut st = state.clone();
    for v in &potential {
        n.remove_pod(&v.uid);
        change(&mut st, pod, v, &n, cache, -1);
    }
    filter_node(pod, &n, &st, cache)?;
    // Most important first: they get the first chance to stay.
    potential.sort_by_key(|p| (Reverse(p.priority), p.start_time));
    let mut victims = Vec::new();
    for v in potential {
        n.add_pod(v.clone());
        change(&mut st, pod, &v, &n, cache, 1);
        if filter_node(pod, &n, &st, cache).is_err() {
            n.remove_pod(&v.uid);
            change(&mut st, pod, &v, &n, cache, -1);
            victims.push(v);
        }
    }
    if victims.is_empty() {
        return Err(Failure::new(Code::Unresolvable, plugin::OTHER, NO_VICTIMS));
    }
    Ok(victims)
}

/// Order of preference between candidates (smaller is better): lowest
/// highest-priority victim, lowest sum of priorities, fewest victims, the
/// most recently started important victims.
fn rank(c: &Candidate) -> (i32, i64, usize, Reverse<jiff::Timestamp>) {
    let highest = c.victims.iter().map(|v| v.priority).max().unwrap_or(i32::MIN);
    let sum: i64 = c.victims.iter().map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1).sum();
    let earliest = c.victims.iter().filter(|v| v.priority == highest).map(|v| v.start_time).min().unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    (highest, sum, c.victims.len(), Reverse(earliest))
}

/// Try to make room for `pod`, which failed with `fit`.
pub fn preempt(cache: &Cache, pod: &PodInfo, fit: &FitError) -> Preemption {
    if pod.preempt_never {
        return Preemption::Failed(NOT_ELIGIBLE_NEVER.into());
    }
    if let Some(nominated) = cache.nominated_node(&pod.uid) {
        let unresolvable = fit.failures.iter().any(|(n, f)| n == nominated && f.code == Code::Unresolvable);
        let waiting = cache.node(nominated).map(|n| n.pods.iter().any(|p| p.priority < pod.priority && p.terminating)).unwrap_or(false);
        if !unresolvable && waiting {
            return Preemption::Failed(NOT_ELIGIBLE_TERMINATING.into());
        }
    }
    let state = CycleState::new(pod, cache);
    let mut statuses = Vec::new();
    let mut candidates = Vec::new();
    for (name, failure) in &fit.failures {
        let node = match cache.node(name) {
            Some(n) if failure.code == Code::Unschedulable => n,
            _ => {
                statuses.push(Failure::new(Code::Unresolvable, plugin::OTHER, NOT_HELPFUL));
                continue;
            }
        };
        match select_victims(cache, pod, node, &state) {
            Ok(victims) => candidates.push(Candidate { node: name.clone(), victims }),
            Err(f) => statuses.push(f),
        }
    }
    match candidates.into_iter().min_by_key(rank) {
        Some(c) => Preemption::Candidate(c),
        None => Preemption::Failed(format!("preemption: {}", nodes_unavailable(fit.num_nodes, statuses.iter()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::algorithm::schedule;
    use crate::scheduler::algorithm::tests::{cluster, pod_json};
    use serde_json::json;

    fn pod(name: &str, priority: i32, cpu: &str, node: &str) -> Arc<PodInfo> {
        pod_json(name, json!({"spec": {"priority": priority, "nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}))
    }

    fn outcome(c: &Cache, p: &PodInfo) -> Result<(String, Vec<String>), String> {
        let fit = schedule(c, p, &mut 0).expect_err("must not fit");
        match preempt(c, p, &fit) {
            Preemption::Candidate(c) => {
                let mut v: Vec<String> = c.victims.iter().map(|v| v.name.clone()).collect();
                v.sort();
                Ok((c.node, v))
            }
            Preemption::Failed(msg) => Err(format!("{} {msg}", crate::scheduler::fit_error::nodes_unavailable(fit.num_nodes, fit.failures.iter().map(|(_, f)| f)))),
        }
    }

    #[test]
    fn evicts_the_fewest_lowest_priority_pods() {
        let mut c = cluster(&[("n1", "4", json!({})), ("n2", "4", json!({}))]);
        for p in [pod("a", 10, "2", "n1"), pod("b", 10, "2", "n1"), pod("c", 5, "1", "n2"), pod("d", 5, "1", "n2"), pod("e", 50, "2", "n2")] {
            c.set_bound(p);
        }
        // Needs 3 cpu: n1 would lose a+b (at most prio 10), n2 e (prio 50) and d: n1.
        assert_eq!(outcome(&c, &pod("p", 100, "3", "")), Ok(("n1".into(), vec!["a".into(), "b".into()])));
        // Needs 2 cpu: n2 evicts c and d (prio 5), n1 one pod of prio 10: the lower priority wins.
        assert_eq!(outcome(&c, &pod("p", 100, "2", "")), Ok(("n2".into(), vec!["c".into(), "d".into()])));
        // Needs 1 cpu: one victim of prio 5 on n2.
        let one = outcome(&c, &pod("p", 100, "1", "")).expect("candidate");
        assert_eq!(one.0, "n2");
        assert_eq!(one.1.len(), 1);
    }

    #[test]
    fn explains_when_preemption_cannot_help() {
        let mut c = cluster(&[
            ("n1", "2", json!({})),
            ("n2", "2", json!({"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]})),
            ("n3", "1", json!({})),
        ]);
        c.set_bound(pod("big", 1000, "2", "n1"));
        c.set_bound(pod("small", 0, "1", "n3"));
        assert_eq!(
            outcome(&c, &pod("p", 100, "2", "")),
            Err("0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 Insufficient cpu. \
                 preemption: 0/3 nodes are available: 1 Insufficient cpu, 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
                .to_string())
        );
        let never = pod_json("n", json!({"spec": {"priority": 100, "preemptionPolicy": "Never", "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}));
        assert_eq!(
            outcome(&c, &never),
            Err("0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.".to_string())
        );
    }

    #[test]
    fn waits_for_victims_already_terminating() {
        let mut c = cluster(&[("n1", "2", json!({}))]);
        let victim = pod_json("v", json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}, "spec": {"priority": 0, "nodeName": "n1", "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}));
        c.set_bound(victim);
        let p = pod("p", 100, "2", "");
        c.nominate(p.clone(), "n1");
        let fit = schedule(&c, &p, &mut 0).expect_err("victim still there");
        assert!(matches!(preempt(&c, &p, &fit), Preemption::Failed(m) if m == NOT_ELIGIBLE_TERMINATING));
    }

    #[test]
    fn anti_affinity_victims_count() {
        let mut c = cluster(&[("n1", "4", json!({}))]);
        c.set_bound(pod_json("low", json!({"metadata": {"labels": {"app": "x"}}, "spec": {"priority": 1, "nodeName": "n1", "containers": []}})));
        let p = pod_json("p", json!({"spec": {"priority": 10, "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname"}
        ]}}}}));
        assert_eq!(outcome(&c, &p), Ok(("n1".into(), vec!["low".into()])));
    }
}
