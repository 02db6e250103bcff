//! `batch/v1`: Job and CronJob.

use super::cron::parse_cron;
use super::meta::{self, SUBDOMAIN};
use super::path::Path;
use super::pod;
use super::util::{bool_of, get, immutable, int_of, invalid_raw, nonnegative, positive, semantic_eq, str_of, string, Errs};
use super::workload::{self, Selector};
use crate::field_error::FieldError;
use crate::names;
use serde_json::{json, Value};

pub(crate) const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub(crate) const JOB_NAME: &str = "batch.kubernetes.io/job-name";
pub(crate) const LEGACY_CONTROLLER_UID: &str = "controller-uid";
pub(crate) const LEGACY_JOB_NAME: &str = "job-name";

fn spec_of(obj: &Value) -> &Value {
    obj.get("spec").unwrap_or(&Value::Null)
}

pub(crate) fn job(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let spec = spec_of(obj);
    let path = Path::root("spec");
    if old.is_none() {
        generated_selector(obj, errs);
    }
    job_spec(spec, &path, errs);
    let sel = match get(spec, "selector") {
        None => {
            errs.push(FieldError::required(path.child("selector"), ""));
            Selector::Missing
        }
        Some(_) => workload::selector(spec, None, &path, errs),
    };
    workload::match_template(&sel, get(spec, "template"), &path, errs);
    let name = meta::name(obj);
    if old.is_none() && str_of(spec, "completionMode") == Some("Indexed") {
        if let Some(c) = int_of(spec, "completions").filter(|c| *c > 0) {
            let hostname = format!("{name}-{}", c - 1);
            if !names::dns1123_label(&hostname).is_empty() {
                errs.push(FieldError::invalid(
                    Path::root("metadata").child("name"),
                    json!(name),
                    format!("will not able to create pod with invalid DNS label: {hostname}"),
                ));
            }
        }
    }
    if let Some(old) = old {
        job_update(obj, old, &path, errs);
    }
}

/// The labels and selector the API server generated on create must be
/// there (`manualSelector: true` opts out).
fn generated_selector(obj: &Value, errs: &mut Errs) {
    let spec = spec_of(obj);
    if bool_of(spec, "manualSelector") == Some(true) {
        return;
    }
    let uid = obj.get("metadata").map(|m| string(m, "uid")).unwrap_or("");
    if uid.is_empty() {
        return;
    }
    let name = meta::name(obj);
    let labels = pod::template_labels(get(spec, "template"));
    let labels_path = Path::root("spec").child("template").child("metadata").child("labels");
    for (key, want) in [(LEGACY_CONTROLLER_UID, uid), (LEGACY_JOB_NAME, name), (CONTROLLER_UID, uid), (JOB_NAME, name)] {
        match labels.and_then(|l| l.get(key)).and_then(Value::as_str) {
            None => errs.push(FieldError::required(labels_path.key(key), want)),
            Some(v) if v != want => errs.push(invalid_raw(
                &labels_path.key(key),
                &super::gorepr::string_map(labels),
                &format!("must be '{want}'"),
            )),
            Some(_) => {}
        }
    }
    let selects_uid = get(spec, "selector")
        .and_then(|s| crate::selector::LabelSelector::from_json(s).ok())
        .is_some_and(|s| {
            let mut expected = serde_json::Map::new();
            expected.insert(CONTROLLER_UID.into(), json!(uid));
            s.matches(Some(&expected))
        });
    if !selects_uid {
        if let Some(sel) = get(spec, "selector") {
            errs.push(invalid_raw(&Path::root("spec").child("selector"), &super::gorepr::label_selector(sel), "`selector` not auto-generated"));
        }
    }
}

/// upstream `validateJobSpec` (shared with CronJob job templates).
fn job_spec(spec: &Value, path: &Path, errs: &mut Errs) {
    nonnegative(spec, "parallelism", path, errs);
    nonnegative(spec, "completions", path, errs);
    positive(spec, "activeDeadlineSeconds", path, errs);
    nonnegative(spec, "backoffLimit", path, errs);
    nonnegative(spec, "ttlSecondsAfterFinished", path, errs);
    let indexed = str_of(spec, "completionMode") == Some("Indexed");
    if get(spec, "backoffLimitPerIndex").is_some() {
        nonnegative(spec, "backoffLimitPerIndex", path, errs);
        if !indexed {
            errs.push(FieldError::invalid(path.child("backoffLimitPerIndex"), spec["backoffLimitPerIndex"].clone(), "requires indexed completion mode"));
        }
    }
    if let Some(mode) = str_of(spec, "completionMode") {
        if !matches!(mode, "NonIndexed" | "Indexed") {
            errs.push(FieldError::not_supported(path.child("completionMode"), json!(mode), &["NonIndexed", "Indexed"]));
        }
        if indexed {
            if get(spec, "completions").is_none() {
                errs.push(FieldError::required(path.child("completions"), "when completion mode is Indexed"));
            }
            if let Some(p) = int_of(spec, "parallelism").filter(|p| *p > 100_000) {
                errs.push(FieldError::invalid(path.child("parallelism"), json!(p), "must be less than or equal to 100000 when completion mode is Indexed"));
            }
        }
    }
    if let Some(policy) = str_of(spec, "podReplacementPolicy") {
        if get(spec, "podFailurePolicy").is_some() {
            if policy != "Failed" {
                errs.push(FieldError::not_supported(path.child("podReplacementPolicy"), json!(policy), &["Failed"]));
            }
        } else if !matches!(policy, "Failed" | "TerminatingOrFailed") {
            errs.push(FieldError::not_supported(path.child("podReplacementPolicy"), json!(policy), &["Failed", "TerminatingOrFailed"]));
        }
    }
    let template = get(spec, "template");
    pod::template(template, &path.child("template"), &[], errs);
    let restart_path = path.child("template").child("spec").child("restartPolicy");
    match pod::template_restart_policy(template) {
        "" | "Always" => errs.push(FieldError::required(restart_path, "valid values: \"OnFailure\", \"Never\"")),
        "OnFailure" | "Never" => {
            if get(spec, "podFailurePolicy").is_some() && pod::template_restart_policy(template) != "Never" {
                errs.push(FieldError::invalid(restart_path, json!("OnFailure"), "only \"Never\" is supported when podFailurePolicy is specified"));
            }
        }
        other => errs.push(FieldError::not_supported(restart_path, json!(other), &["OnFailure", "Never"])),
    }
}

