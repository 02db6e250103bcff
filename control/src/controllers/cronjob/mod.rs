//! The CronJob controller (`cronjob-controller`): creates a Job from the
//! template at each scheduled time, named `<cronjob>-<minutes since the
//! epoch of the scheduled time>` so a restart never runs a time twice;
//! honours `concurrencyPolicy`, `startingDeadlineSeconds`, `suspend` and
//! `timeZone`; keeps `status.active`, `lastScheduleTime` and
//! `lastSuccessfulTime`; and deletes finished Jobs beyond the history
//! limits. It owns Jobs controlled by CronJobs and CronJob status; the Jobs'
//! pods are the Job controller's.

mod schedule;

use super::events::EventType;
use super::informer::Informer;
use super::queue::{Key, Queue};
use super::util::{controller_of, controller_ref, is_controlled_by};
use super::{Context, Error, Requeue};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use kube::Api;
use schedule::{Missed, Schedule};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

const COMPONENT: &str = "cronjob-controller";
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

struct Controller {
    ctx: Context,
    cronjobs: Informer<CronJob>,
    jobs: Informer<Job>,
}

pub fn start(ctx: &Context) {
    let c = Arc::new(Controller { ctx: ctx.clone(), cronjobs: ctx.informers.get::<CronJob>(), jobs: ctx.informers.get::<Job>() });
    let queue = Queue::new();
    c.cronjobs.feed_self(&ctx.tasks, queue.clone());
    c.jobs.feed(&ctx.tasks, queue.clone(), |j| match controller_of(&j.metadata) {
        Some(r) if r.kind == "CronJob" && r.api_version == "batch/v1" => vec![Key::new(j.metadata.namespace.as_deref(), &r.name)],
        _ => vec![],
    });
    let c2 = c.clone();
    super::run_workers(ctx, COMPONENT, queue, 2, move |key| {
        let c = c2.clone();
        async move { c.reconcile(key).await }
    });
}

fn is_finished(job: &Job) -> Option<&str> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| c.type_.as_str())
}

fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

fn uid_of(job: &Job) -> &str {
    job.metadata.uid.as_deref().unwrap_or("")
}

fn name_of(job: &Job) -> &str {
    job.metadata.name.as_deref().unwrap_or("")
}

/// The Job to create for `scheduled`: the template's labels, annotations
/// and spec, plus the scheduled-timestamp annotation and a controller
/// reference.
fn job_for(cj: &CronJob, scheduled: jiff::Timestamp) -> Job {
    let spec = cj.spec.clone().unwrap_or_default();
    let tmeta = spec.job_template.metadata.clone().unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), schedule::scheduled_timestamp(scheduled, spec.time_zone.as_deref()));
    Job {
        metadata: ObjectMeta {
            name: Some(schedule::job_name(cj.metadata.name.as_deref().unwrap_or(""), scheduled)),
            namespace: cj.metadata.namespace.clone(),
            labels: tmeta.labels.filter(|l: &BTreeMap<String, String>| !l.is_empty()),
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(cj)]),
            ..Default::default()
        },
        spec: Some(spec.job_template.spec.unwrap_or_default()),
        status: None,
    }
}

impl Controller {
    async fn event(&self, cj: &CronJob, kind: EventType, reason: &str, message: &str) {
        self.ctx.events.publish(cj, COMPONENT, kind, reason, message).await;
    }

