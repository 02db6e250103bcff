//! Which taints the node lifecycle controller wants on a node, without
//! I/O: upstream's TaintNodesByCondition (NoSchedule taints mirroring the
//! conditions and `spec.unschedulable`) and taint-based eviction
//! (`not-ready`/`unreachable` NoExecute taints, held back when a whole
//! zone — or every zone — looks down, as upstream does to survive a
//! control-plane network split).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::HashMap;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Nodes with this label do not count in their zone's health.
pub const EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";

/// (condition, status) → NoSchedule taint key.
const BY_CONDITION: [(&str, &str, &str); 6] = [
    ("Ready", "False", NOT_READY),
    ("Ready", "Unknown", UNREACHABLE),
    ("MemoryPressure", "True", MEMORY_PRESSURE),
    ("DiskPressure", "True", DISK_PRESSURE),
    ("PIDPressure", "True", PID_PRESSURE),
    ("NetworkUnavailable", "True", NETWORK_UNAVAILABLE),
];

/// The NoSchedule taint keys the node's conditions and spec call for.
pub fn no_schedule_keys(node: &Node) -> Vec<&'static str> {
    let conds = node.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    let mut keys: Vec<&'static str> = Vec::new();
    for c in conds {
        for (ty, status, key) in BY_CONDITION {
            if c.type_ == ty && c.status == status && !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
        keys.push(UNSCHEDULABLE);
    }
    keys
}

fn managed_no_schedule(t: &Taint) -> bool {
    t.effect == "NoSchedule" && (t.key == UNSCHEDULABLE || BY_CONDITION.iter().any(|(_, _, k)| *k == t.key))
}

fn managed_no_execute(t: &Taint) -> bool {
    t.effect == "NoExecute" && (t.key == NOT_READY || t.key == UNREACHABLE)
}

/// Health of a zone, as upstream's `ComputeZoneState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    /// More than 2 and at least 55% of the nodes are not ready.
    PartialDisruption,
    /// No node is ready.
    FullDisruption,
}

/// Upstream's `--unhealthy-zone-threshold` and `--large-cluster-size-threshold`.
const UNHEALTHY_ZONE_THRESHOLD: f64 = 0.55;
const LARGE_CLUSTER: usize = 50;

pub fn zone_state(ready: usize, not_ready: usize) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / (ready + not_ready) as f64 >= UNHEALTHY_ZONE_THRESHOLD {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// The zone a node is in: region and zone labels, as upstream's `GetZoneKey`.
pub fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |a: &str, b: &str| labels.and_then(|l| l.get(a).or_else(|| l.get(b))).cloned().unwrap_or_default();
    let region = get("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region");
    let zone = get("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone");
    if region.is_empty() && zone.is_empty() {
        String::new()
    } else {
        format!("{region}:\u{0}:{zone}")
    }
}

/// The zones of the cluster: per zone its state and size.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Zones {
    pub zones: HashMap<String, (ZoneState, usize)>,
}

impl Zones {
    /// From each node's zone and whether its Ready condition is True
    /// (excluded nodes left out by the caller).
    pub fn compute<'a>(nodes: impl IntoIterator<Item = (String, bool)> + 'a) -> Zones {
        let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
        for (zone, ready) in nodes {
            let e = counts.entry(zone).or_default();
            if ready {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        Zones { zones: counts.into_iter().map(|(z, (r, n))| (z, (zone_state(r, n), r + n))).collect() }
    }

    /// Every zone is down: the controller assumes it is the one cut off
    /// and evicts nothing (removing its NoExecute taints).
    pub fn all_fully_disrupted(&self) -> bool {
        self.zones.values().all(|(s, _)| *s == ZoneState::FullDisruption)
    }

    /// Whether a new NoExecute taint may be put on a node of `zone` now
    /// (upstream's eviction rate of the zone is not zero).
    pub fn may_taint(&self, zone: &str) -> bool {
        if self.all_fully_disrupted() {
            return false;
        }
        match self.zones.get(zone) {
            Some((ZoneState::PartialDisruption, size)) => *size > LARGE_CLUSTER,
            _ => true,
        }
    }
}

/// The NoExecute taint key wanted for a node whose Ready status is
/// `ready`: swapping not-ready and unreachable is always allowed, adding
/// one only when `may_taint`; every such taint goes when the node is
/// Ready or all zones are down. A node without a Ready condition keeps
/// what it has.
pub fn no_execute_key(ready: Option<&str>, existing: &[Taint], may_taint: bool, all_disrupted: bool) -> Option<&'static str> {
    let has = |k: &str| existing.iter().any(|t| t.effect == "NoExecute" && t.key == k);
    let (want, other) = match ready {
        None => {
            return if has(UNREACHABLE) {
                Some(UNREACHABLE)
            } else if has(NOT_READY) {
                Some(NOT_READY)
            } else {
                None
            }
        }
        Some("True") => return None,
        Some("False") => (NOT_READY, UNREACHABLE),
        Some(_) => (UNREACHABLE, NOT_READY),
    };
    if all_disrupted {
        None
    } else if has(want) || has(other) || may_taint {
        Some(want)
    } else {
        None
    }
}

