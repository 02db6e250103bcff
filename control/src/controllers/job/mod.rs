//! The Job controller (`job-controller`) and the TTL-after-finished
//! controller (`ttl-after-finished-controller`).
//!
//! The Job controller runs a Job's pods: it creates them from the template
//! (named `<job>-<random>`, or `<job>-<index>-<random>` for Indexed Jobs)
//! up to `parallelism` and the completions still missing, replaces failed
//! ones after a back-off, and writes the Job status (`active`, `ready`,
//! `terminating`, `succeeded`, `failed`, `completedIndexes`,
//! `uncountedTerminatedPods`, `startTime`, `completionTime`, conditions).
//! Every pod carries the `batch.kubernetes.io/job-tracking` finalizer
//! until its outcome is recorded in the status, so a pod deleted right
//! after it finished is still counted: the uid goes into
//! `uncountedTerminatedPods` first, then the finalizer is removed, then the
//! uid moves into the counters.
//!
//! It owns pods controlled by Jobs and the status of Jobs; it never
//! deletes a Job (the TTL controller does, once its TTL has passed) and
//! never touches pods of other controllers.

mod backoff;
mod conditions;
mod expectations;
mod failure_policy;
mod indexes;
mod plan;
mod pods;
mod sync;
mod ttl;

use super::informer::Informer;
use super::queue::{Key, Queue};
use super::util::controller_of;
use super::Context;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use std::sync::Arc;

const COMPONENT: &str = "job-controller";
/// Key names for lone pods still carrying the tracking finalizer: a `:`
/// is never part of a Job name.
const POD_KEY_PREFIX: &str = "pod:";

pub(crate) struct Controller {
    pub ctx: Context,
    pub jobs: Informer<Job>,
    pub pods: Informer<Pod>,
    pub expectations: expectations::Expectations,
    pub backoff: backoff::Store,
}

pub fn start(ctx: &Context) {
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        jobs: ctx.informers.get::<Job>(),
        pods: ctx.informers.get::<Pod>(),
        expectations: Default::default(),
        backoff: Default::default(),
    });
    let queue = Queue::new();
    controller.jobs.feed_self(&ctx.tasks, queue.clone());
    controller.pods.feed(&ctx.tasks, queue.clone(), pod_keys);
    let c = controller.clone();
    super::run_workers(ctx, COMPONENT, queue, 4, move |key| {
        let c = c.clone();
        async move { sync::reconcile(&c, key).await }
    });
    ttl::start(ctx);
}

/// The Job a pod belongs to; a pod with the tracking finalizer and no
/// controller gets a key of its own so the finalizer is released.
fn pod_keys(pod: &Pod) -> Vec<Key> {
    let ns = pod.metadata.namespace.as_deref();
    match controller_of(&pod.metadata) {
        Some(r) if r.kind == "Job" && r.api_version == "batch/v1" => vec![Key::new(ns, &r.name)],
        Some(_) => vec![],
        None if pods::has_tracking_finalizer(pod) => {
            vec![Key::new(ns, &format!("{POD_KEY_PREFIX}{}", pod.metadata.name.as_deref().unwrap_or("")))]
        }
        None => vec![],
    }
}
