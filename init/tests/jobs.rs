//! Jobs and CronJobs as kubectl users see them: pods created and counted,
//! completion and failure conditions, deadlines, TTL clean-up, Indexed
//! Jobs, suspension; CronJobs starting Jobs at their scheduled times (with
//! the controllers' clock driven by the test), concurrency policies,
//! history limits and `kubectl create job --from=cronjob/...`.

mod common;

use common::fake_node::{FakeNode, NodeSpec};
use common::{eventually, Server};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

fn job(name: &str, spec: &str, exit_code: Option<i32>, node: bool) -> String {
    let annotations = match exit_code {
        Some(c) => format!("metadata: {{annotations: {{coracle.test/exit-code: \"{c}\"}}}}\n    "),
        None => String::new(),
    };
    let node = if node { "nodeName: n1, " } else { "" };
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  {spec}\n  template:\n    {annotations}spec: {{{node}restartPolicy: Never, terminationGracePeriodSeconds: 1, containers: [{{name: c, image: busybox}}]}}\n"
    )
}

fn get(s: &Server, what: &str, path: &str) -> String {
    let out = s.kubectl(&["get", what, "-o", &format!("jsonpath={path}")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn events_of(s: &Server, name: &str) -> String {
    s.ok(&["get", "events", "--field-selector", &format!("involvedObject.name={name}"), "-o", "custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message"])
}

fn condition(s: &Server, job: &str, type_: &str, field: &str) -> String {
    get(s, &format!("job/{job}"), &format!("{{.status.conditions[?(@.type==\"{type_}\")].{field}}}"))
}

#[test]
fn jobs_complete_fail_time_out_expire_and_index() {
    let s = Server::start("jobs");
    let _n = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    s.ok_stdin(&["apply", "-f", "-"], &job("three", "completions: 3\n  parallelism: 2", Some(0), true));
    s.ok_stdin(&["apply", "-f", "-"], &job("doomed", "backoffLimit: 1", Some(1), true));
    s.ok_stdin(&["apply", "-f", "-"], &job("slow", "activeDeadlineSeconds: 2", None, true));
    s.ok_stdin(&["apply", "-f", "-"], &job("brief", "ttlSecondsAfterFinished: 1", Some(0), true));
    s.ok_stdin(&["apply", "-f", "-"], &job("ix", "completions: 3\n  parallelism: 3\n  completionMode: Indexed", Some(0), true));

    // completions 3, parallelism 2: three pods succeed, the Job completes.
    s.ok(&["wait", "--for=condition=complete", "job/three", "--timeout=60s"]);
    assert_eq!(get(&s, "job/three", "{.status.succeeded}"), "3");
    assert_eq!(get(&s, "job/three", "{.status.active}"), "");
    assert!(!get(&s, "job/three", "{.status.completionTime}").is_empty());
    assert_eq!(condition(&s, "three", "SuccessCriteriaMet", "reason"), "CompletionsReached");
    assert_eq!(condition(&s, "three", "Complete", "message"), "Reached expected number of succeeded pods");
    let uid = get(&s, "job/three", "{.metadata.uid}");
    let pods = s.ok(&["get", "pods", "-l", "batch.kubernetes.io/job-name=three", "-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.labels.controller-uid} {.metadata.finalizers}{\"\\n\"}{end}"]);
    let lines: Vec<&str> = pods.lines().collect();
    assert_eq!(lines.len(), 3, "{pods}");
    for l in &lines {
        let parts: Vec<&str> = l.split(' ').collect();
        assert!(parts[0].starts_with("three-") && parts[0].len() == "three-".len() + 5, "{pods}");
        assert_eq!(parts[1], uid, "{pods}");
        assert!(!l.contains("job-tracking"), "tracking finalizer left on a counted pod: {pods}");
    }
    let table = s.ok(&["get", "job", "three"]);
    assert!(table.contains("Complete") && table.contains("3/3"), "{table}");
    let ev = events_of(&s, "three");
    assert!(ev.contains("SuccessfulCreate") && ev.contains("Created pod: three-") && ev.contains("Completed"), "{ev}");

    // Indexed: one pod per index, completedIndexes.
    s.ok(&["wait", "--for=condition=complete", "job/ix", "--timeout=60s"]);
    assert_eq!(get(&s, "job/ix", "{.status.completedIndexes}"), "0-2");
    assert_eq!(get(&s, "job/ix", "{.status.succeeded}"), "3");
    let ix = s.ok(&["get", "pods", "-l", "job-name=ix", "-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.annotations.batch\\.kubernetes\\.io/job-completion-index} {.spec.hostname} {.spec.containers[0].env[0].name}{\"\\n\"}{end}"]);
    let mut seen: Vec<String> = ix.lines().map(|l| l.split(' ').nth(1).unwrap_or("").to_string()).collect();
    seen.sort();
    assert_eq!(seen, vec!["0", "1", "2"], "{ix}");
    for l in ix.lines() {
        let p: Vec<&str> = l.split(' ').collect();
        assert!(p[0].starts_with(&format!("ix-{}-", p[1])), "{ix}");
        assert_eq!(p[2], format!("ix-{}", p[1]), "{ix}");
        assert_eq!(p[3], "JOB_COMPLETION_INDEX", "{ix}");
    }

    // ttlSecondsAfterFinished: the finished Job is deleted.
    assert!(
        eventually(30, || {
            let out = s.kubectl(&["get", "job", "brief", "-o", "jsonpath={.metadata.deletionTimestamp}"]);
            !out.status.success() || !String::from_utf8_lossy(&out.stdout).is_empty()
        }),
        "job with a TTL was not deleted: {}",
        s.ok(&["get", "job", "brief", "-o", "yaml"])
    );

    // activeDeadlineSeconds: running pods are stopped, the Job fails.
    s.ok(&["wait", "--for=condition=failed", "job/slow", "--timeout=60s"]);
    assert_eq!(condition(&s, "slow", "Failed", "reason"), "DeadlineExceeded");
    assert_eq!(condition(&s, "slow", "FailureTarget", "message"), "Job was active longer than specified deadline");
    assert!(eventually(20, || s.ok(&["get", "pods", "-l", "job-name=slow", "-o", "name"]).trim().is_empty()), "pods of a timed-out job left");
    assert_eq!(get(&s, "job/slow", "{.status.failed}"), "1");
    assert!(events_of(&s, "slow").contains("DeadlineExceeded"));

    // backoffLimit 1: the second failure fails the Job (after the back-off).
    s.ok(&["wait", "--for=condition=failed", "job/doomed", "--timeout=60s"]);
    assert_eq!(condition(&s, "doomed", "Failed", "reason"), "BackoffLimitExceeded");
    assert_eq!(condition(&s, "doomed", "Failed", "message"), "Job has reached the specified backoff limit");
    assert_eq!(get(&s, "job/doomed", "{.status.failed}"), "2");
    let ev = events_of(&s, "doomed");
    assert!(ev.contains("Warning") && ev.contains("BackoffLimitExceeded"), "{ev}");
    assert!(s.ok(&["get", "jobs"]).contains("Failed"));
}

#[test]
fn suspended_jobs_stop_their_pods_and_resume() {
    let s = Server::start("jobs-suspend");
    let _n = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    s.ok_stdin(&["apply", "-f", "-"], &job("sleepy", "parallelism: 2\n  completions: 4", None, true));
    assert!(eventually(30, || get(&s, "job/sleepy", "{.status.ready}") == "2"), "{}", s.ok(&["get", "job", "sleepy", "-o", "yaml"]));
    assert_eq!(get(&s, "job/sleepy", "{.status.active}"), "2");
    s.ok(&["patch", "job", "sleepy", "--type=merge", "-p", "{\"spec\":{\"suspend\":true}}"]);
    s.ok(&["wait", "--for=condition=suspended", "job/sleepy", "--timeout=30s"]);
    assert!(eventually(30, || s.ok(&["get", "pods", "-l", "job-name=sleepy", "-o", "name"]).trim().is_empty()), "pods of a suspended job left");
    assert_eq!(get(&s, "job/sleepy", "{.status.active}"), "");
    assert_eq!(get(&s, "job/sleepy", "{.status.failed}"), "", "pods stopped by suspension are not failures");
    assert_eq!(condition(&s, "sleepy", "Suspended", "reason"), "JobSuspended");
    assert!(s.ok(&["get", "job", "sleepy"]).contains("Suspended"));
    s.ok(&["patch", "job", "sleepy", "--type=merge", "-p", "{\"spec\":{\"suspend\":false}}"]);
    assert!(eventually(30, || get(&s, "job/sleepy", "{.status.active}") == "2"));
    assert_eq!(condition(&s, "sleepy", "Suspended", "status"), "False");
    assert_eq!(condition(&s, "sleepy", "Suspended", "reason"), "JobResumed");
    let ev = events_of(&s, "sleepy");
    assert!(ev.contains("Suspended") && ev.contains("Resumed") && ev.contains("SuccessfulDelete"), "{ev}");

    // kill -9 and restart: the Job's pods are found again, none duplicated.
    let mut s = s;
    s.restart_after_kill9();
    s.ok(&["patch", "job", "sleepy", "--type=merge", "-p", "{\"spec\":{\"parallelism\":3}}"]);
    let running = || s.ok(&["get", "pods", "-l", "job-name=sleepy", "-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{\"\\n\"}{end}"]);
    assert!(eventually(30, || get(&s, "job/sleepy", "{.status.active}") == "3"), "{}", running());
    let pods = running();
    assert_eq!(pods.lines().count(), 3, "{pods}");
    assert!(pods.lines().all(|l| l.trim_end().split(' ').count() == 1), "{pods}");
}

// ---- CronJobs, with the controllers' clock in a file ----------------------

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// RFC 3339 (UTC) of seconds since the epoch.
fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

fn set_clock(path: &Path, secs: i64) {
    std::fs::write(path, rfc3339(secs)).expect("write clock file");
}

fn cronjob(name: &str, extra: &str, exit_code: Option<i32>, node: bool) -> String {
    let annotations = match exit_code {
        Some(c) => format!("metadata: {{annotations: {{coracle.test/exit-code: \"{c}\"}}}}\n        "),
        None => String::new(),
    };
    let node = if node { "nodeName: n1, " } else { "" };
    format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: {name}}}\nspec:\n  schedule: \"*/5 * * * *\"\n  {extra}\n  jobTemplate:\n    spec:\n      backoffLimit: 0\n      template:\n        {annotations}spec: {{{node}restartPolicy: Never, containers: [{{name: c, image: busybox}}]}}\n"
    )
}

