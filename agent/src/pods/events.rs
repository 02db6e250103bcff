//! Events the kubelet records about pods (`kubectl describe pod`, `kubectl
//! get events`), as core/v1 Events from component `kubelet` on this host,
//! with the container's field path (`spec.containers{NAME}`). Repeats of
//! the same reason and message bump `count`. Best effort: a failure is
//! logged, never returned.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

type Key = (String, String, String, String);

#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    host: String,
    seen: Arc<Mutex<HashMap<Key, (String, String, i32)>>>,
}

const REMEMBERED: usize = 4096;

/// `spec.containers{NAME}` or `spec.initContainers{NAME}`.
pub fn field_path(pod: &Pod, container: &str) -> String {
    let init = pod.spec.as_ref().and_then(|s| s.init_containers.as_ref()).is_some_and(|l| l.iter().any(|c| c.name == container));
    if init {
        format!("spec.initContainers{{{container}}}")
    } else {
        format!("spec.containers{{{container}}}")
    }
}

impl Recorder {
    pub fn new(client: kube::Client, host: &str) -> Recorder {
        Recorder { client, host: host.to_string(), seen: Arc::default() }
    }

    /// An event about `pod` (or one of its containers, by field path).
    pub async fn pod(&self, pod: &Pod, field_path: Option<String>, type_: &str, reason: &str, message: &str) {
        let meta = &pod.metadata;
        let ns = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: meta.name.clone(),
            namespace: Some(ns.clone()),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            field_path: field_path.clone(),
        };
        let key = (meta.uid.clone().unwrap_or_default(), field_path.unwrap_or_default(), reason.to_string(), message.to_string());
        let now = Time(jiff::Timestamp::now());
        let known = self.seen.lock().ok().and_then(|s| s.get(&key).cloned());
        if let Some((ens, name, count)) = known {
            let patch = serde_json::json!({"count": count + 1, "lastTimestamp": now});
            let api: kube::Api<Event> = kube::Api::namespaced(self.client.clone(), &ens);
            if api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.is_ok() {
                if let Ok(mut s) = self.seen.lock() {
                    s.insert(key, (ens, name, count + 1));
                }
                return;
            }
        }
        let name = format!("{}.{:x}", meta.name.clone().unwrap_or_default(), jiff::Timestamp::now().as_nanosecond());
        let event = Event {
            metadata: ObjectMeta { name: Some(name.clone()), namespace: Some(ns.clone()), ..Default::default() },
            involved_object: reference,
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(type_.to_string()),
            source: Some(EventSource { component: Some("kubelet".into()), host: Some(self.host.clone()) }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.host.clone()),
            ..Default::default()
        };
        let api: kube::Api<Event> = kube::Api::namespaced(self.client.clone(), &ns);
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                if let Ok(mut s) = self.seen.lock() {
                    if s.len() >= REMEMBERED {
                        s.clear();
                    }
                    s.insert(key, (ns, name, 1));
                }
            }
            Err(e) => tracing::debug!(namespace = ns, reason, error = %e, "cannot record event"),
        }
    }
}
