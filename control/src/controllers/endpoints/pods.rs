//! Which pods back a Service and how, shared by the Endpoints and
//! EndpointSlice controllers (upstream's `endpointutil`): selector match,
//! whether a pod belongs in endpoints, its IPv4 address, named target
//! ports resolved against container ports, hostnames for subdomains, and
//! the last-change trigger time.

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The annotation with the time of the last change that led to an update.
pub const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// Label on endpoints of headless services.
pub const HEADLESS: &str = "service.kubernetes.io/headless";

/// The Service's selector when it has a non-empty one.
pub fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec.as_ref()?.selector.as_ref().filter(|s| !s.is_empty())
}

pub fn matches(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The pods in the Service's namespace its selector picks.
pub fn selected(svc: &Service, pods: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    let Some(sel) = selector(svc) else { return Vec::new() };
    let ns = svc.metadata.namespace.as_deref();
    pods.iter().filter(|p| p.metadata.namespace.as_deref() == ns && matches(sel, p)).cloned().collect()
}

/// Keys of the Services among `services` whose selector picks `pod`.
pub fn selecting(pod: &Pod, services: &[Arc<Service>]) -> Vec<super::super::queue::Key> {
    services.iter().filter(|s| selector(s).is_some_and(|sel| matches(sel, pod))).map(|s| super::super::queue::Key::of(s.as_ref())).collect()
}

pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

pub fn publish_not_ready(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false)
}

pub fn ports(svc: &Service) -> &[ServicePort] {
    svc.spec.as_ref().and_then(|s| s.ports.as_deref()).unwrap_or(&[])
}

/// Upstream's `ShouldPodBeInEndpoints`: not finished, has an IP, and (unless
/// terminating pods are wanted) not being deleted.
pub fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if matches!(crate::controllers::util::pod_phase(pod), "Succeeded" | "Failed") {
        return false;
    }
    if ipv4(pod).is_none() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// The pod's IPv4 address.
pub fn ipv4(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let from_list = status.pod_ips.iter().flatten().map(|p| p.ip.as_str());
    from_list
        .chain(status.pod_ip.as_deref())
        .find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        .map(str::to_string)
}

fn protocol(p: Option<&str>) -> &str {
    p.filter(|s| !s.is_empty()).unwrap_or("TCP")
}

/// Upstream's `FindPort`: a numeric target port as is, a named one looked
/// up among the pod's container ports of the same protocol.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            let spec = pod.spec.as_ref()?;
            let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|cp| cp.name.as_deref() == Some(name.as_str()) && protocol(cp.protocol.as_deref()) == protocol(port.protocol.as_deref()))
                .map(|cp| cp.container_port)
        }
    }
}

/// A pod gets its hostname in the endpoints of the Service named by its subdomain.
pub fn hostname(pod: &Pod, svc: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let h = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == svc.metadata.name.as_deref() && pod.metadata.namespace == svc.metadata.namespace).then(|| h.to_string())
}

pub fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

pub fn node_name(pod: &Pod) -> Option<String> {
    pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty())
}

/// When the pod last changed in a way endpoints see: its Ready transition.
fn pod_trigger(pod: &Pod) -> Option<jiff::Timestamp> {
    let ready = pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?;
    ready.last_transition_time.as_ref().map(|t| t.0)
}

/// The latest change among the Service (its creation) and its pods.
pub fn trigger_time(svc: &Service, pods: &[Arc<Pod>]) -> Option<jiff::Timestamp> {
    let created = svc.metadata.creation_timestamp.as_ref().map(|t| t.0);
    pods.iter().filter_map(|p| pod_trigger(p)).chain(created).max()
}

/// As Go's RFC3339Nano.
pub fn format_trigger(t: jiff::Timestamp) -> String {
    t.to_string()
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use serde_json::json;

    pub fn pod(name: &str, labels: serde_json::Value, ip: &str, ready: bool) -> Arc<Pod> {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": labels},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": "2024-05-01T10:00:00Z"}]},
        }))
        .expect("pod");
        Arc::new(p)
    }

    pub fn service(name: &str, spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "creationTimestamp": "2024-05-01T09:00:00Z"},
            "spec": spec,
        }))
        .expect("service")
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn named_target_ports_resolve_against_container_ports() {
        let p = pod("a", json!({"app": "web"}), "10.42.0.5", true);
        let svc = service("web", json!({"selector": {"app": "web"}, "ports": [
            {"name": "a", "port": 80, "targetPort": "http", "protocol": "TCP"},
            {"name": "b", "port": 81, "targetPort": "http", "protocol": "UDP"},
            {"name": "c", "port": 82, "targetPort": 9090}]}));
        let got: Vec<Option<i32>> = ports(&svc).iter().map(|sp| find_port(&p, sp)).collect();
        assert_eq!(got, vec![Some(8080), None, Some(9090)]);
    }

    #[test]
    fn finished_unaddressed_and_terminating_pods_are_left_out() {
        let running = pod("a", json!({}), "10.42.0.5", true);
        assert!(should_be_in_endpoints(&running, false));
        let mut done = (*running).clone();
        done.status.as_mut().expect("status").phase = Some("Succeeded".into());
        assert!(!should_be_in_endpoints(&done, true));
        let mut no_ip = (*running).clone();
        no_ip.status.as_mut().expect("status").pod_ip = None;
        no_ip.status.as_mut().expect("status").pod_ips = None;
        assert!(!should_be_in_endpoints(&no_ip, true));
        let mut going: Pod = (*running).clone();
        going.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        assert!(!should_be_in_endpoints(&going, false));
        assert!(should_be_in_endpoints(&going, true));
    }

    #[test]
    fn selectors_pick_pods_of_the_namespace() {
        let svc = service("web", json!({"selector": {"app": "web"}}));
        let pods = vec![pod("a", json!({"app": "web", "x": "y"}), "10.42.0.5", true), pod("b", json!({"app": "db"}), "10.42.0.6", true)];
        let got: Vec<String> = selected(&svc, &pods).iter().filter_map(|p| p.metadata.name.clone()).collect();
        assert_eq!(got, vec!["a"]);
        assert!(selected(&service("none", json!({})), &pods).is_empty());
    }
}
