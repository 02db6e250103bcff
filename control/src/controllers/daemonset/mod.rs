//! The DaemonSet controller: one pod per eligible node, kept on the
//! current template revision by a rolling update (or on delete), with the
//! status `kubectl get ds` and `kubectl rollout status ds/x` read.
//!
//! Daemon pods are not bound here: each is created for its node with a
//! required node affinity on `metadata.name` (as upstream), and the
//! scheduler binds it. Owns daemon pods, the DaemonSet's
//! ControllerRevisions and its status; must not touch other pods.


pub mod eligibility;
pub mod expectations;
pub mod plan;

use crate::controllers::util::{api_message as message, is_status};
use super::events::EventType;
use super::informer::Informer;
use super::queue::{Key, Queue};
use super::util::{controller_of, controller_ref, labels_match, pod_from_template, pod_phase};
use super::{run_workers, Context, Error, Requeue};
use eligibility::{add_daemon_tolerations, node_should_run, pin_to_node, target_node};
use expectations::Expectations;
use super::history::{self, Created, HASH_LABEL};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use plan::{NodeState, PodsByNode, Rolling, Settings, TEMPLATE_GENERATION_ANNOTATION, TEMPLATE_GENERATION_LABEL};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COMPONENT: &str = "daemonset-controller";

struct Controller {
    ctx: Context,
    sets: Informer<DaemonSet>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    revisions: Informer<ControllerRevision>,
    expectations: Arc<Expectations>,
    /// (DaemonSet uid, node) -> (last failed pod deleted, back-off)
    failed_backoff: Mutex<HashMap<(String, String), (Instant, Duration)>>,
}

/// The DaemonSets a pod concerns: its controller, or (an orphan) any
/// DaemonSet of its namespace whose selector matches it.
fn sets_of_pod(pod: &Pod, sets: &Informer<DaemonSet>) -> Vec<Key> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    if let Some(r) = controller_of(&pod.metadata) {
        return if r.kind == "DaemonSet" { vec![Key::new(Some(ns), &r.name)] } else { Vec::new() };
    }
    sets.list_in(ns)
        .iter()
        .filter(|ds| ds.spec.as_ref().and_then(|sp| super::util::selector(&sp.selector)).map(|s| !s.is_empty() && labels_match(&s, pod.metadata.labels.as_ref())).unwrap_or(false))
        .map(|ds| Key::of(ds.as_ref()))
        .collect()
}

pub fn start(ctx: &Context) {
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        sets: ctx.informers.get::<DaemonSet>(),
        pods: ctx.informers.get::<Pod>(),
        nodes: ctx.informers.get::<Node>(),
        revisions: ctx.informers.get::<ControllerRevision>(),
        expectations: Arc::default(),
        failed_backoff: Mutex::default(),
    });
    let queue = Queue::new();
    c.sets.feed(&ctx.tasks, queue.clone(), |ds| vec![Key::of(ds)]);
    let (sets, exp) = (c.sets.clone(), c.expectations.clone());
    c.pods.feed(&ctx.tasks, queue.clone(), move |pod| {
        let keys = sets_of_pod(pod, &sets);
        for k in &keys {
            exp.observed(k, pod.metadata.name.as_deref().unwrap_or(""));
        }
        keys
    });
    let sets = c.sets.clone();
    c.nodes.feed(&ctx.tasks, queue.clone(), move |_| sets.list().iter().map(|ds| Key::of(ds.as_ref())).collect());
    c.revisions.feed(&ctx.tasks, queue.clone(), |rev| match controller_of(&rev.metadata) {
        Some(r) if r.kind == "DaemonSet" => vec![Key::new(rev.metadata.namespace.as_deref(), &r.name)],
        _ => Vec::new(),
    });
    run_workers(ctx, COMPONENT, queue, 2, move |key| {
        let c = c.clone();
        async move { c.reconcile(key).await }
    });
}

/// The update strategy as the plan wants it (None for OnDelete).
fn rolling_of(ds: &DaemonSet) -> Option<Rolling> {
    let s = ds.spec.as_ref().and_then(|sp| sp.update_strategy.as_ref());
    if s.and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate") != "RollingUpdate" {
        return None;
    }
    let r = s.and_then(|s| s.rolling_update.as_ref());
    Some(Rolling {
        max_unavailable: r.and_then(|r| r.max_unavailable.clone()).unwrap_or(IntOrString::Int(1)),
        max_surge: r.and_then(|r| r.max_surge.clone()).unwrap_or(IntOrString::Int(0)),
    })
}

