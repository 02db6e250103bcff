//! Events about objects (`kubectl describe`, `kubectl get events`), written
//! as core/v1 Events. Repeats of the same reason and message on the same
//! object bump `count` instead of writing a new Event, as upstream's
//! recorder does. Best effort: a failure is logged, never returned.

use super::clock::Clock;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// (object uid, reason, message) -> (event namespace, event name, count)
type Seen = HashMap<(String, String, String), (String, String, i32)>;

#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    clock: Clock,
    seen: Arc<Mutex<Seen>>,
}

const REMEMBERED: usize = 4096;

impl Recorder {
    pub fn new(client: kube::Client, clock: Clock) -> Self {
        Self { client, clock, seen: Arc::default() }
    }

    /// Record an event about `obj` from `component` (e.g. "deployment-controller").
    pub async fn publish<K: kube::Resource<DynamicType = ()>>(&self, obj: &K, component: &str, kind: EventType, reason: &str, message: &str) {
        let meta = obj.meta();
        let reference = ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            field_path: None,
        };
        self.publish_ref(reference, component, kind, reason, message).await;
    }

    pub async fn publish_ref(&self, reference: ObjectReference, component: &str, kind: EventType, reason: &str, message: &str) {
        let ns = reference.namespace.clone().unwrap_or_else(|| "default".into());
        let uid = reference.uid.clone().unwrap_or_else(|| format!("{ns}/{}", reference.name.clone().unwrap_or_default()));
        let id = (uid, reason.to_string(), message.to_string());
        let now = self.clock.now_time();
        let api: kube::Api<Event> = kube::Api::namespaced(self.client.clone(), &ns);
        let known = self.seen.lock().ok().and_then(|s| s.get(&id).cloned());
        if let Some((ens, name, count)) = known {
            let patch = serde_json::json!({"count": count + 1, "lastTimestamp": now});
            match kube::Api::<Event>::namespaced(self.client.clone(), &ens).patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    if let Ok(mut s) = self.seen.lock() {
                        s.insert(id, (ens, name, count + 1));
                    }
                    return;
                }
                Err(e) => tracing::debug!(event = name, error = %e, "event gone; writing a new one"),
            }
        }
        // Named by real time (not the injectable clock, which may stand still
        // in tests), as upstream's recorder names them.
        let name = format!("{}.{:x}", reference.name.clone().unwrap_or_default(), jiff::Timestamp::now().as_nanosecond());
        let event = Event {
            metadata: ObjectMeta { name: Some(name.clone()), namespace: Some(ns.clone()), ..Default::default() },
            involved_object: reference,
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(kind.as_str().to_string()),
            source: Some(EventSource { component: Some(component.to_string()), host: None }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            reporting_component: Some(component.to_string()),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                if let Ok(mut s) = self.seen.lock() {
                    if s.len() >= REMEMBERED {
                        s.clear();
                    }
                    s.insert(id, (ns, name, 1));
                }
            }
            Err(e) => tracing::warn!(namespace = ns, reason, error = %e, "cannot record event"),
        }
    }
}
