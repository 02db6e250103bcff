//! A Deployment's status: counts summed over its ReplicaSets, and the
//! Available / Progressing / ReplicaFailure conditions with upstream's
//! reasons and messages (what `kubectl rollout status` watches).

use super::arith;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::time::Duration;

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const MIN_AVAILABLE_REASON: &str = "MinimumReplicasAvailable";
pub const MIN_UNAVAILABLE_REASON: &str = "MinimumReplicasUnavailable";
pub const NEW_RS_CREATED_REASON: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS_REASON: &str = "FoundNewReplicaSet";
pub const RS_UPDATED_REASON: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE_REASON: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";
pub const PAUSED_REASON: &str = "DeploymentPaused";
pub const RESUMED_REASON: &str = "DeploymentResumed";
pub const FAILED_RS_CREATE_REASON: &str = "ReplicaSetCreateError";

pub fn condition(type_: &str, status: &str, reason: &str, message: String, now: &Time) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

pub fn get<'a>(s: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    s.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Set `c`, unless one of its type with the same status and reason is
/// there already; a condition keeping its status keeps its transition time.
pub fn set(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = get(s, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove(s, &c.type_);
    s.conditions.get_or_insert_with(Vec::new).push(c);
}

pub fn remove(s: &mut DeploymentStatus, type_: &str) {
    if let Some(v) = s.conditions.as_mut() {
        v.retain(|c| c.type_ != type_);
        if v.is_empty() {
            s.conditions = None;
        }
    }
}

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

fn sum(sets: &[&ReplicaSet], f: impl Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> i32) -> i32 {
    sets.iter().filter_map(|r| r.status.as_ref()).map(f).sum()
}

/// The status of `d` from its sets (`all` includes `new`).
pub fn calculate(d: &Deployment, all: &[&ReplicaSet], new: Option<&ReplicaSet>, now: &Time) -> DeploymentStatus {
    let available = sum(all, |s| s.available_replicas.unwrap_or(0));
    let total = arith::sum_replicas(all.iter().copied());
    let unavailable = (total - available).max(0);
    let old = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: nonzero(sum(all, |s| s.replicas)),
        updated_replicas: nonzero(new.and_then(|n| n.status.as_ref()).map(|s| s.replicas).unwrap_or(0)),
        ready_replicas: nonzero(sum(all, |s| s.ready_replicas.unwrap_or(0))),
        available_replicas: nonzero(available),
        unavailable_replicas: nonzero(unavailable),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    if available >= arith::replicas(d) - arith::max_unavailable(d) {
        set(&mut status, condition(AVAILABLE, "True", MIN_AVAILABLE_REASON, "Deployment has minimum availability.".into(), now));
    } else {
        set(&mut status, condition(AVAILABLE, "False", MIN_UNAVAILABLE_REASON, "Deployment does not have minimum availability.".into(), now));
    }
    status
}

pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).filter(|s| *s != i32::MAX)
}

pub fn generation_observed(d: &Deployment, s: &DeploymentStatus) -> bool {
    s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// All replicas updated and available, and this generation seen.
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = arith::replicas(d);
    s.updated_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
        && generation_observed(d, s)
}

/// `new` shows progress over the status `d` has.
pub fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let g = |v: Option<i32>| v.unwrap_or(0);
    let old_old = g(old.replicas) - g(old.updated_replicas);
    let new_old = g(new.replicas) - g(new.updated_replicas);
    g(new.updated_replicas) > g(old.updated_replicas)
        || new_old < old_old
        || g(new.ready_replicas) > g(old.ready_replicas)
        || g(new.available_replicas) > g(old.available_replicas)
}

/// No progress for longer than progressDeadlineSeconds.
pub fn timed_out(d: &Deployment, s: &DeploymentStatus, now: jiff::Timestamp) -> bool {
    let Some(deadline) = progress_deadline(d) else { return false };
    let Some(c) = get(s, PROGRESSING) else { return false };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE_REASON) => false,
        Some(TIMED_OUT_REASON) => true,
        _ => match &c.last_update_time {
            Some(t) => t.0.as_second() + i64::from(deadline) < now.as_second(),
            None => false,
        },
    }
}

