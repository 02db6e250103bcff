//! `podFailurePolicy`: which rule a failed pod matches (on container exit
//! codes or pod conditions), and what it means for the Job.

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    FailJob,
    FailIndex,
    Ignore,
    Count,
}

/// What a failed pod means under the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The Job's failure message when a `FailJob` rule matched.
    pub fail_job: Option<String>,
    /// Whether the failure counts towards `backoffLimit`.
    pub counts: bool,
    pub action: Option<Action>,
}

/// Match `pod` (failed) against `policy`; the first matching rule decides.
/// No policy or no match: the failure counts.
pub fn judge(policy: Option<&PodFailurePolicy>, pod: &Pod) -> Verdict {
    let counted = Verdict { fail_job: None, counts: true, action: None };
    let Some(policy) = policy else { return counted };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.clone().unwrap_or_default();
    for (i, rule) in policy.rules.iter().enumerate() {
        let matched = if let Some(req) = &rule.on_exit_codes {
            on_exit_codes(&status.container_statuses, req)
                .or_else(|| on_exit_codes(&status.init_container_statuses, req))
                .map(|c| {
                    let code = c.state.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| t.exit_code).unwrap_or(0);
                    format!("Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {i}", c.name, rule.action)
                })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            on_conditions(status.conditions.as_deref().unwrap_or(&[]), patterns)
                .map(|c| format!("Pod {ns}/{name} has condition {} matching {} rule at index {i}", c.type_, rule.action))
        } else {
            None
        };
        let Some(message) = matched else { continue };
        match rule.action.as_str() {
            "Ignore" => return Verdict { fail_job: None, counts: false, action: Some(Action::Ignore) },
            "Count" => return Verdict { fail_job: None, counts: true, action: Some(Action::Count) },
            "FailIndex" => return Verdict { fail_job: None, counts: true, action: Some(Action::FailIndex) },
            "FailJob" => return Verdict { fail_job: Some(message), counts: true, action: Some(Action::FailJob) },
            _ => {}
        }
    }
    counted
}

fn on_exit_codes<'a>(statuses: &'a Option<Vec<ContainerStatus>>, req: &PodFailurePolicyOnExitCodesRequirement) -> Option<&'a ContainerStatus> {
    statuses.iter().flatten().find(|c| {
        let Some(t) = c.state.as_ref().and_then(|s| s.terminated.as_ref()) else { return false };
        if req.container_name.as_deref().is_some_and(|n| n != c.name) || t.exit_code == 0 {
            return false;
        }
        let listed = req.values.contains(&t.exit_code);
        match req.operator.as_str() {
            "In" => listed,
            "NotIn" => !listed,
            _ => false,
        }
    })
}

fn on_conditions<'a>(conditions: &'a [PodCondition], patterns: &[PodFailurePolicyOnPodConditionsPattern]) -> Option<&'a PodCondition> {
    conditions.iter().find(|c| patterns.iter().any(|p| p.type_ == c.type_ && p.status == c.status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failed(code: i32) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns"}, "status": {"phase": "Failed",
            "conditions": [{"type": "DisruptionTarget", "status": "False"}],
            "containerStatuses": [{"name": "main", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                "state": {"terminated": {"exitCode": code}}}]}}))
        .unwrap_or_default()
    }

    fn policy(v: serde_json::Value) -> PodFailurePolicy {
        serde_json::from_value(v).unwrap_or(PodFailurePolicy { rules: vec![] })
    }

    #[test]
    fn first_matching_rule_decides() {
        let p = policy(json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
        ]}));
        let v = judge(Some(&p), &failed(42));
        assert_eq!(v.action, Some(Action::FailJob));
        assert_eq!(v.fail_job.as_deref(), Some("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"));
        assert_eq!(judge(Some(&p), &failed(3)), Verdict { fail_job: None, counts: false, action: Some(Action::Ignore) });
        assert_eq!(judge(Some(&p), &failed(5)).action, Some(Action::Count));
        assert_eq!(judge(Some(&p), &failed(1)), Verdict { fail_job: None, counts: true, action: None });
        assert_eq!(judge(None, &failed(42)).action, None);
    }

    #[test]
    fn pod_conditions_match_with_status() {
        let p = policy(json!({"rules": [{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "False"}]}]}));
        assert_eq!(judge(Some(&p), &failed(1)).fail_job.as_deref(), Some("Pod ns/p has condition DisruptionTarget matching FailJob rule at index 0"));
    }
}
