//! What a DaemonSet sync does to its pods, decided from the cached state:
//! the core loop (upstream `manage`: a pod on every eligible node, none
//! elsewhere, failed and surplus pods removed) and the rolling update
//! (upstream `rollingUpdate`, with maxUnavailable or maxSurge).
//!
//! Pure functions; the controller carries the plan out.

use super::eligibility::Eligibility;
use super::history::HASH_LABEL;
use crate::controllers::util::{is_pod_available, is_pod_ready, pod_phase};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The label upstream still puts on daemon pods (from the DaemonSet's
/// `deprecated.daemonset.template.generation` annotation).
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// One node as the plan sees it.
#[derive(Debug, Clone)]
pub struct NodeState {
    pub name: String,
    pub eligibility: Eligibility,
}

/// The DaemonSet's pods by the node they are for.
pub type PodsByNode<'a> = BTreeMap<String, Vec<&'a Pod>>;

/// The parts of the DaemonSet the plan depends on.
#[derive(Debug, Clone)]
pub struct Settings {
    pub hash: String,
    pub template_generation: Option<String>,
    pub min_ready_seconds: i32,
    pub now: jiff::Timestamp,
    /// `None` for OnDelete.
    pub rolling: Option<Rolling>,
}

#[derive(Debug, Clone)]
pub struct Rolling {
    pub max_unavailable: IntOrString,
    pub max_surge: IntOrString,
}

impl Settings {
    /// Upstream `IsPodUpdated`: the hash label, or the template generation, matches.
    pub fn is_updated(&self, pod: &Pod) -> bool {
        let labels = pod.metadata.labels.as_ref();
        let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
        (!self.hash.is_empty() && label(HASH_LABEL) == Some(self.hash.as_str()))
            || (self.template_generation.is_some() && label(TEMPLATE_GENERATION_LABEL) == self.template_generation.as_deref())
    }

    fn available(&self, pod: &Pod) -> bool {
        is_pod_available(pod, self.min_ready_seconds, self.now)
    }

    /// maxSurge > 0 (upstream `AllowsSurge`).
    pub fn allows_surge(&self) -> bool {
        self.rolling.as_ref().map(|r| scaled(&r.max_surge, 1, true) > 0).unwrap_or(false)
    }
}

/// Upstream `GetScaledValueFromIntOrPercent`; a malformed value counts as 0.
pub fn scaled(v: &IntOrString, total: i32, round_up: bool) -> i32 {
    match v {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let Some(pct) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else { return 0 };
            let x = pct * i64::from(total);
            let r = if round_up { (x + 99).div_euclid(100) } else { x.div_euclid(100) };
            i32::try_from(r).unwrap_or(i32::MAX)
        }
    }
}

fn deleting(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn scheduled(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).map(|n| !n.is_empty()).unwrap_or(false)
}

/// Upstream `podByCreationTimestampAndPhase`: scheduled pods first, then
/// oldest first, then by name.
pub fn sort_pods(pods: &mut [&Pod]) {
    pods.sort_by(|a, b| {
        scheduled(b)
            .cmp(&scheduled(a))
            .then_with(|| a.metadata.creation_timestamp.as_ref().map(|t| t.0).cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0)))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// What the core loop wants done.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Manage {
    /// Nodes to create a daemon pod for.
    pub create_on: Vec<String>,
    /// Pods to delete.
    pub delete: Vec<String>,
    /// Failed pods (pod, node): delete them unless in back-off, and say so.
    pub failed: Vec<(String, String)>,
}

