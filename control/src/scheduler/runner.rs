//! The scheduler's loop for one leadership term: keeps the [`Cache`] and
//! the [`SchedulingQueue`] up to date from the informers, decides one pod
//! at a time (the decisions are fast and made on one task, so they never
//! race), and hands the slow parts to tasks: bindings (many in flight,
//! their pods assumed on their nodes meanwhile), status updates, events
//! and preemption.

use super::algorithm;
use super::cache::{Cache, NodeChange, PodChange};
use super::filters::plugin;
use super::pod_info::{PodInfo, PriorityClasses};
use super::preemption::{self, Preemption};
use super::queue::{self, SchedulingQueue};
use super::SCHEDULER_NAME;
use crate::controllers::events::EventType;
use crate::controllers::informer::{Change, Informer};
use crate::controllers::Context;
use k8s_openapi::api::core::v1::{Binding, Namespace, Node, ObjectReference, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};

/// Bindings in flight at once.
pub const MAX_BINDS_IN_FLIGHT: usize = 48;
/// Pods decided before looking at the informers again.
const BATCH: usize = 64;
/// Pod changes applied at most between two rounds of decisions.
const DRAIN_MAX: usize = 4096;
/// How often waiting pods are checked for having waited too long.
const FLUSH_EVERY: Duration = Duration::from_secs(30);

const PREEMPTION_MESSAGE: &str = "default-scheduler: preempting to accommodate a higher priority pod";

/// How a binding ended.
#[derive(Debug)]
enum Bound {
    Ok,
    /// The pod is gone or was bound by someone else.
    Gone,
    /// Try again later.
    Failed(String),
}

struct BindOutcome {
    uid: String,
    result: Bound,
}

pub struct Runner {
    ctx: Context,
    cache: Cache,
    queue: SchedulingQueue,
    /// Pods whose binding call has not returned.
    binding: HashSet<String>,
    turn: usize,
    results: mpsc::UnboundedSender<BindOutcome>,
    results_rx: Option<mpsc::UnboundedReceiver<BindOutcome>>,
}

fn is_finished(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded") | Some("Failed"))
}

/// Pending, unbound, not being deleted, and asking for this scheduler.
pub fn is_ours(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let name = spec.and_then(|s| s.scheduler_name.as_deref()).unwrap_or("");
    (name.is_empty() || name == SCHEDULER_NAME)
        && spec.and_then(|s| s.node_name.as_deref()).unwrap_or("").is_empty()
        && pod.metadata.deletion_timestamp.is_none()
        && !is_finished(pod)
}

fn pod_scheduled_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "PodScheduled")
}

/// Receive from an informer without waiting; `None` when nothing is there.
fn try_next<K: Clone>(rx: &mut broadcast::Receiver<Change<K>>) -> Option<Result<Change<K>, ()>> {
    match rx.try_recv() {
        Ok(c) => Some(Ok(c)),
        Err(broadcast::error::TryRecvError::Empty) | Err(broadcast::error::TryRecvError::Closed) => None,
        Err(broadcast::error::TryRecvError::Lagged(_)) => Some(Err(())),
    }
}