/// The pod to create for `node` (upstream `CreatePodTemplate` plus the
/// node affinity pinning it).
pub fn daemon_pod(ds: &DaemonSet, node: &str, hash: &str, generation: Option<&str>) -> Pod {
    let mut template = ds.spec.as_ref().map(|sp| sp.template.clone()).unwrap_or_default();
    let meta = template.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(Default::default);
    if let Some(g) = generation {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), g.into());
    }
    labels.insert(HASH_LABEL.into(), hash.into());
    let spec = template.spec.get_or_insert_with(Default::default);
    add_daemon_tolerations(spec);
    spec.affinity = Some(pin_to_node(spec.affinity.take(), node));
    let name = ds.metadata.name.as_deref().unwrap_or("");
    pod_from_template(&template, ds, &format!("{name}-"), None)
}

impl Controller {
    async fn ready(&self) {
        self.sets.ready().await;
        self.pods.ready().await;
        self.nodes.ready().await;
        self.revisions.ready().await;
    }

    async fn event(&self, ds: &DaemonSet, kind: EventType, reason: &str, msg: &str) {
        self.ctx.events.publish(ds, COMPONENT, kind, reason, msg).await;
    }

    async fn reconcile(&self, key: Key) -> Result<Requeue, Error> {
        self.ready().await;
        let Some(ds) = self.sets.get_key(&key) else {
            self.expectations.forget(&key);
            return Ok(None);
        };
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let ns = key.ns().to_string();
        let Some(spec) = ds.spec.clone() else { return Ok(None) };
        let Some(selector) = super::util::selector(&spec.selector) else {
            tracing::warn!(daemonset = %key, "invalid selector; ignoring");
            return Ok(None);
        };
        if selector.is_empty() {
            self.event(&ds, EventType::Warning, "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.").await;
            return Ok(None);
        }
        let owner = controller_ref(ds.as_ref());
        let pod_api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        let rev_api: Api<ControllerRevision> = Api::namespaced(self.ctx.client.clone(), &ns);
        let pods = history::claim(&pod_api, owner.clone(), false, &selector, self.pods.list_in(&ns), |_| true).await;
        let revisions = history::claim(&rev_api, owner, false, &selector, self.revisions.list_in(&ns), |_| true).await;
        let (hash, old) = self.construct_history(&ds, &rev_api, &pod_api, revisions, &pods).await?;

        let template_spec = spec.template.spec.clone().unwrap_or_default();
        let mut nodes: Vec<NodeState> = self
            .nodes
            .list()
            .iter()
            .map(|n| NodeState { name: n.metadata.name.clone().unwrap_or_default(), eligibility: node_should_run(n, &template_spec) })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let generation = ds.metadata.annotations.as_ref().and_then(|a| a.get(TEMPLATE_GENERATION_ANNOTATION)).cloned();
        let settings = Settings {
            hash: hash.clone(),
            template_generation: generation.clone(),
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            now: self.ctx.clock.now(),
            rolling: rolling_of(&ds),
        };
        let mut all = PodsByNode::new();
        let mut live = PodsByNode::new();
        for pod in &pods {
            let Some(node) = target_node(pod) else {
                tracing::debug!(daemonset = %key, pod = pod.metadata.name.as_deref().unwrap_or(""), "pod has no target node");
                continue;
            };
            let finished = matches!(pod_phase(pod), "Succeeded" | "Failed");
            if !(finished && pod.metadata.deletion_timestamp.is_some()) {
                live.entry(node.clone()).or_default().push(pod.as_ref());
            }
            all.entry(node).or_default().push(pod.as_ref());
        }
        let counts = plan::counts(&nodes, &live, &settings);

        let mut requeue: Option<Duration> = None;
        if self.expectations.satisfied(&key, &self.pods) {
            let m = plan::manage(&nodes, &all, &settings);
            let mut delete = m.delete;
            for (pod, node) in m.failed {
                match self.failed_backoff_allows(ds.metadata.uid.as_deref().unwrap_or(""), &node) {
                    Ok(()) => {
                        let msg = format!("Found failed daemon pod {ns}/{pod} on node {node}, will try to kill it");
                        self.event(&ds, EventType::Warning, "FailedDaemonPod", &msg).await;
                        delete.push(pod);
                    }
                    Err(wait) => requeue = Some(requeue.map_or(wait, |r| r.min(wait))),
                }
            }
            tracing::debug!(daemonset = %key, hash, create_on = ?m.create_on, delete = ?delete, "core loop");
            let acted = !m.create_on.is_empty() || !delete.is_empty();
            self.sync_nodes(&ds, &key, &pod_api, &pods, &delete, &m.create_on, &hash, generation.as_deref()).await?;
            if !acted && settings.rolling.is_some() {
                let u = plan::rolling_update(&nodes, &live, &settings);
                tracing::debug!(daemonset = %key, create_on = ?u.create_on, delete = ?u.delete, "rolling update");
                self.sync_nodes(&ds, &key, &pod_api, &pods, &u.delete, &u.create_on, &hash, generation.as_deref()).await?;
            }
        } else {
            tracing::debug!(daemonset = %key, "waiting for the cache to show earlier creations and deletions");
            requeue = Some(Duration::from_secs(5));
        }

        let live_hashes: HashSet<String> = pods.iter().filter_map(|p| p.metadata.labels.as_ref()?.get(HASH_LABEL).cloned()).collect();
        for name in history::daemonset_prune(&old, spec.revision_history_limit.unwrap_or(10), &live_hashes) {
            match rev_api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => tracing::info!(daemonset = %key, revision = name, "deleted old revision"),
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(e.into()),
            }
        }

