//! Which pods a ReplicaSet deletes first when it has too many, in
//! upstream's order: unscheduled before scheduled, Pending before Unknown
//! before Running, not ready before ready, lower
//! `controller.kubernetes.io/pod-deletion-cost` first, pods doubled up on
//! a node (with the pods of related sets) first, then the most recently
//! ready, the most restarted and the newest (times compared on a
//! logarithmic scale, as upstream's LogarithmicScaleDown), ties broken by
//! uid.

use super::super::util;
use k8s_openapi::api::core::v1::Pod;
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

/// The age bucket of a time: unknown times first, then newer ones.
fn bucket(t: Option<jiff::Timestamp>, now: jiff::Timestamp) -> i32 {
    t.map(|t| log_rank(t, now)).unwrap_or(i32::MIN)
}

/// Sort key: pods with smaller keys go first. A key (rather than a
/// pairwise comparison) keeps the order total, which sorting needs.
type Rank<'a> = (bool, u8, bool, i32, std::cmp::Reverse<usize>, i32, std::cmp::Reverse<i32>, i32, &'a str);

fn sort_key<'a>(p: &'a Pod, rank: &HashMap<&str, usize>, now: jiff::Timestamp) -> Rank<'a> {
    let ready = util::is_pod_ready(p);
    (
        !node(p).is_empty(),
        phase_ordinal(p),
        ready,
        deletion_cost(p),
        std::cmp::Reverse(rank.get(node(p)).copied().unwrap_or(0)),
        if ready { bucket(ready_since(p), now) } else { 0 },
        std::cmp::Reverse(max_restarts(p)),
        bucket(p.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
        uid(p),
    )
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
        sorted.sort_by(|a, b| sort_key(a, &rank, now).cmp(&sort_key(b, &rank, now)));
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

    #[test]
    fn the_order_is_total_for_many_similar_pods() {
        let now: jiff::Timestamp = "2025-01-01T10:00:00Z".parse().expect("time");
        let pods: Vec<Pod> = (0..60)
            .map(|i| {
                let t = format!("2025-01-01T09:{:02}:{:02}Z", (i * 7) % 60, (i * 13) % 60);
                pod(&format!("p{i:02}"), &format!("n{}", i % 3), "Running", i % 5 != 0, &t)
            })
            .collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        let first = names(pick(&refs, &refs, 30, now));
        assert_eq!(first.len(), 30);
        let mut reversed = refs.clone();
        reversed.reverse();
        assert_eq!(names(pick(&reversed, &refs, 30, now)), first, "the order does not depend on the input order");
    }
}