/// The core loop over all nodes (`pods` includes deleted and finished pods).
pub fn manage(nodes: &[NodeState], pods: &PodsByNode<'_>, s: &Settings) -> Manage {
    let mut out = Manage::default();
    let surge = s.allows_surge();
    for node in nodes {
        let on_node: &[&Pod] = pods.get(&node.name).map(Vec::as_slice).unwrap_or(&[]);
        let exists = !on_node.is_empty();
        let e = node.eligibility;
        if e.should_run && !exists {
            out.create_on.push(node.name.clone());
        } else if e.should_continue_running {
            let mut running: Vec<&Pod> = Vec::new();
            for pod in on_node.iter().copied().filter(|p| !deleting(p)) {
                match pod_phase(pod) {
                    "Failed" => out.failed.push((name(pod), node.name.clone())),
                    "Succeeded" => out.delete.push(name(pod)),
                    _ => running.push(pod),
                }
            }
            sort_pods(&mut running);
            if !surge {
                out.delete.extend(running.iter().skip(1).map(|p| name(p)));
                continue;
            }
            if running.len() <= 1 {
                if running.is_empty() && e.should_run {
                    out.create_on.push(node.name.clone());
                }
                continue;
            }
            // Surging: keep the oldest new pod and, while that is not yet
            // available, the oldest old pod when it is ready.
            let (mut oldest_new, mut oldest_old): (Option<&Pod>, Option<&Pod>) = (None, None);
            for pod in running {
                let slot = if s.is_updated(pod) { &mut oldest_new } else { &mut oldest_old };
                if slot.is_none() {
                    *slot = Some(pod);
                } else {
                    out.delete.push(name(pod));
                }
            }
            if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
                if !is_pod_ready(old) || s.available(new) {
                    out.delete.push(name(old));
                }
            }
        } else if exists {
            out.delete.extend(on_node.iter().filter(|p| !deleting(p)).map(|p| name(p)));
        }
    }
    // Unscheduled pods for nodes that are gone would wait forever.
    for (node, on_node) in pods {
        if nodes.iter().any(|n| &n.name == node) {
            continue;
        }
        out.delete.extend(on_node.iter().filter(|p| !scheduled(p) && !deleting(p)).map(|p| name(p)));
    }
    out
}

/// The pods of one node split into the updated one and the old one; None
/// when there are more than one of either (the core loop cleans up first).
fn updated_and_old<'a>(pods: &[&'a Pod], s: &Settings) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for pod in pods.iter().copied().filter(|p| !deleting(p)) {
        let slot = if s.is_updated(pod) { &mut new } else { &mut old };
        if slot.is_some() {
            return None;
        }
        *slot = Some(pod);
    }
    Some((new, old))
}

/// What a rolling update step wants done.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Update {
    pub delete: Vec<String>,
    pub create_on: Vec<String>,
}

/// One rolling-update step. `pods` excludes finished pods being deleted.
pub fn rolling_update(nodes: &[NodeState], pods: &PodsByNode<'_>, s: &Settings) -> Update {
    let Some(rolling) = &s.rolling else { return Update::default() };
    let mut by_node: BTreeMap<&str, Vec<&Pod>> = pods.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let mut desired = 0;
    for n in nodes.iter().filter(|n| n.eligibility.should_run) {
        desired += 1;
        by_node.entry(n.name.as_str()).or_default();
    }
    let mut max_unavailable = scaled(&rolling.max_unavailable, desired, true);
    let max_surge = scaled(&rolling.max_surge, desired, true);
    if desired > 0 && max_unavailable == 0 && max_surge == 0 {
        max_unavailable = 1;
    }
    let should_run = |node: &str| nodes.iter().find(|n| n.name == node).map(|n| n.eligibility.should_run).unwrap_or(false);
    let mut out = Update::default();

    if max_surge == 0 {
        let mut unavailable = 0;
        let mut replace_now: Vec<String> = Vec::new();
        let mut candidates: Vec<String> = Vec::new();
        for pods in by_node.values() {
            let Some((new, old)) = updated_and_old(pods, s) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new), None) => {
                    if !s.available(new) {
                        unavailable += 1;
                    }
                }
                (None, Some(old)) => {
                    if !s.available(old) {
                        replace_now.push(name(old));
                    } else if unavailable < max_unavailable {
                        candidates.push(name(old));
                    }
                }
            }
        }
        let room = usize::try_from((max_unavailable - unavailable).max(0)).unwrap_or(0).min(candidates.len());
        out.delete = replace_now;
        out.delete.extend(candidates.into_iter().take(room));
        return out;
    }

    let mut delete_now: Vec<String> = Vec::new();
    let mut should_not_run: Vec<String> = Vec::new();
    let mut allowed_new: Vec<String> = Vec::new();
    let mut candidate_new: Vec<String> = Vec::new();
    let (mut surging, mut available) = (0, 0);
    for (node, pods) in &by_node {
        let Some((new, old)) = updated_and_old(pods, s) else {
            surging += 1;
            continue;
        };
        if let Some(p) = old.or(new) {
            if s.available(p) {
                available += 1;
            }
        }
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) => {
                if !s.available(old) {
                    if should_run(node) {
                        allowed_new.push(node.to_string());
                    } else {
                        delete_now.push(name(old));
                    }
                } else if !should_run(node) {
                    should_not_run.push(name(old));
                } else if surging < max_surge {
                    candidate_new.push(node.to_string());
                }
            }
            (Some(new), Some(old)) => {
                if s.available(new) {
                    delete_now.push(name(old));
                } else {
                    surging += 1;
                }
            }
        }
    }
    let room = usize::try_from((max_surge - surging).max(0)).unwrap_or(0).min(candidate_new.len());
    out.create_on = allowed_new;
    out.create_on.extend(candidate_new.into_iter().take(room));
    if !should_not_run.is_empty() {
        let unavailable = desired - available;
        let room = usize::try_from((max_unavailable - unavailable).max(0)).unwrap_or(0).min(should_not_run.len());
        delete_now.extend(should_not_run.into_iter().take(room));
    }
    out.delete = delete_now;
    out
}

