//! The kubelet's pod lifecycle: watches the pods bound to this node
//! (`spec.nodeName` field selector), runs one worker per pod UID that
//! converges the runtime (CRI) to the pod's spec and reports the status,
//! relists the runtime every second to wake the workers whose containers
//! changed (upstream's PLEG), and cleans up sandboxes of pods that no
//! longer exist (deleted while the agent was down).
//!
//! It owns sandboxes, containers, image pulls, restarts, pod status and
//! the pod's cgroup. It must not register the node, serve logs/exec,
//! configure networking, implement volumes (it calls `crate::volumes`:
//! setup, etc-hosts, mounts, termination messages, teardown) or probes (it
//! starts `crate::probes` per container instance and reads their results).
//!
//! Everything it acts on is read back from the runtime: a killed and
//! restarted agent adopts running pods without restarting them.

pub mod backoff;
pub mod cgroups;
pub mod container;
pub mod dns;
pub mod env;
pub mod failure;
pub mod images;
pub mod labels;
pub mod node_info;
pub mod qos;
pub mod runtime;
pub mod sandbox;
pub mod status;
pub mod worker;

use crate::context::Context;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use worker::{Shared, Slot};

struct Handle {
    tx: watch::Sender<Slot>,
    nudge: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

struct Manager {
    sh: Arc<Shared>,
    workers: HashMap<String, Handle>,
    /// The first list of pods is in: runtime pods unknown to the API are orphans.
    synced: bool,
    fingerprints: HashMap<String, u64>,
}

impl Manager {
    fn spawn(&mut self, uid: &str, slot: Slot) {
        let (tx, rx) = watch::channel(slot);
        let nudge = Arc::new(Notify::new());
        let task = tokio::spawn(worker::run(self.sh.clone(), uid.to_string(), rx, nudge.clone()));
        self.workers.insert(uid.to_string(), Handle { tx, nudge, task });
    }

    fn apply(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else { return };
        let pod = Arc::new(pod);
        match self.workers.get(&uid).filter(|h| !h.task.is_finished()) {
            Some(h) => {
                let _ = h.tx.send(Slot::Present(pod));
            }
            None => self.spawn(&uid, Slot::Present(pod)),
        }
    }

    fn gone(&mut self, uid: &str, last: Option<Arc<Pod>>) {
        match self.workers.get(uid).filter(|h| !h.task.is_finished()) {
            Some(h) => {
                let last = last.or_else(|| match &*h.tx.borrow() {
                    Slot::Present(p) => Some(p.clone()),
                    Slot::Gone(p) => p.clone(),
                });
                let _ = h.tx.send(Slot::Gone(last));
            }
            None => self.spawn(uid, Slot::Gone(last)),
        }
    }

    fn nudge(&self, uid: &str) {
        if let Some(h) = self.workers.get(uid) {
            h.nudge.notify_one();
        }
    }

    /// One relist of the runtime: wake workers whose pods changed, start
    /// clean-up workers for orphans, forget finished workers.
    async fn relist(&mut self) {
        self.workers.retain(|_, h| !h.task.is_finished());
        let fps = match runtime::fingerprints(&self.sh.ctx.cri).await {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, "runtime relist failed");
                return;
            }
        };
        if self.synced {
            // Pod directories of pods gone while the agent was away.
            for uid in crate::volumes::pod_dirs(&self.sh.ctx) {
                if !self.workers.contains_key(&uid) && !fps.contains_key(&uid) {
                    tracing::info!(uid, "pod directory of a pod the API does not know; removing it");
                    self.spawn(&uid, Slot::Gone(None));
                }
            }
        }
        for (uid, fp) in &fps {
            let changed = self.fingerprints.get(uid) != Some(fp);
            if self.workers.contains_key(uid) {
                if changed {
                    self.nudge(uid);
                }
            } else if self.synced {
                tracing::info!(uid, "runtime holds a pod the API does not know; removing it");
                self.spawn(uid, Slot::Gone(None));
            }
        }
        self.fingerprints = fps;
    }
}

/// Waits until the runtime has the pause image (imported at start), so
/// the first sandboxes do not fail on it; gives up after a minute.
async fn wait_for_pause_image(ctx: &Context) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(_)) = images::present(&ctx.cri, crate::images::pause::IMAGE).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tracing::warn!(image = crate::images::pause::IMAGE, "pause image still missing; starting pods anyway");
}

/// Runs the pod lifecycle until the task is dropped.
pub async fn run(ctx: Arc<Context>) {
    loop {
        match ctx.cri.wait_ready(Duration::from_secs(30)).await {
            Ok(_) => break,
            Err(e) => tracing::warn!(error = %e, "pods wait for the container runtime"),
        }
    }
    wait_for_pause_image(&ctx).await;
    let host_ips = vec![node_info::host_ip(ctx.cfg.node_ip).to_string()];
    let failures = failure::requests(ctx.cfg.agent_dir());
    let sh = Arc::new(Shared {
        backoff: Mutex::default(),
        host_ips,
        memory: node_info::memory_bytes(),
        failures: failures.clone(),
        pressure: crate::node::pressure(&ctx),
        ctx: ctx.clone(),
    });
    let mut mgr = Manager { sh, workers: HashMap::new(), synced: false, fingerprints: HashMap::new() };
    let api: kube::Api<Pod> = kube::Api::all(ctx.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", ctx.cfg.node_name));
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let mut listed: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(node = ctx.cfg.node_name, "pod lifecycle started");
    loop {
        tokio::select! {
            ev = stream.next() => match ev {
                Some(Ok(Event::Apply(p))) => mgr.apply(p),
                Some(Ok(Event::InitApply(p))) => {
                    if let Some(uid) = &p.metadata.uid {
                        listed.insert(uid.clone());
                    }
                    mgr.apply(p);
                }
                Some(Ok(Event::Delete(p))) => {
                    if let Some(uid) = p.metadata.uid.clone() {
                        mgr.gone(&uid, Some(Arc::new(p)));
                    }
                }
                Some(Ok(Event::Init)) => listed.clear(),
                Some(Ok(Event::InitDone)) => {
                    let vanished: Vec<String> = mgr
                        .workers
                        .iter()
                        .filter(|(uid, h)| !listed.contains(*uid) && matches!(&*h.tx.borrow(), Slot::Present(_)))
                        .map(|(uid, _)| uid.clone())
                        .collect();
                    for uid in vanished {
                        mgr.gone(&uid, None);
                    }
                    mgr.synced = true;
                }
                Some(Err(e)) => tracing::warn!(error = %e, "watching this node's pods"),
                None => {
                    tracing::error!("pod watch ended");
                    return;
                }
            },
            _ = tick.tick() => mgr.relist().await,
            _ = failures.notify.notified() => {
                for uid in failures.waiting() {
                    match mgr.workers.get(&uid).filter(|h| !h.task.is_finished()) {
                        Some(h) => h.nudge.notify_one(),
                        None => failures.forget(&uid),
                    }
                }
            }
        }
    }
}
