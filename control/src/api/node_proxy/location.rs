//! Where a streaming request goes: which container of the pod, which node,
//! and the kubelet address and port of that node. Pure decisions on the
//! stored objects (JSON), with the messages upstream's API server gives.

use crate::api::status::ApiError;
use serde_json::Value;

/// Names of every container of the pod: regular, init, ephemeral.
fn container_names(pod: &Value) -> Vec<String> {
    let mut names = Vec::new();
    for field in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(list) = pod.pointer(&format!("/spec/{field}")).and_then(Value::as_array) {
            names.extend(list.iter().filter_map(|c| c.get("name").and_then(Value::as_str)).map(str::to_string));
        }
    }
    names
}

/// The container a log/exec/attach request is about: the one asked for (it
/// must exist), or the pod's only regular container.
pub fn container(pod: &Value, pod_name: &str, requested: Option<&str>) -> Result<String, ApiError> {
    match requested.filter(|c| !c.is_empty()) {
        Some(c) => {
            if container_names(pod).iter().any(|n| n == c) {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!("container {c} is not valid for pod {pod_name}")))
            }
        }
        None => {
            let regular = pod.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
            match regular.as_slice() {
                [only] => Ok(only.get("name").and_then(Value::as_str).unwrap_or("").to_string()),
                _ => Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    container_names(pod).join(" ")
                ))),
            }
        }
    }
}

/// The node the pod is bound to, if any.
pub fn node_name(pod: &Value) -> Option<&str> {
    pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty())
}

/// Upstream's kubelet port when a node does not report one.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;

/// `host:port` of a node's kubelet: the first InternalIP, else ExternalIP,
/// else Hostname (the order k3s configures), and the port from
/// `status.daemonEndpoints.kubeletEndpoint.Port`.
pub fn kubelet_endpoint(node: &Value) -> Result<(String, u16), ApiError> {
    let addresses = node.pointer("/status/addresses").and_then(Value::as_array).cloned().unwrap_or_default();
    let find = |kind: &str| {
        addresses
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str) == Some(kind))
            .and_then(|a| a.get("address").and_then(Value::as_str))
            .filter(|a| !a.is_empty())
            .map(str::to_string)
    };
    let host = find("InternalIP").or_else(|| find("ExternalIP")).or_else(|| find("Hostname"));
    let Some(host) = host else {
        let known: Vec<String> = addresses
            .iter()
            .map(|a| format!("{}={}", a.get("type").and_then(Value::as_str).unwrap_or(""), a.get("address").and_then(Value::as_str).unwrap_or("")))
            .collect();
        return Err(ApiError::bad_request(format!(
            "no preferred addresses found; known addresses: [{}]",
            known.join(" ")
        )));
    };
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0 && *p <= u16::MAX as u64)
        .map(|p| p as u16)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok((host, port))
}

/// `host:port`, with IPv6 literals bracketed.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "init"}]}})
    }

    #[test]
    fn container_choice_follows_upstream() {
        let one = json!({"spec": {"containers": [{"name": "web"}]}});
        assert_eq!(container(&one, "p", None).unwrap(), "web");
        assert_eq!(container(&one, "p", Some("")).unwrap(), "web");
        assert_eq!(container(&pod(), "p", Some("init")).unwrap(), "init");
        let e = container(&pod(), "p", None).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (400, "a container name must be specified for pod p, choose one of: [a b init]"));
        let e = container(&one, "p", Some("x")).unwrap_err();
        assert_eq!(e.message, "container x is not valid for pod p");
    }

    #[test]
    fn kubelet_endpoint_prefers_internal_ip_and_reported_port() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10251}}}});
        assert_eq!(kubelet_endpoint(&node).unwrap(), ("10.0.0.5".to_string(), 10251));
        let bare = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}]}});
        assert_eq!(kubelet_endpoint(&bare).unwrap(), ("n1".to_string(), 10250));
        assert_eq!(kubelet_endpoint(&json!({})).unwrap_err().code, 400);
        assert_eq!(authority("::1", 1), "[::1]:1");
        assert_eq!(authority("10.0.0.5", 2), "10.0.0.5:2");
    }

    #[test]
    fn node_name_ignores_empty() {
        assert_eq!(node_name(&json!({"spec": {"nodeName": ""}})), None);
        assert_eq!(node_name(&json!({"spec": {"nodeName": "n"}})), Some("n"));
    }
}
