//! The TTL-after-finished controller: a finished Job (Complete or Failed)
//! with `ttlSecondsAfterFinished` is deleted, with its pods (foreground
//! cascading deletion, as upstream), that many seconds after it finished.
//! It only deletes Jobs; it never changes them.

use super::conditions;
use crate::controllers::queue::{Key, Queue};
use crate::controllers::{Context, Error, Requeue};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use kube::Api;
use std::time::Duration;

const COMPONENT: &str = "ttl-after-finished-controller";

pub fn start(ctx: &Context) {
    let jobs = ctx.informers.get::<Job>();
    let queue = Queue::new();
    jobs.feed(&ctx.tasks, queue.clone(), |j| if j.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished).is_some() { vec![Key::of(j)] } else { vec![] });
    let ctx2 = ctx.clone();
    super::super::run_workers(ctx, COMPONENT, queue, 2, move |key| {
        let ctx = ctx2.clone();
        let jobs = jobs.clone();
        async move {
            jobs.ready().await;
            let Some(job) = jobs.get_key(&key) else { return Ok(None) };
            reconcile(&ctx, &key, &job).await
        }
    });
}

/// When a finished Job with a TTL expires; `None` when it has no TTL, is
/// not finished or is already being deleted.
pub fn expires_at(job: &Job) -> Option<jiff::Timestamp> {
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let finished = conditions::finished(job)?.last_transition_time.as_ref()?.0;
    finished.checked_add(jiff::SignedDuration::from_secs(i64::from(ttl))).ok()
}

async fn reconcile(ctx: &Context, key: &Key, cached: &Job) -> Result<Requeue, Error> {
    let Some(at) = expires_at(cached) else { return Ok(None) };
    let now = ctx.clock.now();
    if now < at {
        let wait = now.duration_until(at).unsigned_abs();
        return Ok(Some(ctx.clock.max_sleep(wait.max(Duration::from_millis(100)))));
    }
    // The cache may be stale (TTL changed meanwhile): look again.
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), key.ns());
    let fresh = match api.get(&key.name).await {
        Ok(j) => j,
        Err(e) => {
            let e = Error::from(e);
            return if e.is_not_found() { Ok(None) } else { Err(e) };
        }
    };
    match expires_at(&fresh) {
        None => return Ok(None),
        Some(at) if now < at => return Ok(Some(ctx.clock.max_sleep(now.duration_until(at).unsigned_abs()))),
        Some(_) => {}
    }
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions { uid: fresh.metadata.uid.clone(), resource_version: None }),
        ..Default::default()
    };
    tracing::info!(job = %key, "cleaning up finished job after its TTL");
    match api.delete(&key.name, &dp).await {
        Ok(_) => Ok(None),
        Err(e) => {
            let e = Error::from(e);
            if e.is_not_found() {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiry_counts_from_the_finish() {
        let job: Job = serde_json::from_value(json!({
            "spec": {"ttlSecondsAfterFinished": 30, "template": {}},
            "status": {"conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
        }))
        .unwrap_or_default();
        assert_eq!(expires_at(&job).map(|t| t.to_string()), Some("2024-01-01T00:00:30Z".to_string()));
        let mut running = job.clone();
        running.status = None;
        assert_eq!(expires_at(&running), None);
        let mut no_ttl = job;
        if let Some(s) = no_ttl.spec.as_mut() {
            s.ttl_seconds_after_finished = None;
        }
        assert_eq!(expires_at(&no_ttl), None);
    }
}