    async fn reconcile(&self, key: Key) -> Result<Requeue, Error> {
        self.cronjobs.ready().await;
        self.jobs.ready().await;
        let Some(cached) = self.cronjobs.get_key(&key) else { return Ok(None) };
        let mut cj = (*cached).clone();
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let jobs: Vec<Arc<Job>> = self.jobs.list_in(key.ns()).into_iter().filter(|j| is_controlled_by(&j.metadata, &uid)).collect();
        let stored = cj.status.clone();
        let (requeue, sync_error) = match self.sync(&key, &mut cj, &jobs).await {
            Ok(r) => (r, None),
            Err(e) => (None, Some(e)),
        };
        self.cleanup_finished(&mut cj, &jobs).await;
        if cj.status != stored {
            let api: Api<CronJob> = Api::namespaced(self.ctx.client.clone(), key.ns());
            api.replace_status(&key.name, &PostParams::default(), &cj).await?;
        }
        match (requeue, sync_error) {
            (Some(d), _) => Ok(Some(self.ctx.clock.max_sleep(d))),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    /// Bring `status.active` in line with the Jobs, then start the Job due
    /// now, if any. Returns when to look again.
    async fn sync(&self, key: &Key, cj: &mut CronJob, jobs: &[Arc<Job>]) -> Result<Requeue, Error> {
        let api: Api<Job> = Api::namespaced(self.ctx.client.clone(), key.ns());
        let mut children: HashSet<String> = HashSet::new();
        for j in jobs {
            children.insert(uid_of(j).to_string());
            let found = in_active(cj, uid_of(j));
            let finished = is_finished(j);
            if !found && finished.is_none() {
                // Our cache of the CronJob may be behind its status.
                let fresh = Api::<CronJob>::namespaced(self.ctx.client.clone(), key.ns()).get(&key.name).await?;
                if in_active(&fresh, uid_of(j)) {
                    *cj = fresh;
                    continue;
                }
                let msg = format!("Saw a job that the controller did not create or forgot: {}", name_of(j));
                self.event(cj, EventType::Warning, "UnexpectedJob", &msg).await;
            } else if let (true, Some(condition)) = (found, finished) {
                remove_active(cj, uid_of(j));
                let msg = format!("Saw completed job: {}, condition: {condition}", name_of(j));
                self.event(cj, EventType::Normal, "SawCompletedJob", &msg).await;
            }
            if finished.is_some() {
                if let Some(done) = j.status.as_ref().and_then(|s| s.completion_time.clone()) {
                    let st = cj.status.get_or_insert_with(Default::default);
                    if st.last_successful_time.as_ref().is_none_or(|t| t.0 < done.0) {
                        st.last_successful_time = Some(done);
                    }
                }
            }
        }
        // Active Jobs that are gone (asked of the API: the cache may lag).
        let listed: Vec<ObjectReference> = cj.status.as_ref().and_then(|s| s.active.clone()).unwrap_or_default();
        for r in listed {
            if children.contains(r.uid.as_deref().unwrap_or("")) {
                continue;
            }
            let name = r.name.clone().unwrap_or_default();
            match api.get_opt(&name).await? {
                Some(_) => {}
                None => {
                    self.event(cj, EventType::Normal, "MissingJob", &format!("Active job went missing: {name}")).await;
                    remove_active(cj, r.uid.as_deref().unwrap_or(""));
                }
            }
        }
        if cj.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let spec = cj.spec.clone().unwrap_or_default();
        if let Some(tz) = spec.time_zone.as_deref() {
            if let Err(e) = jiff::tz::TimeZone::get(tz) {
                let msg = format!("invalid timeZone: {tz:?}: {e}");
                self.event(cj, EventType::Warning, "UnknownTimeZone", &msg).await;
                return Ok(None);
            }
        }
        if spec.suspend == Some(true) {
            tracing::debug!(cronjob = %key, "suspended; not starting jobs");
            return Ok(None);
        }
        if spec.schedule.contains("TZ") {
            let msg = format!(
                "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
                spec.schedule
            );
            self.event(cj, EventType::Warning, "UnsupportedSchedule", &msg).await;
        }
        let sched = match Schedule::parse(&spec.schedule, spec.time_zone.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("unparseable schedule: {:?} : {e}", spec.schedule);
                self.event(cj, EventType::Warning, "UnparseableSchedule", &msg).await;
                return Ok(None);
            }
        };
        let now = self.ctx.clock.now();
        let last = cj.status.as_ref().and_then(|s| s.last_schedule_time.as_ref()).map(|t| t.0);
        let created = cj.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(now);
        let earliest = last.unwrap_or(created);
        let requeue = |cj: &CronJob| {
            let earliest = cj.status.as_ref().and_then(|s| s.last_schedule_time.as_ref()).map(|t| t.0).unwrap_or(created);
            sched.time_to_next(earliest, now)
        };
        let deadline = spec.starting_deadline_seconds;
        let window_start = match deadline {
            Some(d) => earliest.max(now.checked_sub(jiff::SignedDuration::from_secs(d)).unwrap_or(earliest)),
            None => earliest,
        };
        let scheduled = match sched.most_recent(window_start, now) {
            Err(e) => {
                let msg = format!("invalid schedule: {} : {e}", spec.schedule);
                self.event(cj, EventType::Warning, "InvalidSchedule", &msg).await;
                return Ok(None);
            }
            Ok((None, _)) => return Ok(requeue(cj)),
            Ok((Some(t), missed)) => {
                if missed == Missed::Many {
                    tracing::info!(cronjob = %key, "too many missed start times");
                    let msg = "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew";
                    self.event(cj, EventType::Warning, "TooManyMissedTimes", msg).await;
                }
                t
            }
        };
        if let Some(d) = deadline {
            if scheduled.checked_add(jiff::SignedDuration::from_secs(d)).is_ok_and(|end| end < now) {
                let msg = format!("Missed scheduled time to start a job: {}", schedule::rfc1123z(scheduled));
                self.event(cj, EventType::Warning, "MissSchedule", &msg).await;
                return Ok(requeue(cj));
            }
        }
        let name = schedule::job_name(&key.name, scheduled);
        let already = cj.status.as_ref().is_some_and(|s| {
            s.active.iter().flatten().any(|r| r.name.as_deref() == Some(name.as_str())) || s.last_schedule_time.as_ref().map(|t| t.0) == Some(scheduled)
        });
        if already {
            return Ok(requeue(cj));
        }
        let active: Vec<ObjectReference> = cj.status.as_ref().and_then(|s| s.active.clone()).unwrap_or_default();
        match spec.concurrency_policy.as_deref() {
            Some("Forbid") if !active.is_empty() => {
                tracing::debug!(cronjob = %key, "previous run still active; policy Forbid");
                let msg = "Not starting job because prior execution is running and concurrency policy is Forbid";
                self.event(cj, EventType::Normal, "JobAlreadyActive", msg).await;
                return Ok(requeue(cj));
            }
            Some("Replace") => {
                for r in &active {
                    let jname = r.name.clone().unwrap_or_default();
                    let job = match api.get(&jname).await {
                        Ok(j) => j,
                        Err(e) => {
                            let e = Error::from(e);
                            self.event(cj, EventType::Warning, "FailedGet", &format!("Get job: {e}")).await;
                            return Err(e);
                        }
                    };
                    if !self.delete_job(cj, &job).await {
                        return Err(Error::Other(format!("could not replace job {}/{jname}", key.ns())));
                    }
                }
            }
            _ => {}
        }
        let created_job = match api.create(&PostParams::default(), &job_for(cj, scheduled)).await {
            Ok(j) => {
                tracing::info!(cronjob = %key, job = name_of(&j), "created job");
                self.event(cj, EventType::Normal, "SuccessfulCreate", &format!("Created job {}", name_of(&j))).await;
                j
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Created earlier (a restart between the create and the
                // status update): adopt it into the active list if ours.
                let j = api.get(&name).await?;
                if !is_controlled_by(&j.metadata, &uid_of_cj(cj)) || in_active(cj, uid_of(&j)) {
                    return Ok(requeue(cj));
                }
                tracing::info!(cronjob = %key, job = name, "job already exists");
                j
            }
            Err(e) => {
                let e = Error::from(e);
                self.event(cj, EventType::Warning, "FailedCreate", &format!("Error creating job: {e}")).await;
                return Err(e);
            }
        };
        let st = cj.status.get_or_insert_with(Default::default);
        st.active.get_or_insert_with(Vec::new).push(job_ref(&created_job));
        st.last_schedule_time = Some(Time(scheduled));
        Ok(requeue(cj))
    }

    /// Delete a Job (its pods in the background) and drop it from the
    /// active list.
    async fn delete_job(&self, cj: &mut CronJob, job: &Job) -> bool {
        let ns = job.metadata.namespace.as_deref().unwrap_or("");
        let api: Api<Job> = Api::namespaced(self.ctx.client.clone(), ns);
        let dp = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
        match api.delete(name_of(job), &dp).await {
            Ok(_) => {
                remove_active(cj, uid_of(job));
                tracing::info!(job = name_of(job), "deleted job");
                self.event(cj, EventType::Normal, "SuccessfulDelete", &format!("Deleted job {}", name_of(job))).await;
                true
            }
            Err(e) => {
                tracing::warn!(job = name_of(job), error = %e, "cannot delete job");
                self.event(cj, EventType::Warning, "FailedDelete", &format!("Deleted job: {e}")).await;
                false
            }
        }
    }

    /// Keep at most `successfulJobsHistoryLimit` Complete and
    /// `failedJobsHistoryLimit` Failed Jobs, deleting the oldest.
    async fn cleanup_finished(&self, cj: &mut CronJob, jobs: &[Arc<Job>]) {
        let spec = cj.spec.clone().unwrap_or_default();
        for (kind, limit) in [("Complete", spec.successful_jobs_history_limit), ("Failed", spec.failed_jobs_history_limit)] {
            let Some(limit) = limit else { continue };
            let mut done: Vec<&Job> = jobs.iter().map(|j| j.as_ref()).filter(|j| is_finished(j) == Some(kind)).collect();
            let extra = done.len().saturating_sub(usize::try_from(limit).unwrap_or(0));
            if extra == 0 {
                continue;
            }
            sort_by_start(&mut done);
            for j in done.into_iter().take(extra) {
                self.delete_job(cj, j).await;
            }
        }
    }
}

fn uid_of_cj(cj: &CronJob) -> String {
    cj.metadata.uid.clone().unwrap_or_default()
}

fn in_active(cj: &CronJob, uid: &str) -> bool {
    cj.status.as_ref().and_then(|s| s.active.as_ref()).is_some_and(|a| a.iter().any(|r| r.uid.as_deref() == Some(uid)))
}

fn remove_active(cj: &mut CronJob, uid: &str) {
    if let Some(st) = cj.status.as_mut() {
        if let Some(a) = st.active.as_mut() {
            a.retain(|r| r.uid.as_deref() != Some(uid));
            if a.is_empty() {
                st.active = None;
            }
        }
    }
}

/// Oldest first: by start time (never started last), then name.
fn sort_by_start(jobs: &mut [&Job]) {
    jobs.sort_by(|a, b| {
        let start = |j: &Job| j.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0);
        match (start(a), start(b)) {
            (Some(x), Some(y)) if x != y => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            _ => name_of(a).cmp(name_of(b)),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jobs_from_the_template() {
        let cj: CronJob = serde_json::from_value(json!({
            "metadata": {"name": "hello", "namespace": "ns", "uid": "u1"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}}
        }))
        .unwrap_or_default();
        let at: jiff::Timestamp = "2024-01-01T10:05:00Z".parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let j = job_for(&cj, at);
        assert_eq!(j.metadata.name.as_deref(), Some(schedule::job_name("hello", at).as_str()));
        let ann = j.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(ann.get(SCHEDULED_TIMESTAMP).map(String::as_str), Some("2024-01-01T10:05:00Z"));
        assert_eq!(ann.get("x").map(String::as_str), Some("y"));
        let owner = j.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!((owner[0].kind.as_str(), owner[0].controller), ("CronJob", Some(true)));
    }

    #[test]
    fn oldest_jobs_first() {
        let job = |name: &str, start: Option<&str>| -> Job {
            serde_json::from_value(json!({"metadata": {"name": name}, "status": {"startTime": start}})).unwrap_or_default()
        };
        let (a, b, c) = (job("a", Some("2024-01-01T00:02:00Z")), job("b", Some("2024-01-01T00:01:00Z")), job("c", None));
        let mut v = vec![&c, &a, &b];
        sort_by_start(&mut v);
        assert_eq!(v.iter().map(|j| name_of(j)).collect::<Vec<_>>(), vec!["b", "a", "c"]);
    }
}
