//! The Job arithmetic, without I/O: how many pods should run, when the Job
//! is done, and whether it has failed (back-off limit, deadline).

use super::conditions::{self, FAILURE_TARGET};
use k8s_openapi::api::batch::v1::JobCondition;
use std::time::Duration;

/// How many pods should be active: `parallelism`, but never more than the
/// completions still missing. Without `completions` (a work queue), once
/// one pod succeeded the running ones are left to finish and none added.
pub fn want_active(completions: Option<i32>, parallelism: i32, succeeded: i32, active: i32) -> i32 {
    match completions {
        None if succeeded > 0 => active,
        None => parallelism.max(0),
        Some(c) => (c - succeeded).min(parallelism).max(0),
    }
}

/// Done when enough pods succeeded (any one, without `completions`) and
/// none is still running.
pub fn is_complete(completions: Option<i32>, succeeded: i32, active: i32) -> bool {
    active == 0
        && match completions {
            None => succeeded > 0,
            Some(c) => succeeded >= c,
        }
}

/// The facts the failure decision needs.
pub struct FailureInput {
    pub failed: i32,
    pub backoff_limit: i32,
    /// Restarts of running pods (restartPolicy OnFailure), if that applies.
    pub on_failure_restarts: Option<i32>,
    pub active_deadline_seconds: Option<i64>,
    pub start_time: Option<jiff::Timestamp>,
    pub suspended: bool,
    pub now: jiff::Timestamp,
}

/// A `FailureTarget` condition when the Job has failed by back-off limit
/// or deadline; otherwise when to look again for the deadline.
pub fn failure(i: &FailureInput) -> (Option<JobCondition>, Option<Duration>) {
    let restarts_exceeded = match i.on_failure_restarts {
        Some(r) if i.backoff_limit == 0 => r > 0,
        Some(r) => r >= i.backoff_limit,
        None => false,
    };
    if i.failed > i.backoff_limit || restarts_exceeded {
        let c = conditions::new(FAILURE_TARGET, "True", conditions::REASON_BACKOFF_LIMIT, conditions::MESSAGE_BACKOFF_LIMIT, i.now);
        return (Some(c), None);
    }
    let (Some(deadline), Some(start)) = (i.active_deadline_seconds, i.start_time) else { return (None, None) };
    if i.suspended {
        return (None, None);
    }
    let elapsed = i.now.duration_since(start).as_secs_f64();
    let allowed = deadline as f64;
    if elapsed >= allowed {
        let c = conditions::new(FAILURE_TARGET, "True", conditions::REASON_DEADLINE, conditions::MESSAGE_DEADLINE, i.now);
        return (Some(c), None);
    }
    (None, Some(Duration::from_secs_f64((allowed - elapsed).max(0.0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_pods_wanted() {
        assert_eq!(want_active(Some(3), 2, 0, 0), 2);
        assert_eq!(want_active(Some(3), 2, 2, 0), 1);
        assert_eq!(want_active(Some(3), 2, 3, 1), 0);
        assert_eq!(want_active(Some(3), 2, 5, 0), 0);
        assert_eq!(want_active(None, 4, 0, 1), 4);
        assert_eq!(want_active(None, 4, 1, 3), 3);
        assert_eq!(want_active(Some(2), 0, 0, 0), 0);
    }

    #[test]
    fn completion() {
        assert!(is_complete(Some(3), 3, 0));
        assert!(!is_complete(Some(3), 3, 1));
        assert!(!is_complete(Some(3), 2, 0));
        assert!(is_complete(None, 1, 0));
        assert!(!is_complete(None, 0, 0));
    }

    fn input(failed: i32, limit: i32) -> FailureInput {
        FailureInput {
            failed,
            backoff_limit: limit,
            on_failure_restarts: None,
            active_deadline_seconds: None,
            start_time: None,
            suspended: false,
            now: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn back_off_limit_counts_failures_beyond_it() {
        assert!(failure(&input(1, 1)).0.is_none());
        let (c, _) = failure(&input(2, 1));
        let c = c.unwrap_or_default();
        assert_eq!((c.type_.as_str(), c.reason.as_deref()), (FAILURE_TARGET, Some("BackoffLimitExceeded")));
        assert!(failure(&input(1, 0)).0.is_some());
        let mut i = input(0, 0);
        i.on_failure_restarts = Some(1);
        assert!(failure(&i).0.is_some());
        i.backoff_limit = 2;
        assert!(failure(&i).0.is_none());
    }

    #[test]
    fn deadline_fails_or_requeues() {
        let mut i = input(0, 6);
        i.active_deadline_seconds = Some(10);
        i.start_time = Some(jiff::Timestamp::UNIX_EPOCH);
        i.now = jiff::Timestamp::from_second(4).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let (c, again) = failure(&i);
        assert!(c.is_none());
        assert_eq!(again, Some(Duration::from_secs(6)));
        i.now = jiff::Timestamp::from_second(10).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(failure(&i).0.and_then(|c| c.reason), Some("DeadlineExceeded".to_string()));
        i.suspended = true;
        assert_eq!(failure(&i), (None, None));
    }
}
