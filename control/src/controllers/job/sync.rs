//! One reconcile of one Job: count its pods, decide whether it is done or
//! failed, create or delete pods, and record the outcome in its status
//! (uncounted uids first, then finalizer removal, then the counters and
//! the final condition).

use super::conditions::{self, COMPLETE, FAILED, FAILURE_TARGET, SUCCESS_CRITERIA_MET, SUSPENDED};
use super::failure_policy;
use super::indexes::{self, Indexes};
use super::plan;
use super::pods::{self, has_tracking_finalizer, uid, TRACKING_FINALIZER};
use super::{Controller, COMPONENT, POD_KEY_PREFIX};
use crate::controllers::events::EventType;
use crate::controllers::queue::Key;
use crate::controllers::util::{controller_of, is_controlled_by, is_pod_active, is_pod_ready};
use crate::controllers::{Error, Requeue};
use futures_util::future::join_all;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::Api;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// At most this many pods are created or deleted in one reconcile, and
/// at most this many finished pods wait uncounted in the status.
const MAX_PER_SYNC: usize = 500;

pub(super) async fn reconcile(c: &Controller, key: Key) -> Result<Requeue, Error> {
    c.jobs.ready().await;
    c.pods.ready().await;
    if let Some(pod_name) = key.name.strip_prefix(POD_KEY_PREFIX) {
        return release_lone_pod(c, key.ns(), pod_name).await;
    }
    let skey = key.to_string();
    let owned: Vec<Arc<Pod>> = c
        .pods
        .list_in(key.ns())
        .into_iter()
        .filter(|p| controller_of(&p.metadata).is_some_and(|r| r.kind == "Job" && r.api_version == "batch/v1" && r.name == key.name))
        .collect();
    let Some(job) = c.jobs.get_key(&key) else {
        // Gone: whatever pods it left keep no finalizer of ours.
        release(c, &owned).await?;
        c.expectations.forget(&skey);
        c.backoff.forget(&skey);
        return Ok(None);
    };
    let job_uid = job.metadata.uid.clone().unwrap_or_default();
    let (mine, strangers): (Vec<_>, Vec<_>) = owned.into_iter().partition(|p| is_controlled_by(&p.metadata, &job_uid));
    release(c, &strangers).await?;
    if conditions::finished(&job).is_some() {
        release(c, &mine).await?;
        c.backoff.forget(&skey);
        return Ok(None);
    }
    let Some(spec) = job.spec.clone() else { return Ok(None) };
    if spec.managed_by.as_deref().is_some_and(|m| m != "kubernetes.io/job-controller") {
        tracing::debug!(job = %key, managed_by = ?spec.managed_by, "job managed by another controller; skipping");
        return Ok(None);
    }
    let mut s = Sync::new(c, key, (*job).clone(), spec, mine);
    s.run().await
}

/// A pod with our finalizer that lost its controller: let it go.
async fn release_lone_pod(c: &Controller, ns: &str, name: &str) -> Result<Requeue, Error> {
    let Some(pod) = c.pods.get(Some(ns), name) else { return Ok(None) };
    if controller_of(&pod.metadata).is_none() && has_tracking_finalizer(&pod) {
        remove_finalizer(c, &pod).await?;
    }
    Ok(None)
}

/// Remove the tracking finalizer from each pod that has it.
async fn release(c: &Controller, pods: &[Arc<Pod>]) -> Result<(), Error> {
    let results = join_all(pods.iter().filter(|p| has_tracking_finalizer(p)).map(|p| remove_finalizer(c, p))).await;
    results.into_iter().collect::<Result<Vec<_>, _>>().map(|_| ())
}