        self.write_status(&ds, &counts).await?;
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        if min_ready > 0 && counts.ready != counts.available {
            let after = Duration::from_secs(u64::try_from(min_ready).unwrap_or(1));
            requeue = Some(requeue.map_or(after, |r| r.min(after)));
        }
        Ok(requeue.map(|r| self.ctx.clock.max_sleep(r)))
    }

    /// Upstream's failed-pod back-off per DaemonSet and node: 1 s doubling
    /// to 15 min. Ok when a failed pod may be deleted now.
    fn failed_backoff_allows(&self, uid: &str, node: &str) -> Result<(), Duration> {
        let mut m = self.failed_backoff.lock().unwrap_or_else(|p| p.into_inner());
        let key = (uid.to_string(), node.to_string());
        let now = Instant::now();
        let max = Duration::from_secs(900);
        match m.get(&key).copied() {
            Some((last, delay)) if now.duration_since(last) < delay => Err(delay - now.duration_since(last)),
            Some((last, delay)) if now.duration_since(last) < 2 * max => {
                m.insert(key, (now, (delay * 2).min(max)));
                Ok(())
            }
            _ => {
                if m.len() > 4096 {
                    m.clear();
                }
                m.insert(key, (now, Duration::from_secs(1)));
                Ok(())
            }
        }
    }

    /// The current revision's hash (creating the revision if needed, and
    /// renumbering it when the template went back to an older one) and the
    /// other revisions, oldest first (upstream `constructHistory`).
    async fn construct_history(
        &self,
        ds: &DaemonSet,
        api: &Api<ControllerRevision>,
        pod_api: &Api<Pod>,
        mut revisions: Vec<Arc<ControllerRevision>>,
        pods: &[Arc<Pod>],
    ) -> Result<(String, Vec<Arc<ControllerRevision>>), Error> {
        history::sort(&mut revisions);
        let template = &ds.spec.as_ref().map(|sp| sp.template.clone()).unwrap_or_default();
        let (current, old): (Vec<_>, Vec<_>) = revisions.into_iter().partition(|r| history::holds_template(r, template));
        let next = history::max_revision(&old) + 1;
        let name = ds.metadata.name.clone().unwrap_or_default();
        let Some(keep) = current.last().cloned() else {
            let hash = history::hash(&history::canonical_bytes(template), ds.status.as_ref().and_then(|s| s.collision_count));
            let rev = history::new_revision(ds, history::revision_name(&name, &hash), &hash, template, history::template_patch(template), next);
            return match history::create(api, &rev, template).await? {
                Created::Revision(r) => {
                    if r.revision < next {
                        history::renumber(api, &r, next).await?;
                    }
                    Ok((history::hash_label(&r).to_string(), old))
                }
                Created::Collision => {
                    let count = ds.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0) + 1;
                    let sets: Api<DaemonSet> = Api::namespaced(self.ctx.client.clone(), ds.metadata.namespace.as_deref().unwrap_or(""));
                    sets.patch_status(&name, &PatchParams::default(), &Patch::Merge(&json!({"status": {"collisionCount": count}}))).await?;
                    Err(Error::Other(format!("found a hash collision for DaemonSet {name:?}; bumped the collision count to {count}")))
                }
            };
        };
        let hash = match history::hash_label(&keep) {
            "" => keep.metadata.name.clone().unwrap_or_default(),
            h => h.to_string(),
        };
        // Equal revisions beyond the newest: move their pods over and drop them.
        for dup in &current[..current.len() - 1] {
            let dup_hash = history::hash_label(dup);
            for pod in pods.iter().filter(|p| !dup_hash.is_empty() && p.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL)).map(String::as_str) == Some(dup_hash)) {
                let patch = json!({"metadata": {"labels": {HASH_LABEL: hash}}});
                pod_api.patch(pod.metadata.name.as_deref().unwrap_or(""), &PatchParams::default(), &Patch::Merge(&patch)).await?;
            }
            match api.delete(dup.metadata.name.as_deref().unwrap_or(""), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if keep.revision < next {
            history::renumber(api, &keep, next).await?;
        }
        Ok((hash, old))
    }

    #[allow(clippy::too_many_arguments)]
    async fn sync_nodes(
        &self,
        ds: &DaemonSet,
        key: &Key,
        api: &Api<Pod>,
        pods: &[Arc<Pod>],
        delete: &[String],
        create_on: &[String],
        hash: &str,
        generation: Option<&str>,
    ) -> Result<(), Error> {
        let mut first_error: Option<Error> = None;
        for node in create_on {
            let pod = daemon_pod(ds, node, hash, generation);
            match api.create(&PostParams::default(), &pod).await {
                Ok(p) => {
                    let name = p.metadata.name.unwrap_or_default();
                    self.expectations.created(key, &name);
                    tracing::info!(daemonset = %key, pod = name, node, "created daemon pod");
                    self.event(ds, EventType::Normal, "SuccessfulCreate", &format!("Created pod: {name}")).await;
                }
                Err(e) => {
                    tracing::warn!(daemonset = %key, node, error = %e, "cannot create daemon pod");
                    self.event(ds, EventType::Warning, "FailedCreate", &format!("Error creating: {}", message(&e))).await;
                    // A terminating namespace takes no new pods; nothing to retry.
                    if !(is_status(&e, 403) && message(&e).contains("being terminated")) {
                        first_error.get_or_insert(e.into());
                    }
                }
            }
        }
        for name in delete {
            let uid = pods.iter().find(|p| p.metadata.name.as_deref() == Some(name.as_str())).and_then(|p| p.metadata.uid.clone()).unwrap_or_default();
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {
                    self.expectations.deleted(key, name, &uid);
                    tracing::info!(daemonset = %key, pod = name, "deleted daemon pod");
                    self.event(ds, EventType::Normal, "SuccessfulDelete", &format!("Deleted pod: {name}")).await;
                }
                Err(e) if is_status(&e, 404) => {}
                Err(e) => {
                    tracing::warn!(daemonset = %key, pod = name, error = %e, "cannot delete daemon pod");
                    self.event(ds, EventType::Warning, "FailedDelete", &format!("Error deleting: {}", message(&e))).await;
                    first_error.get_or_insert(e.into());
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn write_status(&self, ds: &DaemonSet, c: &plan::Counts) -> Result<(), Error> {
        let nz = |n: i32| if n == 0 { Value::Null } else { json!(n) };
        let status = json!({
            "currentNumberScheduled": c.current,
            "numberMisscheduled": c.misscheduled,
            "desiredNumberScheduled": c.desired,
            "numberReady": c.ready,
            "observedGeneration": ds.metadata.generation,
            "updatedNumberScheduled": nz(c.updated),
            "numberAvailable": nz(c.available),
            "numberUnavailable": nz(c.desired - c.available),
        });
        let cur = ds.status.clone().unwrap_or_default();
        let same = cur.current_number_scheduled == c.current
            && cur.number_misscheduled == c.misscheduled
            && cur.desired_number_scheduled == c.desired
            && cur.number_ready == c.ready
            && cur.observed_generation == ds.metadata.generation
            && cur.updated_number_scheduled.unwrap_or(0) == c.updated
            && cur.number_available.unwrap_or(0) == c.available
            && cur.number_unavailable.unwrap_or(0) == c.desired - c.available;
        if same && ds.status.is_some() {
            return Ok(());
        }
        let sets: Api<DaemonSet> = Api::namespaced(self.ctx.client.clone(), ds.metadata.namespace.as_deref().unwrap_or(""));
        match sets.patch_status(ds.metadata.name.as_deref().unwrap_or(""), &PatchParams::default(), &Patch::Merge(&json!({"status": status}))).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
