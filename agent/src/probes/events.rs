//! The agent's event recorder: core/v1 Events about pods (and their
//! containers) from `kubelet` on this host, as upstream's recorder writes
//! them. A repeat of the same reason and message on the same object bumps
//! `count` and `lastTimestamp` of the Event already written instead of
//! writing a new one. Best effort: failures are logged, never returned;
//! writes happen in the background so a slow API never stalls a probe.

use super::worker::EventSink;
use crate::context::Context;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// What identifies repeats: host, object uid, field path, type, reason, message.
type Key = (String, String, String, &'static str, String, String);
/// Key -> (namespace, event name, count).
type Seen = HashMap<Key, (String, String, i32)>;

const REMEMBERED: usize = 4096;

/// Process-wide, so repeats from any part of the agent aggregate (upstream
/// keeps one cache per kubelet). The key includes the host, so several
/// agents in one process do not mix.
fn seen() -> &'static tokio::sync::Mutex<Seen> {
    static SEEN: OnceLock<tokio::sync::Mutex<Seen>> = OnceLock::new();
    SEEN.get_or_init(Default::default)
}

/// The reference to a pod, or to one of its containers with `field_path`
/// such as `spec.containers{web}`.
pub fn pod_reference(pod: &Pod, field_path: Option<&str>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: field_path.map(str::to_string),
    }
}

/// Records an event about `pod` (its container when `field_path` is set)
/// in the background.
pub fn record(ctx: &Arc<Context>, pod: &Pod, field_path: Option<&str>, kind: EventType, reason: &str, message: &str) {
    let (ctx, reference) = (ctx.clone(), pod_reference(pod, field_path));
    let (reason, message) = (reason.to_string(), message.to_string());
    tokio::spawn(async move { write(&ctx, reference, kind, &reason, &message).await });
}

/// Records an event and waits until it is written (or failed).
pub async fn write(ctx: &Context, reference: ObjectReference, kind: EventType, reason: &str, message: &str) {
    let host = ctx.cfg.node_name.clone();
    let ns = reference.namespace.clone().unwrap_or_else(|| "default".into());
    let key: Key = (
        host.clone(),
        reference.uid.clone().unwrap_or_else(|| format!("{ns}/{}", reference.name.as_deref().unwrap_or_default())),
        reference.field_path.clone().unwrap_or_default(),
        kind.as_str(),
        reason.to_string(),
        message.to_string(),
    );
    let now = Time(jiff::Timestamp::now());
    // Held across the write so concurrent repeats count up instead of
    // racing to create twins.
    let mut seen = seen().lock().await;
    if let Some((ens, name, count)) = seen.get(&key).cloned() {
        let patch = serde_json::json!({"count": count + 1, "lastTimestamp": now});
        let api: kube::Api<Event> = kube::Api::namespaced(ctx.client.clone(), &ens);
        match bounded(api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))).await {
            Ok(_) => {
                seen.insert(key, (ens, name, count + 1));
                return;
            }
            Err(e) => tracing::debug!(event = name, error = %e, "event gone; writing a new one"),
        }
    }
    let name = format!("{}.{:x}", reference.name.as_deref().unwrap_or_default(), now.0.as_nanosecond());
    let event = Event {
        metadata: ObjectMeta { name: Some(name.clone()), namespace: Some(ns.clone()), ..Default::default() },
        involved_object: reference,
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        type_: Some(kind.as_str().to_string()),
        source: Some(EventSource { component: Some("kubelet".into()), host: Some(host.clone()) }),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now.clone()),
        event_time: None::<MicroTime>,
        count: Some(1),
        reporting_component: Some("kubelet".into()),
        reporting_instance: Some(host),
        ..Default::default()
    };
    let api: kube::Api<Event> = kube::Api::namespaced(ctx.client.clone(), &ns);
    match bounded(api.create(&PostParams::default(), &event)).await {
        Ok(_) => {
            if seen.len() >= REMEMBERED {
                seen.clear();
            }
            seen.insert(key, (ns, name, 1));
        }
        Err(e) => tracing::warn!(namespace = ns, reason, error = %e, "cannot record event"),
    }
}

/// An API call bounded in time, so a hung API server cannot hold the
/// recorder's lock for long.
async fn bounded<T>(call: impl std::future::Future<Output = Result<T, kube::Error>>) -> Result<T, String> {
    match tokio::time::timeout(std::time::Duration::from_secs(10), call).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("no answer from the API server within 10s".into()),
    }
}

/// The probe loops' events about one container.
pub struct PodEvents {
    ctx: Arc<Context>,
    pod: Arc<Pod>,
    field_path: Option<String>,
}

impl PodEvents {
    pub fn new(ctx: Arc<Context>, pod: Arc<Pod>, field_path: Option<String>) -> PodEvents {
        PodEvents { ctx, pod, field_path }
    }
}

impl EventSink for PodEvents {
    fn warning(&self, reason: &str, message: String) {
        record(&self.ctx, &self.pod, self.field_path.as_deref(), EventType::Warning, reason, &message);
    }
}
