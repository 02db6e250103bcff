//! One sync of one Deployment: the writes the rollout strategies are made
//! of (find or create the new ReplicaSet and keep revisions in step, scale
//! a set and record the event, clean up old sets, write the status).
//!
//! A [`Sync`] holds the deployment and its ReplicaSets as last seen and
//! replaces them with what each write returns, so later steps of the same
//! sync build on its own writes. Every write is pinned to the
//! resourceVersion it was computed from: on a conflict the sync starts
//! over from the cache. The new ReplicaSet's name is derived from the
//! template, so a sync interrupted anywhere never creates a second one.

use crate::controllers::util::api_message as message;
use super::super::events::EventType;
use super::super::{util, Error};
use super::status::{self as st, condition};
use super::{annotations, arith, hash, Controller, COMPONENT};
use crate::goquote::go_quote;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The new ReplicaSet (by name) and the old ones.
#[derive(Debug, Clone, Default)]
pub struct Split {
    pub new: Option<String>,
    pub old: Vec<String>,
}

pub struct Sync<'a> {
    pub c: &'a Controller,
    pub d: Deployment,
    pub sets: Vec<ReplicaSet>,
    /// Pods of the sets, by set uid.
    pub pods: HashMap<String, Vec<Arc<Pod>>>,
    pub now: jiff::Timestamp,
    pub requeue: Option<Duration>,
}

impl<'a> Sync<'a> {
    pub fn name(&self) -> &str {
        self.d.metadata.name.as_deref().unwrap_or("")
    }

    pub fn ns(&self) -> &str {
        self.d.metadata.namespace.as_deref().unwrap_or("")
    }

    fn now_time(&self) -> Time {
        super::super::replicaset::status::now_seconds(self.now)
    }

