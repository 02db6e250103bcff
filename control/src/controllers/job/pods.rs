//! What the Job controller reads off its pods (finished, failed,
//! terminating, tracked by the finalizer, finish time) and the pods it
//! creates from the Job's template.

use super::indexes::{self, COMPLETION_INDEX};
use crate::controllers::util::{self, pod_phase};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// Finalizer that keeps a finished pod around until the Job counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Env var telling an Indexed Job's pod its index.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

pub fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata.finalizers.as_ref().is_some_and(|f| f.iter().any(|f| f == TRACKING_FINALIZER))
}

pub fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

pub fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

pub fn is_succeeded(pod: &Pod) -> bool {
    pod_phase(pod) == "Succeeded"
}

/// Being deleted and not finished yet.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some() && !matches!(pod_phase(pod), "Succeeded" | "Failed")
}

/// True when the Job replaces a pod only once it has failed (not while it
/// terminates): `podReplacementPolicy: Failed`, implied by a
/// `podFailurePolicy`.
pub fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    spec.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed") || spec.is_some_and(|s| s.pod_failure_policy.is_some())
}

/// A failure for the Job's counts: phase Failed, or (unless only failed
/// pods are replaced) deleted before it succeeded.
pub fn is_failed(pod: &Pod, job: &Job) -> bool {
    if pod_phase(pod) == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    pod.metadata.deletion_timestamp.is_some() && !is_succeeded(pod)
}

/// When the pod finished: the last container termination, else the time
/// it stopped being Ready, else its deletion, else its creation.
pub fn finished_time(pod: &Pod) -> Option<jiff::Timestamp> {
    let status = pod.status.as_ref();
    let from_containers = status
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref().map(|t| t.0)).max())
        .unwrap_or(None);
    if from_containers.is_some() {
        return from_containers;
    }
    let ready_false = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "False"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0);
    ready_false
        .or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Sum of container restarts of a pending or running pod.
pub fn restarts(pod: &Pod) -> i32 {
    if !matches!(pod_phase(pod), "Pending" | "Running") {
        return 0;
    }
    let Some(status) = pod.status.as_ref() else { return 0 };
    let sum = |v: &Option<Vec<k8s_openapi::api::core::v1::ContainerStatus>>| v.iter().flatten().map(|c| c.restart_count).sum::<i32>();
    sum(&status.init_container_statuses).saturating_add(sum(&status.container_statuses))
}

/// Order in which active pods are given up (upstream's `ActivePods`): not
/// on a node, then pending, not ready, ready for less time, restarted
/// more, newer.
pub fn sort_for_removal(pods: &mut [&Pod]) {
    pods.sort_by_key(|p| {
        let on_node = p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
        let phase = match pod_phase(p) {
            "Pending" => 0,
            "Unknown" => 1,
            "Running" => 2,
            _ => 0,
        };
        let ready = util::is_pod_ready(p);
        let ready_since = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0.as_second());
        let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second());
        (on_node, phase, ready, Reverse(ready_since), Reverse(restarts(p)), Reverse(created))
    });
}

/// Active pods to delete: at least `at_least`, and for Indexed Jobs every
/// pod with a missing, out-of-range or repeated index first.
pub fn for_removal<'a>(active: &[&'a Pod], at_least: usize, indexed: bool, completions: i32) -> Vec<&'a Pod> {
    let mut rm: Vec<&Pod> = Vec::new();
    let mut left: Vec<&Pod> = Vec::new();
    if indexed {
        let mut by_index: BTreeMap<i32, Vec<&Pod>> = BTreeMap::new();
        for p in active {
            match indexes::valid_of_pod(p, completions) {
                Some(ix) => by_index.entry(ix).or_default().push(p),
                None => rm.push(p),
            }
        }
        for (_, mut same) in by_index {
            // Keep the one given up last; the others are duplicates.
            sort_for_removal(&mut same);
            if let Some(keep) = same.pop() {
                left.push(keep);
            }
            rm.extend(same);
        }
    } else {
        left = active.to_vec();
    }
    if rm.len() < at_least {
        sort_for_removal(&mut left);
        let more = (at_least - rm.len()).min(left.len());
        rm.extend(left.into_iter().take(more));
    }
    rm
}

