//! The garbage collector: deletes objects whose owners are all gone, and
//! carries out foreground and orphan deletions (the `foregroundDeletion`
//! and `orphan` finalizers the API server sets for a propagationPolicy).
//!
//! It is an ordinary client: discovery tells it every resource the API
//! serves (CRDs included, refreshed when CRDs change and every 30 s); one
//! metadata-only watch per resource feeds a dependency graph of uids
//! ([`graph`]); workers verify against the API and act ([`worker`]).
//! Objects are only ever deleted after a live read shows every owner
//! missing (by uid), so a lagging watch cannot make it delete too much.
//! Must not: delete anything on the graph's word alone, or keep whole
//! objects in memory.

pub mod decide;
pub mod discovery;
pub mod graph;
mod monitor;
mod worker;

use super::queue::{Key, Queue};
use super::{run_workers, Context};
use discovery::Catalog;
use graph::Graph;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// Owner uids verified absent are remembered (uids are never reused), up
/// to this many.
const ABSENT_CACHE: usize = 4096;
const WORKERS: usize = 4;

/// State shared by the monitors and the workers.
pub struct Gc {
    client: kube::Client,
    events: super::events::Recorder,
    graph: Mutex<Graph>,
    queue: Queue,
    catalog: RwLock<Arc<Catalog>>,
    absent: Mutex<HashSet<String>>,
    synced: watch::Sender<bool>,
}

impl Gc {
    fn new(client: kube::Client, events: super::events::Recorder, queue: Queue) -> Self {
        Self {
            client,
            events,
            graph: Mutex::new(Graph::default()),
            queue,
            catalog: RwLock::new(Arc::new(Catalog::default())),
            absent: Mutex::new(HashSet::new()),
            synced: watch::channel(false).0,
        }
    }

    pub fn graph(&self) -> MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        match self.catalog.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_catalog(&self, c: Catalog) {
        let c = Arc::new(c);
        match self.catalog.write() {
            Ok(mut g) => *g = c,
            Err(p) => *p.into_inner() = c,
        }
    }

    pub fn is_absent(&self, uid: &str) -> bool {
        self.absent.lock().map(|a| a.contains(uid)).unwrap_or(false)
    }

    pub fn mark_absent(&self, uid: &str) {
        if let Ok(mut a) = self.absent.lock() {
            if a.len() >= ABSENT_CACHE {
                a.clear();
            }
            a.insert(uid.to_string());
        }
    }

    fn enqueue(&self, uids: Vec<String>) {
        for uid in uids {
            self.queue.add(Key::cluster(&uid));
        }
    }

    /// Workers start once every resource has been listed (or after a
    /// minute, should one never list), so the graph is complete enough.
    async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

pub fn start(ctx: &Context) {
    let queue = Queue::new();
    let gc = Arc::new(Gc::new(ctx.client.clone(), ctx.events.clone(), queue.clone()));
    ctx.tasks.spawn(monitor::run(gc.clone()));
    run_workers(ctx, "garbage-collector", queue, WORKERS, move |key| worker::reconcile(gc.clone(), key));
}

/// How often discovery is asked again (CRD changes also trigger it).
const REDISCOVER: Duration = Duration::from_secs(30);