fn job_update(obj: &Value, old: &Value, path: &Path, errs: &mut Errs) {
    let (spec, old_spec) = (spec_of(obj), spec_of(old));
    let completions = get(spec, "completions");
    if !semantic_eq(completions, get(old_spec, "completions")) {
        if str_of(spec, "completionMode") != Some("Indexed") {
            immutable(completions, get(old_spec, "completions"), &path.child("completions"), errs);
        } else if completions.is_some() && int_of(spec, "completions") != int_of(spec, "parallelism") {
            errs.push(FieldError::invalid(
                path.child("completions"),
                completions.cloned().unwrap_or(Value::Null),
                "can only be modified in tandem with spec.parallelism",
            ));
        }
    }
    workload::selector_immutable(spec, old_spec, path, errs);
    // A suspended Job that never started may still have its scheduling
    // directives, labels and annotations changed.
    let mut old_template = get(old_spec, "template").cloned().unwrap_or(Value::Null);
    let never_started = old.get("status").and_then(|s| get(s, "startTime")).is_none();
    if bool_of(old_spec, "suspend") == Some(true) && never_started {
        let new_template = get(spec, "template").cloned().unwrap_or(Value::Null);
        copy_field(&mut old_template, &new_template, &["metadata", "labels"]);
        copy_field(&mut old_template, &new_template, &["metadata", "annotations"]);
        for key in ["nodeSelector", "tolerations", "schedulingGates", "affinity"] {
            copy_field(&mut old_template, &new_template, &["spec", key]);
        }
    }
    immutable(get(spec, "template"), Some(&old_template), &path.child("template"), errs);
    for key in ["completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"] {
        immutable(get(spec, key), get(old_spec, key), &path.child(key), errs);
    }
}

/// Sets `dst.a.b` to `src.a.b` (removing it when `src` has none).
fn copy_field(dst: &mut Value, src: &Value, keys: &[&str]) {
    let [parent_key, key] = keys else { return };
    let value = super::util::at(src, keys).cloned();
    let Some(dst) = dst.as_object_mut() else { return };
    let parent = dst.entry(parent_key.to_string()).or_insert_with(|| json!({}));
    if let Some(parent) = parent.as_object_mut() {
        match value {
            Some(v) => parent.insert(key.to_string(), v),
            None => parent.remove(*key),
        };
    }
}

pub(crate) fn cron_job(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let spec = spec_of(obj);
    let path = Path::root("spec");
    let old_spec = old.map(spec_of);
    let schedule = string(spec, "schedule");
    if schedule.is_empty() {
        errs.push(FieldError::required(path.child("schedule"), ""));
    } else {
        let p = path.child("schedule");
        if let Err(e) = parse_cron(schedule) {
            errs.push(FieldError::invalid(&p, json!(schedule), e.to_string()));
        }
        let allow_tz = old_spec.is_some_and(|o| string(o, "schedule").contains("TZ"));
        if schedule.contains("TZ") {
            if !allow_tz {
                errs.push(FieldError::invalid(&p, json!(schedule), "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"));
            } else if get(spec, "timeZone").is_some() {
                errs.push(FieldError::invalid(&p, json!(schedule), "cannot use both timeZone field and TZ or CRON_TZ in schedule"));
            }
        }
    }
    nonnegative(spec, "startingDeadlineSeconds", &path, errs);
    if old_spec.is_none_or(|o| !semantic_eq(get(o, "timeZone"), get(spec, "timeZone"))) {
        time_zone(get(spec, "timeZone"), &path.child("timeZone"), errs);
    }
    super::util::one_of(str_of(spec, "concurrencyPolicy"), &["Allow", "Forbid", "Replace"], &path.child("concurrencyPolicy"), errs);
    let jt_path = path.child("jobTemplate");
    let job_template_spec = spec.get("jobTemplate").and_then(|t| get(t, "spec")).unwrap_or(&Value::Null);
    job_spec(job_template_spec, &jt_path.child("spec"), errs);
    if let Some(sel) = get(job_template_spec, "selector") {
        errs.push(invalid_raw(&jt_path.child("spec").child("selector"), &super::gorepr::label_selector(sel), "`selector` will be auto-generated"));
    }
    if bool_of(job_template_spec, "manualSelector") == Some(true) {
        errs.push(FieldError::not_supported(jt_path.child("spec").child("manualSelector"), json!(true), &["nil", "false"]));
    }
    nonnegative(spec, "successfulJobsHistoryLimit", &path, errs);
    nonnegative(spec, "failedJobsHistoryLimit", &path, errs);
    let name = meta::name(obj);
    if old.is_none() && name.len() > 52 {
        errs.push(FieldError::invalid(Path::root("metadata").child("name"), json!(name), "must be no more than 52 characters"));
    }
}

