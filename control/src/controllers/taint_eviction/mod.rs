//! The taint eviction controller (upstream's NoExecute taint manager):
//! pods bound to a node with a NoExecute taint they do not tolerate are
//! deleted; pods tolerating it for `tolerationSeconds` are deleted once
//! that time has passed, counted from when the taint was added (its
//! `timeAdded`, to the second) or the pod created, whichever is later. Before the delete
//! the pod gets the `DisruptionTarget` condition (reason
//! `DeletionByTaintManager`) and a `TaintManagerEviction` event.
//!
//! Owns: deleting pods because of NoExecute taints. Must not: add or
//! remove taints (the node lifecycle controller does), force-delete pods
//! (the kubelet, or pod GC, finishes them), or touch pods not bound to a
//! node. Deadlines are timers on the pod's key; nothing polls. After a
//! restart the deadlines are the same (they come from the objects).

mod decide;

pub use decide::{tolerates, verdict, Verdict};

use crate::controllers::util::pod_node;
use super::events::EventType;
use super::node_lifecycle::wakeup::Wakeups;
use super::queue::{Key, Queue};
use super::{run_workers, Context, Error, Requeue};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition, Taint};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const COMPONENT: &str = "taint-eviction-controller";

/// (node, taint key, value, effect)
type TaintId = (String, String, String, String);

#[derive(Default)]
struct State {
    /// Pods with an eviction pending, and their node (for the cancel event
    /// and to look at them again when the node changes).
    scheduled: Mutex<HashMap<Key, String>>,
    /// When this process first saw a taint without `timeAdded`.
    first_seen: Mutex<HashMap<TaintId, Timestamp>>,
    wakeups: Wakeups<Key>,
}

fn taint_id(node: &str, t: &Taint) -> TaintId {
    (node.to_string(), t.key.clone(), t.value.clone().unwrap_or_default(), t.effect.clone())
}

fn no_execute_taints(node: &Node) -> Vec<Taint> {
    node.spec.as_ref().and_then(|s| s.taints.as_ref()).map(|t| t.iter().filter(|t| decide::is_no_execute(t)).cloned().collect()).unwrap_or_default()
}

pub fn start(ctx: &Context) {
    let st = Arc::new(State::default());
    let queue = Queue::new();
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    {
        let st = st.clone();
        pods.feed(&ctx.tasks, queue.clone(), move |p| {
            let key = Key::of(p);
            let known = st.scheduled.lock().map(|s| s.contains_key(&key)).unwrap_or(false);
            if pod_node(p).is_some() || known {
                vec![key]
            } else {
                vec![]
            }
        });
    }
    {
        let st = st.clone();
        let pods = pods.clone();
        nodes.feed(&ctx.tasks, queue.clone(), move |n| {
            let name = n.metadata.name.clone().unwrap_or_default();
            let taints = no_execute_taints(n);
            if let Ok(mut seen) = st.first_seen.lock() {
                let live: Vec<TaintId> = taints.iter().map(|t| taint_id(&name, t)).collect();
                seen.retain(|id, _| id.0 != name || live.contains(id));
            }
            let mut keys: Vec<Key> = st
                .scheduled
                .lock()
                .map(|s| s.iter().filter(|(_, node)| **node == name).map(|(k, _)| k.clone()).collect())
                .unwrap_or_default();
            if !taints.is_empty() {
                keys.extend(pods.store.state_filter(|p| pod_node(p) == Some(name.as_str())).iter().map(|p| Key::of(&**p)));
            }
            keys
        });
    }
    let c = ctx.clone();
    run_workers(ctx, "taint-eviction", queue, 2, move |key| {
        let (c, st) = (c.clone(), st.clone());
        async move { reconcile(&c, &st, key).await }
    });
}

impl State {
    fn forget(&self, key: &Key) {
        if let Ok(mut s) = self.scheduled.lock() {
            s.remove(key);
        }
        self.wakeups.forget(key);
    }

    /// When `taint` began to apply to `pod`. `timeAdded` has whole
    /// seconds: the taint is as old as this process saw it, but no older
    /// than the second after (what a restarted controller counts from).
    fn since(&self, node: &str, taint: &Taint, pod: &Pod, now: Timestamp) -> Timestamp {
        let first = match self.first_seen.lock() {
            Ok(mut seen) => *seen.entry(taint_id(node, taint)).or_insert(now),
            Err(_) => now,
        };
        let added = match &taint.time_added {
            Some(t) => first.min(t.0.checked_add(jiff::SignedDuration::from_secs(1)).unwrap_or(t.0)),
            None => first,
        };
        match &pod.metadata.creation_timestamp {
            Some(created) => added.max(created.0),
            None => added,
        }
    }
}