    fn sets_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.c.ctx.client.clone(), self.ns())
    }

    fn api(&self) -> Api<Deployment> {
        Api::namespaced(self.c.ctx.client.clone(), self.ns())
    }

    pub fn find(&self, name: &str) -> Option<&ReplicaSet> {
        self.sets.iter().find(|r| arith::rs_name(r) == name)
    }

    fn put(&mut self, rs: ReplicaSet) {
        match self.sets.iter_mut().find(|r| r.metadata.name == rs.metadata.name) {
            Some(slot) => *slot = rs,
            None => self.sets.push(rs),
        }
    }

    pub fn refs(&self, names: &[String]) -> Vec<&ReplicaSet> {
        names.iter().filter_map(|n| self.find(n)).collect()
    }

    /// Old sets then the new one.
    pub fn all(&self, split: &Split) -> Vec<&ReplicaSet> {
        let mut v = self.refs(&split.old);
        if let Some(n) = split.new.as_deref().and_then(|n| self.find(n)) {
            v.push(n);
        }
        v
    }

    pub fn new_set(&self, split: &Split) -> Option<&ReplicaSet> {
        split.new.as_deref().and_then(|n| self.find(n))
    }

    fn template(&self) -> k8s_openapi::api::core::v1::PodTemplateSpec {
        self.d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default()
    }

    fn status(&self) -> DeploymentStatus {
        self.d.status.clone().unwrap_or_default()
    }

    async fn event(&self, kind: EventType, reason: &str, msg: &str) {
        self.c.ctx.events.publish(&self.d, COMPONENT, kind, reason, msg).await;
    }

    /// The oldest set with the deployment's template is the new one.
    pub fn split(&self) -> Split {
        let template = self.template();
        let mut sorted: Vec<&ReplicaSet> = self.sets.iter().collect();
        sorted.sort_by(|a, b| arith::by_creation(a, b));
        let new = sorted
            .iter()
            .find(|r| r.spec.as_ref().and_then(|s| s.template.as_ref()).map(|t| hash::equal_ignore_hash(t, &template)).unwrap_or(false))
            .map(|r| arith::rs_name(r).to_string());
        let old = sorted.iter().map(|r| arith::rs_name(r).to_string()).filter(|n| Some(n) != new.as_ref()).collect();
        Split { new, old }
    }

    pub async fn write_status(&mut self, status: DeploymentStatus) -> Result<(), Error> {
        let mut d = self.d.clone();
        d.status = Some(status);
        self.d = self.api().replace_status(self.name(), &PostParams::default(), &d).await?;
        Ok(())
    }

    async fn write_revision(&mut self, revision: &str) -> Result<(), Error> {
        let mut d = self.d.clone();
        if !annotations::set_deployment_revision(&mut d, revision) {
            return Ok(());
        }
        let patch = json!({"metadata": {"resourceVersion": self.d.metadata.resource_version, "annotations": {annotations::REVISION: revision}}});
        self.d = self.api().patch(self.name(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        Ok(())
    }

    async fn update_set(&mut self, rs: ReplicaSet) -> Result<(), Error> {
        let name = arith::rs_name(&rs).to_string();
        let updated = self.sets_api().replace(&name, &PostParams::default(), &rs).await?;
        self.put(updated);
        Ok(())
    }

    /// Find the new set and the old ones, bringing the new set's
    /// annotations and the deployment's revision up to date; create the
    /// new set when `create` and there is none.
    pub async fn sets_and_sync_revision(&mut self, create: bool) -> Result<Split, Error> {
        let split = self.split();
        let new_revision = (annotations::max_revision(self.refs(&split.old)) + 1).to_string();
        match split.new.clone() {
            Some(name) => {
                self.sync_existing_new(&name, &new_revision).await?;
                Ok(split)
            }
            None if !create => Ok(split),
            None => {
                let name = self.create_new(&split.old, &new_revision).await?;
                Ok(Split { new: Some(name), old: split.old })
            }
        }
    }

    async fn sync_existing_new(&mut self, name: &str, new_revision: &str) -> Result<(), Error> {
        let Some(mut copy) = self.find(name).cloned() else { return Ok(()) };
        let annotations_updated = annotations::set_new_replica_set_annotations(&self.d, &mut copy, new_revision, true);
        let want_mrs = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        let spec = copy.spec.get_or_insert_with(ReplicaSetSpec::default);
        let mrs_changed = spec.min_ready_seconds.unwrap_or(0) != want_mrs.unwrap_or(0);
        if annotations_updated || mrs_changed {
            spec.min_ready_seconds = want_mrs;
            return self.update_set(copy).await;
        }
        let revision = copy.metadata.annotations.as_ref().and_then(|a| a.get(annotations::REVISION)).cloned().unwrap_or_default();
        self.write_revision(&revision).await?;
        let mut status = self.status();
        if st::get(&status, st::PROGRESSING).is_none() {
            let c = condition(st::PROGRESSING, "True", st::FOUND_NEW_RS_REASON, format!("Found new replica set {}", go_quote(name)), &self.now_time());
            st::set(&mut status, c);
            self.write_status(status).await?;
        }
        Ok(())
    }

    async fn create_new(&mut self, old: &[String], new_revision: &str) -> Result<String, Error> {
        let d = self.d.clone();
        let mut template = self.template();
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let pod_hash = hash::compute(&template, collision);
        template.metadata.get_or_insert_with(ObjectMeta::default).labels.get_or_insert_with(Default::default).insert(hash::POD_TEMPLATE_HASH.into(), pod_hash.clone());
        let mut selector = d.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        selector.match_labels.get_or_insert_with(Default::default).insert(hash::POD_TEMPLATE_HASH.into(), pod_hash.clone());
        let name = format!("{}-{pod_hash}", self.name());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: d.metadata.namespace.clone(),
                owner_references: Some(vec![util::controller_ref(&d)]),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: d.spec.as_ref().and_then(|s| s.min_ready_seconds),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let mut all = self.refs(old);
        all.push(&rs);
        let replicas = arith::new_rs_new_replicas(&d, &all, &rs);
        if let Some(spec) = rs.spec.as_mut() {
            spec.replicas = Some(replicas);
        }
        annotations::set_new_replica_set_annotations(&d, &mut rs, new_revision, false);
        let (created, already_existed) = match self.sets_api().create(&PostParams::default(), &rs).await {
            Ok(created) => (created, false),
            Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {
                let existing = self.sets_api().get(&name).await?;
                let same = existing.spec.as_ref().and_then(|s| s.template.as_ref()).map(|t| hash::equal_ignore_hash(t, &self.template())).unwrap_or(false);
                if !(util::is_controlled_by(&existing.metadata, d.metadata.uid.as_deref().unwrap_or("")) && same) {
                    let mut status = self.status();
                    status.collision_count = Some(status.collision_count.unwrap_or(0).saturating_add(1));
                    self.write_status(status).await?;
                    tracing::info!(deployment = self.name(), namespace = self.ns(), replicaset = name, "hash collision; bumped collisionCount");
                    return Err(Error::Other(format!("replica set {name} exists with another template")));
                }
                (existing, true)
            }
            Err(e) => {
                let msg = format!("Failed to create new replica set {}: {}", go_quote(&name), message(&e));
                if st::progress_deadline(&d).is_some() {
                    let mut status = self.status();
                    st::set(&mut status, condition(st::PROGRESSING, "False", st::FAILED_RS_CREATE_REASON, msg.clone(), &self.now_time()));
                    self.write_status(status).await?;
                }
                self.event(EventType::Warning, "FailedCreate", &msg).await;
                return Err(e.into());
            }
        };
        self.put(created);
        if !already_existed {
            tracing::info!(deployment = self.name(), namespace = self.ns(), replicaset = name, replicas, "created new replica set");
            if replicas > 0 {
                self.event(EventType::Normal, "ScalingReplicaSet", &format!("Scaled up replica set {name} from 0 to {replicas}")).await;
            }
        }
        self.write_revision(new_revision).await?;
        if !already_existed && st::progress_deadline(&self.d).is_some() {
            let mut status = self.status();
            st::set(&mut status, condition(st::PROGRESSING, "True", st::NEW_RS_CREATED_REASON, format!("Created new replica set {}", go_quote(&name)), &self.now_time()));
            self.write_status(status).await?;
        }
        Ok(name)
    }

    /// Scale `name` to `size` (and refresh its replica annotations);
    /// true when its size changed.
    pub async fn scale_set(&mut self, name: &str, size: i32) -> Result<bool, Error> {
        let Some(rs) = self.find(name).cloned() else { return Ok(false) };
        let old = arith::rs_replicas(&rs);
        let desired = arith::replicas(&self.d);
        let max = desired + arith::max_surge(&self.d);
        let size_changed = old != size;
        if !size_changed && !annotations::replicas_annotations_need_update(&rs, desired, max) {
            return Ok(false);
        }
        let mut copy = rs;
        copy.spec.get_or_insert_with(ReplicaSetSpec::default).replicas = Some(size);
        annotations::set_replicas_annotations(&mut copy, desired, max);
        self.update_set(copy).await?;
        if size_changed {
            let op = if old < size { "up" } else { "down" };
            tracing::info!(deployment = self.name(), namespace = self.ns(), replicaset = name, from = old, to = size, "scaled replica set");
            self.event(EventType::Normal, "ScalingReplicaSet", &format!("Scaled {op} replica set {name} from {old} to {size}")).await;
        }
        Ok(size_changed)
    }

    /// Scale `name` to `size` when it has another size.
    pub async fn scale_set_if_needed(&mut self, name: &str, size: i32) -> Result<bool, Error> {
        match self.find(name) {
            Some(rs) if arith::rs_replicas(rs) != size => self.scale_set(name, size).await,
            _ => Ok(false),
        }
    }

    /// Resize the sets after the deployment's replicas changed.
    pub async fn scale(&mut self, split: &Split) -> Result<(), Error> {
        let want = arith::replicas(&self.d);
        let old = self.refs(&split.old);
        let new = self.new_set(split);
        if let Some(target) = arith::find_active_or_latest(new, &old) {
            let name = arith::rs_name(target).to_string();
            self.scale_set_if_needed(&name, want).await?;
            return Ok(());
        }
        if arith::is_saturated(&self.d, new) {
            let names: Vec<String> = arith::active(old).iter().map(|r| arith::rs_name(r).to_string()).collect();
            for n in names {
                self.scale_set_if_needed(&n, 0).await?;
            }
            return Ok(());
        }
        if arith::is_rolling(&self.d) {
            let plan = arith::proportional_plan(&self.d, new, &old);
            for (name, size) in plan {
                self.scale_set(&name, size).await?;
            }
        }
        Ok(())
    }

    /// Delete the oldest old sets without pods beyond revisionHistoryLimit.
    pub async fn cleanup(&mut self, split: &Split) -> Result<(), Error> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else { return Ok(()) };
        let mut alive: Vec<&ReplicaSet> = self.refs(&split.old).into_iter().filter(|r| r.metadata.deletion_timestamp.is_none()).collect();
        let extra = alive.len() as i64 - i64::from(limit);
        if extra <= 0 {
            return Ok(());
        }
        alive.sort_by(|a, b| annotations::revision(a).cmp(&annotations::revision(b)).then_with(|| arith::by_creation(a, b)));
        let doomed: Vec<String> = alive
            .iter()
            .take(usize::try_from(extra).unwrap_or(0))
            .filter(|r| {
                let status = r.status.clone().unwrap_or_default();
                status.replicas == 0 && arith::rs_replicas(r) == 0 && r.metadata.generation.unwrap_or(0) <= status.observed_generation.unwrap_or(0)
            })
            .map(|r| arith::rs_name(r).to_string())
            .collect();
        for name in doomed {
            tracing::info!(deployment = self.name(), namespace = self.ns(), replicaset = name, "deleting old replica set beyond revisionHistoryLimit");
            match self.sets_api().delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Write the counts and Available condition when they changed.
    pub async fn sync_status(&mut self, split: &Split) -> Result<(), Error> {
        let now = self.now_time();
        let status = st::calculate(&self.d, &self.all(split), self.new_set(split), &now);
        if self.d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        self.write_status(status).await
    }

    /// Like [`Sync::sync_status`], and Progressing (with the deadline) and
    /// ReplicaFailure besides.
    pub async fn sync_rollout_status(&mut self, split: &Split) -> Result<(), Error> {
        let now = self.now_time();
        let new = self.new_set(split);
        let mut status = st::calculate(&self.d, &self.all(split), new, &now);
        let deadline = st::progress_deadline(&self.d);
        if deadline.is_none() {
            st::remove(&mut status, st::PROGRESSING);
        }
        let current = self.d.status.as_ref().and_then(|s| st::get(s, st::PROGRESSING)).cloned();
        let is_complete = status.replicas == status.updated_replicas && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(st::NEW_RS_AVAILABLE_REASON);
        let subject = |what: &str| match new {
            Some(n) => format!("ReplicaSet {} {what}", go_quote(arith::rs_name(n))),
            None => format!("Deployment {} {what}", go_quote(self.name())),
        };
        if deadline.is_some() && !is_complete {
            if st::complete(&self.d, &status) {
                st::set(&mut status, condition(st::PROGRESSING, "True", st::NEW_RS_AVAILABLE_REASON, subject("has successfully progressed."), &now));
            } else if st::progressing(&self.d, &status) {
                let mut c = condition(st::PROGRESSING, "True", st::RS_UPDATED_REASON, subject("is progressing."), &now);
                if let Some(cur) = &current {
                    if cur.status == "True" {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    st::remove(&mut status, st::PROGRESSING);
                }
                st::set(&mut status, c);
            } else if st::timed_out(&self.d, &status, self.now) {
                st::set(&mut status, condition(st::PROGRESSING, "False", st::TIMED_OUT_REASON, subject("has timed out progressing."), &now));
            }
        }
        match replica_failure(new, &self.all(split)) {
            Some(c) => st::set(&mut status, c),
            None => st::remove(&mut status, st::REPLICA_FAILURE),
        }
        if self.d.status.as_ref() == Some(&status) {
            self.requeue = st::requeue_stuck(&self.d, &status, self.now).map(|d| self.c.ctx.clock.max_sleep(d));
            return Ok(());
        }
        self.write_status(status).await
    }

    /// Set or clear Progressing for a paused or resumed deployment.
    pub async fn check_paused_conditions(&mut self) -> Result<(), Error> {
        if st::progress_deadline(&self.d).is_none() {
            return Ok(());
        }
        let mut status = self.status();
        let reason = st::get(&status, st::PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(st::TIMED_OUT_REASON) {
            return Ok(());
        }
        let paused_shown = reason.as_deref() == Some(st::PAUSED_REASON);
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        let now = self.now_time();
        if paused && !paused_shown {
            st::set(&mut status, condition(st::PROGRESSING, "Unknown", st::PAUSED_REASON, "Deployment is paused".into(), &now));
        } else if !paused && paused_shown {
            st::set(&mut status, condition(st::PROGRESSING, "Unknown", st::RESUMED_REASON, "Deployment is resumed".into(), &now));
        } else {
            return Ok(());
        }
        self.write_status(status).await
    }

    /// Any active set's desired-replicas annotation differs from the
    /// deployment's replicas.
    pub async fn is_scaling_event(&mut self) -> Result<bool, Error> {
        let split = self.sets_and_sync_revision(false).await?;
        let want = arith::replicas(&self.d);
        Ok(arith::active(self.all(&split)).iter().any(|r| annotations::desired_replicas(r).map(|n| n != want).unwrap_or(false)))
    }

    /// Pods of old sets that have not finished (terminating ones included).
    pub fn old_pods_running(&self, split: &Split) -> bool {
        let old_replicas: i32 = self.refs(&split.old).iter().filter_map(|r| r.status.as_ref()).map(|s| s.replicas).sum();
        if old_replicas > 0 {
            return true;
        }
        let new_uid = self.new_set(split).and_then(|r| r.metadata.uid.clone());
        self.pods
            .iter()
            .filter(|(uid, _)| Some(*uid) != new_uid.as_ref())
            .any(|(_, pods)| pods.iter().any(|p| !matches!(util::pod_phase(p), "Failed" | "Succeeded")))
    }
}

/// The ReplicaFailure of the new set (or else of an old one) as a
/// deployment condition.
fn replica_failure(new: Option<&ReplicaSet>, all: &[&ReplicaSet]) -> Option<DeploymentCondition> {
    new.into_iter().chain(all.iter().copied()).find_map(|rs| {
        let c = rs.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == st::REPLICA_FAILURE)?;
        Some(DeploymentCondition {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            last_update_time: c.last_transition_time.clone(),
            last_transition_time: c.last_transition_time.clone(),
        })
    })
}
