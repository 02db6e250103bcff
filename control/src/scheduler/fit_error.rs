//! The message of a pod that fits nowhere, worded as upstream's so users
//! and scripts read the same thing: `0/3 nodes are available: 1 Insufficient
//! cpu, 2 node(s) had untolerated taint {k: v}. preemption: 0/3 nodes are
//! available: 3 Preemption is not helpful for scheduling.`

use super::filters::{plugin, Code, Failure};
use std::collections::BTreeMap;

pub const NO_NODES: &str = "no nodes available to schedule pods";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// Why every node refused the pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FitError {
    pub num_nodes: usize,
    /// (node, failure) for each node that refused.
    pub failures: Vec<(String, Failure)>,
    /// What preemption said (already prefixed with `preemption: `).
    pub post_filter: Option<String>,
}

/// `N reason` for each reason, sorted as strings (as upstream does).
fn histogram<'a>(failures: impl Iterator<Item = &'a Failure>) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in failures {
        for r in &f.reasons {
            *counts.entry(r.as_str()).or_insert(0) += 1;
        }
    }
    let mut out: Vec<String> = counts.into_iter().map(|(r, n)| format!("{n} {r}")).collect();
    out.sort();
    out
}

/// `0/N nodes are available: <histogram>.`
pub fn nodes_unavailable<'a>(num_nodes: usize, failures: impl Iterator<Item = &'a Failure>) -> String {
    let reasons = histogram(failures);
    let mut msg = format!("0/{num_nodes} nodes are available:");
    if !reasons.is_empty() {
        msg.push_str(&format!(" {}.", reasons.join(", ")));
    }
    msg
}

impl FitError {
    pub fn message(&self) -> String {
        if self.num_nodes == 0 {
            return NO_NODES.to_string();
        }
        let mut msg = nodes_unavailable(self.num_nodes, self.failures.iter().map(|(_, f)| f));
        if let Some(p) = &self.post_filter {
            msg.push(' ');
            msg.push_str(p);
        }
        msg
    }

    /// The filters that failed anywhere (to know which changes may help).
    pub fn plugins(&self) -> u16 {
        let p = self.failures.iter().fold(0, |acc, (_, f)| acc | f.plugin);
        if p == 0 {
            plugin::OTHER
        } else {
            p
        }
    }

    /// Nodes where evicting pods might help.
    pub fn resolvable_nodes(&self) -> impl Iterator<Item = &str> {
        self.failures.iter().filter(|(_, f)| f.code == Code::Unschedulable).map(|(n, _)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(code: Code, reasons: &[&str]) -> Failure {
        Failure { code, reasons: reasons.iter().map(|s| s.to_string()).collect(), plugin: plugin::RESOURCES }
    }

    #[test]
    fn upstream_wording_and_order() {
        let e = FitError {
            num_nodes: 3,
            failures: vec![
                ("n2".into(), f(Code::Unresolvable, &["node(s) had untolerated taint {key: value}"])),
                ("n1".into(), f(Code::Unschedulable, &["Insufficient cpu"])),
                ("n3".into(), f(Code::Unresolvable, &["node(s) had untolerated taint {key: value}"])),
            ],
            post_filter: Some(format!("preemption: {}", nodes_unavailable(3, vec![f(Code::Unresolvable, &[NOT_HELPFUL]); 3].iter()))),
        };
        assert_eq!(
            e.message(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {key: value}. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
        assert_eq!(e.resolvable_nodes().collect::<Vec<_>>(), vec!["n1"]);
    }

    #[test]
    fn several_reasons_per_node_and_string_order() {
        let mut failures = vec![("a".to_string(), f(Code::Unschedulable, &["Insufficient cpu", "Insufficient memory"]))];
        for i in 0..10 {
            failures.push((format!("t{i}"), f(Code::Unresolvable, &["node(s) were unschedulable"])));
        }
        let e = FitError { num_nodes: 11, failures, post_filter: None };
        // Sorted as strings: "1 ..." < "10 ...".
        assert_eq!(e.message(), "0/11 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 10 node(s) were unschedulable.");
        assert_eq!(FitError::default().message(), NO_NODES);
    }
}
