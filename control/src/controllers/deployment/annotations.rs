//! The annotations a Deployment keeps on itself and its ReplicaSets:
//! `deployment.kubernetes.io/revision` (and `revision-history` when an old
//! set becomes new again, as after `kubectl rollout undo`),
//! `desired-replicas` and `max-replicas` (used for proportional scaling),
//! and the user's annotations (such as `kubernetes.io/change-cause`),
//! copied to the new ReplicaSet for `kubectl rollout history`.

use super::arith;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use std::collections::BTreeMap;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
pub const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// Longest `revision-history` kept.
pub const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// Deployment annotations never copied to its ReplicaSets.
fn skip_copy(k: &str) -> bool {
    matches!(k, LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | ROLLBACK_TO)
}

fn annotation<'a>(a: &'a Option<BTreeMap<String, String>>, k: &str) -> Option<&'a str> {
    a.as_ref()?.get(k).map(String::as_str)
}

/// The revision of a ReplicaSet (0 when unset or not a number).
pub fn revision(rs: &ReplicaSet) -> i64 {
    annotation(&rs.metadata.annotations, REVISION).and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub fn max_revision<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    sets.into_iter().map(revision).max().unwrap_or(0)
}

pub fn desired_replicas(rs: &ReplicaSet) -> Option<i32> {
    annotation(&rs.metadata.annotations, DESIRED_REPLICAS)?.parse().ok()
}

pub fn max_replicas(rs: &ReplicaSet) -> Option<i32> {
    annotation(&rs.metadata.annotations, MAX_REPLICAS)?.parse().ok()
}

fn copy_to_replica_set(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    let target = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy(k) || target.get(k) == Some(v) {
            continue;
        }
        target.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// Bring the annotations of the new ReplicaSet up to date: the
/// deployment's own, `new_revision` when higher than its own (keeping the
/// old one in `revision-history`), and for a set about to be created
/// (`exists` false) the replica annotations. True when anything changed.
pub fn set_new_replica_set_annotations(d: &Deployment, rs: &mut ReplicaSet, new_revision: &str, exists: bool) -> bool {
    let mut changed = copy_to_replica_set(d, rs);
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let old = a.get(REVISION).cloned();
    let old_int = match old.as_deref() {
        None | Some("") => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => n,
            Err(_) => {
                tracing::info!(replicaset = ?rs.metadata.name, revision = v, "revision annotation is not a number; not updating it");
                return false;
            }
        },
    };
    let Ok(new_int) = new_revision.parse::<i64>() else { return false };
    if old_int < new_int {
        a.insert(REVISION.into(), new_revision.into());
        changed = true;
        if let Some(old) = old {
            let history = a.get(REVISION_HISTORY).cloned().unwrap_or_default();
            if history.is_empty() {
                a.insert(REVISION_HISTORY.into(), old);
            } else {
                let mut parts: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REVISION_HISTORY_CHARS && start < parts.len() {
                    total -= parts[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REVISION_HISTORY_CHARS {
                    parts = parts.split_off(start);
                    parts.push(&old);
                    let joined = parts.join(",");
                    a.insert(REVISION_HISTORY.into(), joined);
                }
            }
        }
    }
    if !exists {
        let replicas = arith::replicas(d);
        if set_replicas_annotations(rs, replicas, replicas + arith::max_surge(d)) {
            changed = true;
        }
    }
    changed
}

/// Set `desired-replicas` and `max-replicas`; true when they changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired.to_string()), (MAX_REPLICAS, max.to_string())] {
        if a.get(k) != Some(&v) {
            a.insert(k.into(), v);
            changed = true;
        }
    }
    changed
}

pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation(&rs.metadata.annotations, DESIRED_REPLICAS) != Some(desired.to_string().as_str())
        || annotation(&rs.metadata.annotations, MAX_REPLICAS) != Some(max.to_string().as_str())
}

/// Set the deployment's revision annotation; true when it changed.
pub fn set_deployment_revision(d: &mut Deployment, revision: &str) -> bool {
    let a = d.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if a.get(REVISION).map(String::as_str) == Some(revision) {
        return false;
    }
    a.insert(REVISION.into(), revision.into());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy() -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "annotations": {"kubernetes.io/change-cause": "v2", REVISION: "3", LAST_APPLIED: "{}"}},
            "spec": {"replicas": 4, "selector": {}, "template": {}, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}},
        }))
        .expect("deployment")
    }

    fn rs(annotations: serde_json::Value) -> ReplicaSet {
        serde_json::from_value(json!({"metadata": {"name": "web-1", "annotations": annotations}})).expect("rs")
    }

    #[test]
    fn a_new_set_gets_the_revision_change_cause_and_replica_annotations() {
        let d = deploy();
        let mut r = rs(json!({}));
        assert!(set_new_replica_set_annotations(&d, &mut r, "4", false));
        let a = r.metadata.annotations.clone().expect("annotations");
        assert_eq!(a.get(REVISION).map(String::as_str), Some("4"));
        assert_eq!(a.get("kubernetes.io/change-cause").map(String::as_str), Some("v2"));
        assert_eq!(a.get(DESIRED_REPLICAS).map(String::as_str), Some("4"));
        assert_eq!(a.get(MAX_REPLICAS).map(String::as_str), Some("5"));
        assert!(!a.contains_key(LAST_APPLIED) && !a.contains_key(REVISION_HISTORY));
        assert!(!set_new_replica_set_annotations(&d, &mut r, "4", true), "nothing more to change");
    }

    #[test]
    fn an_old_set_made_new_again_keeps_its_revision_history() {
        let d = deploy();
        let mut r = rs(json!({REVISION: "1", "kubernetes.io/change-cause": "v2"}));
        assert!(set_new_replica_set_annotations(&d, &mut r, "3", true));
        assert_eq!(revision(&r), 3);
        assert_eq!(r.metadata.annotations.as_ref().and_then(|a| a.get(REVISION_HISTORY)).map(String::as_str), Some("1"));
        assert!(set_new_replica_set_annotations(&d, &mut r, "5", true));
        assert_eq!(r.metadata.annotations.as_ref().and_then(|a| a.get(REVISION_HISTORY)).map(String::as_str), Some("1,3"));
        assert!(!set_new_replica_set_annotations(&d, &mut r, "4", true), "a revision never goes down");
    }
}
