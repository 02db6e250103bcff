//! Is the kubelet of a node still there? As upstream, the controller does
//! not compare the kubelet's timestamps with its own clock (they may be
//! skewed): it notes, on its own clock, when it last saw the node's Lease
//! `renewTime` or its Ready condition's `lastHeartbeatTime` change, and
//! calls the node lost when that is longer ago than the grace period. A
//! restarted controller starts every node with a fresh grace period.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::time::Duration;

/// Grace for a node that never posted a Ready condition (upstream's
/// `--node-startup-grace-period`).
pub const STARTUP_GRACE: Duration = Duration::from_secs(60);

/// The conditions the controller sets to Unknown on a lost node
/// (NetworkUnavailable belongs to the network plugin).
pub const CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// What the controller last saw of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// When (controller clock) a sign of life was last seen.
    pub probe: Timestamp,
    pub heartbeat: Option<Timestamp>,
    pub renew: Option<Timestamp>,
}

/// Update what is known of a node with its current heartbeat and lease
/// renewal time.
pub fn observe(prev: Option<&Health>, heartbeat: Option<Timestamp>, renew: Option<Timestamp>, now: Timestamp) -> Health {
    match prev {
        None => Health { probe: now, heartbeat, renew },
        Some(p) => {
            let alive = heartbeat != p.heartbeat || renew != p.renew;
            Health { probe: if alive { now } else { p.probe }, heartbeat, renew }
        }
    }
}

pub fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// The node's Ready status (`True`, `False`, `Unknown`), if it has one.
pub fn ready_status(node: &Node) -> Option<&str> {
    condition(node, "Ready").map(|c| c.status.as_str())
}

/// The grace period of this node: longer for one that never reported.
pub fn grace_for(node: &Node, grace: Duration) -> Duration {
    if condition(node, "Ready").is_some() {
        grace
    } else {
        grace.max(STARTUP_GRACE)
    }
}

/// When the node counts as lost if nothing changes.
pub fn deadline(health: &Health, grace: Duration) -> Timestamp {
    let grace = SignedDuration::try_from(grace).unwrap_or(SignedDuration::MAX);
    health.probe.checked_add(grace).unwrap_or(Timestamp::MAX)
}

/// The conditions of a node found lost: each of [`CONDITIONS`] Unknown
/// (reason `NodeStatusUnknown`, or `NodeStatusNeverUpdated` when the
/// kubelet never posted it). `None` when they already are.
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conds = node.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let mut changed = false;
    for type_ in CONDITIONS {
        match conds.iter_mut().find(|c| c.type_ == type_) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                conds.push(NodeCondition {
                    type_: type_.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).expect("time")
    }

    #[test]
    fn signs_of_life_move_the_probe() {
        let h = observe(None, Some(t(0)), Some(t(0)), t(100));
        assert_eq!(h.probe, t(100), "first sight gives a full grace period");
        let same = observe(Some(&h), Some(t(0)), Some(t(0)), t(130));
        assert_eq!(same.probe, t(100));
        let renewed = observe(Some(&same), Some(t(0)), Some(t(125)), t(131));
        assert_eq!(renewed.probe, t(131));
        let beat = observe(Some(&renewed), Some(t(140)), Some(t(125)), t(150));
        assert_eq!(beat.probe, t(150));
        assert_eq!(deadline(&beat, Duration::from_secs(40)), t(190));
    }

    #[test]
    fn lost_nodes_get_unknown_conditions() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n1", "creationTimestamp": "2023-11-14T22:13:20Z"},
            "status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                 "lastHeartbeatTime": "2023-11-14T22:13:20Z", "lastTransitionTime": "2023-11-14T22:13:20Z"},
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                {"type": "NetworkUnavailable", "status": "False", "reason": "RouteCreated"},
            ]}
        }))
        .expect("node");
        assert_eq!(grace_for(&node, Duration::from_secs(4)), Duration::from_secs(4));
        let conds = unknown_conditions(&node, t(50)).expect("changed");
        let get = |ty: &str| conds.iter().find(|c| c.type_ == ty).cloned().expect(ty);
        let ready = get("Ready");
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("Unknown", Some("NodeStatusUnknown")));
        assert_eq!(ready.message.as_deref(), Some("Kubelet stopped posting node status."));
        assert_eq!(ready.last_transition_time, Some(Time(t(50))));
        assert_eq!(ready.last_heartbeat_time, Some(Time(t(0))), "heartbeat stays the kubelet's");
        assert_eq!(get("MemoryPressure").status, "Unknown");
        assert_eq!(get("DiskPressure").reason.as_deref(), Some("NodeStatusNeverUpdated"));
        assert_eq!(get("NetworkUnavailable").status, "False", "not the controller's");
        let mut lost = node.clone();
        lost.status.get_or_insert_with(Default::default).conditions = Some(conds);
        assert!(unknown_conditions(&lost, t(60)).is_none());
    }

    #[test]
    fn never_reported_nodes_get_startup_grace() {
        let node = Node::default();
        assert_eq!(grace_for(&node, Duration::from_secs(4)), STARTUP_GRACE);
        assert_eq!(grace_for(&node, Duration::from_secs(100)), Duration::from_secs(100));
    }
}
