//! From a probe or hook in the pod spec to a concrete action: which
//! container, which host and port (named container ports resolved), which
//! handler. Shared by the probe loops and the lifecycle hooks.

use super::worker::{Outcome, Prober};
use super::{exec, grpc, http, tcp, ProbeTarget};
use crate::context::Context;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::sync::Arc;
use std::time::Duration;

/// The container named `name` in the pod's spec and its event field path
/// (`spec.containers{name}` or `spec.initContainers{name}`).
pub fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<(&'a Container, String)> {
    let spec = pod.spec.as_ref()?;
    if let Some(c) = spec.containers.iter().find(|c| c.name == name) {
        return Some((c, format!("spec.containers{{{name}}}")));
    }
    let c = spec.init_containers.iter().flatten().find(|c| c.name == name)?;
    Some((c, format!("spec.initContainers{{{name}}}")))
}

/// `namespace/name` for logs.
pub fn pod_name(pod: &Pod) -> String {
    format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or("default"), pod.metadata.name.as_deref().unwrap_or_default())
}

/// A port by number or by the name of one of the container's ports (a
/// numeric string is taken as a number), as upstream resolves it.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let n: i64 = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => {
            let named = container.ports.iter().flatten().find(|p| p.name.as_deref() == Some(name.as_str()));
            match (named, name.parse::<i64>()) {
                (Some(p), _) => i64::from(p.container_port),
                (None, Ok(n)) => n,
                (None, Err(_)) => return Err(format!("couldn't find port: {name} in container {:?}", container.name)),
            }
        }
    };
    u16::try_from(n).ok().filter(|p| *p > 0).ok_or_else(|| format!("invalid port number: {n}"))
}

/// The host network probes and hooks connect to when the handler names
/// none: the pod IP, or loopback for a hostNetwork pod without one.
pub fn default_host(target: &ProbeTarget) -> Result<String, String> {
    if let Some(ip) = target.pod_ip {
        return Ok(ip.to_string());
    }
    let host_network = target.pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
    if host_network {
        return Ok("127.0.0.1".into());
    }
    Err(format!("pod {} has no IP address yet", pod_name(&target.pod)))
}

/// The GET an httpGet handler describes (port 0 means 80, as for hooks).
pub fn http_get(
    target: &ProbeTarget,
    container: &Container,
    action: &HTTPGetAction,
    user_agent: &'static str,
) -> Result<http::Get, String> {
    let host = match action.host.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => h.to_string(),
        None => default_host(target)?,
    };
    let port = match &action.port {
        IntOrString::Int(0) => 80,
        p => resolve_port(p, container)?,
    };
    let https = match action.scheme.as_deref().unwrap_or("HTTP") {
        s if s.eq_ignore_ascii_case("HTTP") => false,
        s if s.eq_ignore_ascii_case("HTTPS") => true,
        other => return Err(format!("unsupported scheme {other:?}")),
    };
    let headers = action.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect();
    Ok(http::Get { url: http::Url::new(https, &host, port, action.path.as_deref().unwrap_or("")), headers, user_agent })
}

/// Carries out one probe of the pod spec against a real container.
pub struct RealProber {
    ctx: Arc<Context>,
    target: Arc<ProbeTarget>,
    container: Container,
    probe: Probe,
}

impl RealProber {
    pub fn new(ctx: Arc<Context>, target: Arc<ProbeTarget>, container: Container, probe: Probe) -> RealProber {
        RealProber { ctx, target, container, probe }
    }
}