fn recv_result<K: Clone>(r: Result<Change<K>, broadcast::error::RecvError>) -> Option<Result<Change<K>, ()>> {
    match r {
        Ok(c) => Some(Ok(c)),
        Err(broadcast::error::RecvError::Lagged(_)) => Some(Err(())),
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

struct Feeds {
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    classes: Informer<PriorityClass>,
    namespaces: Informer<Namespace>,
    pod_rx: broadcast::Receiver<Change<Pod>>,
    node_rx: broadcast::Receiver<Change<Node>>,
    class_rx: broadcast::Receiver<Change<PriorityClass>>,
    ns_rx: broadcast::Receiver<Change<Namespace>>,
}

enum Wake {
    Pod(Option<Result<Change<Pod>, ()>>),
    Node(Option<Result<Change<Node>, ()>>),
    Class(Option<Result<Change<PriorityClass>, ()>>),
    Ns(Option<Result<Change<Namespace>, ()>>),
    Bound(Option<BindOutcome>),
    Timer,
    Flush,
}

impl Runner {
    pub fn new(ctx: Context) -> Runner {
        let (tx, rx) = mpsc::unbounded_channel();
        Runner {
            ctx,
            cache: Cache::default(),
            queue: SchedulingQueue::default(),
            binding: HashSet::new(),
            turn: 0,
            results: tx,
            results_rx: Some(rx),
        }
    }

    pub async fn run(mut self) {
        let Some(mut results_rx) = self.results_rx.take() else { return };
        let inf = &self.ctx.informers;
        let (pods, nodes, classes, namespaces) = (inf.get::<Pod>(), inf.get::<Node>(), inf.get::<PriorityClass>(), inf.get::<Namespace>());
        let mut f = Feeds {
            pod_rx: pods.subscribe(),
            node_rx: nodes.subscribe(),
            class_rx: classes.subscribe(),
            ns_rx: namespaces.subscribe(),
            pods,
            nodes,
            classes,
            namespaces,
        };
        f.pods.ready().await;
        f.nodes.ready().await;
        f.classes.ready().await;
        f.namespaces.ready().await;
        self.resync_classes(&mut f);
        self.resync_namespaces(&mut f);
        self.resync_nodes(&mut f);
        self.resync_pods(&mut f);
        tracing::info!(nodes = self.cache.num_nodes(), pending = self.queue.len(), "scheduler started");
        let mut next_flush = Instant::now() + FLUSH_EVERY;
        loop {
            self.drain(&mut f, &mut results_rx);
            let now = Instant::now();
            let mut decided = 0;
            while self.binding.len() < MAX_BINDS_IN_FLIGHT && decided < BATCH {
                let Some(pod) = self.queue.pop(now) else { break };
                self.schedule_one(pod, now);
                decided += 1;
            }
            if decided > 0 {
                tokio::task::yield_now().await;
                continue;
            }
            if now >= next_flush {
                self.queue.flush_unschedulable(now);
                next_flush = now + FLUSH_EVERY;
                continue;
            }
            let can_pop = self.binding.len() < MAX_BINDS_IN_FLIGHT;
            let until = match self.queue.next_backoff() {
                Some(t) if can_pop => t.min(next_flush),
                _ => next_flush,
            };
            let wake = tokio::select! {
                r = f.pod_rx.recv() => Wake::Pod(recv_result(r)),
                r = f.node_rx.recv() => Wake::Node(recv_result(r)),
                r = f.class_rx.recv() => Wake::Class(recv_result(r)),
                r = f.ns_rx.recv() => Wake::Ns(recv_result(r)),
                r = results_rx.recv() => Wake::Bound(r),
                _ = tokio::time::sleep_until(until.into()) => if until == next_flush { Wake::Flush } else { Wake::Timer },
            };
            match wake {
                Wake::Pod(Some(c)) => self.on_pod_change(c, &mut f),
                Wake::Node(Some(c)) => self.on_node_change(c, &mut f),
                Wake::Class(Some(c)) => self.on_class_change(c, &mut f),
                Wake::Ns(Some(c)) => self.on_ns_change(c, &mut f),
                Wake::Bound(Some(o)) => self.on_bound(o),
                Wake::Pod(None) | Wake::Node(None) | Wake::Class(None) | Wake::Ns(None) | Wake::Bound(None) => {
                    tracing::warn!("scheduler: an informer stopped; ending this term's loop");
                    return;
                }
                Wake::Timer => {}
                Wake::Flush => {
                    self.queue.flush_unschedulable(Instant::now());
                    next_flush = Instant::now() + FLUSH_EVERY;
                }
            }
        }
    }

    /// Apply everything the informers and bindings have reported so far.
    fn drain(&mut self, f: &mut Feeds, results_rx: &mut mpsc::UnboundedReceiver<BindOutcome>) {
        while let Some(c) = try_next(&mut f.node_rx) {
            self.on_node_change(c, f);
        }
        while let Some(c) = try_next(&mut f.class_rx) {
            self.on_class_change(c, f);
        }
        while let Some(c) = try_next(&mut f.ns_rx) {
            self.on_ns_change(c, f);
        }
        // Bounded, so a flood of pod updates never starves the decisions.
        for _ in 0..DRAIN_MAX {
            let Some(c) = try_next(&mut f.pod_rx) else { break };
            self.on_pod_change(c, f);
        }
        while let Ok(o) = results_rx.try_recv() {
            self.on_bound(o);
        }
    }

    fn moved(&mut self, plugins: u16) {
        self.queue.move_unschedulable(plugins, Instant::now());
    }

    // ---- informer changes ----

    fn on_pod_change(&mut self, c: Result<Change<Pod>, ()>, f: &mut Feeds) {
        match c {
            Ok(Change::Applied(p)) => self.on_pod(p),
            Ok(Change::Deleted(p)) => self.on_pod_deleted(&p),
            Ok(Change::Resync) | Err(()) => {
                f.pod_rx = f.pod_rx.resubscribe();
                self.resync_pods(f);
            }
        }
    }

    fn on_pod(&mut self, pod: Arc<Pod>) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        if !node.is_empty() {
            self.queue.remove(&uid);
            self.cache.remove_nominated(&uid);
            if is_finished(&pod) {
                if self.cache.remove_pod(&uid) == PodChange::Removed {
                    self.moved(queue::POD_REMOVED);
                }
            } else {
                let info = Arc::new(PodInfo::new(pod, &self.cache.priorities));
                if self.cache.set_bound(info) == PodChange::Added {
                    self.moved(queue::POD_ADDED);
                }
            }
            return;
        }
        if self.cache.is_assumed(&uid) {
            // Being bound (or bound and not yet seen so).
            return;
        }
        if !is_ours(&pod) {
            self.queue.remove(&uid);
            self.cache.remove_nominated(&uid);
            return;
        }
        let info = Arc::new(PodInfo::new(pod.clone(), &self.cache.priorities));
        if let Some(n) = pod.status.as_ref().and_then(|s| s.nominated_node_name.as_deref()).filter(|n| !n.is_empty()) {
            self.cache.nominate(info.clone(), n);
        }
        self.queue.upsert(info, Instant::now());
    }

    fn on_pod_deleted(&mut self, pod: &Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.queue.remove(&uid);
        self.cache.remove_nominated(&uid);
        if self.cache.remove_pod(&uid) == PodChange::Removed {
            self.moved(queue::POD_REMOVED);
        }
    }

    fn resync_pods(&mut self, f: &mut Feeds) {
        let list = f.pods.list();
        let mut seen = HashSet::new();
        for p in list {
            seen.insert(p.metadata.uid.clone().unwrap_or_default());
            self.on_pod(p);
        }
        for (uid, _) in self.cache.pod_uids() {
            if !seen.contains(&uid) && !self.binding.contains(&uid) {
                self.cache.remove_pod(&uid);
            }
        }
        for uid in self.queue.uids() {
            if !seen.contains(&uid) {
                self.queue.remove(&uid);
                self.cache.remove_nominated(&uid);
            }
        }
        self.moved(queue::ALL);
    }

    fn on_node_change(&mut self, c: Result<Change<Node>, ()>, f: &mut Feeds) {
        match c {
            Ok(Change::Applied(n)) => {
                if self.cache.set_node(n) != NodeChange::Unchanged {
                    self.moved(queue::ALL);
                }
            }
            Ok(Change::Deleted(n)) => self.cache.remove_node(n.metadata.name.as_deref().unwrap_or("")),
            Ok(Change::Resync) | Err(()) => {
                f.node_rx = f.node_rx.resubscribe();
                self.resync_nodes(f);
            }
        }
    }

    fn resync_nodes(&mut self, f: &mut Feeds) {
        let list = f.nodes.list();
        let names: HashSet<String> = list.iter().filter_map(|n| n.metadata.name.clone()).collect();
        self.cache.retain_nodes(&names);
        for n in list {
            self.cache.set_node(n);
        }
        self.moved(queue::ALL);
    }

    fn on_class_change(&mut self, c: Result<Change<PriorityClass>, ()>, f: &mut Feeds) {
        if matches!(c, Ok(Change::Resync) | Err(())) {
            f.class_rx = f.class_rx.resubscribe();
        }
        self.resync_classes(f);
    }

    fn resync_classes(&mut self, f: &mut Feeds) {
        self.cache.priorities = PriorityClasses::from_list(&f.classes.list());
        let now = Instant::now();
        for uid in self.queue.uids() {
            if let Some(info) = self.queue.info(&uid) {
                let fresh = Arc::new(PodInfo::new(info.pod.clone(), &self.cache.priorities));
                self.queue.upsert(fresh, now);
            }
        }
    }

    fn on_ns_change(&mut self, c: Result<Change<Namespace>, ()>, f: &mut Feeds) {
        match c {
            Ok(Change::Applied(ns)) => {
                let name = ns.metadata.name.clone().unwrap_or_default();
                let labels = ns.metadata.labels.clone().unwrap_or_default();
                if self.cache.ns_labels.get(&name) != Some(&labels) {
                    self.cache.ns_labels.insert(name, labels);
                    self.moved(plugin::INTER_POD);
                }
            }
            Ok(Change::Deleted(ns)) => {
                self.cache.ns_labels.remove(ns.metadata.name.as_deref().unwrap_or(""));
            }
            Ok(Change::Resync) | Err(()) => {
                f.ns_rx = f.ns_rx.resubscribe();
                self.resync_namespaces(f);
            }
        }
    }

    fn resync_namespaces(&mut self, f: &mut Feeds) {
        self.cache.ns_labels = f
            .namespaces
            .list()
            .iter()
            .map(|ns| (ns.metadata.name.clone().unwrap_or_default(), ns.metadata.labels.clone().unwrap_or_default()))
            .collect();
    }

    // ---- decisions ----

    fn schedule_one(&mut self, pod: Arc<PodInfo>, now: Instant) {
        if self.cache.contains(&pod.uid) {
            self.queue.remove(&pod.uid);
            return;
        }
        match algorithm::schedule(&self.cache, &pod, &mut self.turn) {
            Ok(node) => {
                tracing::debug!(pod = %pod.key(), node, "assumed");
                self.cache.assume(pod.clone(), &node);
                self.binding.insert(pod.uid.clone());
                self.spawn_bind(pod, node);
            }
            Err(mut fit) => {
                let mut nomination: Option<Option<String>> = None;
                if fit.num_nodes > 0 {
                    match preemption::preempt(&self.cache, &pod, &fit) {
                        Preemption::Candidate(c) => {
                            for other in self.cache.nominated_below(&c.node, pod.priority) {
                                self.cache.remove_nominated(&other.uid);
                                self.queue.retry(&other.uid, now);
                                self.spawn_clear_nomination(other);
                            }
                            tracing::info!(pod = %pod.key(), node = c.node, victims = c.victims.len(), "preempting");
                            self.cache.nominate(pod.clone(), &c.node);
                            self.spawn_preempt(pod.clone(), c.node.clone(), c.victims);
                            nomination = Some(Some(c.node));
                        }
                        Preemption::Failed(msg) => {
                            let clears = msg.starts_with("preemption: 0/");
                            fit.post_filter = Some(msg);
                            if clears && self.cache.nominated_node(&pod.uid).is_some() {
                                self.cache.remove_nominated(&pod.uid);
                                nomination = Some(None);
                            }
                        }
                    }
                }
                let message = fit.message();
                tracing::debug!(pod = %pod.key(), message, "unschedulable");
                self.queue.unschedulable(&pod.uid, fit.plugins(), now);
                self.spawn_unschedulable(pod, message, nomination);
            }
        }
    }

    fn on_bound(&mut self, o: BindOutcome) {
        self.binding.remove(&o.uid);
        match o.result {
            Bound::Ok => self.queue.remove(&o.uid),
            Bound::Gone => {
                self.queue.remove(&o.uid);
                if self.cache.forget(&o.uid) == PodChange::Removed {
                    self.moved(queue::POD_REMOVED);
                }
            }
            Bound::Failed(e) => {
                tracing::warn!(uid = o.uid, error = e, "binding failed; retrying after back-off");
                if self.cache.forget(&o.uid) == PodChange::Removed {
                    self.moved(queue::POD_REMOVED);
                }
                self.queue.backoff(&o.uid, Instant::now());
            }
        }
    }

    // ---- API writes (in tasks) ----

    fn spawn_bind(&self, pod: Arc<PodInfo>, node: String) {
        let ctx = self.ctx.clone();
        let results = self.results.clone();
        self.ctx.tasks.spawn(async move {
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &pod.namespace);
            let binding = Binding {
                metadata: ObjectMeta { name: Some(pod.name.clone()), namespace: Some(pod.namespace.clone()), uid: Some(pod.uid.clone()), ..Default::default() },
                target: ObjectReference { api_version: Some("v1".into()), kind: Some("Node".into()), name: Some(node.clone()), ..Default::default() },
            };
            let result = match api.create_subresource::<Binding, Value>("binding", &pod.name, &PostParams::default(), &binding).await {
                Ok(_) => Bound::Ok,
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 && (s.message.contains("already assigned") || s.message.contains("being deleted")) => Bound::Gone,
                Err(e) => Bound::Failed(e.to_string()),
            };
            let ok = matches!(result, Bound::Ok);
            let failed = match &result {
                Bound::Failed(e) => Some(e.clone()),
                _ => None,
            };
            let _ = results.send(BindOutcome { uid: pod.uid.clone(), result });
            if ok {
                tracing::debug!(pod = %pod.key(), node, "bound");
                let msg = format!("Successfully assigned {}/{} to {node}", pod.namespace, pod.name);
                ctx.events.publish(&*pod.pod, SCHEDULER_NAME, EventType::Normal, "Scheduled", &msg).await;
            } else if let Some(e) = failed {
                ctx.events.publish(&*pod.pod, SCHEDULER_NAME, EventType::Warning, "FailedScheduling", &format!("Binding rejected: {e}")).await;
            }
        });
    }

    /// Set `PodScheduled=False/Unschedulable` (when it says something new)
    /// and record a `FailedScheduling` event.
    fn spawn_unschedulable(&self, pod: Arc<PodInfo>, message: String, nomination: Option<Option<String>>) {
        let ctx = self.ctx.clone();
        self.ctx.tasks.spawn(async move {
            let current = pod_scheduled_condition(&pod.pod);
            let same = current
                .map(|c| c.status == "False" && c.reason.as_deref() == Some("Unschedulable") && c.message.as_deref() == Some(message.as_str()))
                .unwrap_or(false);
            let current_nomination = pod.pod.status.as_ref().and_then(|s| s.nominated_node_name.clone()).filter(|n| !n.is_empty());
            let nomination_changes = match &nomination {
                Some(n) => *n != current_nomination,
                None => false,
            };
            if !same || nomination_changes {
                let mut condition = json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message, "lastProbeTime": null});
                if current.map(|c| c.status != "False").unwrap_or(true) {
                    condition["lastTransitionTime"] = json!(ctx.clock.now_time());
                }
                let mut status = json!({"conditions": [condition]});
                if let Some(n) = &nomination {
                    status["nominatedNodeName"] = n.as_ref().map(|s| json!(s)).unwrap_or(Value::Null);
                }
                let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &pod.namespace);
                if let Err(e) = api.patch_status(&pod.name, &PatchParams::default(), &Patch::Strategic(&json!({"status": status}))).await {
                    tracing::debug!(pod = %pod.key(), error = %e, "cannot update pod status");
                }
            }
            ctx.events.publish(&*pod.pod, SCHEDULER_NAME, EventType::Warning, "FailedScheduling", &message).await;
        });
    }

    fn spawn_clear_nomination(&self, pod: Arc<PodInfo>) {
        let ctx = self.ctx.clone();
        self.ctx.tasks.spawn(async move {
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &pod.namespace);
            let patch = json!({"status": {"nominatedNodeName": null}});
            if let Err(e) = api.patch_status(&pod.name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
                tracing::debug!(pod = %pod.key(), error = %e, "cannot clear nominated node");
            }
        });
    }

    /// Mark each victim as disrupted, delete it (gracefully), and say why.
    fn spawn_preempt(&self, preemptor: Arc<PodInfo>, node: String, victims: Vec<Arc<PodInfo>>) {
        let ctx = self.ctx.clone();
        self.ctx.tasks.spawn(async move {
            for v in victims {
                let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &v.namespace);
                let condition = json!({"status": {"conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                    "message": PREEMPTION_MESSAGE, "lastTransitionTime": ctx.clock.now_time()}]}});
                if let Err(e) = api.patch_status(&v.name, &PatchParams::default(), &Patch::Strategic(&condition)).await {
                    tracing::debug!(pod = %v.key(), error = %e, "cannot mark victim");
                }
                let dp = DeleteParams { preconditions: Some(Preconditions { uid: Some(v.uid.clone()), resource_version: None }), ..Default::default() };
                match api.delete(&v.name, &dp).await {
                    Ok(_) => {
                        tracing::info!(victim = %v.key(), preemptor = %preemptor.key(), node, "preempted");
                        let msg = format!("Preempted by pod {} on node {node}", preemptor.uid);
                        ctx.events.publish(&*v.pod, SCHEDULER_NAME, EventType::Normal, "Preempted", &msg).await;
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                    Err(e) => tracing::warn!(victim = %v.key(), error = %e, "cannot delete preemption victim"),
                }
            }
        });
    }
}
