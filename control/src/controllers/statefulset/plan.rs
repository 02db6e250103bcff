//! What one StatefulSet sync does, in order (upstream `updateStatefulSet`):
//! recreate finished pods and create missing ones (OrderedReady: one at a
//! time, lowest ordinal first, each Running and Ready before the next;
//! Parallel: all at once), then remove pods beyond the replicas (highest
//! ordinal first), then the rolling update: delete the highest ordinal >=
//! partition not on the update revision, once all are healthy.
//!
//! Pure function of the cached pods; the controller carries the steps out
//! in order and stops at the first that fails. Also the status counts.

use super::identity::{ordinal_of, pod_revision};
use crate::controllers::util::{is_pod_available, is_pod_ready, pod_phase};
use k8s_openapi::api::core::v1::Pod;

/// The parts of the set the plan depends on.
#[derive(Debug, Clone)]
pub struct View {
    pub replicas: i32,
    pub start: i32,
    /// OrderedReady (not Parallel).
    pub monotonic: bool,
    /// The rolling update's partition (None: no rollingUpdate given).
    pub partition: Option<i32>,
    pub on_delete: bool,
    pub min_ready_seconds: i32,
    pub now: jiff::Timestamp,
    pub current_revision: String,
    pub update_revision: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Delete a Failed (or Succeeded) pod to make it again.
    DeleteFinished { pod: String, failed: bool },
    /// Create the pod (and its claims) for this ordinal from the update
    /// revision, or the current one.
    Create { ordinal: i32, update: bool },
    /// A pending pod: make sure its claims exist.
    CreateMissingClaims { ordinal: i32 },
    /// Put back the pod's identity labels (and claims).
    FixIdentity { pod: String, ordinal: i32 },
    /// Scale down: delete a pod beyond the replicas.
    ScaleDown { pod: String },
    /// Rolling update: delete a pod not on the update revision.
    Update { pod: String },
}

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

fn terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

pub fn running_and_ready(p: &Pod) -> bool {
    pod_phase(p) == "Running" && is_pod_ready(p)
}

fn running_and_available(p: &Pod, v: &View) -> bool {
    pod_phase(p) == "Running" && is_pod_available(p, v.min_ready_seconds, v.now)
}

fn healthy(p: &Pod) -> bool {
    running_and_ready(p) && !terminating(p)
}

/// `pods` are the set's pods; `fine(pod)`: identity and storage as they
/// should be; `stale(ordinal)`: a claim of that ordinal still belongs to
/// an earlier pod (creation must wait).
pub fn plan(v: &View, pods: &[&Pod], fine: impl Fn(&Pod) -> bool, stale: impl Fn(i32) -> bool) -> Vec<Step> {
    let n = usize::try_from(v.replicas.max(0)).unwrap_or(0);
    let mut replicas: Vec<Option<&Pod>> = vec![None; n];
    let mut condemned: Vec<&Pod> = Vec::new();
    for pod in pods {
        let Some(ord) = ordinal_of(pod) else { continue };
        match usize::try_from(i64::from(ord) - i64::from(v.start)) {
            Ok(i) if i < n => replicas[i] = Some(pod),
            _ => condemned.push(pod),
        }
    }
    condemned.sort_by_key(|p| std::cmp::Reverse(ordinal_of(p)));
    // The first unhealthy pod: a missing or unhealthy replica in order,
    // else the lowest-ordinal unhealthy condemned pod.
    let first_unhealthy_condemned: Option<String> = if replicas.iter().all(|r| r.map(healthy).unwrap_or(false)) {
        condemned.iter().rev().find(|p| !healthy(p)).map(|p| name(p))
    } else {
        None
    };
    let mut steps = Vec::new();
    for (i, slot) in replicas.iter().enumerate() {
        let ordinal = v.start + i32::try_from(i).unwrap_or(i32::MAX);
        let mut pod = *slot;
        if let Some(p) = pod {
            let phase = pod_phase(p);
            if phase == "Failed" || phase == "Succeeded" {
                steps.push(Step::DeleteFinished { pod: name(p), failed: phase == "Failed" });
                pod = None;
            }
        }
        let Some(p) = pod else {
            if stale(ordinal) {
                if v.monotonic {
                    return steps;
                }
                continue;
            }
            let update = !matches!(v.partition, Some(part) if i64::from(ordinal) < i64::from(v.start) + i64::from(part));
            steps.push(Step::Create { ordinal, update });
            if v.monotonic {
                return steps;
            }
            continue;
        };
        if pod_phase(p) == "Pending" {
            steps.push(Step::CreateMissingClaims { ordinal });
        }
        if v.monotonic && (terminating(p) || !running_and_ready(p) || !running_and_available(p, v)) {
            return steps;
        }
        if !fine(p) {
            steps.push(Step::FixIdentity { pod: name(p), ordinal });
        }
    }
    for p in &condemned {
        if terminating(p) {
            if v.monotonic {
                return steps;
            }
            continue;
        }
        let first = first_unhealthy_condemned.as_deref() == Some(name(p).as_str());
        if v.monotonic && !first && (!running_and_ready(p) || !running_and_available(p, v)) {
            return steps;
        }
        steps.push(Step::ScaleDown { pod: name(p) });
        if v.monotonic {
            return steps;
        }
    }
    if v.on_delete {
        return steps;
    }
    let min = usize::try_from(v.partition.unwrap_or(0).max(0)).unwrap_or(0);
    for target in (min..n).rev() {
        // A replica created this round is not healthy yet: wait for it.
        let Some(p) = replicas[target].filter(|p| !matches!(pod_phase(p), "Failed" | "Succeeded")) else { return steps };
        if pod_revision(p) != v.update_revision && !terminating(p) {
            steps.push(Step::Update { pod: name(p) });
            return steps;
        }
        if !healthy(p) {
            return steps;
        }
    }
    steps
}

