//! Job conditions: the interim `SuccessCriteriaMet` / `FailureTarget`
//! (set as soon as the outcome is known) and the final `Complete` /
//! `Failed` (set once no pod of the Job is left running or uncounted), and
//! `Suspended`.

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const FAILURE_TARGET: &str = "FailureTarget";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const SUSPENDED: &str = "Suspended";

pub const REASON_COMPLETIONS_REACHED: &str = "CompletionsReached";
pub const MESSAGE_COMPLETIONS_REACHED: &str = "Reached expected number of succeeded pods";
pub const REASON_BACKOFF_LIMIT: &str = "BackoffLimitExceeded";
pub const MESSAGE_BACKOFF_LIMIT: &str = "Job has reached the specified backoff limit";
pub const REASON_DEADLINE: &str = "DeadlineExceeded";
pub const MESSAGE_DEADLINE: &str = "Job was active longer than specified deadline";
pub const REASON_POD_FAILURE_POLICY: &str = "PodFailurePolicy";

pub fn new(type_: &str, status: &str, reason: &str, message: &str, now: jiff::Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()).filter(|s| !s.is_empty()),
        message: Some(message.to_string()).filter(|s| !s.is_empty()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

pub fn find<'a>(status: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
    status.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

pub fn is_true(status: &JobStatus, type_: &str) -> bool {
    find(status, type_).is_some_and(|c| c.status == "True")
}

/// `Complete` or `Failed`, when the Job has finished.
pub fn finished(job: &Job) -> Option<&JobCondition> {
    let status = job.status.as_ref()?;
    status.conditions.as_ref()?.iter().find(|c| (c.type_ == COMPLETE || c.type_ == FAILED) && c.status == "True")
}

/// Set condition `type_` to the given state; a missing condition is only
/// added when its status is not False. Returns whether anything changed.
pub fn ensure(status: &mut JobStatus, type_: &str, cstatus: &str, reason: &str, message: &str, now: jiff::Timestamp) -> bool {
    let conds = status.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status != cstatus || c.reason.as_deref().unwrap_or("") != reason || c.message.as_deref().unwrap_or("") != message {
            *c = new(type_, cstatus, reason, message, now);
            return true;
        }
        return false;
    }
    if cstatus != "False" {
        conds.push(new(type_, cstatus, reason, message, now));
        return true;
    }
    if conds.is_empty() {
        status.conditions = None;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_adds_updates_and_leaves_alone() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let mut st = JobStatus::default();
        assert!(!ensure(&mut st, SUSPENDED, "False", "JobResumed", "Job resumed", now));
        assert!(st.conditions.is_none());
        assert!(ensure(&mut st, SUSPENDED, "True", "JobSuspended", "Job suspended", now));
        assert!(!ensure(&mut st, SUSPENDED, "True", "JobSuspended", "Job suspended", now));
        assert!(ensure(&mut st, SUSPENDED, "False", "JobResumed", "Job resumed", now));
        assert_eq!(st.conditions.as_ref().map(Vec::len), Some(1));
        assert!(!is_true(&st, SUSPENDED));
    }
}
