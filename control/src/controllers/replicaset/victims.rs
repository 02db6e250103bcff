//! Which pods a ReplicaSet deletes first when it has too many, in
//! upstream's order: unscheduled before scheduled, Pending before Unknown
//! before Running, not ready before ready, lower
//! `controller.kubernetes.io/pod-deletion-cost` first, pods doubled up on
//! a node (with the pods of related sets) first, then the most recently
//! ready, the most restarted and the newest (times compared on a
//! logarithmic scale, ties broken by uid).

use super::super::util;
use k8s_openapi::api::core::v1::Pod;
use std::cmp::Ordering;
use std::collections::HashMap;

pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

fn node(p: &Pod) -> &str {
    p.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
}

fn phase_ordinal(p: &Pod) -> u8 {
    match util::pod_phase(p) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn deletion_cost(p: &Pod) -> i32 {
    p.metadata.annotations.as_ref().and_then(|a| a.get(DELETION_COST)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn ready_since(p: &Pod) -> Option<jiff::Timestamp> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

fn max_restarts(p: &Pod) -> i32 {
    p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).into_iter().flatten().map(|c| c.restart_count).max().unwrap_or(0)
}

fn uid(p: &Pod) -> &str {
    p.metadata.uid.as_deref().unwrap_or("")
}

/// log2 of the age in nanoseconds (-1 for no age), the bucket upstream
/// compares times in.
fn log_rank(t: jiff::Timestamp, now: jiff::Timestamp) -> i32 {
    let d = now.as_nanosecond() - t.as_nanosecond();
    if d > 0 {
        (d as f64).log2().floor() as i32
    } else {
        -1
    }
}

/// Newer (or unknown) times first, on the logarithmic scale.
fn newer_first(a: Option<jiff::Timestamp>, b: Option<jiff::Timestamp>, pa: &Pod, pb: &Pod, now: jiff::Timestamp) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) if x == y => Ordering::Equal,
        (Some(x), Some(y)) => match log_rank(x, now).cmp(&log_rank(y, now)) {
            Ordering::Equal => uid(pa).cmp(uid(pb)),
            other => other,
        },
    }
}

/// `Less` when `a` goes before `b`.
fn compare(a: &Pod, b: &Pod, rank: &HashMap<&str, usize>, now: jiff::Timestamp) -> Ordering {
    let assigned = |p: &Pod| !node(p).is_empty();
    let by = assigned(a)
        .cmp(&assigned(b))
        .then(phase_ordinal(a).cmp(&phase_ordinal(b)))
        .then(util::is_pod_ready(a).cmp(&util::is_pod_ready(b)))
        .then(deletion_cost(a).cmp(&deletion_cost(b)))
        .then_with(|| {
            let r = |p: &Pod| rank.get(node(p)).copied().unwrap_or(0);
            r(b).cmp(&r(a))
        });
    if by != Ordering::Equal {
        return by;
    }
    if util::is_pod_ready(a) && util::is_pod_ready(b) {
        let o = newer_first(ready_since(a), ready_since(b), a, b, now);
        if o != Ordering::Equal {
            return o;
        }
    }
    let o = max_restarts(b).cmp(&max_restarts(a));
    if o != Ordering::Equal {
        return o;
    }
    newer_first(a.metadata.creation_timestamp.as_ref().map(|t| t.0), b.metadata.creation_timestamp.as_ref().map(|t| t.0), a, b, now)
}

/// The `count` pods of `pods` to delete first; `related` are the active
/// pods of this set and its sibling sets (same owner), whose spread over
/// nodes ranks doubled-up pods first.
pub fn pick<'a>(pods: &[&'a Pod], related: &[&Pod], count: usize, now: jiff::Timestamp) -> Vec<&'a Pod> {
    let mut rank: HashMap<&str, usize> = HashMap::new();
    for p in related {
        *rank.entry(node(p)).or_default() += 1;
    }
    let mut sorted: Vec<&Pod> = pods.to_vec();
    if count < sorted.len() {
        sorted.sort_by(|a, b| compare(a, b, &rank, now));
    }
    sorted.truncate(count);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, phase: &str, ready: bool, created: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "uid": name, "creationTimestamp": created},
            "spec": {"nodeName": node, "containers": [{"name": "c"}]},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": created}]},
        }))
        .expect("pod")
    }

    fn names(v: Vec<&Pod>) -> Vec<String> {
        v.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect()
    }

    #[test]
    fn unscheduled_pending_and_unready_pods_go_first() {
        let now: jiff::Timestamp = "2025-01-01T01:00:00Z".parse().expect("time");
        let running = pod("running", "n1", "Running", true, "2025-01-01T00:00:00Z");
        let unready = pod("unready", "n1", "Running", false, "2025-01-01T00:00:00Z");
        let pending = pod("pending", "n1", "Pending", false, "2025-01-01T00:00:00Z");
        let unscheduled = pod("unscheduled", "", "Pending", false, "2025-01-01T00:00:00Z");
        let all = [&running, &unready, &pending, &unscheduled];
        assert_eq!(names(pick(&all, &all, 3, now)), ["unscheduled", "pending", "unready"]);
    }

    #[test]
    fn doubled_up_then_newer_pods_go_first() {
        let now: jiff::Timestamp = "2025-01-01T10:00:00Z".parse().expect("time");
        let old = pod("old", "n1", "Running", true, "2025-01-01T00:00:00Z");
        let new = pod("new", "n2", "Running", true, "2025-01-01T09:59:00Z");
        let alone = pod("alone", "n3", "Running", true, "2025-01-01T09:59:30Z");
        let sibling = pod("sibling", "n1", "Running", true, "2025-01-01T00:00:00Z");
        let sibling2 = pod("sibling2", "n2", "Running", true, "2025-01-01T00:00:00Z");
        let mine = [&old, &new, &alone];
        let related = [&old, &new, &alone, &sibling, &sibling2];
        assert_eq!(names(pick(&mine, &related, 2, now)), ["new", "old"], "n1 and n2 are doubled up; the newer one goes first");
        assert_eq!(names(pick(&mine, &mine, 1, now)), ["alone"], "otherwise the most recently ready");
    }
}
