//! The scheduler's view of the cluster: every node with the pods on it
//! and running totals (requested resources, host ports, pods per owner),
//! updated incrementally from the informers. Pods the scheduler has
//! decided on but the API has not yet shown bound ("assumed") count like
//! bound ones, so several bindings can be in flight without overcommitting
//! a node. Pods nominated to a node by preemption are remembered too.
//!
//! Nothing here talks to the API; the runner feeds it.

use super::labels::Labels;
use super::pod_info::{HostPort, PodInfo, PriorityClasses};
use super::resources::{node_allocatable, Resources};
use k8s_openapi::api::core::v1::{Node, Taint};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// One node and what is on it.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    pub name: String,
    /// None while pods are known on a node the informer has not shown (or deleted).
    pub node: Option<Arc<Node>>,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    /// Sum of the exact requests of the pods here (`pods` counts them).
    pub requested: Resources,
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    pub pods: Vec<Arc<PodInfo>>,
    pub ports: HashMap<HostPort, u32>,
    /// Pods here with any pod (anti-)affinity term.
    pub affinity_pods: usize,
    /// Pods here with a required anti-affinity term.
    pub anti_affinity_pods: usize,
    /// Pods here per controller owner uid (for default spreading).
    pub owners: HashMap<String, u32>,
}

impl NodeInfo {
    fn new(name: &str) -> NodeInfo {
        NodeInfo { name: name.to_string(), ..Default::default() }
    }

    fn set_node(&mut self, node: Arc<Node>) {
        let spec = node.spec.as_ref();
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        self.allocatable = node_allocatable(&node);
        self.node = Some(node);
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        let mut r = pod.requests.exact.clone();
        r.pods = 1;
        self.requested.add(&r);
        self.non_zero_cpu += pod.requests.non_zero_cpu;
        self.non_zero_memory += pod.requests.non_zero_memory;
        for p in &pod.ports {
            *self.ports.entry(p.clone()).or_insert(0) += 1;
        }
        if pod.has_pod_affinity() {
            self.affinity_pods += 1;
        }
        if !pod.anti_affinity.is_empty() {
            self.anti_affinity_pods += 1;
        }
        if let Some(o) = &pod.controller_uid {
            *self.owners.entry(o.clone()).or_insert(0) += 1;
        }
        self.pods.push(pod);
    }

    pub fn remove_pod(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        let i = self.pods.iter().position(|p| p.uid == uid)?;
        let pod = self.pods.swap_remove(i);
        let mut r = pod.requests.exact.clone();
        r.pods = 1;
        self.requested.sub(&r);
        self.non_zero_cpu -= pod.requests.non_zero_cpu;
        self.non_zero_memory -= pod.requests.non_zero_memory;
        for p in &pod.ports {
            if let Some(n) = self.ports.get_mut(p) {
                *n -= 1;
                if *n == 0 {
                    self.ports.remove(p);
                }
            }
        }
        if pod.has_pod_affinity() {
            self.affinity_pods -= 1;
        }
        if !pod.anti_affinity.is_empty() {
            self.anti_affinity_pods -= 1;
        }
        if let Some(o) = &pod.controller_uid {
            if let Some(n) = self.owners.get_mut(o) {
                *n -= 1;
                if *n == 0 {
                    self.owners.remove(o);
                }
            }
        }
        Some(pod)
    }
}

/// What changed about a node, for deciding which waiting pods to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeChange {
    Added,
    /// Something the scheduler looks at changed.
    Updated,
    /// Only status noise (heartbeats, images).
    Unchanged,
}

/// What changed about the pods on nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodChange {
    /// A pod now counts on a node (new, or moved, or relabelled).
    Added,
    /// A pod no longer counts on a node (deleted, finished, assumption dropped).
    Removed,
    Unchanged,
}

#[derive(Clone, Debug)]
struct PodState {
    node: String,
    assumed: bool,
}

