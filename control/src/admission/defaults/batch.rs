//! `batch/v1` defaults, and the selector and labels the Job registry
//! generates on create.

use super::pod::template;
use super::{each_mut, obj_mut, set_default, str_at};
use crate::admission::batch::{CONTROLLER_UID, JOB_NAME, LEGACY_CONTROLLER_UID, LEGACY_JOB_NAME};
use serde_json::{json, Value};

pub(crate) fn job(obj: &mut Value) {
    let meta = obj.get("metadata");
    let name = meta.and_then(|m| str_at(m, "name")).unwrap_or("").to_string();
    let uid = meta.and_then(|m| str_at(m, "uid")).unwrap_or("").to_string();
    let Some(spec) = obj_mut(obj, "spec") else { return };
    if spec.get("completions").is_none_or(Value::is_null) && spec.get("parallelism").is_none_or(Value::is_null) {
        set_default(spec, "completions", json!(1));
    }
    set_default(spec, "parallelism", json!(1));
    let per_index = spec.get("backoffLimitPerIndex").is_some_and(|v| !v.is_null());
    set_default(spec, "backoffLimit", json!(if per_index { i64::from(i32::MAX) } else { 6 }));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    let has_failure_policy = spec.get("podFailurePolicy").is_some_and(|v| !v.is_null());
    if let Some(policy) = spec.get_mut("podFailurePolicy") {
        each_mut(policy, "rules", |rule| each_mut(rule, "onPodConditions", |c| set_default(c, "status", json!("True"))));
    }
    set_default(spec, "podReplacementPolicy", json!(if has_failure_policy { "Failed" } else { "TerminatingOrFailed" }));
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    let Some(tpl) = obj_mut(spec, "template") else { return };
    template(tpl);
    if !manual && !uid.is_empty() {
        generate_selector(spec, &name, &uid);
    }
    // Upstream defaults empty Job labels to the (final) template labels.
    let template_labels = spec.get("template").and_then(|t| t.get("metadata")).and_then(|m| m.get("labels")).filter(|l| l.is_object()).cloned();
    if let (Some(labels), Some(meta)) = (template_labels, obj_mut(obj, "metadata")) {
        let empty = meta.get("labels").and_then(Value::as_object).is_none_or(|l| l.is_empty());
        if empty {
            if let Some(m) = meta.as_object_mut() {
                m.insert("labels".into(), labels);
            }
        }
    }
}

/// The registry's `generateSelector`: job-name and controller-uid labels
/// on the template (both spellings), and a selector on the uid.
fn generate_selector(spec: &mut Value, name: &str, uid: &str) {
    if let Some(labels) = obj_mut(spec, "template").and_then(|t| obj_mut(t, "metadata")).and_then(|m| obj_mut(m, "labels")).and_then(Value::as_object_mut) {
        for (key, value) in [(LEGACY_JOB_NAME, name), (JOB_NAME, name), (LEGACY_CONTROLLER_UID, uid), (CONTROLLER_UID, uid)] {
            labels.entry(key).or_insert_with(|| json!(value));
        }
    }
    if let Some(match_labels) = obj_mut(spec, "selector").and_then(|s| obj_mut(s, "matchLabels")).and_then(Value::as_object_mut) {
        match_labels.entry(CONTROLLER_UID).or_insert_with(|| json!(uid));
    }
}

pub(crate) fn cron_job(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else { return };
    set_default(spec, "concurrencyPolicy", json!("Allow"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "successfulJobsHistoryLimit", json!(3));
    set_default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(jt) = obj_mut(spec, "jobTemplate") {
        if let Some(meta) = obj_mut(jt, "metadata").and_then(Value::as_object_mut) {
            meta.entry("creationTimestamp").or_insert(Value::Null);
        }
        if let Some(t) = obj_mut(jt, "spec").and_then(|s| obj_mut(s, "template")) {
            template(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::admission::default;
    use serde_json::json;

    #[test]
    fn job_gets_counts_and_generated_selector() {
        let mut j = json!({"metadata": {"name": "pi", "uid": "u-1"},
            "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}], "restartPolicy": "Never"}}}});
        default("batch", "Job", &mut j);
        let labels = json!({
            "batch.kubernetes.io/controller-uid": "u-1",
            "batch.kubernetes.io/job-name": "pi",
            "controller-uid": "u-1",
            "job-name": "pi"
        });
        assert_eq!(j["metadata"]["labels"], labels);
        assert_eq!(j["spec"]["template"]["metadata"]["labels"], labels);
        assert_eq!(j["spec"]["selector"], json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}));
        let spec = &j["spec"];
        assert_eq!(
            (&spec["completions"], &spec["parallelism"], &spec["backoffLimit"], &spec["completionMode"], &spec["suspend"], &spec["podReplacementPolicy"]),
            (&json!(1), &json!(1), &json!(6), &json!("NonIndexed"), &json!(false), &json!("TerminatingOrFailed"))
        );
        assert_eq!(spec["template"]["spec"]["restartPolicy"], json!("Never"));
    }

    #[test]
    fn job_parallelism_alone_leaves_completions_unset() {
        let mut j = json!({"metadata": {"name": "w"}, "spec": {"parallelism": 3, "template": {"spec": {}}}});
        default("batch", "Job", &mut j);
        assert!(j["spec"].get("completions").is_none());
        assert!(j["spec"].get("selector").is_none(), "no uid, no generated selector");
    }

    #[test]
    fn manual_selector_keeps_user_labels() {
        let mut j = json!({"metadata": {"name": "w", "uid": "u", "labels": {"team": "a"}},
            "spec": {"manualSelector": true, "selector": {"matchLabels": {"app": "w"}}, "template": {"metadata": {"labels": {"app": "w"}}}}});
        default("batch", "Job", &mut j);
        assert_eq!(j["spec"]["template"]["metadata"]["labels"], json!({"app": "w"}));
        assert_eq!(j["metadata"]["labels"], json!({"team": "a"}));
    }

    #[test]
    fn cron_job_defaults() {
        let mut c = json!({"spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:1"}]}}}}}});
        default("batch", "CronJob", &mut c);
        let spec = &c["spec"];
        assert_eq!(
            (&spec["concurrencyPolicy"], &spec["suspend"], &spec["successfulJobsHistoryLimit"], &spec["failedJobsHistoryLimit"]),
            (&json!("Allow"), &json!(false), &json!(3), &json!(1))
        );
        assert_eq!(spec["jobTemplate"]["metadata"], json!({"creationTimestamp": null}));
        assert_eq!(spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], json!("IfNotPresent"));
        assert!(spec["jobTemplate"]["spec"].get("backoffLimit").is_none());
    }
}