/// The node's new taint list given the wanted NoSchedule keys and
/// NoExecute key: taints not managed here stay in place, managed ones not
/// wanted go, wanted ones missing are added with `timeAdded`. `None` when
/// nothing changes.
pub fn new_taints(existing: &[Taint], no_schedule: &[&str], no_execute: Option<&str>, now: Timestamp) -> Option<Vec<Taint>> {
    let wanted = |t: &Taint| {
        if managed_no_schedule(t) {
            no_schedule.contains(&t.key.as_str())
        } else if managed_no_execute(t) {
            no_execute == Some(t.key.as_str())
        } else {
            true
        }
    };
    let mut out: Vec<Taint> = existing.iter().filter(|t| wanted(t)).cloned().collect();
    let mut changed = out.len() != existing.len();
    let add = no_schedule.iter().map(|k| (*k, "NoSchedule")).chain(no_execute.map(|k| (k, "NoExecute")));
    for (key, effect) in add {
        if !out.iter().any(|t| t.key == key && t.effect == effect) {
            out.push(Taint { key: key.into(), effect: effect.into(), value: None, time_added: Some(Time(now)) });
            changed = true;
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).expect("node")
    }

    fn taint(key: &str, effect: &str) -> Taint {
        Taint { key: key.into(), effect: effect.into(), ..Default::default() }
    }

    #[test]
    fn conditions_and_cordon_map_to_no_schedule_taints() {
        let n = node(json!({"spec": {"unschedulable": true}, "status": {"conditions": [
            {"type": "Ready", "status": "Unknown"}, {"type": "MemoryPressure", "status": "True"},
            {"type": "DiskPressure", "status": "False"}, {"type": "PIDPressure", "status": "True"}]}}));
        assert_eq!(no_schedule_keys(&n), vec![UNREACHABLE, MEMORY_PRESSURE, PID_PRESSURE, UNSCHEDULABLE]);
        let ok = node(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}));
        assert!(no_schedule_keys(&ok).is_empty());
        let nr = node(json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}));
        assert_eq!(no_schedule_keys(&nr), vec![NOT_READY]);
    }

    #[test]
    fn zone_states_follow_upstream() {
        assert_eq!(zone_state(0, 1), ZoneState::FullDisruption);
        assert_eq!(zone_state(1, 1), ZoneState::Normal);
        assert_eq!(zone_state(2, 2), ZoneState::Normal, "not more than 2 down");
        assert_eq!(zone_state(2, 3), ZoneState::PartialDisruption);
        assert_eq!(zone_state(10, 3), ZoneState::Normal);
        assert_eq!(zone_state(0, 0), ZoneState::Normal);
        let one = Zones::compute([(String::new(), false)]);
        assert!(one.all_fully_disrupted() && !one.may_taint(""));
        let two = Zones::compute([(String::new(), false), (String::new(), true)]);
        assert!(!two.all_fully_disrupted() && two.may_taint(""));
        let partial = Zones::compute([("a".to_string(), false), ("a".into(), false), ("a".into(), false), ("a".into(), true), ("b".into(), true)]);
        assert!(!partial.may_taint("a"), "small partially disrupted zone: eviction rate 0");
        assert!(partial.may_taint("b"));
        let split = Zones::compute([("a".to_string(), false), ("b".into(), true)]);
        assert!(split.may_taint("a"), "one zone fully down, others up: normal rate");
    }

    #[test]
    fn zone_keys_use_region_and_zone() {
        let n = node(json!({"metadata": {"labels": {"topology.kubernetes.io/region": "r", "topology.kubernetes.io/zone": "z"}}}));
        assert_eq!(zone_key(&n), "r:\u{0}:z");
        assert_eq!(zone_key(&Node::default()), "");
    }

    #[test]
    fn no_execute_taints_swap_add_and_go() {
        let none: [Taint; 0] = [];
        assert_eq!(no_execute_key(Some("Unknown"), &none, true, false), Some(UNREACHABLE));
        assert_eq!(no_execute_key(Some("False"), &none, true, false), Some(NOT_READY));
        assert_eq!(no_execute_key(Some("Unknown"), &none, false, false), None, "held back");
        let nr = [taint(NOT_READY, "NoExecute")];
        assert_eq!(no_execute_key(Some("Unknown"), &nr, false, false), Some(UNREACHABLE), "swaps are not held back");
        assert_eq!(no_execute_key(Some("True"), &nr, true, false), None);
        assert_eq!(no_execute_key(Some("Unknown"), &nr, true, true), None, "all zones down: no eviction");
        assert_eq!(no_execute_key(None, &nr, true, false), Some(NOT_READY));
    }

    #[test]
    fn taint_lists_change_only_what_is_managed() {
        let now = Timestamp::from_second(1_700_000_000).expect("time");
        let existing = [taint("dedicated", "NoSchedule"), taint(NOT_READY, "NoExecute"), taint(NOT_READY, "NoSchedule")];
        let out = new_taints(&existing, &[UNREACHABLE], Some(UNREACHABLE), now).expect("changed");
        let keys: Vec<(&str, &str)> = out.iter().map(|t| (t.key.as_str(), t.effect.as_str())).collect();
        assert_eq!(keys, vec![("dedicated", "NoSchedule"), (UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]);
        assert!(out[1].time_added.is_some() && out[2].time_added.is_some());
        assert!(new_taints(&out, &[UNREACHABLE], Some(UNREACHABLE), now).is_none());
        let back = new_taints(&out, &[], None, now).expect("removed");
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].key, "dedicated");
    }
}