/// The DaemonSet status counts (upstream `updateDaemonSetStatus`); `pods`
/// excludes finished pods being deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub desired: i32,
    pub current: i32,
    pub misscheduled: i32,
    pub ready: i32,
    pub available: i32,
    pub updated: i32,
}

pub fn counts(nodes: &[NodeState], pods: &PodsByNode<'_>, s: &Settings) -> Counts {
    let mut c = Counts::default();
    for node in nodes {
        let mut on_node: Vec<&Pod> = pods.get(&node.name).cloned().unwrap_or_default();
        let scheduled = !on_node.is_empty();
        if !node.eligibility.should_run {
            if scheduled {
                c.misscheduled += 1;
            }
            continue;
        }
        c.desired += 1;
        if !scheduled {
            continue;
        }
        c.current += 1;
        sort_pods(&mut on_node);
        let pod = on_node[0];
        if is_pod_ready(pod) {
            c.ready += 1;
            if s.available(pod) {
                c.available += 1;
            }
        }
        if s.is_updated(pod) {
            c.updated += 1;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RUN: Eligibility = Eligibility { should_run: true, should_continue_running: true };
    const NO: Eligibility = Eligibility { should_run: false, should_continue_running: false };

    fn pod(name: &str, node: &str, hash: &str, ready: bool, created: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {HASH_LABEL: hash}, "creationTimestamp": created},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .expect("pod")
    }

    fn nodes(list: &[(&str, Eligibility)]) -> Vec<NodeState> {
        list.iter().map(|(n, e)| NodeState { name: n.to_string(), eligibility: *e }).collect()
    }

    fn settings(unavailable: i32, surge: i32) -> Settings {
        Settings {
            hash: "new".into(),
            template_generation: None,
            min_ready_seconds: 0,
            now: jiff::Timestamp::UNIX_EPOCH,
            rolling: Some(Rolling { max_unavailable: IntOrString::Int(unavailable), max_surge: IntOrString::Int(surge) }),
        }
    }

    fn by_node<'a>(pods: &'a [Pod]) -> PodsByNode<'a> {
        let mut m = PodsByNode::new();
        for p in pods {
            let n = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
            m.entry(n).or_default().push(p);
        }
        m
    }

    #[test]
    fn the_core_loop_fills_eligible_nodes_and_empties_others() {
        let n = nodes(&[("a", RUN), ("b", RUN), ("c", NO)]);
        let pods = [pod("p-a", "a", "new", true, "2024-01-01T00:00:00Z"), pod("p-c", "c", "new", true, "2024-01-01T00:00:00Z")];
        let m = manage(&n, &by_node(&pods), &settings(1, 0));
        assert_eq!(m.create_on, vec!["b"]);
        assert_eq!(m.delete, vec!["p-c"]);
    }

    #[test]
    fn extra_pods_are_removed_keeping_the_oldest_and_failed_ones_reported() {
        let n = nodes(&[("a", RUN), ("b", RUN)]);
        let mut failed = pod("p-b", "b", "new", false, "2024-01-01T00:00:00Z");
        if let Some(st) = failed.status.as_mut() {
            st.phase = Some("Failed".into());
        }
        let pods = [pod("young", "a", "new", true, "2024-01-02T00:00:00Z"), pod("old", "a", "new", true, "2024-01-01T00:00:00Z"), failed];
        let m = manage(&n, &by_node(&pods), &settings(1, 0));
        assert_eq!(m.delete, vec!["young"]);
        assert_eq!(m.failed, vec![("p-b".to_string(), "b".to_string())]);
        assert!(m.create_on.is_empty(), "a new pod comes once the failed one is gone");
    }

    #[test]
    fn rolling_update_replaces_at_most_max_unavailable_old_pods() {
        let n = nodes(&[("a", RUN), ("b", RUN), ("c", RUN)]);
        let t = "2024-01-01T00:00:00Z";
        let pods = [pod("pa", "a", "old", true, t), pod("pb", "b", "old", true, t), pod("pc", "c", "old", true, t)];
        assert_eq!(rolling_update(&n, &by_node(&pods), &settings(1, 0)).delete, vec!["pa"]);
        assert_eq!(rolling_update(&n, &by_node(&pods), &settings(2, 0)).delete, vec!["pa", "pb"]);

        // An updated pod that is not available yet uses up the budget.
        let pods = [pod("pa", "a", "new", false, t), pod("pb", "b", "old", true, t), pod("pc", "c", "old", true, t)];
        assert!(rolling_update(&n, &by_node(&pods), &settings(1, 0)).delete.is_empty());
        // An unavailable old pod is replaced regardless.
        let pods = [pod("pa", "a", "new", false, t), pod("pb", "b", "old", false, t), pod("pc", "c", "old", true, t)];
        assert_eq!(rolling_update(&n, &by_node(&pods), &settings(1, 0)).delete, vec!["pb"]);
        // Done when all are updated.
        let pods = [pod("pa", "a", "new", true, t), pod("pb", "b", "new", true, t), pod("pc", "c", "new", true, t)];
        assert_eq!(rolling_update(&n, &by_node(&pods), &settings(1, 0)), Update::default());
    }

    #[test]
    fn surge_creates_new_pods_first_and_removes_old_ones_once_new_are_available() {
        let n = nodes(&[("a", RUN), ("b", RUN)]);
        let t = "2024-01-01T00:00:00Z";
        let pods = [pod("pa", "a", "old", true, t), pod("pb", "b", "old", true, t)];
        let mut s = settings(0, 1);
        assert_eq!(rolling_update(&n, &by_node(&pods), &s), Update { delete: vec![], create_on: vec!["a".into()] });
        let pods = [pod("pa", "a", "old", true, t), pod("pa2", "a", "new", false, t), pod("pb", "b", "old", true, t)];
        assert_eq!(rolling_update(&n, &by_node(&pods), &s), Update::default(), "waits for the surge pod");
        let pods = [pod("pa", "a", "old", true, t), pod("pa2", "a", "new", true, t), pod("pb", "b", "old", true, t)];
        assert_eq!(rolling_update(&n, &by_node(&pods), &s), Update { delete: vec!["pa".into()], create_on: vec!["b".into()] });
        // The core loop with surge keeps the old ready pod while the new one is not available.
        s.rolling = Some(Rolling { max_unavailable: IntOrString::Int(0), max_surge: IntOrString::String("50%".into()) });
        let pods = [pod("pa", "a", "old", true, t), pod("pa2", "a", "new", false, "2024-01-02T00:00:00Z")];
        assert!(manage(&n[..1], &by_node(&pods), &s).delete.is_empty());
    }

    #[test]
    fn counts_follow_upstream() {
        let n = nodes(&[("a", RUN), ("b", RUN), ("c", NO), ("d", RUN)]);
        let t = "2024-01-01T00:00:00Z";
        let pods = [pod("pa", "a", "new", true, t), pod("pb", "b", "old", false, t), pod("pc", "c", "new", true, t)];
        let c = counts(&n, &by_node(&pods), &settings(1, 0));
        assert_eq!(c, Counts { desired: 3, current: 2, misscheduled: 1, ready: 1, available: 1, updated: 1 });
    }

    #[test]
    fn percentages_round_like_upstream() {
        assert_eq!(scaled(&IntOrString::String("25%".into()), 3, true), 1);
        assert_eq!(scaled(&IntOrString::String("25%".into()), 3, false), 0);
        assert_eq!(scaled(&IntOrString::String("100%".into()), 3, true), 3);
        assert_eq!(scaled(&IntOrString::String("x".into()), 3, true), 0);
    }
}
