//! The StatefulSet controller: pods with stable names and storage
//! (`<set>-<ordinal>`, claims `<claim>-<set>-<ordinal>` made before the
//! pod), created and removed in order (or in parallel), updated by a
//! partitioned rolling update (or on delete), with the ControllerRevisions
//! and status `kubectl rollout status|history|undo sts/x` read.
//!
//! Names are deterministic, so a restart at any point cannot make a
//! duplicate: a create of an existing name just fails and the next sync
//! sees it. Owns the set's pods, claims (creation and owner references,
//! never deletion), revisions and status.

pub mod identity;
pub mod plan;

use crate::controllers::util::{api_message as message, is_status};
use super::history::{self, Created};
use super::events::EventType;
use super::informer::Informer;
use super::queue::{Key, Queue};
use super::util::{controller_of, controller_ref, labels_match};
use super::{run_workers, Context, Error, Requeue};
use identity::{claim_is_stale, claim_owners, claims_for, identity_matches, in_range, is_member, new_pod, ordinal_of, pod_name, pod_revision, retention, set_name, storage_matches, POD_INDEX_LABEL, POD_NAME_LABEL};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use plan::{Step, View};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const COMPONENT: &str = "statefulset-controller";

struct Controller {
    ctx: Context,
    sets: Informer<StatefulSet>,
    pods: Informer<Pod>,
    claims: Informer<PersistentVolumeClaim>,
    revisions: Informer<ControllerRevision>,
}

/// The sets a pod concerns: its controller, or (an orphan) the sets of its
/// namespace that would adopt it.
fn sets_of_pod(pod: &Pod, sets: &Informer<StatefulSet>) -> Vec<Key> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    if let Some(r) = controller_of(&pod.metadata) {
        return if r.kind == "StatefulSet" { vec![Key::new(Some(ns), &r.name)] } else { Vec::new() };
    }
    sets.list_in(ns)
        .iter()
        .filter(|s| is_member(s, pod))
        .filter(|s| {
            s.spec.as_ref().and_then(|sp| super::util::selector(&sp.selector)).map(|sel| labels_match(&sel, pod.metadata.labels.as_ref())).unwrap_or(false)
        })
        .map(|s| Key::of(s.as_ref()))
        .collect()
}

pub fn start(ctx: &Context) {
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        sets: ctx.informers.get::<StatefulSet>(),
        pods: ctx.informers.get::<Pod>(),
        claims: ctx.informers.get::<PersistentVolumeClaim>(),
        revisions: ctx.informers.get::<ControllerRevision>(),
    });
    let queue = Queue::new();
    c.sets.feed(&ctx.tasks, queue.clone(), |set| vec![Key::of(set)]);
    let sets = c.sets.clone();
    c.pods.feed(&ctx.tasks, queue.clone(), move |pod| sets_of_pod(pod, &sets));
    c.revisions.feed(&ctx.tasks, queue.clone(), |rev| match controller_of(&rev.metadata) {
        Some(r) if r.kind == "StatefulSet" => vec![Key::new(rev.metadata.namespace.as_deref(), &r.name)],
        _ => Vec::new(),
    });
    run_workers(ctx, COMPONENT, queue, 2, move |key| {
        let c = c.clone();
        async move { c.reconcile(key).await }
    });
}

/// How a step went when it did not fail.
enum Outcome {
    Done,
    /// The cache is behind (the object exists already): stop this round.
    Wait,
}

/// The set's revisions as a sync sees them.
struct Revisions {
    current: Arc<ControllerRevision>,
    update: Arc<ControllerRevision>,
    collision_count: i32,
}

impl Controller {
    async fn ready(&self) {
        self.sets.ready().await;
        self.pods.ready().await;
        self.claims.ready().await;
        self.revisions.ready().await;
    }

    async fn event(&self, set: &StatefulSet, kind: EventType, reason: &str, msg: &str) {
        self.ctx.events.publish(set, COMPONENT, kind, reason, msg).await;
    }