#[derive(Debug, Default)]
pub struct Cache {
    /// By node name (sorted, so iteration is stable).
    pub nodes: BTreeMap<String, NodeInfo>,
    pods: HashMap<String, PodState>,
    pub ns_labels: HashMap<String, Labels>,
    pub priorities: PriorityClasses,
    /// Pending pods nominated to a node: uid -> (node, pod).
    nominated: HashMap<String, (String, Arc<PodInfo>)>,
}

impl Cache {
    /// The nodes pods can go to (known Node objects), in name order.
    pub fn node_list(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.values().filter(|n| n.node.is_some())
    }

    pub fn num_nodes(&self) -> usize {
        self.node_list().count()
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name).filter(|n| n.node.is_some())
    }

    /// Add or update a node; says whether a waiting pod might now fit.
    pub fn set_node(&mut self, node: Arc<Node>) -> NodeChange {
        let name = node.metadata.name.clone().unwrap_or_default();
        let info = self.nodes.entry(name.clone()).or_insert_with(|| NodeInfo::new(&name));
        let before = info.node.as_ref().map(|_| (info.labels.clone(), info.taints.clone(), info.unschedulable, info.allocatable.clone()));
        info.set_node(node);
        match before {
            None => NodeChange::Added,
            Some(b) if b == (info.labels.clone(), info.taints.clone(), info.unschedulable, info.allocatable.clone()) => NodeChange::Unchanged,
            Some(_) => NodeChange::Updated,
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.get_mut(name) {
            if info.pods.is_empty() {
                self.nodes.remove(name);
            } else {
                info.node = None;
            }
        }
    }

    /// Keep only the nodes named (after a relist).
    pub fn retain_nodes(&mut self, names: &std::collections::HashSet<String>) {
        let gone: Vec<String> = self.nodes.keys().filter(|n| !names.contains(*n)).cloned().collect();
        for n in gone {
            self.remove_node(&n);
        }
    }

    pub fn is_assumed(&self, uid: &str) -> bool {
        self.pods.get(uid).map(|p| p.assumed).unwrap_or(false)
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    /// The node a pod counts on, if any.
    pub fn node_of(&self, uid: &str) -> Option<&str> {
        self.pods.get(uid).map(|p| p.node.as_str())
    }

    fn place(&mut self, pod: Arc<PodInfo>, node: &str, assumed: bool) {
        let uid = pod.uid.clone();
        if let Some(old) = self.pods.remove(&uid) {
            if let Some(n) = self.nodes.get_mut(&old.node) {
                n.remove_pod(&uid);
                if n.node.is_none() && n.pods.is_empty() {
                    self.nodes.remove(&old.node);
                }
            }
        }
        self.nodes.entry(node.to_string()).or_insert_with(|| NodeInfo::new(node)).add_pod(pod);
        self.pods.insert(uid, PodState { node: node.to_string(), assumed });
    }

    /// A pod the API shows bound (and not finished): count it on its node.
    pub fn set_bound(&mut self, pod: Arc<PodInfo>) -> PodChange {
        let node = pod.node_name.clone();
        if let Some(state) = self.pods.get(&pod.uid) {
            if state.node == node {
                let same = self
                    .nodes
                    .get(&node)
                    .and_then(|n| n.pods.iter().find(|p| p.uid == pod.uid))
                    .map(|old| old.labels == pod.labels && old.terminating == pod.terminating && old.priority == pod.priority)
                    .unwrap_or(false);
                if same && !state.assumed {
                    return PodChange::Unchanged;
                }
                let was_assumed = state.assumed;
                self.place(pod, &node, false);
                return if was_assumed { PodChange::Unchanged } else { PodChange::Added };
            }
        }
        self.place(pod, &node, false);
        PodChange::Added
    }

    /// The scheduler decided `pod` goes to `node`; it counts there from now on.
    pub fn assume(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.remove_nominated(&pod.uid);
        self.place(pod, node, true);
    }

    /// Remove a pod (deleted, finished, or an assumption that failed).
    pub fn remove_pod(&mut self, uid: &str) -> PodChange {
        let Some(state) = self.pods.remove(uid) else { return PodChange::Unchanged };
        if let Some(n) = self.nodes.get_mut(&state.node) {
            n.remove_pod(uid);
            if n.node.is_none() && n.pods.is_empty() {
                self.nodes.remove(&state.node);
            }
        }
        PodChange::Removed
    }

    /// Drop an assumption only (a binding that failed).
    pub fn forget(&mut self, uid: &str) -> PodChange {
        if self.is_assumed(uid) {
            self.remove_pod(uid)
        } else {
            PodChange::Unchanged
        }
    }

    /// uids of the pods counted, with whether they are assumed.
    pub fn pod_uids(&self) -> Vec<(String, bool)> {
        self.pods.iter().map(|(u, s)| (u.clone(), s.assumed)).collect()
    }

    pub fn nominate(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.nominated.insert(pod.uid.clone(), (node.to_string(), pod));
    }

    pub fn remove_nominated(&mut self, uid: &str) {
        self.nominated.remove(uid);
    }

    pub fn nominated_node(&self, uid: &str) -> Option<&str> {
        self.nominated.get(uid).map(|(n, _)| n.as_str())
    }

    /// Pods nominated to `node` with at least `priority`, other than `uid`.
    pub fn nominated_on(&self, node: &str, priority: i32, uid: &str) -> Vec<&Arc<PodInfo>> {
        self.nominated.values().filter(|(n, p)| n == node && p.priority >= priority && p.uid != uid).map(|(_, p)| p).collect()
    }

    /// Pods nominated to `node` with a priority below `priority`.
    pub fn nominated_below(&self, node: &str, priority: i32) -> Vec<Arc<PodInfo>> {
        self.nominated.values().filter(|(n, p)| n == node && p.priority < priority).map(|(_, p)| p.clone()).collect()
    }

    pub fn has_nominations(&self) -> bool {
        !self.nominated.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn node(name: &str, cpu: &str, labels: serde_json::Value) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": labels},
                "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110", "ephemeral-storage": "50Gi"}},
            }))
            .expect("node"),
        )
    }

    pub fn pod(name: &str, node: &str, cpu: &str) -> Arc<PodInfo> {
        let p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": "x"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}, "ports": [{"containerPort": 80, "hostPort": 80}]}]},
        }))
        .expect("pod");
        Arc::new(PodInfo::new(Arc::new(p), &PriorityClasses::default()))
    }

    #[test]
    fn totals_follow_pods_and_assumptions() {
        let mut c = Cache::default();
        assert_eq!(c.set_node(node("n1", "2", json!({}))), NodeChange::Added);
        assert_eq!(c.set_node(node("n1", "2", json!({}))), NodeChange::Unchanged);
        assert_eq!(c.set_node(node("n1", "3", json!({}))), NodeChange::Updated);
        c.assume(pod("a", "", "500m"), "n1");
        assert!(c.is_assumed("uid-a"));
        assert_eq!(c.node("n1").map(|n| (n.requested.milli_cpu, n.requested.pods, n.ports.len())), Some((500, 1, 1)));
        // The API shows it bound: same totals, no longer assumed.
        assert_eq!(c.set_bound(pod("a", "n1", "500m")), PodChange::Unchanged);
        assert!(!c.is_assumed("uid-a"));
        assert_eq!(c.node("n1").map(|n| n.requested.milli_cpu), Some(500));
        c.assume(pod("b", "", "1"), "n1");
        assert_eq!(c.forget("uid-b"), PodChange::Removed);
        assert_eq!(c.forget("uid-a"), PodChange::Unchanged);
        assert_eq!(c.remove_pod("uid-a"), PodChange::Removed);
        let n = c.node("n1").expect("n1");
        assert_eq!((n.requested.milli_cpu, n.requested.pods, n.ports.len(), n.non_zero_cpu), (0, 0, 0, 0));
        // A pod on an unknown node is kept until the node shows up.
        c.set_bound(pod("c", "n9", "1"));
        assert!(c.node("n9").is_none());
        assert_eq!(c.set_node(node("n9", "2", json!({}))), NodeChange::Added);
        assert_eq!(c.node("n9").map(|n| n.requested.milli_cpu), Some(1000));
    }
}
