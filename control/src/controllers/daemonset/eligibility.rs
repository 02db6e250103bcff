//! Which nodes a DaemonSet runs on (upstream `NodeShouldRunDaemonPod`):
//! the template's nodeName, nodeSelector and required node affinity, and
//! the node's NoSchedule/NoExecute taints against the pod's tolerations
//! (with the tolerations every daemon pod gets added). Also where an
//! unscheduled daemon pod is headed (its `metadata.name` affinity term).
//!
//! Pure functions of a node and a pod spec; no I/O.

use k8s_openapi::api::core::v1::{Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec, Taint, Toleration};
use std::collections::BTreeMap;

/// Whether a daemon pod should be started on a node, and whether one that
/// is there may keep running (it may, when only NoSchedule taints stand
/// in the way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eligibility {
    pub should_run: bool,
    pub should_continue_running: bool,
}

const NOT_ELIGIBLE: Eligibility = Eligibility { should_run: false, should_continue_running: false };

/// The tolerations the controller adds to every daemon pod, in upstream's
/// order (`AddOrUpdateDaemonPodTolerations`).
pub fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    let mut out = vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        out.push(t("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    out
}

/// Two tolerations are the same entry when key, operator, value and effect
/// agree (an empty operator is Equal).
fn same_entry(a: &Toleration, b: &Toleration) -> bool {
    let op = |t: &Toleration| match t.operator.as_deref() {
        None | Some("") => "Equal".to_string(),
        Some(o) => o.to_string(),
    };
    a.key.as_deref().unwrap_or("") == b.key.as_deref().unwrap_or("")
        && op(a) == op(b)
        && a.value.as_deref().unwrap_or("") == b.value.as_deref().unwrap_or("")
        && a.effect.as_deref().unwrap_or("") == b.effect.as_deref().unwrap_or("")
}

/// Add (or replace, when only e.g. tolerationSeconds differs) the daemon
/// tolerations in `spec`.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let host_network = spec.host_network.unwrap_or(false);
    let mut tolerations = spec.tolerations.take().unwrap_or_default();
    for wanted in daemon_tolerations(host_network) {
        match tolerations.iter_mut().find(|t| same_entry(t, &wanted)) {
            Some(existing) => *existing = wanted,
            None => tolerations.push(wanted),
        }
    }
    spec.tolerations = Some(tolerations);
}

/// Upstream `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if e != taint.effect {
            return false;
        }
    }
    if let Some(k) = t.key.as_deref().filter(|k| !k.is_empty()) {
        if k != taint.key {
            return false;
        }
    }
    match t.operator.as_deref() {
        None | Some("") | Some("Equal") => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        Some("Exists") => true,
        _ => false,
    }
}

/// The first taint (of those `filter` picks) no toleration tolerates.
pub fn untolerated<'a>(taints: &'a [Taint], tolerations: &[Toleration], filter: impl Fn(&Taint) -> bool) -> Option<&'a Taint> {
    taints.iter().filter(|t| filter(t)).find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" => value.map(|v| values.iter().any(|x| x == v)).unwrap_or(false),
        "NotIn" => value.map(|v| !values.iter().any(|x| x == v)).unwrap_or(true),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value.and_then(|v| v.parse::<i64>().ok()), values) else { return false };
            let Ok(bound) = bound.parse::<i64>() else { return false };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// A term matches when all its requirements do; an empty term matches
/// nothing.
fn term_matches(term: &NodeSelectorTerm, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs.iter().all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| r.key == "metadata.name" && matches!(r.operator.as_str(), "In" | "NotIn") && requirement_matches(r, Some(node_name)))
}

/// Required node affinity: any term matches.
pub fn node_selector_matches(sel: &NodeSelector, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let name = node.metadata.name.as_deref().unwrap_or("");
    sel.node_selector_terms.iter().any(|t| term_matches(t, name, &labels))
}

/// nodeSelector and required node affinity of `spec` both match `node`.
pub fn fits_node_affinity(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if let Some(sel) = &spec.node_selector {
        if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    match spec.affinity.as_ref().and_then(|a| a.node_affinity.as_ref()).and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()) {
        Some(required) => node_selector_matches(required, node),
        None => true,
    }
}

/// Upstream `NodeShouldRunDaemonPod` for a DaemonSet whose pod template
/// spec is `template` (tolerations not yet added).
pub fn node_should_run(node: &Node, template: &PodSpec) -> Eligibility {
    let node_name = node.metadata.name.as_deref().unwrap_or("");
    if let Some(n) = template.node_name.as_deref().filter(|n| !n.is_empty()) {
        if n != node_name {
            return NOT_ELIGIBLE;
        }
    }
    if !fits_node_affinity(template, node) {
        return NOT_ELIGIBLE;
    }
    let mut spec = template.clone();
    add_daemon_tolerations(&mut spec);
    let tolerations = spec.tolerations.unwrap_or_default();
    let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    if untolerated(&taints, &tolerations, |t| t.effect == "NoSchedule" || t.effect == "NoExecute").is_none() {
        return Eligibility { should_run: true, should_continue_running: true };
    }
    Eligibility { should_run: false, should_continue_running: untolerated(&taints, &tolerations, |t| t.effect == "NoExecute").is_none() }
}

/// Upstream `ReplaceDaemonSetPodNodeNameNodeAffinity`: the pod must land
/// on `node` (the DaemonSet's own node affinity was already checked).
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let term = NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![NodeSelectorRequirement { key: "metadata.name".into(), operator: "In".into(), values: Some(vec![node.into()]) }]),
    };
    let mut affinity = affinity.unwrap_or_default();
    let mut na: NodeAffinity = affinity.node_affinity.take().unwrap_or_default();
    match na.required_during_scheduling_ignored_during_execution.as_mut() {
        Some(required) => required.node_selector_terms = vec![term],
        None => na.required_during_scheduling_ignored_during_execution = Some(NodeSelector { node_selector_terms: vec![term] }),
    }
    affinity.node_affinity = Some(na);
    affinity
}