async fn remove_finalizer(c: &Controller, pod: &Pod) -> Result<(), Error> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let api: Api<Pod> = Api::namespaced(c.ctx.client.clone(), ns);
    let patch = serde_json::json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}});
    match api.patch(pods::name(pod), &PatchParams::default(), &Patch::Strategic(patch)).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = Error::from(e);
            if e.is_not_found() {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// The state of one reconcile.
struct Sync<'a> {
    c: &'a Controller,
    key: Key,
    skey: String,
    job: Job,
    /// The status as last written (what the cache showed, then each write).
    stored: Option<JobStatus>,
    spec: JobSpec,
    pods: Vec<Arc<Pod>>,
    now: jiff::Timestamp,
    indexed: bool,
    /// `completions`, or 0 for a work queue (used for index bounds).
    completions: i32,
    /// UIDs whose finalizer this process removed but the cache still shows.
    rm_expected: HashSet<String>,
    uncounted_succeeded: HashSet<String>,
    uncounted_failed: HashSet<String>,
    prev_succeeded_indexes: Indexes,
    succeeded_indexes: Indexes,
    succeeded: i32,
    failed: i32,
    active: i32,
    ready: i32,
    terminating: i32,
    requeue: Option<Duration>,
}

impl<'a> Sync<'a> {
    fn new(c: &'a Controller, key: Key, job: Job, spec: JobSpec, pods: Vec<Arc<Pod>>) -> Self {
        let skey = key.to_string();
        let indexed = spec.completion_mode.as_deref() == Some("Indexed");
        let completions = spec.completions.unwrap_or(0);
        let rm_expected = c.expectations.finalizers_removed(&skey, |u| pods.iter().any(|p| uid(p) == u && has_tracking_finalizer(p)));
        let uncounted = job.status.as_ref().and_then(|s| s.uncounted_terminated_pods.clone()).unwrap_or_default();
        let set = |v: Option<Vec<String>>| v.unwrap_or_default().into_iter().collect::<HashSet<String>>();
        Self {
            now: c.ctx.clock.now(),
            c,
            key,
            skey,
            stored: job.status.clone(),
            job,
            spec,
            pods,
            indexed,
            completions,
            rm_expected,
            uncounted_succeeded: set(uncounted.succeeded),
            uncounted_failed: set(uncounted.failed),
            prev_succeeded_indexes: Indexes::default(),
            succeeded_indexes: Indexes::default(),
            succeeded: 0,
            failed: 0,
            active: 0,
            ready: 0,
            terminating: 0,
            requeue: None,
        }
    }

    fn status(&mut self) -> &mut JobStatus {
        self.job.status.get_or_insert_with(Default::default)
    }

    fn suspended(&self) -> bool {
        self.spec.suspend == Some(true)
    }

    fn requeue_after(&mut self, d: Duration) {
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }

    /// A finished pod not counted yet: it still has the finalizer, is not
    /// waiting in `uncounted`, and (Indexed) has an index the Job wants.
    fn is_new(&self, p: &Pod, uncounted: &HashSet<String>) -> bool {
        has_tracking_finalizer(p)
            && !uncounted.contains(uid(p))
            && !self.rm_expected.contains(uid(p))
            && (!self.indexed || indexes::valid_of_pod(p, self.completions).is_some())
    }