    async fn reconcile(&self, key: Key) -> Result<Requeue, Error> {
        self.ready().await;
        let Some(set) = self.sets.get_key(&key) else { return Ok(None) };
        let Some(spec) = set.spec.clone() else { return Ok(None) };
        let ns = key.ns().to_string();
        let Some(selector) = super::util::selector(&spec.selector) else {
            tracing::warn!(statefulset = %key, "invalid selector; ignoring");
            return Ok(None);
        };
        let deleting = set.metadata.deletion_timestamp.is_some();
        let owner = controller_ref(set.as_ref());
        let pod_api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        let rev_api: Api<ControllerRevision> = Api::namespaced(self.ctx.client.clone(), &ns);
        let member = |p: &Pod| is_member(&set, p);
        let pods = history::claim(&pod_api, owner.clone(), deleting, &selector, self.pods.list_in(&ns), member).await;
        let mut revisions = history::claim(&rev_api, owner, deleting, &selector, self.revisions.list_in(&ns), |_| true).await;
        history::sort(&mut revisions);
        let revs = self.revisions(&set, &rev_api, &revisions).await?;
        let current_template = history::revision_template(&revs.current).unwrap_or_else(|| spec.template.clone());
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        let on_delete = strategy.type_.as_deref() == Some("OnDelete");
        let view = View {
            replicas: identity::replicas(&set),
            start: identity::start_ordinal(&set),
            monotonic: spec.pod_management_policy.as_deref() != Some("Parallel"),
            partition: strategy.rolling_update.as_ref().map(|r| r.partition.unwrap_or(0)),
            on_delete,
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            now: self.ctx.clock.now(),
            current_revision: revs.current.metadata.name.clone().unwrap_or_default(),
            update_revision: revs.update.metadata.name.clone().unwrap_or_default(),
        };
        let mine: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).filter(|p| ordinal_of(p).is_some()).collect();