fn job_names(s: &Server, prefix: &str) -> Vec<String> {
    let out = s.ok(&["get", "jobs", "-o", "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}"]);
    let mut v: Vec<String> = out.lines().filter(|l| l.starts_with(&format!("{prefix}-"))).map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn cronjobs_run_on_schedule_with_an_injected_clock() {
    let dir = common::tempdir("cron-clock");
    let clock = dir.join("clock");
    set_clock(&clock, unix_now());
    let clock_env = clock.to_string_lossy().into_owned();
    let s = Server::start_with("cronjobs", &[], &[("CORACLE_TEST_CLOCK_FILE", &clock_env)]);
    let _n = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    // The CronJobs' creation times are real (the API server's clock): keep
    // every creation and `start` below inside one five-minute window, or a
    // mark passed during the setup would be due already.
    let to_mark = 300 - unix_now().rem_euclid(300);
    if to_mark < 60 {
        std::thread::sleep(std::time::Duration::from_secs(to_mark as u64 + 1));
    }
    s.ok_stdin(&["apply", "-f", "-"], &cronjob("every", "successfulJobsHistoryLimit: 2", Some(0), true));
    s.ok_stdin(&["apply", "-f", "-"], &cronjob("forbid", "concurrencyPolicy: Forbid", None, false));
    s.ok_stdin(&["apply", "-f", "-"], &cronjob("replace", "concurrencyPolicy: Replace", None, false));
    s.ok_stdin(&["apply", "-f", "-"], &cronjob("paused", "suspend: true", None, false));
    s.ok_stdin(&["apply", "-f", "-"], &cronjob("failing", "failedJobsHistoryLimit: 1\n  suspend: true", Some(1), true));

    // Nothing is due before the first five-minute mark after the creation.
    let start = unix_now();
    let b1 = start.div_euclid(300) * 300 + 300;
    set_clock(&clock, b1 - 30);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(job_names(&s, "every").is_empty());

    // At the first mark each active CronJob starts one Job named for it.
    set_clock(&clock, b1 + 10);
    let first = format!("every-{}", b1 / 60);
    assert!(eventually(20, || job_names(&s, "every") == vec![first.clone()]), "{:?}\n{}", job_names(&s, "every"), s.log());
    assert_eq!(get(&s, &format!("job/{first}"), "{.metadata.annotations.batch\\.kubernetes\\.io/cronjob-scheduled-timestamp}"), rfc3339(b1));
    assert_eq!(get(&s, &format!("job/{first}"), "{.metadata.ownerReferences[0].kind}"), "CronJob");
    assert!(eventually(20, || job_names(&s, "forbid").len() == 1 && job_names(&s, "replace").len() == 1));
    assert!(job_names(&s, "paused").is_empty(), "a suspended CronJob started a Job");
    s.ok(&["wait", "--for=condition=complete", &format!("job/{first}"), "--timeout=30s"]);
    assert!(eventually(20, || !get(&s, "cronjob/every", "{.status.lastSuccessfulTime}").is_empty() && get(&s, "cronjob/every", "{.status.active}").is_empty()));
    assert_eq!(get(&s, "cronjob/every", "{.status.lastScheduleTime}"), rfc3339(b1));
    // (Events about one object at one injected instant share a name in the
    // shared recorder, so only the first of them is asserted here.)
    assert!(events_of(&s, "every").contains("SuccessfulCreate"));
    let table = s.ok(&["get", "cronjobs"]);
    assert!(table.contains("every") && table.contains("*/5 * * * *"), "{table}");

    // Second mark: Forbid waits for the running Job, Replace swaps it.
    let b2 = b1 + 300;
    set_clock(&clock, b2 + 10);
    let replaced = format!("replace-{}", b2 / 60);
    assert!(eventually(20, || job_names(&s, "replace").contains(&replaced)), "{:?}", job_names(&s, "replace"));
    assert!(
        eventually(20, || {
            let out = s.kubectl(&["get", "job", &format!("replace-{}", b1 / 60), "-o", "jsonpath={.metadata.deletionTimestamp}"]);
            !out.status.success() || !String::from_utf8_lossy(&out.stdout).is_empty()
        }),
        "Replace left the previous job"
    );
    assert!(eventually(20, || get(&s, "cronjob/replace", "{.status.active[*].name}") == replaced));
    assert!(eventually(20, || events_of(&s, "forbid").contains("JobAlreadyActive")), "{}", events_of(&s, "forbid"));
    assert_eq!(job_names(&s, "forbid").len(), 1);

    // Resuming a suspended CronJob runs the latest missed time only.
    s.ok(&["patch", "cronjob", "paused", "--type=merge", "-p", "{\"spec\":{\"suspend\":false}}"]);
    assert!(eventually(20, || job_names(&s, "paused") == vec![format!("paused-{}", b2 / 60)]), "{:?}", job_names(&s, "paused"));

    // History: of four successful runs, the two newest are kept.
    for b in [b2, b2 + 300, b2 + 600] {
        set_clock(&clock, b + 10);
        let name = format!("every-{}", b / 60);
        assert!(eventually(20, || job_names(&s, "every").contains(&name)), "{name}: {:?}", job_names(&s, "every"));
        s.ok(&["wait", "--for=condition=complete", &format!("job/{name}"), "--timeout=30s"]);
    }
    let kept = vec![format!("every-{}", (b2 + 300) / 60), format!("every-{}", (b2 + 600) / 60)];
    assert!(eventually(20, || job_names(&s, "every") == kept), "{:?}", job_names(&s, "every"));

    // Failed runs: one kept.
    s.ok(&["patch", "cronjob", "failing", "--type=merge", "-p", "{\"spec\":{\"suspend\":false}}"]);
    let b5 = b2 + 900;
    for b in [b5, b5 + 300] {
        set_clock(&clock, b + 10);
        let name = format!("failing-{}", b / 60);
        assert!(eventually(20, || job_names(&s, "failing").contains(&name)), "{name}: {:?}", job_names(&s, "failing"));
        s.ok(&["wait", "--for=condition=failed", &format!("job/{name}"), "--timeout=30s"]);
    }
    assert!(eventually(20, || job_names(&s, "failing") == vec![format!("failing-{}", (b5 + 300) / 60)]), "{:?}", job_names(&s, "failing"));

    // A jump far ahead: a warning, and only the latest time runs.
    let far = b5 + 300 + 200 * 300;
    set_clock(&clock, far + 10);
    assert!(eventually(20, || job_names(&s, "replace").contains(&format!("replace-{}", far / 60))), "{:?}", job_names(&s, "replace"));
    assert!(eventually(20, || events_of(&s, "replace").contains("TooManyMissedTimes")), "{}", events_of(&s, "replace"));

    // A manual run from the template.
    s.ok(&["create", "job", "by-hand", "--from=cronjob/every"]);
    s.ok(&["wait", "--for=condition=complete", "job/by-hand", "--timeout=30s"]);
    assert_eq!(get(&s, "job/by-hand", "{.metadata.annotations.cronjob\\.kubernetes\\.io/instantiate}"), "manual");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