/// When to look at a stuck deployment again to notice its deadline.
pub fn requeue_stuck(d: &Deployment, new: &DeploymentStatus, now: jiff::Timestamp) -> Option<Duration> {
    let deadline = progress_deadline(d)?;
    let c = get(d.status.as_ref()?, PROGRESSING)?;
    if complete(d, new) || c.reason.as_deref() == Some(TIMED_OUT_REASON) {
        return None;
    }
    let due = c.last_update_time.as_ref()?.0.as_second() + i64::from(deadline);
    let after = due - now.as_second();
    if after < 1 {
        return Some(Duration::from_millis(500));
    }
    Some(Duration::from_secs(u64::try_from(after).unwrap_or(0) + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> Time {
        Time(s.parse().expect("time"))
    }

    fn deploy(replicas: i32, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": replicas, "selector": {}, "template": {}, "progressDeadlineSeconds": 60,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}},
            "status": status,
        }))
        .expect("deployment")
    }

    fn rs(replicas: i32, ready: i32, available: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web-1"},
            "spec": {"replicas": replicas, "selector": {}},
            "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": available},
        }))
        .expect("rs")
    }

    #[test]
    fn counts_and_availability_come_from_the_sets() {
        let now = t("2025-01-01T00:00:00Z");
        let d = deploy(4, json!({}));
        let (old, new) = (rs(2, 2, 2), rs(3, 1, 1));
        let s = calculate(&d, &[&old, &new], Some(&new), &now);
        assert_eq!((s.replicas, s.updated_replicas, s.ready_replicas, s.available_replicas, s.unavailable_replicas), (Some(5), Some(3), Some(3), Some(3), Some(2)));
        assert_eq!(s.observed_generation, Some(2));
        let a = get(&s, AVAILABLE).expect("available");
        assert_eq!((a.status.as_str(), a.reason.as_deref()), ("True", Some(MIN_AVAILABLE_REASON)), "3 >= 4 - 1");
        let s = calculate(&d, &[&rs(4, 0, 0)], None, &now);
        assert_eq!(get(&s, AVAILABLE).and_then(|c| c.reason.as_deref()), Some(MIN_UNAVAILABLE_REASON));
        assert_eq!(s.updated_replicas, None, "zero counts are left out, as upstream's JSON does");
        assert!(!complete(&d, &s));
        let done = calculate(&d, &[&rs(4, 4, 4)], Some(&rs(4, 4, 4)), &now);
        assert!(complete(&d, &done));
    }

    #[test]
    fn conditions_keep_their_transition_time_while_their_status_holds() {
        let mut s = DeploymentStatus::default();
        set(&mut s, condition(PROGRESSING, "True", NEW_RS_CREATED_REASON, "a".into(), &t("2025-01-01T00:00:00Z")));
        set(&mut s, condition(PROGRESSING, "True", NEW_RS_CREATED_REASON, "b".into(), &t("2025-01-01T00:01:00Z")));
        assert_eq!(get(&s, PROGRESSING).and_then(|c| c.message.as_deref()), Some("a"), "same status and reason: unchanged");
        set(&mut s, condition(PROGRESSING, "True", RS_UPDATED_REASON, "c".into(), &t("2025-01-01T00:02:00Z")));
        let c = get(&s, PROGRESSING).expect("progressing");
        assert_eq!(c.last_transition_time, Some(t("2025-01-01T00:00:00Z")));
        assert_eq!(c.last_update_time, Some(t("2025-01-01T00:02:00Z")));
    }

    #[test]
    fn a_deployment_without_progress_times_out() {
        let d = deploy(3, json!({"conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
            "lastUpdateTime": "2025-01-01T00:00:00Z", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}));
        let s = d.status.clone().expect("status");
        assert!(!timed_out(&d, &s, "2025-01-01T00:00:59Z".parse().expect("time")));
        assert!(timed_out(&d, &s, "2025-01-01T00:01:01Z".parse().expect("time")));
        assert_eq!(requeue_stuck(&d, &s, "2025-01-01T00:00:30Z".parse().expect("time")), Some(Duration::from_secs(31)));
        let progressed = DeploymentStatus { ready_replicas: Some(1), ..s.clone() };
        assert!(progressing(&d, &progressed));
        assert!(!progressing(&d, &s));
    }
}