fn time_zone(tz: Option<&Value>, path: &Path, errs: &mut Errs) {
    let Some(tz) = tz else { return };
    let name = tz.as_str().unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::invalid(path, json!(name), "timeZone must be nil or non-empty string"));
        return;
    }
    let valid_part = |p: &str| {
        (1..=14).contains(&p.len())
            && p != "."
            && p != ".."
            && !p.starts_with('-')
            && p.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'+'))
    };
    if !name.split('/').all(valid_part) {
        errs.push(FieldError::invalid(path, json!(name), format!("unknown time zone {name}")));
        return;
    }
    if name.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(path, json!(name), "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"));
    }
    if jiff::tz::TimeZone::get(name).is_err() {
        errs.push(FieldError::invalid(path, json!(name), format!("unknown time zone {name}")));
    }
}

#[cfg(test)]
mod tests {
    use crate::admission::{default, validate};
    use crate::field_error::aggregate;
    use serde_json::{json, Value};

    fn check(kind: &str, mut obj: Value, old: Option<Value>) -> String {
        default("batch", kind, &mut obj);
        aggregate(&validate("batch", kind, &obj, old.as_ref()))
    }

    fn job(restart: Option<&str>) -> Value {
        let mut j = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
            "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}]}}}
        });
        if let Some(r) = restart {
            j["spec"]["template"]["spec"]["restartPolicy"] = json!(r);
        }
        j
    }

    #[test]
    fn job_restart_policy() {
        assert_eq!(check("Job", job(Some("Never")), None), "[]");
        assert_eq!(check("Job", job(None), None), "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"");
    }

    #[test]
    fn job_counts_and_mode() {
        let mut j = job(Some("Never"));
        j["spec"]["parallelism"] = json!(-1);
        j["spec"]["completionMode"] = json!("Sometimes");
        assert_eq!(
            check("Job", j, None),
            "[spec.parallelism: Invalid value: -1: must be greater than or equal to 0, spec.completionMode: Unsupported value: \"Sometimes\": supported values: \"NonIndexed\", \"Indexed\"]"
        );
    }

    #[test]
    fn job_template_is_immutable() {
        let mut old = job(Some("Never"));
        default("batch", "Job", &mut old);
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.36");
        let out = aggregate(&validate("batch", "Job", &new, Some(&old)));
        assert!(out.starts_with("spec.template: Invalid value: {"), "{out}");
        assert!(out.ends_with(": field is immutable"), "{out}");
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"x": "y"}});
        let out = aggregate(&validate("batch", "Job", &new, Some(&old)));
        assert!(out.contains("spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"x\":\"y\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"), "{out}");
    }

    #[test]
    fn job_manual_selector_must_match() {
        let mut j = job(Some("Never"));
        j["spec"]["manualSelector"] = json!(true);
        j["spec"]["selector"] = json!({"matchLabels": {"app": "pi"}});
        assert_eq!(
            check("Job", j, None),
            "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`"
        );
    }

    fn cron(schedule: &str) -> Value {
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "hello", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}}
        })
    }

    #[test]
    fn cron_job_schedule() {
        assert_eq!(check("CronJob", cron("*/1 * * * *"), None), "[]");
        assert_eq!(check("CronJob", cron(""), None), "spec.schedule: Required value");
        assert_eq!(
            check("CronJob", cron("* * *"), None),
            "spec.schedule: Invalid value: \"* * *\": expected exactly 5 fields, found 3: [* * *]"
        );
        assert_eq!(
            check("CronJob", cron("TZ=UTC * * * * *"), None),
            "spec.schedule: Invalid value: \"TZ=UTC * * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
        );
    }

    #[test]
    fn cron_job_template_and_name() {
        let mut c = cron("@hourly");
        c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        c["spec"]["timeZone"] = json!("Mars/Olympus");
        c["metadata"]["name"] = json!("a".repeat(53));
        assert_eq!(
            check("CronJob", c, None),
            format!(
                "[spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus, spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\", metadata.name: Invalid value: \"{}\": must be no more than 52 characters]",
                "a".repeat(53)
            )
        );
    }
}