impl Prober for RealProber {
    async fn probe(&self, timeout: Duration) -> Outcome {
        let p = &self.probe;
        if let Some(e) = &p.exec {
            let cmd = e.command.clone().unwrap_or_default();
            return exec::probe(&self.ctx, &self.target.container_id, &cmd, timeout).await;
        }
        if let Some(h) = &p.http_get {
            return match http_get(&self.target, &self.container, h, http::PROBE_USER_AGENT) {
                Ok(get) => http::probe(&get, timeout).await,
                Err(e) => Outcome::Error(e),
            };
        }
        if let Some(t) = &p.tcp_socket {
            let host = match t.host.as_deref().filter(|h| !h.is_empty()) {
                Some(h) => Ok(h.to_string()),
                None => default_host(&self.target),
            };
            return match (host, resolve_port(&t.port, &self.container)) {
                (Ok(host), Ok(port)) => tcp::probe(&host, port, timeout).await,
                (Err(e), _) | (_, Err(e)) => Outcome::Error(e),
            };
        }
        if let Some(g) = &p.grpc {
            let port = resolve_port(&IntOrString::Int(g.port), &self.container);
            return match (default_host(&self.target), port) {
                (Ok(host), Ok(port)) => grpc::probe(&host, port, g.service.as_deref().unwrap_or(""), timeout).await,
                (Err(e), _) | (_, Err(e)) => Outcome::Error(e),
            };
        }
        Outcome::Error("missing probe handler".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, HTTPHeader, PodSpec};

    fn container() -> Container {
        Container {
            name: "web".into(),
            ports: Some(vec![
                ContainerPort { name: Some("http".into()), container_port: 8080, ..Default::default() },
                ContainerPort { name: Some("metrics".into()), container_port: 9090, ..Default::default() },
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn ports_resolve_by_number_and_name() {
        let c = container();
        assert_eq!(resolve_port(&IntOrString::Int(80), &c), Ok(80));
        assert_eq!(resolve_port(&IntOrString::String("http".into()), &c), Ok(8080));
        assert_eq!(resolve_port(&IntOrString::String("metrics".into()), &c), Ok(9090));
        assert_eq!(resolve_port(&IntOrString::String("8081".into()), &c), Ok(8081));
        assert_eq!(resolve_port(&IntOrString::String("grpc".into()), &c), Err("couldn't find port: grpc in container \"web\"".into()));
        assert_eq!(resolve_port(&IntOrString::Int(70000), &c), Err("invalid port number: 70000".into()));
        assert_eq!(resolve_port(&IntOrString::Int(-1), &c), Err("invalid port number: -1".into()));
    }

    fn target(pod_ip: Option<&str>, host_network: bool) -> ProbeTarget {
        let pod = Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![container()],
                init_containers: Some(vec![Container { name: "side".into(), ..Default::default() }]),
                host_network: Some(host_network),
                ..Default::default()
            }),
            ..Default::default()
        };
        ProbeTarget {
            pod: Arc::new(pod),
            container_name: "web".into(),
            container_id: "abc".into(),
            pod_ip: pod_ip.map(|s| s.parse().expect("test")),
            started_at: std::time::Instant::now(),
        }
    }

    #[test]
    fn hosts_default_to_the_pod_ip() {
        assert_eq!(default_host(&target(Some("10.42.0.7"), false)), Ok("10.42.0.7".into()));
        assert_eq!(default_host(&target(None, true)), Ok("127.0.0.1".into()));
        assert_eq!(default_host(&target(None, false)), Err("pod ns/p has no IP address yet".into()));
    }

    #[test]
    fn containers_are_found_with_their_field_path() {
        let t = target(None, false);
        assert_eq!(find_container(&t.pod, "web").map(|(c, p)| (c.name.clone(), p)), Some(("web".into(), "spec.containers{web}".into())));
        assert_eq!(find_container(&t.pod, "side").map(|(_, p)| p), Some("spec.initContainers{side}".into()));
        assert!(find_container(&t.pod, "nope").is_none());
    }

    #[test]
    fn http_get_actions_build_urls() {
        let t = target(Some("10.42.0.7"), false);
        let action = HTTPGetAction {
            path: Some("/healthz".into()),
            port: IntOrString::String("http".into()),
            scheme: Some("HTTPS".into()),
            http_headers: Some(vec![HTTPHeader { name: "X-A".into(), value: "b".into() }]),
            ..Default::default()
        };
        let get = http_get(&t, &container(), &action, http::PROBE_USER_AGENT).expect("test");
        assert_eq!(get.url.to_string(), "https://10.42.0.7:8080/healthz");
        assert_eq!(get.headers, vec![("X-A".to_string(), "b".to_string())]);
        let other = HTTPGetAction { host: Some("example.test".into()), port: IntOrString::Int(0), ..Default::default() };
        assert_eq!(http_get(&t, &container(), &other, http::HOOK_USER_AGENT).expect("test").url.to_string(), "http://example.test:80");
        let bad = HTTPGetAction { scheme: Some("FTP".into()), port: IntOrString::Int(1), ..Default::default() };
        assert!(http_get(&t, &container(), &bad, http::PROBE_USER_AGENT).is_err());
    }
}
