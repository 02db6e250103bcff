//! Matching on labels and taints, compiled once per pod so the hot loops
//! only compare strings: label selectors, node selector terms (with the
//! `Gt`/`Lt` operators and `metadata.name` fields), tolerations.

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

pub type Labels = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
    /// A requirement that can never hold (malformed operator or values).
    Never,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Req {
    key: String,
    op: Op,
}

impl Req {
    fn matches(&self, value: Option<&String>) -> bool {
        match (&self.op, value) {
            (Op::In(vs), Some(v)) => vs.contains(v),
            (Op::In(_), None) => false,
            (Op::NotIn(vs), Some(v)) => !vs.contains(v),
            (Op::NotIn(_), None) => true,
            (Op::Exists, v) => v.is_some(),
            (Op::DoesNotExist, v) => v.is_none(),
            (Op::Gt(n), Some(v)) => v.parse::<i64>().map(|x| x > *n).unwrap_or(false),
            (Op::Lt(n), Some(v)) => v.parse::<i64>().map(|x| x < *n).unwrap_or(false),
            (Op::Gt(_) | Op::Lt(_), None) => false,
            (Op::Never, _) => false,
        }
    }
}

/// A compiled label selector. `None` inside means "matches nothing" (a
/// nil selector in an affinity term or spread constraint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector(Option<Vec<Req>>);

impl Selector {
    pub fn nothing() -> Selector {
        Selector(None)
    }

    pub fn everything() -> Selector {
        Selector(Some(Vec::new()))
    }

    /// From an API label selector; nil matches nothing, `{}` everything.
    pub fn from_api(sel: Option<&LabelSelector>) -> Selector {
        let Some(sel) = sel else { return Selector::nothing() };
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            reqs.push(Req { key: k.clone(), op: Op::In(vec![v.clone()]) });
        }
        for e in sel.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default();
            let op = match e.operator.as_str() {
                "In" => Op::In(values),
                "NotIn" => Op::NotIn(values),
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                _ => Op::Never,
            };
            reqs.push(Req { key: e.key.clone(), op });
        }
        Selector(Some(reqs))
    }

    /// Add `key in (value of key in labels)` for each key the labels have
    /// (`matchLabelKeys`).
    pub fn with_label_keys(mut self, keys: &[String], labels: &Labels) -> Selector {
        if let Some(reqs) = self.0.as_mut() {
            for k in keys {
                if let Some(v) = labels.get(k) {
                    reqs.push(Req { key: k.clone(), op: Op::In(vec![v.clone()]) });
                }
            }
        }
        self
    }

    /// Add `key notin (value)` (`mismatchLabelKeys`).
    pub fn with_not_in(mut self, key: &str, value: &str) -> Selector {
        if let Some(reqs) = self.0.as_mut() {
            reqs.push(Req { key: key.to_string(), op: Op::NotIn(vec![value.to_string()]) });
        }
        self
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        match &self.0 {
            None => false,
            Some(reqs) => reqs.iter().all(|r| r.matches(labels.get(&r.key))),
        }
    }
}

/// One compiled node selector term: label expressions and field
/// expressions (`metadata.name` only), all of which must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeTerm {
    labels: Vec<Req>,
    fields: Vec<Req>,
}

fn node_req(r: &NodeSelectorRequirement) -> Req {
    let values = r.values.clone().unwrap_or_default();
    let number = || if values.len() == 1 { values[0].parse::<i64>().ok() } else { None };
    let op = match r.operator.as_str() {
        "In" => Op::In(values.clone()),
        "NotIn" => Op::NotIn(values.clone()),
        "Exists" => Op::Exists,
        "DoesNotExist" => Op::DoesNotExist,
        "Gt" => number().map(Op::Gt).unwrap_or(Op::Never),
        "Lt" => number().map(Op::Lt).unwrap_or(Op::Never),
        _ => Op::Never,
    };
    Req { key: r.key.clone(), op }
}