/// The node a daemon pod is for (upstream `GetTargetNodeName`): its
/// nodeName, or else the single value of its `metadata.name In` term.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n.to_string());
    }
    let terms = &spec.affinity.as_ref()?.node_affinity.as_ref()?.required_during_scheduling_ignored_during_execution.as_ref()?.node_selector_terms;
    for term in terms {
        for r in term.match_fields.as_deref().unwrap_or(&[]) {
            if r.key == "metadata.name" && r.operator == "In" {
                return match r.values.as_deref() {
                    Some([one]) => Some(one.clone()),
                    _ => None,
                };
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})).expect("node")
    }

    fn spec(v: serde_json::Value) -> PodSpec {
        let mut v = v;
        v["containers"] = json!([{"name": "c", "image": "i"}]);
        serde_json::from_value(v).expect("spec")
    }

    const RUN: Eligibility = Eligibility { should_run: true, should_continue_running: true };
    const NO: Eligibility = Eligibility { should_run: false, should_continue_running: false };
    const KEEP: Eligibility = Eligibility { should_run: false, should_continue_running: true };

    #[test]
    fn taints_need_tolerations_but_a_running_pod_survives_no_schedule() {
        let n = node("n1", json!({}), json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]));
        assert_eq!(node_should_run(&n, &spec(json!({}))), KEEP);
        let tolerating = spec(json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}));
        assert_eq!(node_should_run(&n, &tolerating), RUN);
        let wrong_value = spec(json!({"tolerations": [{"key": "dedicated", "value": "cpu"}]}));
        assert_eq!(node_should_run(&n, &wrong_value), KEEP);
        let everything = spec(json!({"tolerations": [{"operator": "Exists"}]}));
        assert_eq!(node_should_run(&n, &everything), RUN);

        let evicting = node("n2", json!({}), json!([{"key": "k", "effect": "NoExecute"}]));
        assert_eq!(node_should_run(&evicting, &spec(json!({}))), NO);
        let soft = node("n3", json!({}), json!([{"key": "k", "effect": "PreferNoSchedule"}]));
        assert_eq!(node_should_run(&soft, &spec(json!({}))), RUN);
    }

    #[test]
    fn default_daemon_tolerations_cover_node_conditions() {
        for (key, effect) in [
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ] {
            let n = node("n", json!({}), json!([{"key": key, "effect": effect}]));
            assert_eq!(node_should_run(&n, &spec(json!({}))), RUN, "{key}");
        }
        let n = node("n", json!({}), json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]));
        assert_eq!(node_should_run(&n, &spec(json!({}))), KEEP);
        assert_eq!(node_should_run(&n, &spec(json!({"hostNetwork": true}))), RUN);
    }

    #[test]
    fn added_tolerations_replace_same_entries_and_keep_others() {
        let mut s = spec(json!({"tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "mine", "operator": "Exists"}
        ]}));
        add_daemon_tolerations(&mut s);
        let t = s.tolerations.expect("tolerations");
        assert_eq!(t.len(), 7);
        assert_eq!(t[0].key.as_deref(), Some("node.kubernetes.io/not-ready"));
        assert_eq!(t[0].toleration_seconds, None);
        assert_eq!(t[1].key.as_deref(), Some("mine"));
        assert_eq!(t[6].key.as_deref(), Some("node.kubernetes.io/unschedulable"));
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let n = node("n1", json!({"disk": "ssd", "zone": "a", "cores": "8"}), json!([]));
        assert_eq!(node_should_run(&n, &spec(json!({"nodeSelector": {"disk": "ssd"}}))), RUN);
        assert_eq!(node_should_run(&n, &spec(json!({"nodeSelector": {"disk": "hdd"}}))), NO);
        let aff = |terms: serde_json::Value| spec(json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}));
        assert_eq!(node_should_run(&n, &aff(json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}, {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}]))), RUN);
        assert_eq!(node_should_run(&n, &aff(json!([{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}]))), NO);
        assert_eq!(node_should_run(&n, &aff(json!([{"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}]))), RUN);
        assert_eq!(node_should_run(&n, &aff(json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]))), NO);
        assert_eq!(node_should_run(&n, &aff(json!([{}]))), NO, "an empty term matches nothing");
        assert_eq!(node_should_run(&n, &spec(json!({"nodeName": "n2"}))), NO);
        assert_eq!(node_should_run(&n, &spec(json!({"nodeName": "n1"}))), RUN);
    }

    #[test]
    fn pinned_pods_know_their_node() {
        let original: Affinity = serde_json::from_value(json!({
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}},
            "podAntiAffinity": {}
        }))
        .expect("affinity");
        let pinned = pin_to_node(Some(original), "n7");
        let v = serde_json::to_value(&pinned).expect("json");
        assert_eq!(v["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"], json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]));
        assert!(v.get("podAntiAffinity").is_some());
        let mut pod = Pod { spec: Some(spec(json!({}))), ..Default::default() };
        assert_eq!(target_node(&pod), None);
        if let Some(s) = pod.spec.as_mut() {
            s.affinity = Some(pinned);
        }
        assert_eq!(target_node(&pod).as_deref(), Some("n7"));
        if let Some(s) = pod.spec.as_mut() {
            s.node_name = Some("n8".into());
        }
        assert_eq!(target_node(&pod).as_deref(), Some("n8"));
    }
}
