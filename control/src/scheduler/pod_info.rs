//! A pod as the scheduler reads it, parsed once when the pod is seen:
//! requests, host ports, priority, compiled node/pod affinity terms,
//! tolerations and topology spread constraints.

use super::labels::{Labels, NodeTerm, Selector};
use super::resources::{pod_requests, PodRequests};
use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, PodSpec, Toleration};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The priority classes known, to give a pod its priority when admission
/// did not set `spec.priority`.
#[derive(Clone, Debug, Default)]
pub struct PriorityClasses {
    classes: HashMap<String, (i32, Option<String>)>,
    global_default: Option<(String, i32)>,
}

impl PriorityClasses {
    pub fn from_list(list: &[Arc<PriorityClass>]) -> PriorityClasses {
        let mut p = PriorityClasses::default();
        for pc in list {
            let name = pc.metadata.name.clone().unwrap_or_default();
            if pc.global_default == Some(true) {
                // Several defaults: upstream takes the one with the highest value.
                if p.global_default.as_ref().map(|(_, v)| pc.value > *v).unwrap_or(true) {
                    p.global_default = Some((name.clone(), pc.value));
                }
            }
            p.classes.insert(name, (pc.value, pc.preemption_policy.clone()));
        }
        p
    }

    /// (priority, preemption policy) of a pod.
    pub fn of(&self, pod: &Pod) -> (i32, String) {
        let spec = pod.spec.as_ref();
        let class = spec.and_then(|s| s.priority_class_name.as_deref()).unwrap_or("");
        let from_class = if class.is_empty() { self.global_default.as_ref().and_then(|(n, _)| self.classes.get(n)) } else { self.classes.get(class) };
        let priority = spec.and_then(|s| s.priority).or_else(|| from_class.map(|c| c.0)).unwrap_or(0);
        let policy = spec
            .and_then(|s| s.preemption_policy.clone())
            .or_else(|| from_class.and_then(|c| c.1.clone()))
            .unwrap_or_else(|| "PreemptLowerPriority".into());
        (priority, policy)
    }
}

/// Which namespaces an affinity term looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TermNamespaces {
    pub names: BTreeSet<String>,
    /// From `namespaceSelector` (`{}` matches every namespace).
    pub selector: Option<Selector>,
}

impl TermNamespaces {
    pub fn matches(&self, namespace: &str, ns_labels: &HashMap<String, Labels>) -> bool {
        if self.names.contains(namespace) {
            return true;
        }
        match &self.selector {
            Some(s) => ns_labels.get(namespace).map(|l| s.matches(l)).unwrap_or_else(|| s.matches(&Labels::new())),
            None => false,
        }
    }
}

/// A pod (anti-)affinity term, compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffinityTerm {
    pub selector: Selector,
    pub namespaces: TermNamespaces,
    pub topology_key: String,
}

impl AffinityTerm {
    fn from_api(t: &PodAffinityTerm, pod_ns: &str, pod_labels: &Labels) -> AffinityTerm {
        let mut selector = Selector::from_api(t.label_selector.as_ref()).with_label_keys(t.match_label_keys.as_deref().unwrap_or(&[]), pod_labels);
        for k in t.mismatch_label_keys.iter().flatten() {
            if let Some(v) = pod_labels.get(k) {
                selector = selector.with_not_in(k, v);
            }
        }
        let mut names: BTreeSet<String> = t.namespaces.iter().flatten().cloned().collect();
        let selector_ns = t.namespace_selector.as_ref().map(|s| Selector::from_api(Some(s)));
        if names.is_empty() && selector_ns.is_none() {
            names.insert(pod_ns.to_string());
        }
        AffinityTerm { selector, namespaces: TermNamespaces { names, selector: selector_ns }, topology_key: t.topology_key.clone() }
    }

    /// Does the term select `pod`?
    pub fn matches(&self, pod: &PodInfo, ns_labels: &HashMap<String, Labels>) -> bool {
        self.namespaces.matches(&pod.namespace, ns_labels) && self.selector.matches(&pod.labels)
    }
}

