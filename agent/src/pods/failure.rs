//! Pod failures the kubelet decides on its own, outside the containers'
//! exit codes: node-pressure eviction (asked for by `crate::eviction`) and
//! `spec.activeDeadlineSeconds` (checked by the pod worker on every pass).
//!
//! Owns the requests from other parts of the agent (one table per agent,
//! by pod UID), the deadline rule, and how a failure shows in the pod's
//! status (phase `Failed`, reason, message, the `DisruptionTarget`
//! condition). Must not kill containers: the pod worker does, with the
//! grace period the failure carries.

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

/// Why and how the kubelet fails a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// `status.reason` and the event's reason (`Evicted`, `DeadlineExceeded`).
    pub reason: String,
    pub message: String,
    /// Grace period for the containers; `None`: the pod's own.
    pub grace: Option<i64>,
    /// Adds the `DisruptionTarget` condition (reason `TerminationByKubelet`).
    pub disruption: bool,
    /// The event's type: `Warning` for evictions, `Normal` for deadlines.
    pub warning: bool,
    /// When it was decided (the condition's transition time).
    pub at: jiff::Timestamp,
}

pub const DEADLINE_REASON: &str = "DeadlineExceeded";
pub const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// The deadline failure when `pod` has been active longer than its
/// `activeDeadlineSeconds` (counted from `status.startTime`) at `now`;
/// otherwise the time left, if it has a deadline.
pub fn deadline(pod: &Pod, now: jiff::Timestamp) -> Result<Option<Duration>, Failure> {
    let Some(limit) = pod.spec.as_ref().and_then(|s| s.active_deadline_seconds) else { return Ok(None) };
    let Some(start) = pod.status.as_ref().and_then(|s| s.start_time.as_ref()) else { return Ok(None) };
    let active_ms = now.as_millisecond() - start.0.as_millisecond();
    let left_ms = limit.saturating_mul(1000) - active_ms;
    if left_ms > 0 {
        return Ok(Some(Duration::from_millis(left_ms as u64)));
    }
    Err(Failure {
        reason: DEADLINE_REASON.into(),
        message: DEADLINE_MESSAGE.into(),
        grace: None,
        disruption: false,
        warning: false,
        at: now,
    })
}

/// Writes the failure into a status computed from the runtime.
pub fn apply(st: &mut PodStatus, f: &Failure) {
    st.phase = Some("Failed".into());
    st.reason = Some(f.reason.clone());
    st.message = Some(f.message.clone());
    if f.disruption {
        let conds = st.conditions.get_or_insert_with(Vec::new);
        conds.retain(|c| c.type_ != "DisruptionTarget");
        conds.push(PodCondition {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
            reason: Some("TerminationByKubelet".into()),
            message: Some(f.message.clone()),
            last_transition_time: Some(Time(jiff::Timestamp::from_second(f.at.as_second()).unwrap_or(f.at))),
            ..Default::default()
        });
    }
}

/// Failures asked for and not yet taken by a pod worker, and a wake-up
/// for the pod lifecycle loop.
#[derive(Default)]
pub struct Requests {
    pending: Mutex<HashMap<String, Failure>>,
    pub notify: Notify,
}

/// One table per agent (keyed by its directory: tests run several agents
/// in one process).
pub fn requests(agent_dir: PathBuf) -> Arc<Requests> {
    static TABLES: OnceLock<Mutex<HashMap<PathBuf, Arc<Requests>>>> = OnceLock::new();
    let mut map = match TABLES.get_or_init(Default::default).lock() {
        Ok(m) => m,
        Err(p) => p.into_inner(),
    };
    map.entry(agent_dir).or_default().clone()
}

impl Requests {
    /// Asks the worker of pod `uid` to fail it (the first request stays).
    pub fn ask(&self, uid: &str, f: Failure) {
        if let Ok(mut m) = self.pending.lock() {
            m.entry(uid.to_string()).or_insert(f);
        }
        self.notify.notify_one();
    }

    /// Takes the request for `uid`, if any.
    pub fn take(&self, uid: &str) -> Option<Failure> {
        self.pending.lock().ok()?.remove(uid)
    }

    /// The UIDs with a request waiting.
    pub fn waiting(&self) -> Vec<String> {
        self.pending.lock().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }

    /// Drops requests for pods no worker will take (gone from the node).
    pub fn forget(&self, uid: &str) {
        if let Ok(mut m) = self.pending.lock() {
            m.remove(uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn pod(deadline: Option<i64>, start: Option<&str>) -> Pod {
        Pod {
            spec: Some(PodSpec { active_deadline_seconds: deadline, ..Default::default() }),
            status: Some(PodStatus { start_time: start.map(|s| Time(s.parse().expect("test time"))), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn deadline_counts_from_start_time() {
        let now: jiff::Timestamp = "2026-01-01T00:00:10Z".parse().expect("test time");
        assert_eq!(deadline(&pod(None, Some("2026-01-01T00:00:00Z")), now), Ok(None));
        assert_eq!(deadline(&pod(Some(5), None), now), Ok(None));
        assert_eq!(deadline(&pod(Some(15), Some("2026-01-01T00:00:00Z")), now), Ok(Some(Duration::from_secs(5))));
        let f = deadline(&pod(Some(10), Some("2026-01-01T00:00:00Z")), now).expect_err("exceeded");
        assert_eq!((f.reason.as_str(), f.message.as_str()), (DEADLINE_REASON, DEADLINE_MESSAGE));
        assert!(!f.disruption && f.grace.is_none());
    }

    #[test]
    fn failure_sets_phase_reason_and_condition() {
        let at: jiff::Timestamp = "2026-01-01T00:00:10.5Z".parse().expect("test time");
        let f = Failure { reason: "Evicted".into(), message: "low".into(), grace: Some(0), disruption: true, warning: true, at };
        let mut st = PodStatus { phase: Some("Running".into()), ..Default::default() };
        apply(&mut st, &f);
        apply(&mut st, &f);
        assert_eq!(st.phase.as_deref(), Some("Failed"));
        assert_eq!(st.reason.as_deref(), Some("Evicted"));
        let conds = st.conditions.unwrap_or_default();
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].reason.as_deref(), Some("TerminationByKubelet"));
        assert_eq!(conds[0].last_transition_time.as_ref().map(|t| t.0.to_string()).as_deref(), Some("2026-01-01T00:00:10Z"));
    }

    #[test]
    fn requests_are_taken_once() {
        let r = Requests::default();
        let f = deadline(&pod(Some(1), Some("2026-01-01T00:00:00Z")), jiff::Timestamp::now()).expect_err("exceeded");
        r.ask("u1", f.clone());
        assert_eq!(r.waiting(), vec!["u1".to_string()]);
        assert_eq!(r.take("u1"), Some(f));
        assert_eq!(r.take("u1"), None);
    }
}