    async fn run(&mut self) -> Result<Requeue, Error> {
        let c = self.c;
        let satisfied = c.expectations.satisfied(&self.skey, |name| c.pods.get(Some(self.key.ns()), name));
        let pods = self.pods.clone();
        let active_pods: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).filter(|p| is_pod_active(p)).collect();
        self.active = count(active_pods.len());
        self.ready = count(active_pods.iter().filter(|p| is_pod_ready(p)).count());
        self.terminating = count(pods.iter().filter(|p| pods::is_terminating(p)).count());
        let status = self.status();
        if status.uncounted_terminated_pods.is_none() {
            status.uncounted_terminated_pods = Some(UncountedTerminatedPods::default());
        }
        let new_succeeded: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).filter(|p| self.is_new(p, &self.uncounted_succeeded) && pods::is_succeeded(p)).collect();
        let new_failed: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).filter(|p| self.is_new(p, &self.uncounted_failed) && pods::is_failed(p, &self.job)).collect();
        let policy = self.spec.pod_failure_policy.clone();
        let counted_failures = new_failed.iter().filter(|p| failure_policy::judge(policy.as_ref(), p).counts).count();
        let st = self.job.status.clone().unwrap_or_default();
        self.succeeded = st.succeeded.unwrap_or(0) + count(new_succeeded.len()) + count(self.uncounted_succeeded.len());
        self.failed = st.failed.unwrap_or(0) + count(counted_failures) + count(self.uncounted_failed.len());
        let backoff = c.backoff.get(&self.skey).after(
            new_succeeded.iter().filter_map(|p| pods::finished_time(p)).collect(),
            new_failed.iter().filter_map(|p| pods::finished_time(p)).collect(),
        );
        if st.start_time.is_none() && !self.suspended() {
            let now = self.now;
            self.status().start_time = Some(Time(now));
        }
        if self.indexed {
            self.prev_succeeded_indexes = Indexes::parse(st.completed_indexes.as_deref().unwrap_or(""), self.completions);
            self.succeeded_indexes = self.prev_succeeded_indexes.clone();
            for p in &pods {
                if let (true, true, Some(ix)) = (pods::is_succeeded(p), has_tracking_finalizer(p), indexes::valid_of_pod(p, self.completions)) {
                    self.succeeded_indexes.insert(ix);
                }
            }
            self.succeeded = self.succeeded_indexes.total();
        }

        // Has the outcome been decided?
        let mut finished = self.decided_outcome(&pods);
        if finished.is_none() {
            let restart_on_failure = self.spec.template.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("OnFailure");
            let input = plan::FailureInput {
                failed: self.failed,
                backoff_limit: self.spec.backoff_limit.unwrap_or(6),
                on_failure_restarts: restart_on_failure.then(|| pods.iter().map(|p| pods::restarts(p)).sum()),
                active_deadline_seconds: self.spec.active_deadline_seconds,
                start_time: self.job.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0),
                suspended: self.suspended(),
                now: self.now,
            };
            let (failure, again) = plan::failure(&input);
            finished = failure;
            if let Some(d) = again {
                self.requeue_after(d);
            }
        }

        let mut write_error = None;
        if finished.is_some() {
            // Stop what still runs; the finalizers go once counted below.
            let (deleted, deleted_ready, err) = self.delete_pods(&active_pods, false).await;
            if deleted != self.active || !satisfied {
                finished = None;
            }
            self.active -= deleted;
            self.terminating += deleted;
            self.ready -= deleted_ready;
            write_error = err;
        } else {
            let mut managed = false;
            if satisfied && self.job.metadata.deletion_timestamp.is_none() {
                write_error = self.manage(&active_pods, &backoff).await;
                managed = true;
            } else if !satisfied {
                self.requeue_after(Duration::from_secs(10));
            }
            if plan::is_complete(self.spec.completions, self.succeeded, self.active) {
                finished = Some(conditions::new(
                    SUCCESS_CRITERIA_MET,
                    "True",
                    conditions::REASON_COMPLETIONS_REACHED,
                    conditions::MESSAGE_COMPLETIONS_REACHED,
                    self.now,
                ));
            } else if managed {
                self.suspension().await;
            }
        }
        let (active, ready, terminating) = (self.active, self.ready, self.terminating);
        let status = self.status();
        status.active = Some(active).filter(|n| *n > 0);
        status.ready = Some(ready.max(0));
        status.terminating = Some(terminating.max(0));
        self.track(finished, backoff).await?;
        match write_error {
            Some(e) => Err(e),
            None => Ok(self.requeue.map(|d| self.c.ctx.clock.max_sleep(d))),
        }
    }

    /// The outcome already on record (an interim condition to finish), or
    /// a `podFailurePolicy` FailJob match.
    fn decided_outcome(&self, pods: &[Arc<Pod>]) -> Option<JobCondition> {
        let st = self.job.status.clone().unwrap_or_default();
        if let Some(c) = conditions::find(&st, SUCCESS_CRITERIA_MET).filter(|c| c.status == "True") {
            let mut done = c.clone();
            done.type_ = COMPLETE.into();
            return Some(done);
        }
        if let Some(c) = conditions::find(&st, FAILURE_TARGET).filter(|c| c.status == "True") {
            return Some(conditions::new(FAILED, "True", c.reason.as_deref().unwrap_or(""), c.message.as_deref().unwrap_or(""), self.now));
        }
        let policy = self.spec.pod_failure_policy.as_ref()?;
        pods.iter()
            .filter(|p| pods::is_failed(p, &self.job))
            .find_map(|p| failure_policy::judge(Some(policy), p).fail_job)
            .map(|msg| conditions::new(FAILURE_TARGET, "True", conditions::REASON_POD_FAILURE_POLICY, &msg, self.now))
    }

    /// Create or delete pods so `active` matches what the Job wants.
    async fn manage(&mut self, active_pods: &[&Pod], backoff: &super::backoff::Record) -> Option<Error> {
        if self.suspended() {
            let (removed, removed_ready, err) = self.delete_pods(active_pods, true).await;
            self.active -= removed;
            self.terminating += removed;
            self.ready -= removed_ready;
            return err;
        }
        let parallelism = self.spec.parallelism.unwrap_or(1);
        let want = plan::want_active(self.spec.completions, parallelism, self.succeeded, self.active);
        let at_least = usize::try_from(self.active - want).unwrap_or(0);
        let mut doomed = pods::for_removal(active_pods, at_least, self.indexed, self.completions);
        doomed.truncate(MAX_PER_SYNC);
        if !doomed.is_empty() {
            tracing::debug!(job = %self.key, deleting = doomed.len(), want, "too many pods running");
            let (removed, removed_ready, err) = self.delete_pods(&doomed, true).await;
            self.active -= removed;
            self.terminating += removed;
            self.ready -= removed_ready;
            return err;
        }
        let terminating = if pods::only_replace_failed(&self.job) { self.terminating } else { 0 };
        let diff = want - terminating - self.active;
        if diff <= 0 {
            return None;
        }
        let wait = backoff.remaining(self.now);
        if !wait.is_zero() {
            tracing::debug!(job = %self.key, wait_ms = wait.as_millis() as u64, "waiting out the pod failure back-off");
            self.requeue_after(wait);
            return None;
        }
        let diff = usize::try_from(diff).unwrap_or(0).min(MAX_PER_SYNC);
        let plan: Vec<Option<i32>> = if self.indexed {
            let busy: BTreeSet<i32> = self
                .pods
                .iter()
                .filter(|p| is_pod_active(p) || (terminating > 0 && pods::is_terminating(p)))
                .filter_map(|p| indexes::of_pod(p))
                .collect();
            indexes::first_pending(diff, self.completions, &[&self.succeeded_indexes], &busy).into_iter().map(Some).collect()
        } else {
            vec![None; diff]
        };
        tracing::debug!(job = %self.key, want, creating = plan.len(), "too few pods running");
        self.create_pods(plan).await
    }

    /// Create pods in batches of 1, 2, 4, ... stopping at the first batch
    /// with a failure.
    async fn create_pods(&mut self, plan: Vec<Option<i32>>) -> Option<Error> {
        let c = self.c;
        let api: Api<Pod> = Api::namespaced(c.ctx.client.clone(), self.key.ns());
        let mut rest = plan.as_slice();
        let mut batch = 1;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(batch.min(rest.len()));
            rest = later;
            batch *= 2;
            let creates = now.iter().map(|ix| {
                let api = api.clone();
                let pod = pods::new_pod(&self.job, *ix);
                async move {
                    match pod {
                        Some(pod) => api.create(&PostParams::default(), &pod).await.map_err(Error::from),
                        None => Err(Error::Other("job has no spec".into())),
                    }
                }
            });
            let mut failure = None;
            for result in join_all(creates).await {
                match result {
                    Ok(pod) => {
                        let name = pods::name(&pod).to_string();
                        c.expectations.created(&self.skey, &name);
                        self.active += 1;
                        tracing::info!(job = %self.key, pod = name, "created pod");
                        c.ctx.events.publish(&self.job, COMPONENT, EventType::Normal, "SuccessfulCreate", &format!("Created pod: {name}")).await;
                    }
                    Err(e) => {
                        tracing::warn!(job = %self.key, error = %e, "cannot create pod");
                        c.ctx.events.publish(&self.job, COMPONENT, EventType::Warning, "FailedCreate", &format!("Error creating: {e}")).await;
                        failure = Some(e);
                    }
                }
            }
            if failure.is_some() {
                return failure;
            }
        }
        None
    }

    /// Delete pods; with `release`, their finalizer goes first (pods given
    /// up by the controller are not failures). Returns how many were
    /// deleted, how many of those were ready, and an error.
    async fn delete_pods(&self, victims: &[&Pod], release: bool) -> (i32, i32, Option<Error>) {
        let c = self.c;
        let api: Api<Pod> = Api::namespaced(c.ctx.client.clone(), self.key.ns());
        let deletes = victims.iter().map(|p| {
            let api = api.clone();
            async move {
                if release && has_tracking_finalizer(p) {
                    remove_finalizer(c, p).await?;
                }
                api.delete(pods::name(p), &DeleteParams::default()).await.map_err(Error::from)?;
                Ok::<_, Error>(())
            }
        });
        let results = join_all(deletes).await;
        let (mut deleted, mut deleted_ready, mut error) = (0, 0, None);
        for (p, result) in victims.iter().zip(results) {
            let name = pods::name(p);
            match result {
                Ok(()) => {
                    deleted += 1;
                    if is_pod_ready(p) {
                        deleted_ready += 1;
                    }
                    c.expectations.deleted(&self.skey, name, uid(p));
                    tracing::info!(job = %self.key, pod = name, "deleted pod");
                    c.ctx.events.publish(&self.job, COMPONENT, EventType::Normal, "SuccessfulDelete", &format!("Deleted pod: {name}")).await;
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::warn!(job = %self.key, pod = name, error = %e, "cannot delete pod");
                    c.ctx.events.publish(&self.job, COMPONENT, EventType::Warning, "FailedDelete", &format!("Error deleting: {e}")).await;
                    error = Some(e);
                }
            }
        }
        (deleted, deleted_ready, error)
    }

    /// The `Suspended` condition follows `spec.suspend`; resuming restarts
    /// the clock of `activeDeadlineSeconds`.
    async fn suspension(&mut self) {
        let now = self.now;
        if self.suspended() {
            if conditions::ensure(self.status(), SUSPENDED, "True", "JobSuspended", "Job suspended", now) {
                self.c.ctx.events.publish(&self.job, COMPONENT, EventType::Normal, "Suspended", "Job suspended").await;
            }
        } else {
            let st = self.status();
            if conditions::ensure(st, SUSPENDED, "False", "JobResumed", "Job resumed", now) {
                st.start_time = Some(Time(now));
                self.c.ctx.events.publish(&self.job, COMPONENT, EventType::Normal, "Resumed", "Job resumed").await;
            }
        }
    }

    /// Record finished pods: uids into `uncountedTerminatedPods`, write,
    /// remove their finalizers, move them into the counters, and add the
    /// final condition once nothing is left running or uncounted.
    async fn track(&mut self, mut finished: Option<JobCondition>, backoff: super::backoff::Record) -> Result<(), Error> {
        let c = self.c;
        let mut with_finalizer: HashSet<String> =
            self.pods.iter().filter(|p| has_tracking_finalizer(p) && !self.rm_expected.contains(uid(p))).map(|p| uid(p).to_string()).collect();
        move_counted(self.status(), &with_finalizer);

        let mut pods = self.pods.clone();
        if self.indexed {
            pods.sort_by_key(|p| indexes::of_pod(p).unwrap_or(i32::MAX));
        }
        let policy = self.spec.pod_failure_policy.clone();
        let deleting = self.job.metadata.deletion_timestamp.is_some();
        let interim_success = finished.as_ref().is_some_and(|f| f.type_ == SUCCESS_CRITERIA_MET || f.type_ == COMPLETE);
        let mut uncounted = self.job.status.as_ref().and_then(|s| s.uncounted_terminated_pods.clone()).unwrap_or_default();
        let (mut add_succeeded, mut add_failed, mut new_indexes) = (Vec::new(), Vec::new(), Vec::new());
        let mut to_release: Vec<Arc<Pod>> = Vec::new();
        let mut full = false;
        for p in &pods {
            let id = uid(p).to_string();
            if !has_tracking_finalizer(p) || self.rm_expected.contains(&id) {
                continue;
            }
            let failed = pods::is_failed(p, &self.job);
            if !(deleting || finished.is_some() || pods::is_succeeded(p) || failed) {
                continue;
            }
            to_release.push(p.clone());
            if pods::is_succeeded(p) && !self.uncounted_failed.contains(&id) {
                if self.indexed {
                    if let Some(ix) = indexes::valid_of_pod(p, self.completions).filter(|ix| !self.prev_succeeded_indexes.contains(*ix)) {
                        new_indexes.push(ix);
                    }
                } else if !self.uncounted_succeeded.contains(&id) {
                    add_succeeded.push(id);
                }
            } else if (failed || (finished.is_some() && !interim_success))
                && !self.uncounted_failed.contains(&id)
                && (!self.indexed || indexes::valid_of_pod(p, self.completions).is_some())
                && failure_policy::judge(policy.as_ref(), p).counts
            {
                add_failed.push(id);
            }
            if new_indexes.len() + add_succeeded.len() + add_failed.len() + self.uncounted_succeeded.len() + self.uncounted_failed.len() >= MAX_PER_SYNC {
                full = true;
                break;
            }
        }
        if !add_succeeded.is_empty() {
            uncounted.succeeded.get_or_insert_with(Vec::new).extend(add_succeeded);
        }
        if !add_failed.is_empty() {
            uncounted.failed.get_or_insert_with(Vec::new).extend(add_failed);
        }
        let indexed = self.indexed;
        let now = self.now;
        for ix in new_indexes {
            self.succeeded_indexes.insert(ix);
        }
        let completed = self.succeeded_indexes.to_string();
        let st = self.status();
        st.uncounted_terminated_pods = Some(uncounted);
        if indexed {
            st.completed_indexes = Some(completed).filter(|s| !s.is_empty());
            st.succeeded = None;
        }
        // The interim condition is written before any finalizer goes.
        if let Some(f) = finished.clone() {
            if f.type_ == FAILURE_TARGET {
                st.conditions.get_or_insert_with(Vec::new).push(f.clone());
                finished = Some(conditions::new(FAILED, "True", f.reason.as_deref().unwrap_or(""), f.message.as_deref().unwrap_or(""), now));
            } else if f.type_ == SUCCESS_CRITERIA_MET {
                if !conditions::is_true(st, SUCCESS_CRITERIA_MET) {
                    st.conditions.get_or_insert_with(Vec::new).push(f.clone());
                }
                finished = Some(conditions::new(COMPLETE, "True", f.reason.as_deref().unwrap_or(""), f.message.as_deref().unwrap_or(""), now));
            }
        }
        if indexed {
            let total = self.succeeded_indexes.total();
            self.status().succeeded = Some(total).filter(|n| *n > 0);
        }
        normalize(self.status());
        if self.job.status != self.stored {
            self.write_status().await?;
        }

        // Now the outcome of these pods is on record: let them go.
        let results = join_all(to_release.iter().map(|p| remove_finalizer(c, p))).await;
        let mut release_error = None;
        for (p, r) in to_release.iter().zip(results) {
            match r {
                Ok(()) => {
                    with_finalizer.remove(uid(p));
                    c.expectations.finalizer_removed(&self.skey, uid(p));
                }
                Err(e) => {
                    tracing::warn!(job = %self.key, pod = pods::name(p), error = %e, "cannot remove the tracking finalizer");
                    release_error = Some(e);
                }
            }
        }
        // These pods will not be seen as new failures again.
        c.backoff.set(&self.skey, backoff);
        move_counted(self.status(), &with_finalizer);
        let done = !full && self.enact(finished.as_ref());
        normalize(self.status());
        if self.job.status != self.stored {
            self.write_status().await?;
        }
        if let (true, Some(f)) = (done, finished) {
            self.announce(&f).await;
        }
        match release_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Add the final condition when nothing is uncounted or terminating.
    fn enact(&mut self, finished: Option<&JobCondition>) -> bool {
        let Some(f) = finished else { return false };
        let st = self.status();
        let uncounted = st.uncounted_terminated_pods.clone().unwrap_or_default();
        let left = uncounted.succeeded.map_or(0, |v| v.len()) + uncounted.failed.map_or(0, |v| v.len());
        if left > 0 || st.terminating.unwrap_or(0) > 0 {
            tracing::debug!(left, terminating = st.terminating, "delaying the final job condition");
            return false;
        }
        let reason = f.reason.clone().unwrap_or_default();
        let message = f.message.clone().unwrap_or_default();
        let at = self.now;
        let st = self.status();
        conditions::ensure(st, &f.type_, "True", &reason, &message, at);
        if f.type_ == COMPLETE {
            st.completion_time = Some(Time(at));
        }
        true
    }

    async fn announce(&self, f: &JobCondition) {
        let events = &self.c.ctx.events;
        if f.type_ == COMPLETE {
            let succeeded = self.job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
            if self.spec.completions.is_some_and(|c| succeeded > c) {
                events
                    .publish(&self.job, COMPONENT, EventType::Warning, "TooManySucceededPods", "Too many succeeded pods running after completion count reached")
                    .await;
            }
            tracing::info!(job = %self.key, "job completed");
            events.publish(&self.job, COMPONENT, EventType::Normal, "Completed", "Job completed").await;
        } else {
            let reason = f.reason.as_deref().unwrap_or("");
            tracing::info!(job = %self.key, reason, "job failed");
            events.publish(&self.job, COMPONENT, EventType::Warning, reason, f.message.as_deref().unwrap_or("")).await;
        }
    }

    async fn write_status(&mut self) -> Result<(), Error> {
        let api: Api<Job> = Api::namespaced(self.c.ctx.client.clone(), self.key.ns());
        let name = self.key.name.clone();
        self.job = api.replace_status(&name, &PostParams::default(), &self.job).await?;
        self.stored = self.job.status.clone();
        Ok(())
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Uids in `uncountedTerminatedPods` whose pod no longer has the
/// finalizer are counted now.
fn move_counted(st: &mut JobStatus, with_finalizer: &HashSet<String>) {
    let mut uncounted = st.uncounted_terminated_pods.clone().unwrap_or_default();
    let take = |list: &mut Option<Vec<String>>| -> i32 {
        let v = list.take().unwrap_or_default();
        let (keep, gone): (Vec<String>, Vec<String>) = v.into_iter().partition(|u| with_finalizer.contains(u));
        *list = Some(keep).filter(|k| !k.is_empty());
        count(gone.len())
    };
    let s = take(&mut uncounted.succeeded);
    let f = take(&mut uncounted.failed);
    st.uncounted_terminated_pods = Some(uncounted);
    if s > 0 {
        st.succeeded = Some(st.succeeded.unwrap_or(0) + s);
    }
    if f > 0 {
        st.failed = Some(st.failed.unwrap_or(0) + f);
    }
}

/// Zero counters and empty lists are left out, as upstream's JSON omits
/// them.
fn normalize(st: &mut JobStatus) {
    for n in [&mut st.active, &mut st.succeeded, &mut st.failed] {
        if *n == Some(0) {
            *n = None;
        }
    }
    if let Some(u) = st.uncounted_terminated_pods.as_mut() {
        if u.succeeded.as_ref().is_some_and(Vec::is_empty) {
            u.succeeded = None;
        }
        if u.failed.as_ref().is_some_and(Vec::is_empty) {
            u.failed = None;
        }
    }
    if st.conditions.as_ref().is_some_and(Vec::is_empty) {
        st.conditions = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncounted_pods_move_to_counters_once_released() {
        let mut st = JobStatus {
            succeeded: Some(1),
            uncounted_terminated_pods: Some(UncountedTerminatedPods {
                succeeded: Some(vec!["a".into(), "b".into()]),
                failed: Some(vec!["c".into()]),
            }),
            ..Default::default()
        };
        let still: HashSet<String> = ["b".to_string()].into();
        move_counted(&mut st, &still);
        assert_eq!(st.succeeded, Some(2));
        assert_eq!(st.failed, Some(1));
        let u = st.uncounted_terminated_pods.clone().unwrap_or_default();
        assert_eq!(u.succeeded, Some(vec!["b".to_string()]));
        assert_eq!(u.failed, None);
        st.active = Some(0);
        normalize(&mut st);
        assert_eq!(st.active, None);
    }
}