impl NodeTerm {
    pub fn from_api(t: &NodeSelectorTerm) -> NodeTerm {
        let labels = t.match_expressions.iter().flatten().map(node_req).collect();
        let fields = t
            .match_fields
            .iter()
            .flatten()
            .map(|r| if r.key == "metadata.name" { node_req(r) } else { Req { key: r.key.clone(), op: Op::Never } })
            .collect();
        NodeTerm { labels, fields }
    }

    /// The node names the term allows when it has a `metadata.name In`
    /// field requirement (None: any name).
    pub fn names_in(&self) -> Option<Vec<String>> {
        self.fields.iter().find_map(|r| match (&r.key[..], &r.op) {
            ("metadata.name", Op::In(v)) => Some(v.clone()),
            _ => None,
        })
    }

    /// An empty term matches no node.
    pub fn matches(&self, node_name: &str, labels: &Labels) -> bool {
        if self.labels.is_empty() && self.fields.is_empty() {
            return false;
        }
        let name = node_name.to_string();
        self.labels.iter().all(|r| r.matches(labels.get(&r.key))) && self.fields.iter().all(|r| r.matches(Some(&name)))
    }
}

/// Does `t` tolerate `taint`?
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    let key = t.key.as_deref().unwrap_or("");
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => key.is_empty() || key == taint.key,
        "Equal" | "" => key == taint.key && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selectors() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}, {"key": "x", "operator": "DoesNotExist"}]
        }))
        .expect("selector");
        let s = Selector::from_api(Some(&sel));
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "fe")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("x", "")])));
        assert!(!Selector::from_api(None).matches(&labels(&[])));
        assert!(Selector::from_api(Some(&LabelSelector::default())).matches(&labels(&[("a", "b")])));
        let keyed = Selector::everything().with_label_keys(&["rev".to_string()], &labels(&[("rev", "2")]));
        assert!(keyed.matches(&labels(&[("rev", "2")])));
        assert!(!keyed.matches(&labels(&[("rev", "1")])));
    }

    #[test]
    fn node_terms_with_every_operator() {
        let term: NodeSelectorTerm = serde_json::from_value(json!({
            "matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["a", "b"]},
                {"key": "gpu", "operator": "Exists"},
                {"key": "cores", "operator": "Gt", "values": ["4"]},
                {"key": "age", "operator": "Lt", "values": ["10"]},
                {"key": "bad", "operator": "DoesNotExist"},
                {"key": "os", "operator": "NotIn", "values": ["windows"]},
            ]
        }))
        .expect("term");
        let t = NodeTerm::from_api(&term);
        let good = labels(&[("zone", "a"), ("gpu", ""), ("cores", "8"), ("age", "3")]);
        assert!(t.matches("n1", &good));
        let mut few = good.clone();
        few.insert("cores".into(), "4".into());
        assert!(!t.matches("n1", &few));
        let mut win = good.clone();
        win.insert("os".into(), "windows".into());
        assert!(!t.matches("n1", &win));
        let mut notnum = good.clone();
        notnum.insert("age".into(), "old".into());
        assert!(!t.matches("n1", &notnum));

        let by_name: NodeSelectorTerm =
            serde_json::from_value(json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]})).expect("term");
        let t = NodeTerm::from_api(&by_name);
        assert!(t.matches("n2", &labels(&[])));
        assert!(!t.matches("n1", &labels(&[])));
        assert!(!NodeTerm::from_api(&NodeSelectorTerm::default()).matches("n1", &good));
    }

    #[test]
    fn tolerations() {
        let taint = Taint { key: "k".into(), value: Some("v".into()), effect: "NoSchedule".into(), time_added: None };
        let t = |v: serde_json::Value| -> Toleration { serde_json::from_value(v).expect("toleration") };
        assert!(tolerates(&t(json!({"key": "k", "value": "v"})), &taint));
        assert!(tolerates(&t(json!({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"})), &taint));
        assert!(!tolerates(&t(json!({"key": "k", "value": "w"})), &taint));
        assert!(tolerates(&t(json!({"key": "k", "operator": "Exists"})), &taint));
        assert!(tolerates(&t(json!({"operator": "Exists"})), &taint));
        assert!(!tolerates(&t(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})), &taint));
        assert!(!tolerates(&t(json!({"key": "other", "operator": "Exists"})), &taint));
    }
}