        let mut requeue: Option<Duration> = None;
        let mut failure: Option<Error> = None;
        let mut gone: HashSet<String> = HashSet::new();
        let mut current_adjust = 0;
        if !deleting {
            for pod in mine.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
                if let Err(e) = self.fix_claim_owners(&set, pod).await {
                    failure.get_or_insert(e);
                }
            }
            let policy = retention(&set);
            let stale = |ordinal: i32| {
                policy.delete_when_scaled
                    && claims_for(&set, ordinal).iter().any(|c| {
                        self.claims.get(Some(&ns), c.metadata.name.as_deref().unwrap_or("")).map(|c| claim_is_stale(&c, &pod_name(&set, ordinal), None)).unwrap_or(false)
                    })
            };
            let steps = if failure.is_none() { plan::plan(&view, &mine, |p| identity_matches(&set, p) && storage_matches(&set, p), stale) } else { Vec::new() };
            for step in steps {
                let templates = (&current_template, &spec.template);
                match self.run_step(&set, &pod_api, &step, &view, templates).await {
                    Ok(Outcome::Done) => match step {
                        Step::DeleteFinished { pod, .. } => {
                            gone.insert(pod);
                        }
                        Step::Update { .. } => current_adjust += 1,
                        _ => {}
                    },
                    Ok(Outcome::Wait) => {
                        requeue = Some(Duration::from_secs(1));
                        break;
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }

        let counted: Vec<&Pod> = mine.iter().copied().filter(|p| !gone.contains(p.metadata.name.as_deref().unwrap_or(""))).collect();
        let mut c = plan::counts(&view, &counted);
        c.current -= current_adjust;
        self.write_status(&set, &view, &c, revs.collision_count, !on_delete).await?;

        let mut live: HashSet<String> = [view.current_revision.clone(), view.update_revision.clone()].into();
        live.extend(pods.iter().map(|p| pod_revision(p).to_string()));
        for name in history::statefulset_prune(&revisions, spec.revision_history_limit.unwrap_or(10), &live) {
            match rev_api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => tracing::info!(statefulset = %key, revision = name, "deleted old revision"),
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        if min_ready > 0 && c.available != view.replicas {
            let after = Duration::from_secs(u64::try_from(min_ready).unwrap_or(1));
            requeue = Some(requeue.map_or(after, |r| r.min(after)));
        }
        Ok(requeue.map(|r| self.ctx.clock.max_sleep(r)))
    }

    /// Upstream `getStatefulSetRevisions`: the update revision is the one
    /// holding the set's template (made, or renumbered to the newest when
    /// the template went back to an older revision); the current one is
    /// the status's, or the update revision to begin with.
    async fn revisions(&self, set: &StatefulSet, api: &Api<ControllerRevision>, revisions: &[Arc<ControllerRevision>]) -> Result<Revisions, Error> {
        let template = set.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
        let mut collision_count = set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
        let next = history::max_revision(revisions) + 1;
        let equal = revisions.iter().rev().find(|r| history::holds_template(r, &template));
        let update = match equal {
            Some(e) if revisions.last().map(|l| l.metadata.name == e.metadata.name).unwrap_or(false) => e.clone(),
            Some(e) => Arc::new(history::renumber(api, e, next).await?),
            None => {
                let data = history::template_patch(&template);
                let mut made = None;
                for _ in 0..16 {
                    let hash = history::hash(data.to_string().as_bytes(), Some(collision_count));
                    let rev = history::new_revision(set, history::revision_name(set_name(set), &hash), &hash, &template, data.clone(), next);
                    match history::create(api, &rev, &template).await? {
                        Created::Revision(r) => {
                            made = Some(Arc::new(*r));
                            break;
                        }
                        Created::Collision => collision_count += 1,
                    }
                }
                made.ok_or_else(|| Error::Other(format!("no free revision name for StatefulSet {:?}", set_name(set))))?
            }
        };
        let status_current = set.status.as_ref().and_then(|s| s.current_revision.clone());
        let current = revisions.iter().find(|r| r.metadata.name.is_some() && r.metadata.name == status_current).cloned().unwrap_or_else(|| update.clone());
        Ok(Revisions { current, update, collision_count })
    }

    async fn run_step(&self, set: &StatefulSet, api: &Api<Pod>, step: &Step, view: &View, templates: (&PodTemplateSpec, &PodTemplateSpec)) -> Result<Outcome, Error> {
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let name = set_name(set);
        match step {
            Step::DeleteFinished { pod, failed } => {
                if *failed {
                    self.event(set, EventType::Warning, "RecreatingFailedPod", &format!("StatefulSet {ns}/{name} is recreating failed Pod {pod}")).await;
                } else {
                    self.event(set, EventType::Normal, "RecreatingTerminatedPod", &format!("StatefulSet {ns}/{name} is recreating terminated Pod {pod}")).await;
                }
                self.delete_pod(set, api, pod).await
            }
            Step::Create { ordinal, update } => {
                let (template, revision) = if *update { (templates.1, &view.update_revision) } else { (templates.0, &view.current_revision) };
                let pod = new_pod(set, template, *ordinal, revision);
                let pname = pod_name(set, *ordinal);
                if let Err(e) = self.create_claims(set, *ordinal, &pname).await {
                    self.event(set, EventType::Warning, "FailedCreate", &format!("create Pod {pname} in StatefulSet {name} failed error: {e}")).await;
                    return Err(e);
                }
                match api.create(&PostParams::default(), &pod).await {
                    Ok(created) => {
                        tracing::info!(statefulset = %format!("{ns}/{name}"), pod = pname, revision, "created pod");
                        self.event(set, EventType::Normal, "SuccessfulCreate", &format!("create Pod {pname} in StatefulSet {name} successful")).await;
                        self.fix_claim_owners(set, &created).await?;
                        Ok(Outcome::Done)
                    }
                    Err(e) if is_status(&e, 409) => Ok(Outcome::Wait),
                    Err(e) => {
                        self.event(set, EventType::Warning, "FailedCreate", &format!("create Pod {pname} in StatefulSet {name} failed error: {}", message(&e))).await;
                        Err(e.into())
                    }
                }
            }
            Step::CreateMissingClaims { ordinal } => {
                self.create_claims(set, *ordinal, &pod_name(set, *ordinal)).await?;
                Ok(Outcome::Done)
            }
            Step::FixIdentity { pod, ordinal } => {
                self.create_claims(set, *ordinal, pod).await?;
                let patch = json!({"metadata": {"labels": {POD_NAME_LABEL: pod, POD_INDEX_LABEL: ordinal.to_string()}}});
                match api.patch(pod, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(_) => {
                        self.event(set, EventType::Normal, "SuccessfulUpdate", &format!("update Pod {pod} in StatefulSet {name} successful")).await;
                        Ok(Outcome::Done)
                    }
                    Err(e) if is_status(&e, 404) => Ok(Outcome::Done),
                    Err(e) => {
                        self.event(set, EventType::Warning, "FailedUpdate", &format!("update Pod {pod} in StatefulSet {name} failed error: {}", message(&e))).await;
                        Err(e.into())
                    }
                }
            }
            Step::ScaleDown { pod } | Step::Update { pod } => {
                tracing::info!(statefulset = %format!("{ns}/{name}"), pod, reason = if matches!(step, Step::Update { .. }) { "update" } else { "scale down" }, "terminating pod");
                self.delete_pod(set, api, pod).await
            }
        }
    }

    async fn delete_pod(&self, set: &StatefulSet, api: &Api<Pod>, pod: &str) -> Result<Outcome, Error> {
        let name = set_name(set);
        match api.delete(pod, &DeleteParams::default()).await {
            Ok(_) => {
                self.event(set, EventType::Normal, "SuccessfulDelete", &format!("delete Pod {pod} in StatefulSet {name} successful")).await;
                Ok(Outcome::Done)
            }
            Err(e) if is_status(&e, 404) => Ok(Outcome::Done),
            Err(e) => {
                self.event(set, EventType::Warning, "FailedDelete", &format!("delete Pod {pod} in StatefulSet {name} failed error: {}", message(&e))).await;
                Err(e.into())
            }
        }
    }

    /// Create the claims of `ordinal` that do not exist (upstream
    /// `createPersistentVolumeClaims`).
    async fn create_claims(&self, set: &StatefulSet, ordinal: i32, pod: &str) -> Result<(), Error> {
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let name = set_name(set);
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.ctx.client.clone(), &ns);
        let mut errors: Vec<String> = Vec::new();
        for claim in claims_for(set, ordinal) {
            let cname = claim.metadata.name.clone().unwrap_or_default();
            match self.claims.get(Some(&ns), &cname) {
                Some(existing) => {
                    if existing.metadata.deletion_timestamp.is_some() {
                        errors.push(format!("pvc {cname} is being deleted"));
                    }
                }
                None => match api.create(&PostParams::default(), &claim).await {
                    Ok(_) => {
                        tracing::info!(statefulset = %format!("{ns}/{name}"), claim = cname, "created claim");
                        self.event(set, EventType::Normal, "SuccessfulCreate", &format!("create Claim {cname} Pod {pod} in StatefulSet {name} success")).await;
                    }
                    Err(e) if is_status(&e, 409) => {}
                    Err(e) => {
                        let msg = message(&e);
                        self.event(set, EventType::Warning, "FailedCreate", &format!("create Claim {cname} for Pod {pod} in StatefulSet {name} failed error: {msg}")).await;
                        errors.push(format!("failed to create PVC {cname}: {msg}"));
                    }
                },
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Other(errors.join("; ")))
        }
    }

    /// Give the pod's claims the owner references the retention policy
    /// asks for (upstream `UpdatePodClaimForRetentionPolicy`).
    async fn fix_claim_owners(&self, set: &StatefulSet, pod: &Pod) -> Result<(), Error> {
        let Some(ordinal) = ordinal_of(pod) else { return Ok(()) };
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let set_ref = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "StatefulSet".into(),
            name: set_name(set).into(),
            uid: set.metadata.uid.clone().unwrap_or_default(),
            ..Default::default()
        };
        let pod_ref = OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            ..Default::default()
        };
        let policy = retention(set);
        let scaled_down = !in_range(set, ordinal);
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.ctx.client.clone(), &ns);
        for claim in claims_for(set, ordinal) {
            let cname = claim.metadata.name.clone().unwrap_or_default();
            let Some(cached) = self.claims.get(Some(&ns), &cname) else { continue };
            let current = cached.metadata.owner_references.clone().unwrap_or_default();
            let wanted = claim_owners(&current, &set_ref, &pod_ref, policy, scaled_down);
            if wanted == current {
                continue;
            }
            let refs: Value = if wanted.is_empty() { Value::Null } else { json!(wanted) };
            let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": cached.metadata.resource_version}});
            match api.patch(&cname, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => tracing::info!(claim = cname, pod = pod_ref.name, "claim owners set for the retention policy"),
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn write_status(&self, set: &StatefulSet, view: &View, c: &plan::Counts, collision_count: i32, rolling: bool) -> Result<(), Error> {
        let (mut current, mut current_revision) = (c.current, view.current_revision.clone());
        // A finished rolling update makes the update revision current.
        if rolling && c.updated == c.replicas && c.ready == c.replicas {
            current = c.updated;
            current_revision = view.update_revision.clone();
        }
        let cur = set.status.clone().unwrap_or_default();
        let same = cur.observed_generation == set.metadata.generation
            && cur.replicas == c.replicas
            && cur.ready_replicas.unwrap_or(0) == c.ready
            && cur.current_replicas.unwrap_or(0) == current
            && cur.updated_replicas.unwrap_or(0) == c.updated
            && cur.available_replicas == Some(c.available)
            && cur.current_revision.as_deref() == Some(current_revision.as_str())
            && cur.update_revision.as_deref() == Some(view.update_revision.as_str())
            && cur.collision_count == Some(collision_count);
        if same {
            return Ok(());
        }
        let nz = |n: i32| if n == 0 { Value::Null } else { json!(n) };
        let status = json!({
            "observedGeneration": set.metadata.generation,
            "replicas": c.replicas,
            "readyReplicas": nz(c.ready),
            "currentReplicas": nz(current),
            "updatedReplicas": nz(c.updated),
            "currentRevision": current_revision,
            "updateRevision": view.update_revision,
            "collisionCount": collision_count,
            "availableReplicas": c.available,
        });
        let api: Api<StatefulSet> = Api::namespaced(self.ctx.client.clone(), set.metadata.namespace.as_deref().unwrap_or(""));
        match api.patch_status(set_name(set), &PatchParams::default(), &Patch::Merge(&json!({"status": status}))).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