/// Status counts over the set's pods (upstream `computeReplicaStatus`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub current: i32,
    pub updated: i32,
}

pub fn counts(v: &View, pods: &[&Pod]) -> Counts {
    let mut c = Counts::default();
    for p in pods {
        c.replicas += 1;
        if running_and_ready(p) {
            c.ready += 1;
            if running_and_available(p, v) {
                c.available += 1;
            }
        }
        if !terminating(p) {
            let rev = pod_revision(p);
            if rev == v.current_revision {
                c.current += 1;
            }
            if rev == v.update_revision {
                c.updated += 1;
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::history::HASH_LABEL;
    use serde_json::json;

    fn pod(ord: i32, rev: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": format!("web-{ord}"), "labels": {HASH_LABEL: rev}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .expect("pod")
    }

    fn view(replicas: i32, monotonic: bool, partition: i32) -> View {
        View {
            replicas,
            start: 0,
            monotonic,
            partition: Some(partition),
            on_delete: false,
            min_ready_seconds: 0,
            now: jiff::Timestamp::UNIX_EPOCH,
            current_revision: "web-1".into(),
            update_revision: "web-1".into(),
        }
    }

    fn run(v: &View, pods: &[Pod]) -> Vec<Step> {
        let refs: Vec<&Pod> = pods.iter().collect();
        plan(v, &refs, |_| true, |_| false)
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time_in_order() {
        let v = view(3, true, 0);
        assert_eq!(run(&v, &[]), vec![Step::Create { ordinal: 0, update: true }]);
        assert_eq!(run(&v, &[pod(0, "web-1", false)]), vec![], "waits for web-0 to be ready");
        assert_eq!(run(&v, &[pod(0, "web-1", true)]), vec![Step::Create { ordinal: 1, update: true }]);
        assert_eq!(run(&v, &[pod(0, "web-1", true), pod(2, "web-1", true)]), vec![Step::Create { ordinal: 1, update: true }], "a gap is filled first");
        assert_eq!(run(&v, &[pod(0, "web-1", true), pod(1, "web-1", true), pod(2, "web-1", true)]), vec![]);
    }

    #[test]
    fn parallel_creates_all_missing_pods() {
        let v = view(3, false, 0);
        assert_eq!(
            run(&v, &[pod(1, "web-1", false)]),
            vec![Step::Create { ordinal: 0, update: true }, Step::Create { ordinal: 2, update: true }]
        );
    }

    #[test]
    fn scale_down_removes_the_highest_ordinal_first_once_all_are_healthy() {
        let v = view(1, true, 0);
        let pods = [pod(0, "web-1", true), pod(1, "web-1", true), pod(2, "web-1", true)];
        assert_eq!(run(&v, &pods), vec![Step::ScaleDown { pod: "web-2".into() }]);
        let pods = [pod(0, "web-1", false), pod(1, "web-1", true), pod(2, "web-1", true)];
        assert_eq!(run(&v, &pods), vec![], "an unready replica blocks scale down");
        // The first unhealthy condemned pod may go even though it is unhealthy.
        let pods = [pod(0, "web-1", true), pod(1, "web-1", false), pod(2, "web-1", false)];
        assert_eq!(run(&v, &pods), vec![], "web-2 is not the first unhealthy pod");
        let pods = [pod(0, "web-1", true), pod(1, "web-1", true), pod(2, "web-1", false)];
        assert_eq!(run(&v, &pods), vec![Step::ScaleDown { pod: "web-2".into() }]);
        let v = view(1, false, 0);
        let pods = [pod(0, "web-1", true), pod(1, "web-1", true), pod(2, "web-1", true)];
        assert_eq!(run(&v, &pods), vec![Step::ScaleDown { pod: "web-2".into() }, Step::ScaleDown { pod: "web-1".into() }]);
    }

    #[test]
    fn rolling_update_goes_from_the_highest_ordinal_down_to_the_partition() {
        let mut v = view(3, true, 0);
        v.update_revision = "web-2".into();
        let pods = [pod(0, "web-1", true), pod(1, "web-1", true), pod(2, "web-1", true)];
        assert_eq!(run(&v, &pods), vec![Step::Update { pod: "web-2".into() }]);
        let pods = [pod(0, "web-1", true), pod(1, "web-1", true), pod(2, "web-2", false)];
        assert_eq!(run(&v, &pods), vec![], "waits for the updated pod");
        let pods = [pod(0, "web-1", true), pod(1, "web-1", true), pod(2, "web-2", true)];
        assert_eq!(run(&v, &pods), vec![Step::Update { pod: "web-1".into() }]);
        v.partition = Some(2);
        assert_eq!(run(&v, &pods), vec![], "ordinals below the partition keep the old revision");
        assert_eq!(run(&v, &[pod(0, "web-1", true), pod(1, "web-1", true)]), vec![Step::Create { ordinal: 2, update: true }]);
        assert_eq!(run(&v, &[pod(1, "web-1", true), pod(2, "web-2", true)]), vec![Step::Create { ordinal: 0, update: false }]);
        v.on_delete = true;
        v.partition = None;
        assert_eq!(run(&v, &[pod(0, "web-1", true), pod(1, "web-1", true), pod(2, "web-1", true)]), vec![]);
    }

    #[test]
    fn finished_pods_are_recreated() {
        let v = view(2, true, 0);
        let mut failed = pod(0, "web-1", false);
        if let Some(s) = failed.status.as_mut() {
            s.phase = Some("Failed".into());
        }
        assert_eq!(run(&v, &[failed, pod(1, "web-1", true)]), vec![Step::DeleteFinished { pod: "web-0".into(), failed: true }, Step::Create { ordinal: 0, update: true }]);
    }

    #[test]
    fn stale_claims_hold_creation_back() {
        let v = view(2, true, 0);
        assert_eq!(plan(&v, &[], |_| true, |o| o == 0), vec![]);
        let v = view(2, false, 0);
        assert_eq!(plan(&v, &[], |_| true, |o| o == 0), vec![Step::Create { ordinal: 1, update: true }]);
    }

    #[test]
    fn start_ordinal_names_pods_from_there() {
        let mut v = view(2, true, 0);
        v.start = 3;
        assert_eq!(run(&v, &[]), vec![Step::Create { ordinal: 3, update: true }]);
        assert_eq!(run(&v, &[pod(3, "web-1", true), pod(4, "web-1", true), pod(0, "web-1", true)]), vec![Step::ScaleDown { pod: "web-0".into() }]);
    }

    #[test]
    fn counts_follow_revisions() {
        let mut v = view(3, true, 0);
        v.update_revision = "web-2".into();
        let pods = [pod(0, "web-1", true), pod(1, "web-2", false), pod(2, "web-2", true)];
        let refs: Vec<&Pod> = pods.iter().collect();
        assert_eq!(counts(&v, &refs), Counts { replicas: 3, ready: 2, available: 2, current: 1, updated: 2 });
    }
}