/// A topology spread constraint, compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpreadConstraint {
    pub max_skew: i64,
    pub topology_key: String,
    /// `whenUnsatisfiable: DoNotSchedule` (a filter) vs `ScheduleAnyway` (a score).
    pub hard: bool,
    pub selector: Selector,
    pub min_domains: i64,
    pub honor_node_affinity: bool,
    pub honor_taints: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub protocol: String,
    pub ip: String,
    pub port: i32,
}

#[derive(Clone, Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub node_name: String,
    pub requests: PodRequests,
    pub ports: Vec<HostPort>,
    pub priority: i32,
    pub preempt_never: bool,
    pub node_selector: Labels,
    /// `requiredDuringScheduling...` node affinity terms (any may match).
    pub required_node_terms: Option<Vec<NodeTerm>>,
    pub preferred_node_terms: Vec<(i64, NodeTerm)>,
    pub tolerations: Vec<Toleration>,
    pub affinity: Vec<AffinityTerm>,
    pub anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<(i64, AffinityTerm)>,
    pub preferred_anti_affinity: Vec<(i64, AffinityTerm)>,
    pub spread: Vec<SpreadConstraint>,
    pub controller_uid: Option<String>,
    pub terminating: bool,
    /// When the pod started (for choosing preemption victims).
    pub start_time: jiff::Timestamp,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>, priorities: &PriorityClasses) -> PodInfo {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let labels = meta.labels.clone().unwrap_or_default();
        let no_spec = PodSpec::default();
        let spec = pod.spec.as_ref().unwrap_or(&no_spec);
        let (priority, policy) = priorities.of(&pod);
        let mut ports = Vec::new();
        let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
        for c in spec.containers.iter().chain(sidecars) {
            for p in c.ports.iter().flatten() {
                let port = p.host_port.unwrap_or(0);
                if port > 0 {
                    let ip = p.host_ip.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "0.0.0.0".into());
                    ports.push(HostPort { protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()), ip, port });
                }
            }
        }
        let affinity = spec.affinity.as_ref();
        let node_aff = affinity.and_then(|a| a.node_affinity.as_ref());
        let required_node_terms = node_aff
            .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref())
            .map(|s| s.node_selector_terms.iter().map(NodeTerm::from_api).collect());
        let preferred_node_terms = node_aff
            .and_then(|n| n.preferred_during_scheduling_ignored_during_execution.as_ref())
            .into_iter()
            .flatten()
            .map(|p| (i64::from(p.weight), NodeTerm::from_api(&p.preference)))
            .collect();
        let term = |t: &PodAffinityTerm| AffinityTerm::from_api(t, &namespace, &labels);
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let spread = spec
            .topology_spread_constraints
            .iter()
            .flatten()
            .map(|c| SpreadConstraint {
                max_skew: i64::from(c.max_skew.max(1)),
                topology_key: c.topology_key.clone(),
                hard: c.when_unsatisfiable != "ScheduleAnyway",
                selector: Selector::from_api(c.label_selector.as_ref()).with_label_keys(c.match_label_keys.as_deref().unwrap_or(&[]), &labels),
                min_domains: i64::from(c.min_domains.unwrap_or(1).max(1)),
                honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            })
            .collect();
        let start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .or(meta.creation_timestamp.as_ref())
            .map(|t| t.0)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        PodInfo {
            uid: meta.uid.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            node_name: spec.node_name.clone().unwrap_or_default(),
            requests: pod_requests(spec),
            ports,
            priority,
            preempt_never: policy == "Never",
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            required_node_terms,
            preferred_node_terms,
            tolerations: spec.tolerations.clone().unwrap_or_default(),
            affinity: pa.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()).into_iter().flatten().map(term).collect(),
            anti_affinity: paa.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()).into_iter().flatten().map(term).collect(),
            preferred_affinity: pa
                .and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref())
                .into_iter()
                .flatten()
                .map(|w| (i64::from(w.weight), term(&w.pod_affinity_term)))
                .collect(),
            preferred_anti_affinity: paa
                .and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref())
                .into_iter()
                .flatten()
                .map(|w| (i64::from(w.weight), term(&w.pod_affinity_term)))
                .collect(),
            spread,
            controller_uid: crate::controllers::util::controller_of(meta).map(|r| r.uid.clone()),
            terminating: meta.deletion_timestamp.is_some(),
            start_time,
            namespace,
            labels,
            pod,
        }
    }

    /// Has any required or preferred pod (anti-)affinity term.
    pub fn has_pod_affinity(&self) -> bool {
        !(self.affinity.is_empty() && self.anti_affinity.is_empty() && self.preferred_affinity.is_empty() && self.preferred_anti_affinity.is_empty())
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Matches the node's labels by `nodeSelector` and required node affinity.
    pub fn matches_node_selector(&self, node_name: &str, labels: &Labels) -> bool {
        if !self.node_selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
        match &self.required_node_terms {
            Some(terms) => terms.iter().any(|t| t.matches(node_name, labels)),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Arc<Pod> {
        Arc::new(serde_json::from_value(v).expect("pod"))
    }

    #[test]
    fn priority_from_spec_class_or_global_default() {
        let pcs: Vec<Arc<PriorityClass>> = vec![
            Arc::new(serde_json::from_value(json!({"metadata": {"name": "high"}, "value": 1000, "preemptionPolicy": "Never"})).expect("pc")),
            Arc::new(serde_json::from_value(json!({"metadata": {"name": "dflt"}, "value": 7, "globalDefault": true})).expect("pc")),
        ];
        let p = PriorityClasses::from_list(&pcs);
        let base = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": []}});
        assert_eq!(p.of(&pod(base.clone())), (7, "PreemptLowerPriority".into()));
        let mut named = base.clone();
        named["spec"]["priorityClassName"] = json!("high");
        assert_eq!(p.of(&pod(named.clone())), (1000, "Never".into()));
        named["spec"]["priority"] = json!(5);
        named["spec"]["preemptionPolicy"] = json!("PreemptLowerPriority");
        assert_eq!(p.of(&pod(named)), (5, "PreemptLowerPriority".into()));
        assert_eq!(PriorityClasses::default().of(&pod(base)), (0, "PreemptLowerPriority".into()));
    }

    #[test]
    fn term_namespaces_own_listed_or_selected() {
        let p = |term: serde_json::Value| {
            let pod = pod(json!({"metadata": {"name": "p", "namespace": "mine"}, "spec": {"containers": [], "affinity": {"podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [term]}}}}));
            PodInfo::new(pod, &PriorityClasses::default()).affinity[0].namespaces.clone()
        };
        let ns: HashMap<String, Labels> = [("prod".to_string(), [("env".to_string(), "prod".to_string())].into()), ("mine".to_string(), Labels::new())].into();
        let own = p(json!({"topologyKey": "k"}));
        assert!(own.matches("mine", &ns) && !own.matches("prod", &ns));
        let listed = p(json!({"topologyKey": "k", "namespaces": ["prod"]}));
        assert!(listed.matches("prod", &ns) && !listed.matches("mine", &ns));
        let selected = p(json!({"topologyKey": "k", "namespaceSelector": {"matchLabels": {"env": "prod"}}}));
        assert!(selected.matches("prod", &ns) && !selected.matches("mine", &ns));
        let all = p(json!({"topologyKey": "k", "namespaceSelector": {}}));
        assert!(all.matches("prod", &ns) && all.matches("mine", &ns) && all.matches("unknown", &ns));
    }

    #[test]
    fn parses_ports_terms_and_constraints() {
        let p = pod(json!({
            "metadata": {"name": "p", "namespace": "d", "labels": {"app": "a", "rev": "1"}},
            "spec": {
                "containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]}],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "a"}}, "topologyKey": "kubernetes.io/hostname", "matchLabelKeys": ["rev"]}
                ]}},
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "a"}}}],
            }
        }));
        let info = PodInfo::new(p, &PriorityClasses::default());
        assert_eq!(info.ports, vec![HostPort { protocol: "TCP".into(), ip: "0.0.0.0".into(), port: 8080 }]);
        assert_eq!(info.anti_affinity.len(), 1);
        assert!(info.anti_affinity[0].namespaces.names.contains("d"));
        let mut other = info.labels.clone();
        assert!(info.anti_affinity[0].selector.matches(&other));
        other.insert("rev".into(), "2".into());
        assert!(!info.anti_affinity[0].selector.matches(&other));
        assert!(info.spread[0].hard && info.spread[0].honor_node_affinity && !info.spread[0].honor_taints);
    }
}
