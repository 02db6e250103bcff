//! Tables of the `batch` kinds: Job (with the STATUS column of v1.32) and
//! CronJob.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::age::{age, human_duration, since, time_at};
use super::columns::{
    col, containers_cells, format_label_selector, name, template_spec, wide, Col, Printer, Row,
    AGE, CONTAINERS, IMAGES, NAME,
};
use super::value::{arr_at, get, int_at, opt_bool, opt_int, opt_str, str_at};

pub(super) fn lookup(kind: &str) -> Option<Printer> {
    Some(match kind {
        "Job" => Printer::new(JOB, job),
        "CronJob" => Printer::new(CRON_JOB, cron_job),
        _ => return None,
    })
}

const JOB: &[Col] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded, out of the completions wanted.",
    ),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    ),
];

/// Whether the first condition of `type_` has status True.
fn has_condition(job: &Value, type_: &str) -> bool {
    arr_at(job, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == type_)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

fn job_status(job: &Value) -> &'static str {
    if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if get(job, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

fn job(job: &Value, now: Timestamp) -> Row {
    let succeeded = int_at(job, &["status", "succeeded"]);
    let completions = match opt_int(job, &["spec", "completions"]) {
        Some(wanted) => format!("{succeeded}/{wanted}"),
        None => {
            let parallelism = opt_int(job, &["spec", "parallelism"]).unwrap_or(0);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match (
        time_at(job, &["status", "startTime"]),
        time_at(job, &["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => since(Some(start), now),
        (Some(start), Some(end)) => human_duration(end.duration_since(start)),
    };
    let (names, images) = containers_cells(template_spec(job));
    Row::new(vec![
        json!(name(job)),
        json!(job_status(job)),
        json!(completions),
        json!(duration),
        json!(age(job, now)),
        names,
        images,
        json!(format_label_selector(get(job, &["spec", "selector"]))),
    ])
}

const CRON_JOB: &[Col] = &[
    NAME,
    col("Schedule", "string", "The schedule in Cron format."),
    col(
        "Timezone",
        "string",
        "The time zone name for the given schedule.",
    ),
    col(
        "Suspend",
        "boolean",
        "Whether subsequent executions are suspended.",
    ),
    col("Active", "integer", "The number of currently running jobs."),
    col(
        "Last Schedule",
        "string",
        "The last time the job was successfully scheduled.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    ),
];

fn cron_job(cj: &Value, now: Timestamp) -> Row {
    let last_schedule = match get(cj, &["status", "lastScheduleTime"]) {
        Some(_) => since(time_at(cj, &["status", "lastScheduleTime"]), now),
        None => "<none>".to_string(),
    };
    let suspend = match opt_bool(cj, &["spec", "suspend"]) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let job_template = get(cj, &["spec", "jobTemplate"]);
    let (names, images) = containers_cells(job_template.and_then(template_spec));
    Row::new(vec![
        json!(name(cj)),
        json!(str_at(cj, &["spec", "schedule"])),
        json!(opt_str(cj, &["spec", "timeZone"]).unwrap_or("<none>")),
        json!(suspend),
        json!(arr_at(cj, &["status", "active"]).len()),
        json!(last_schedule),
        json!(age(cj, now)),
        names,
        images,
        json!(format_label_selector(
            job_template.and_then(|t| get(t, &["spec", "selector"]))
        )),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::columns::test_support;


    fn cells(kind: &str, obj: Value) -> Vec<Value> {
        test_support::cells(lookup(kind), &obj, kind)
    }

    #[test]
    fn job_complete_with_duration() {
        let c = cells(
            "Job",
            json!({"metadata": {"name": "pi", "creationTimestamp": "2024-05-01T11:00:00Z"},
                   "spec": {"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                            "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
                   "status": {"succeeded": 1, "startTime": "2024-05-01T11:00:00Z", "completionTime": "2024-05-01T11:00:42Z",
                              "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}}),
        );
        assert_eq!(
            c,
            vec![
                json!("pi"),
                json!("Complete"),
                json!("1/1"),
                json!("42s"),
                json!("60m"),
                json!("pi"),
                json!("perl"),
                json!("batch.kubernetes.io/controller-uid=u1")
            ]
        );
    }

    #[test]
    fn job_statuses_and_completions() {
        let c = cells(
            "Job",
            json!({"metadata": {"name": "j"}, "spec": {"parallelism": 3},
                   "status": {"succeeded": 1, "startTime": "2024-05-01T11:57:00Z", "active": 2}}),
        );
        assert_eq!(c[1], "Running");
        assert_eq!(c[2], "1/1 of 3");
        assert_eq!(c[3], "3m");
        let c = cells("Job", json!({"metadata": {"name": "j"}, "spec": {}}));
        assert_eq!(c[2], "0/1");
        assert_eq!(c[3], "");
        let c = cells(
            "Job",
            json!({"metadata": {"name": "j"}, "status": {"conditions": [{"type": "Failed", "status": "True"}]}}),
        );
        assert_eq!(c[1], "Failed");
        let c = cells(
            "Job",
            json!({"metadata": {"name": "j"}, "status": {"conditions": [{"type": "Suspended", "status": "True"}]}}),
        );
        assert_eq!(c[1], "Suspended");
        let c = cells(
            "Job",
            json!({"metadata": {"name": "j", "deletionTimestamp": "2024-05-01T11:00:00Z"},
                   "status": {"conditions": [{"type": "Suspended", "status": "True"}]}}),
        );
        assert_eq!(c[1], "Terminating");
        let c = cells(
            "Job",
            json!({"metadata": {"name": "j"}, "status": {"conditions": [{"type": "FailureTarget", "status": "True"}]}}),
        );
        assert_eq!(c[1], "FailureTarget");
        let c = cells(
            "Job",
            json!({"metadata": {"name": "j"}, "status": {"conditions": [{"type": "Complete", "status": "False"}]}}),
        );
        assert_eq!(c[1], "Running");
    }

    #[test]
    fn cron_job_columns() {
        let c = cells(
            "CronJob",
            json!({"metadata": {"name": "hello", "creationTimestamp": "2024-04-30T12:00:00Z"},
                   "spec": {"schedule": "*/5 * * * *", "suspend": false,
                            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "h", "image": "busybox"}]}}}}},
                   "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": "2024-05-01T11:55:00Z"}}),
        );
        assert_eq!(
            c,
            vec![
                json!("hello"),
                json!("*/5 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("5m"),
                json!("24h"),
                json!("h"),
                json!("busybox"),
                json!("<none>")
            ]
        );
        let c = cells(
            "CronJob",
            json!({"metadata": {"name": "c"}, "spec": {"schedule": "@daily", "timeZone": "Etc/UTC", "suspend": true}}),
        );
        assert_eq!(
            c[2..6],
            [json!("Etc/UTC"), json!("True"), json!(0), json!("<none>")]
        );
        let c = cells("CronJob", json!({"metadata": {"name": "c"}}));
        assert_eq!(c[3], "<unset>");
    }
}
