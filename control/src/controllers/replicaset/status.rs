//! The status a ReplicaSet shows, computed from the pods it controls:
//! replicas, fullyLabeledReplicas, readyReplicas, availableReplicas
//! (ready for minReadySeconds), observedGeneration and the ReplicaFailure
//! condition after a refused create or delete.

use super::super::util;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::time::Duration;

pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// A failed create or delete of the last sync.
#[derive(Debug, Clone)]
pub struct ManageFailure {
    pub creating: bool,
    pub message: String,
}

fn nonzero(n: usize) -> Option<i32> {
    let n = i32::try_from(n).unwrap_or(i32::MAX);
    (n != 0).then_some(n)
}

/// Now, to the second (as API times are stored).
pub fn now_seconds(now: jiff::Timestamp) -> Time {
    Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

pub fn min_ready_seconds(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
}

pub fn calculate(rs: &ReplicaSet, pods: &[&Pod], failure: Option<&ManageFailure>, now: jiff::Timestamp) -> ReplicaSetStatus {
    let template_labels = rs.spec.as_ref().and_then(|s| s.template.as_ref()).and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.clone()).unwrap_or_default();
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            template_labels.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let ready = pods.iter().filter(|p| util::is_pod_ready(p)).count();
    let mrs = min_ready_seconds(rs);
    let available = pods.iter().filter(|p| util::is_pod_available(p, mrs, now)).count();
    let old = rs.status.clone().unwrap_or_default();
    let mut conditions = old.conditions.clone().unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match failure {
        Some(f) if !has_failure => conditions.push(ReplicaSetCondition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some(if f.creating { "FailedCreate" } else { "FailedDelete" }.into()),
            message: Some(f.message.clone()),
            last_transition_time: Some(now_seconds(now)),
        }),
        None if has_failure => conditions.retain(|c| c.type_ != REPLICA_FAILURE),
        _ => {}
    }
    ReplicaSetStatus {
        replicas: i32::try_from(pods.len()).unwrap_or(i32::MAX),
        fully_labeled_replicas: nonzero(fully_labeled),
        ready_replicas: nonzero(ready),
        available_replicas: nonzero(available),
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
        terminating_replicas: None,
    }
}

/// When the next of `pods` that is ready but not yet available becomes
/// available, if any.
pub fn next_available_in(pods: &[&Pod], min_ready_seconds: i32, now: jiff::Timestamp) -> Option<Duration> {
    if min_ready_seconds <= 0 {
        return None;
    }
    pods.iter()
        .filter(|p| util::is_pod_ready(p) && !util::is_pod_available(p, min_ready_seconds, now))
        .map(|p| {
            let since = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0)
                .unwrap_or(now);
            let due = since.as_millisecond() + i64::from(min_ready_seconds) * 1000;
            Duration::from_millis(u64::try_from(due - now.as_millisecond()).unwrap_or(0))
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs(min_ready: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 4},
            "spec": {"replicas": 3, "minReadySeconds": min_ready, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web", "tier": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        }))
        .expect("rs")
    }

    fn pod(labels: serde_json::Value, ready_since: Option<&str>) -> Pod {
        let conditions = match ready_since {
            Some(t) => json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]),
            None => json!([{"type": "Ready", "status": "False"}]),
        };
        serde_json::from_value(json!({"metadata": {"name": "p", "labels": labels}, "status": {"phase": "Running", "conditions": conditions}})).expect("pod")
    }

    #[test]
    fn counts_labeled_ready_and_available_pods() {
        let now: jiff::Timestamp = "2025-01-01T00:01:00Z".parse().expect("time");
        let full = json!({"app": "web", "tier": "a"});
        let a = pod(full.clone(), Some("2025-01-01T00:00:00Z"));
        let b = pod(full, Some("2025-01-01T00:00:50Z"));
        let c = pod(json!({"app": "web"}), None);
        let st = calculate(&rs(30), &[&a, &b, &c], None, now);
        assert_eq!(st.replicas, 3);
        assert_eq!(st.fully_labeled_replicas, Some(2));
        assert_eq!(st.ready_replicas, Some(2));
        assert_eq!(st.available_replicas, Some(1), "b is ready for 10s of the 30 wanted");
        assert_eq!(st.observed_generation, Some(4));
        assert_eq!(next_available_in(&[&a, &b, &c], 30, now), Some(Duration::from_secs(20)));
        let st = calculate(&rs(0), &[], None, now);
        assert_eq!((st.replicas, st.ready_replicas, st.available_replicas), (0, None, None));
    }

    #[test]
    fn a_refused_create_sets_replica_failure_until_a_sync_succeeds() {
        let now: jiff::Timestamp = "2025-01-01T00:01:00Z".parse().expect("time");
        let f = ManageFailure { creating: true, message: "pods \"web-x\" is forbidden: exceeded quota".into() };
        let mut r = rs(0);
        let st = calculate(&r, &[], Some(&f), now);
        let c = &st.conditions.clone().expect("conditions")[0];
        assert_eq!((c.type_.as_str(), c.status.as_str(), c.reason.as_deref()), ("ReplicaFailure", "True", Some("FailedCreate")));
        r.status = Some(st);
        assert!(calculate(&r, &[], None, now).conditions.is_none());
    }
}