/// A new pod for `job` (and `index` for Indexed Jobs): the template with
/// the tracking finalizer, and the index annotation, label, hostname and
/// env var.
pub fn new_pod(job: &Job, index: Option<i32>) -> Option<Pod> {
    let spec = job.spec.as_ref()?;
    let job_name = job.metadata.name.as_deref().unwrap_or("");
    let generate_name = match index {
        Some(ix) => indexes::pod_generate_name(job_name, ix),
        None => format!("{job_name}-"),
    };
    let mut pod = util::pod_from_template(&spec.template, job, &generate_name, None);
    let finalizers = pod.metadata.finalizers.get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.to_string());
    }
    if let Some(ix) = index {
        pod.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(COMPLETION_INDEX.into(), ix.to_string());
        pod.metadata.labels.get_or_insert_with(BTreeMap::new).insert(COMPLETION_INDEX.into(), ix.to_string());
        if let Some(ps) = pod.spec.as_mut() {
            ps.hostname = Some(format!("{job_name}-{ix}"));
            for c in ps.containers.iter_mut().chain(ps.init_containers.iter_mut().flatten()) {
                add_index_env(c);
            }
        }
    }
    Some(pod)
}

fn add_index_env(c: &mut Container) {
    let env = c.env.get_or_insert_with(Vec::new);
    if env.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
        return;
    }
    env.push(EnvVar {
        name: COMPLETION_INDEX_ENV.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { api_version: None, field_path: format!("metadata.annotations['{COMPLETION_INDEX}']") }),
            ..Default::default()
        }),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap_or_default()
    }

    fn job(v: serde_json::Value) -> Job {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn deleted_pods_count_as_failed_unless_only_failed_are_replaced() {
        let deleted = pod(json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}, "status": {"phase": "Running"}}));
        let plain = job(json!({"spec": {"template": {}}}));
        let strict = job(json!({"spec": {"template": {}, "podReplacementPolicy": "Failed"}}));
        assert!(is_failed(&deleted, &plain));
        assert!(!is_failed(&deleted, &strict));
        assert!(is_terminating(&deleted));
        let failed = pod(json!({"status": {"phase": "Failed"}}));
        assert!(is_failed(&failed, &strict));
    }

    #[test]
    fn indexed_pods_get_index_and_finalizer() {
        let j = job(json!({"metadata": {"name": "ix", "namespace": "ns", "uid": "u"},
            "spec": {"completionMode": "Indexed", "template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "env": [{"name": "X", "value": "1"}]}]}}}}));
        let p = new_pod(&j, Some(2)).unwrap_or_default();
        assert_eq!(p.metadata.generate_name.as_deref(), Some("ix-2-"));
        assert_eq!(p.metadata.finalizers, Some(vec![TRACKING_FINALIZER.to_string()]));
        assert_eq!(p.metadata.annotations.as_ref().and_then(|a| a.get(COMPLETION_INDEX)).map(String::as_str), Some("2"));
        assert_eq!(p.metadata.labels.as_ref().and_then(|a| a.get(COMPLETION_INDEX)).map(String::as_str), Some("2"));
        let spec = p.spec.unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some("ix-2"));
        let env = spec.containers[0].env.clone().unwrap_or_default();
        assert_eq!(env.len(), 2);
        assert_eq!(env[1].name, COMPLETION_INDEX_ENV);
    }

    #[test]
    fn duplicate_indexes_are_removed_first() {
        let a = pod(json!({"metadata": {"name": "a", "annotations": {COMPLETION_INDEX: "0"}}, "status": {"phase": "Running"}}));
        let b = pod(json!({"metadata": {"name": "b", "annotations": {COMPLETION_INDEX: "0"}}, "status": {"phase": "Pending"}}));
        let c = pod(json!({"metadata": {"name": "c", "annotations": {COMPLETION_INDEX: "7"}}, "status": {"phase": "Running"}}));
        let d = pod(json!({"metadata": {"name": "d", "annotations": {COMPLETION_INDEX: "1"}}, "status": {"phase": "Running"}}));
        let rm = for_removal(&[&a, &b, &c, &d], 0, true, 3);
        let names: Vec<&str> = rm.iter().map(|p| name(p)).collect();
        assert_eq!(names, vec!["c", "b"]);
    }

    #[test]
    fn unready_and_pending_pods_go_first() {
        let ready = pod(json!({"metadata": {"name": "r"}, "spec": {"nodeName": "n"}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}));
        let running = pod(json!({"metadata": {"name": "u"}, "spec": {"nodeName": "n"}, "status": {"phase": "Running"}}));
        let pending = pod(json!({"metadata": {"name": "p"}, "status": {"phase": "Pending"}}));
        let rm = for_removal(&[&ready, &running, &pending], 2, false, 0);
        let names: Vec<&str> = rm.iter().map(|p| name(p)).collect();
        assert_eq!(names, vec!["p", "u"]);
    }
}
