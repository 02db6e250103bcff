//! Controllers: the control loops behind the workload objects, run as tasks
//! of `coracle server` over shared informer caches.
//!
//! They are ordinary Kubernetes clients (kube-rs): they read through
//! [`informer`] caches and write through the API (in-process via
//! [`client::in_process`], or over HTTPS), never the store directly. Each
//! is level-triggered: a reconcile looks at the whole current state of one
//! object, so a restart in the middle of anything picks up where it was.
//! Only the leader (a Lease in kube-system) runs them.

pub mod client;
pub mod clock;
pub mod events;
pub mod history;
pub mod informer;
pub mod leader;
pub mod queue;
pub mod util;

pub mod deployment;
pub mod replicaset;
pub mod daemonset;
pub mod statefulset;
pub mod job;
pub mod cronjob;
pub mod garbage_collector;
pub mod namespace;
pub mod endpoints;
pub mod endpointslice;
pub mod serviceaccount;
pub mod node_lifecycle;
pub mod taint_eviction;
pub mod node_ipam;

use crate::config::ClusterConfig;
use clock::Clock;
use events::Recorder;
use informer::Informers;
use queue::{Key, Queue};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tasks started for one leadership term, aborted together.
#[derive(Clone, Default)]
pub struct Tasks(Arc<Mutex<Vec<tokio::task::AbortHandle>>>);

impl Tasks {
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(fut);
        if let Ok(mut v) = self.0.lock() {
            v.retain(|h| !h.is_finished());
            v.push(handle.abort_handle());
        }
    }

    pub fn abort_all(&self) {
        if let Ok(mut v) = self.0.lock() {
            for h in v.drain(..) {
                h.abort();
            }
        }
    }
}

/// What every controller gets.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub informers: Arc<Informers>,
    pub config: Arc<ClusterConfig>,
    pub events: Recorder,
    pub clock: Clock,
    pub tasks: Tasks,
}

impl Context {
    pub fn new(client: kube::Client, config: Arc<ClusterConfig>, clock: Clock) -> Self {
        let tasks = Tasks::default();
        Self {
            informers: Arc::new(Informers::new(client.clone(), tasks.clone())),
            events: Recorder::new(client.clone(), clock.clone()),
            client,
            config,
            clock,
            tasks,
        }
    }
}

/// Why a reconcile did not finish; the key is retried with back-off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The API refused the write because the object changed meanwhile (or
    /// is already gone): the next reconcile sees the new state.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(s)) if s.code == 409)
    }
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(s)) if s.code == 404)
    }
}

/// Whether and when to look at a key again.
pub type Requeue = Option<Duration>;

/// Run `workers` loops taking keys from `queue` and reconciling them. A
/// failed key is retried after 100 ms, doubling up to 60 s; a conflict is
/// retried at once. One bad object never stops the others.
pub fn run_workers<F, Fut>(ctx: &Context, name: &'static str, queue: Queue, workers: usize, reconcile: F)
where
    F: Fn(Key) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Requeue, Error>> + Send + 'static,
{
    let reconcile = Arc::new(reconcile);
    let failures: Arc<Mutex<std::collections::HashMap<Key, u32>>> = Arc::default();
    for _ in 0..workers.max(1) {
        let queue = queue.clone();
        let reconcile = reconcile.clone();
        let failures = failures.clone();
        ctx.tasks.spawn(async move {
            loop {
                let key = queue.next().await;
                // In its own task, so a panic on one object is an error for
                // that key (retried with back-off), not a dead worker.
                let result = match tokio::spawn(reconcile(key.clone())).await {
                    Ok(r) => r,
                    Err(e) => Err(Error::Other(format!("reconcile panicked: {e}"))),
                };
                queue.done(&key);
                match result {
                    Ok(again) => {
                        if let Ok(mut f) = failures.lock() {
                            f.remove(&key);
                        }
                        if let Some(after) = again {
                            queue.add_after(key, after);
                        }
                    }
                    Err(e) if e.is_conflict() => {
                        tracing::debug!(controller = name, key = %key, "conflict; retrying");
                        queue.add(key);
                    }
                    Err(e) => {
                        let n = failures
                            .lock()
                            .map(|mut f| {
                                let n = f.entry(key.clone()).or_insert(0);
                                *n += 1;
                                *n
                            })
                            .unwrap_or(1);
                        let delay = Duration::from_millis(100u64.saturating_mul(1 << n.min(10).saturating_sub(1))).min(Duration::from_secs(60));
                        tracing::warn!(controller = name, key = %key, error = %e, retry_in_ms = delay.as_millis() as u64, "reconcile failed");
                        queue.add_after(key, delay);
                    }
                }
            }
        });
    }
}

/// Start every controller on `ctx` (call once per leadership term).
pub fn start_all(ctx: &Context) {
    deployment::start(ctx);
    replicaset::start(ctx);
    daemonset::start(ctx);
    statefulset::start(ctx);
    job::start(ctx);
    cronjob::start(ctx);
    garbage_collector::start(ctx);
    namespace::start(ctx);
    endpoints::start(ctx);
    endpointslice::start(ctx);
    serviceaccount::start(ctx);
    node_lifecycle::start(ctx);
    taint_eviction::start(ctx);
    node_ipam::start(ctx);
}

/// Run the controllers of this server: wait to be the leader, run them,
/// stop them if leadership is lost.
pub async fn run(client: kube::Client, config: Arc<ClusterConfig>, clock: Clock) {
    let identity = format!("{}_{}", config.server_name, uuid::Uuid::new_v4());
    let election = leader::Election::new("kube-controller-manager", &identity);
    leader::run(
        client.clone(),
        election,
        || {
            let ctx = Context::new(client.clone(), config.clone(), clock.clone());
            start_all(&ctx);
            ctx.tasks.clone()
        },
        |tasks| tasks.abort_all(),
    )
    .await;
}
