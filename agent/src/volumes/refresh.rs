//! The volumes' background task. It watches the pods bound to this node and
//! every 10 seconds (and right after a pod changes) re-materialises their
//! configMap, secret, downwardAPI and projected volumes, so files follow
//! the objects (upstream's kubelet takes up to about a minute) and tokens
//! are renewed; it also keeps the `local-path` StorageClass and reclaims
//! released local-path volumes. Pods not set up yet (no volumes directory)
//! or torn down are left alone.

use super::{local_path, Fetcher};
use crate::context::Context;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub const RESYNC: Duration = Duration::from_secs(10);
const RECLAIM: Duration = Duration::from_secs(10);

fn active(p: &Pod) -> bool {
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
    phase != "Succeeded" && phase != "Failed"
}

async fn refresh_pods(ctx: &Context, pods: &[Arc<Pod>]) {
    let mut fetch = Fetcher::new(&ctx.client);
    for p in pods.iter().filter(|p| active(p)) {
        if let Err(e) = super::refresh(ctx, p, &mut fetch).await {
            tracing::debug!(pod = ?p.metadata.name, namespace = ?p.metadata.namespace, error = %e, "volume refresh failed; keeping the current files");
        }
    }
}

async fn refresh_loop(ctx: Arc<Context>, store: Store<Pod>, mut changed: tokio::sync::mpsc::UnboundedReceiver<String>) {
    let mut tick = tokio::time::interval(RESYNC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => refresh_pods(&ctx, &store.state()).await,
            Some(uid) = changed.recv() => {
                let mut uids = BTreeSet::from([uid]);
                while let Ok(u) = changed.try_recv() {
                    uids.insert(u);
                }
                let pods: Vec<Arc<Pod>> =
                    store.state().into_iter().filter(|p| p.metadata.uid.as_ref().is_some_and(|u| uids.contains(u))).collect();
                refresh_pods(&ctx, &pods).await;
            }
        }
    }
}

async fn local_path_loop(ctx: Arc<Context>, store: Store<Pod>) {
    let mut delay = Duration::from_secs(1);
    while let Err(e) = local_path::ensure_class(&ctx.client).await {
        tracing::warn!(error = %e, "local-path StorageClass not ensured yet");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
    let _ = store.wait_until_ready().await;
    loop {
        if let Err(e) = local_path::reclaim(&ctx, &store.state()).await {
            tracing::warn!(error = %e, "local-path reclaim pass failed");
        }
        tokio::time::sleep(RECLAIM).await;
    }
}

pub async fn run(ctx: Arc<Context>) {
    let api: kube::Api<Pod> = kube::Api::all(ctx.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", ctx.cfg.node_name));
    let (store, writer) = reflector::store();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let watch = async move {
        let mut events = std::pin::pin!(reflector::reflector(writer, watcher(api, cfg)).default_backoff().applied_objects());
        while let Some(ev) = events.next().await {
            match ev {
                Ok(pod) => {
                    if let Some(uid) = pod.metadata.uid.clone() {
                        let _ = tx.send(uid);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "pod watch for volumes interrupted"),
            }
        }
    };
    tokio::join!(watch, refresh_loop(ctx.clone(), store.clone(), rx), local_path_loop(ctx, store));
}
