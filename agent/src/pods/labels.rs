//! The CRI labels and annotations the agent shares (the kubelet's names),
//! and reading them back from runtime objects.

use k8s_openapi::api::core::v1::Pod;
use std::collections::HashMap;

pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
pub const TERMINATION_MESSAGE_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";
pub const GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";

/// The three pod labels every sandbox and container carries.
pub fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let m = &pod.metadata;
    HashMap::from([
        (POD_NAME.to_string(), m.name.clone().unwrap_or_default()),
        (POD_NAMESPACE.to_string(), m.namespace.clone().unwrap_or_else(|| "default".into())),
        (POD_UID.to_string(), m.uid.clone().unwrap_or_default()),
    ])
}

pub fn restart_count(annotations: &HashMap<String, String>) -> i32 {
    annotations.get(RESTART_COUNT).and_then(|v| v.parse().ok()).unwrap_or(0)
}