async fn reconcile(ctx: &Context, st: &State, key: Key) -> Result<Requeue, Error> {
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    nodes.ready().await;
    let Some(pod) = pods.get_key(&key) else {
        st.forget(&key);
        return Ok(None);
    };
    let Some(node_name) = pod_node(&pod).map(str::to_string) else {
        st.forget(&key);
        return Ok(None);
    };
    if pod.metadata.deletion_timestamp.is_some() {
        st.forget(&key);
        return Ok(None);
    }
    let Some(node) = nodes.get(None, &node_name) else {
        // A deleted node's pods are pod GC's (upstream's taint manager
        // forgets the node, cancelling nothing).
        st.forget(&key);
        return Ok(None);
    };
    let taints = no_execute_taints(&node);
    let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.clone()).unwrap_or_default();
    let now = ctx.clock.now();
    match verdict(&taints, &tolerations, |t| st.since(&node_name, t, &pod, now), now) {
        Verdict::Keep => {
            let was = st.scheduled.lock().ok().and_then(|mut s| s.remove(&key));
            st.wakeups.forget(&key);
            if was.is_some() {
                tracing::info!(pod = %key, node = node_name, "eviction cancelled");
                ctx.events.publish(&*pod, COMPONENT, EventType::Normal, "TaintManagerEviction", &format!("Cancelling deletion of Pod {key}")).await;
            }
            Ok(None)
        }
        Verdict::EvictAt(at) => {
            if let Ok(mut s) = st.scheduled.lock() {
                s.insert(key.clone(), node_name);
            }
            Ok(st.wakeups.at(&key, at, now, &ctx.clock))
        }
        Verdict::EvictNow => {
            evict(ctx, &pod, &key).await?;
            st.forget(&key);
            Ok(None)
        }
    }
}

/// The condition the taint manager adds before deleting, if not there.
fn with_disruption_condition(pod: &Pod, now: Timestamp) -> Option<Pod> {
    let mut pod = pod.clone();
    let status = pod.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let wanted = PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("DeletionByTaintManager".into()),
        message: Some("Taint manager: deleting due to NoExecute taint".into()),
        last_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now)),
        ..Default::default()
    };
    match conditions.iter_mut().find(|c| c.type_ == "DisruptionTarget") {
        Some(c) if c.status == wanted.status && c.reason == wanted.reason && c.message == wanted.message => return None,
        Some(c) => {
            if c.status == wanted.status {
                let keep = c.last_transition_time.clone();
                *c = PodCondition { last_transition_time: keep, ..wanted };
            } else {
                *c = wanted;
            }
        }
        None => conditions.push(wanted),
    }
    Some(pod)
}

async fn evict(ctx: &Context, pod: &Pod, key: &Key) -> Result<(), Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), key.ns());
    tracing::info!(pod = %key, "deleting pod for a NoExecute taint");
    ctx.events.publish(pod, COMPONENT, EventType::Normal, "TaintManagerEviction", &format!("Marking for deletion Pod {key}")).await;
    if let Some(updated) = with_disruption_condition(pod, ctx.clock.now()) {
        match api.replace_status(&key.name, &PostParams::default(), &updated).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    let dp = DeleteParams {
        preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }),
        ..Default::default()
    };
    match api.delete(&key.name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disruption_condition_is_added_once() {
        let now = Timestamp::from_second(1_700_000_000).expect("time");
        let pod = Pod::default();
        let with = with_disruption_condition(&pod, now).expect("added");
        let conds = with.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].type_, "DisruptionTarget");
        assert_eq!(conds[0].reason.as_deref(), Some("DeletionByTaintManager"));
        assert_eq!(conds[0].message.as_deref(), Some("Taint manager: deleting due to NoExecute taint"));
        assert!(with_disruption_condition(&with, now).is_none());
    }

    #[test]
    fn taints_count_from_the_later_of_added_and_pod_creation() {
        let st = State::default();
        let t0 = Timestamp::from_second(1_700_000_000).expect("time");
        let later = t0 + jiff::SignedDuration::from_secs(100);
        let mut pod = Pod::default();
        pod.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t0));
        let mut taint = Taint { key: "k".into(), effect: "NoExecute".into(), ..Default::default() };
        taint.time_added = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(later));
        // Seen within the second of timeAdded: from when it was seen.
        let ms = jiff::SignedDuration::from_millis(300);
        assert_eq!(st.since("n", &taint, &pod, later + ms), later + ms);
        // Seen long after (a restarted controller): the end of that second.
        let other = Taint { key: "other".into(), ..taint.clone() };
        assert_eq!(st.since("n", &other, &pod, later + jiff::SignedDuration::from_secs(60)), later + jiff::SignedDuration::from_secs(1));
        // Without timeAdded: first seen, remembered.
        taint.key = "plain".into();
        taint.time_added = None;
        let seen = t0 + jiff::SignedDuration::from_secs(50);
        assert_eq!(st.since("n", &taint, &pod, seen), seen);
        assert_eq!(st.since("n", &taint, &pod, later), seen);
        // A pod created after the taint counts from its creation.
        pod.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(later));
        assert_eq!(st.since("n", &taint, &pod, later), later);
    }
}
