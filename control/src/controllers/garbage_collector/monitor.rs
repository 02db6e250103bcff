//! The collector's view of the cluster: discovery, and one metadata-only
//! watch per deletable resource feeding the graph. Resources appear and
//! disappear with CRDs; their watches follow.

use super::discovery::{discover, Served};
use super::graph::Node;
use super::{Gc, REDISCOVER};
use futures_util::StreamExt;
use kube::api::{Api, DynamicObject, PartialObjectMeta};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// How long the first sync may take before the workers start anyway.
const FIRST_SYNC: Duration = Duration::from_secs(60);

struct Monitor {
    res: Arc<Served>,
    handle: tokio::task::AbortHandle,
    synced: watch::Receiver<bool>,
}

/// The running watches; dropping it (leadership lost) stops them all.
#[derive(Default)]
struct Monitors(HashMap<(String, String), Monitor>);

impl Drop for Monitors {
    fn drop(&mut self) {
        for m in self.0.values() {
            m.handle.abort();
        }
    }
}

fn is_crd(res: &Served) -> bool {
    res.same_resource("apiextensions.k8s.io", "customresourcedefinitions")
}

pub async fn run(gc: Arc<Gc>) {
    let crds_changed = Arc::new(Notify::new());
    let mut monitors = Monitors::default();
    let mut first = true;
    loop {
        let mut retry = REDISCOVER;
        match discover(&gc.client).await {
            Ok(catalog) => {
                sync_monitors(&gc, &mut monitors, catalog.collectable().cloned().collect(), &crds_changed);
                gc.set_catalog(catalog);
            }
            Err(e) => {
                tracing::warn!(controller = "garbage-collector", error = %e, "discovery failed");
                retry = Duration::from_secs(1);
            }
        }
        if first && !monitors.0.is_empty() {
            first = false;
            let waits = monitors.0.values().map(|m| {
                let mut rx = m.synced.clone();
                async move {
                    let _ = rx.wait_for(|s| *s).await;
                }
            });
            if tokio::time::timeout(FIRST_SYNC, futures_util::future::join_all(waits)).await.is_err() {
                tracing::warn!(controller = "garbage-collector", "not every resource listed in time; starting anyway");
            }
            let suspects = gc.graph().suspects();
            tracing::info!(controller = "garbage-collector", objects = gc.graph().len(), resources = monitors.0.len(), suspects = suspects.len(), "graph synced");
            gc.synced.send_replace(true);
            gc.enqueue(suspects);
        }
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = crds_changed.notified() => {
                // Let a burst of CRD changes settle.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn sync_monitors(gc: &Arc<Gc>, monitors: &mut Monitors, wanted: Vec<Arc<Served>>, crds_changed: &Arc<Notify>) {
    let keys: HashSet<(String, String)> = wanted.iter().map(|r| (r.ar.group.clone(), r.ar.plural.clone())).collect();
    let gone: Vec<(String, String)> = monitors.0.keys().filter(|k| !keys.contains(*k)).cloned().collect();
    for key in gone {
        if let Some(m) = monitors.0.remove(&key) {
            m.handle.abort();
            tracing::info!(controller = "garbage-collector", resource = %m.res.group_resource(), "resource no longer served; forgetting its objects");
            let wake = gc.graph().retain_listed(&key.0, &key.1, &HashSet::new());
            gc.enqueue(wake);
        }
    }
    for res in wanted {
        let key = (res.ar.group.clone(), res.ar.plural.clone());
        if let Some(m) = monitors.0.get(&key) {
            if m.res.ar.version == res.ar.version {
                continue;
            }
            m.handle.abort();
        }
        let (tx, rx) = watch::channel(false);
        let notify = is_crd(&res).then(|| crds_changed.clone());
        let handle = tokio::spawn(watch_resource(gc.clone(), res.clone(), tx, notify)).abort_handle();
        tracing::debug!(controller = "garbage-collector", resource = %res.group_resource(), version = %res.ar.version, "watching");
        monitors.0.insert(key, Monitor { res, handle, synced: rx });
    }
}

fn apply(gc: &Gc, res: &Arc<Served>, obj: &PartialObjectMeta<DynamicObject>) {
    if let Some((uid, node)) = Node::from_meta(res.clone(), &obj.metadata) {
        let wake = gc.graph().upsert(&uid, node);
        gc.enqueue(wake);
    }
}

async fn watch_resource(gc: Arc<Gc>, res: Arc<Served>, synced: watch::Sender<bool>, crds_changed: Option<Arc<Notify>>) {
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(gc.client.clone(), &res.ar);
    let mut events = watcher(api, watcher::Config::default().any_semantic()).default_backoff().boxed();
    let mut listing: Option<HashSet<String>> = None;
    while let Some(ev) = events.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(controller = "garbage-collector", resource = %res.group_resource(), error = %e, "watch failed; retrying");
                continue;
            }
        };
        let mut changed = true;
        match ev {
            Event::Init => {
                listing = Some(HashSet::new());
                changed = false;
            }
            Event::InitApply(o) => {
                if let (Some(l), Some(uid)) = (listing.as_mut(), o.metadata.uid.as_ref()) {
                    l.insert(uid.clone());
                }
                apply(&gc, &res, &o);
                changed = false;
            }
            Event::InitDone => {
                if let Some(listed) = listing.take() {
                    let wake = gc.graph().retain_listed(&res.ar.group, &res.ar.plural, &listed);
                    gc.enqueue(wake);
                }
                synced.send_replace(true);
            }
            Event::Apply(o) => apply(&gc, &res, &o),
            Event::Delete(o) => {
                if let Some(uid) = o.metadata.uid.as_deref() {
                    let wake = gc.graph().remove(uid);
                    gc.enqueue(wake);
                }
            }
        }
        if changed {
            if let Some(n) = &crds_changed {
                n.notify_one();
            }
        }
    }
}
