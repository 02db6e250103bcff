//! The CRI sandbox configuration of a pod: metadata and attempt, hostname,
//! log directory (shared convention), DNS, host port mappings, labels and
//! annotations, cgroup parent by QoS, namespace options and sysctls.
//!
//! Pure: `SandboxInputs` carries what is read from the host.

use super::dns::Resolv;
use super::{labels, qos};
use crate::cri::api;
use k8s_openapi::api::core::v1::{Pod, PodSecurityContext};
use std::collections::HashMap;
use std::path::Path;

/// The pod's name for messages and log directories: `NAMESPACE_NAME_UID`.
pub fn log_dir_name(pod: &Pod) -> String {
    format!(
        "{}_{}_{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or("")
    )
}

fn truncate_hostname(h: &str) -> String {
    const MAX: usize = 63;
    if h.len() <= MAX {
        return h.to_string();
    }
    let mut end = MAX;
    while !h.is_char_boundary(end) {
        end -= 1;
    }
    h[..end].trim_end_matches(['-', '.']).to_string()
}

/// (hostname, domain) as upstream: `spec.hostname` or the pod name, and
/// `SUBDOMAIN.NS.svc.DOMAIN` when a subdomain is set.
pub fn hostname_and_domain(pod: &Pod, cluster_domain: &str) -> (String, Option<String>) {
    let spec = pod.spec.as_ref();
    let name = spec.and_then(|s| s.hostname.clone()).filter(|h| !h.is_empty()).or_else(|| pod.metadata.name.clone()).unwrap_or_default();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let domain = spec.and_then(|s| s.subdomain.as_deref()).filter(|s| !s.is_empty()).map(|sub| format!("{sub}.{ns}.svc.{cluster_domain}"));
    (truncate_hostname(&name), domain)
}

/// The hostname the sandbox gets (none for host-network pods).
pub fn sandbox_hostname(pod: &Pod, cluster_domain: &str) -> String {
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.host_network).unwrap_or(false) {
        return String::new();
    }
    let (host, domain) = hostname_and_domain(pod, cluster_domain);
    match domain {
        Some(d) if spec.and_then(|s| s.set_hostname_as_fqdn).unwrap_or(false) => format!("{host}.{d}"),
        _ => host,
    }
}

pub fn protocol(p: Option<&str>) -> i32 {
    match p.unwrap_or("TCP") {
        "UDP" => api::Protocol::Udp as i32,
        "SCTP" => api::Protocol::Sctp as i32,
        _ => api::Protocol::Tcp as i32,
    }
}

/// Namespace options from hostNetwork/hostPID/hostIPC/shareProcessNamespace.
pub fn namespace_options(pod: &Pod) -> api::NamespaceOption {
    let spec = pod.spec.as_ref();
    let flag = |f: fn(&k8s_openapi::api::core::v1::PodSpec) -> Option<bool>| spec.and_then(f).unwrap_or(false);
    let node = api::NamespaceMode::Node as i32;
    let pod_mode = api::NamespaceMode::Pod as i32;
    api::NamespaceOption {
        network: if flag(|s| s.host_network) { node } else { pod_mode },
        pid: if flag(|s| s.host_pid) {
            node
        } else if flag(|s| s.share_process_namespace) {
            pod_mode
        } else {
            api::NamespaceMode::Container as i32
        },
        ipc: if flag(|s| s.host_ipc) { node } else { pod_mode },
        ..Default::default()
    }
}

/// CRI seccomp profile from a pod/container `seccompProfile`; unset is
/// Unconfined (the kubelet's default without `--seccomp-default`).
pub fn seccomp(p: Option<&k8s_openapi::api::core::v1::SeccompProfile>) -> api::SecurityProfile {
    use api::security_profile::ProfileType;
    match p {
        Some(p) if p.type_ == "RuntimeDefault" => api::SecurityProfile { profile_type: ProfileType::RuntimeDefault as i32, localhost_ref: String::new() },
        Some(p) if p.type_ == "Localhost" => api::SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: p.localhost_profile.clone().unwrap_or_default(),
        },
        _ => api::SecurityProfile { profile_type: ProfileType::Unconfined as i32, localhost_ref: String::new() },
    }
}

/// Supplemental groups of a pod: `supplementalGroups` plus `fsGroup`.
pub fn supplemental_groups(psc: Option<&PodSecurityContext>) -> Vec<i64> {
    let mut g: Vec<i64> = psc.and_then(|s| s.supplemental_groups.clone()).unwrap_or_default();
    if let Some(fs) = psc.and_then(|s| s.fs_group) {
        if !g.contains(&fs) {
            g.push(fs);
        }
    }
    g
}

pub struct SandboxInputs<'a> {
    pub logs_dir: &'a Path,
    pub cluster_domain: &'a str,
    pub dns: &'a Resolv,
    pub attempt: u32,
}

/// The sandbox configuration of `pod`.
pub fn config(pod: &Pod, input: &SandboxInputs) -> api::PodSandboxConfig {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let mut labels: HashMap<String, String> = meta.labels.clone().unwrap_or_default().into_iter().collect();
    labels.extend(labels::pod_labels(pod));
    let annotations: HashMap<String, String> = meta.annotations.clone().unwrap_or_default().into_iter().collect();
    let port_mappings = spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| api::PortMapping {
            protocol: protocol(p.protocol.as_deref()),
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let psc = spec.and_then(|s| s.security_context.as_ref());
    let privileged = spec
        .iter()
        .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
        .any(|c| c.security_context.as_ref().and_then(|sc| sc.privileged).unwrap_or(false));
    let sysctls: HashMap<String, String> = psc.and_then(|s| s.sysctls.as_ref()).into_iter().flatten().map(|s| (s.name.clone(), s.value.clone())).collect();
    let uid = meta.uid.clone().unwrap_or_default();
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: meta.name.clone().unwrap_or_default(),
            uid: uid.clone(),
            namespace: meta.namespace.clone().unwrap_or_else(|| "default".into()),
            attempt: input.attempt,
        }),
        hostname: sandbox_hostname(pod, input.cluster_domain),
        log_directory: input.logs_dir.join(log_dir_name(pod)).to_string_lossy().into_owned(),
        dns_config: Some(api::DnsConfig {
            servers: input.dns.servers.clone(),
            searches: input.dns.searches.clone(),
            options: input.dns.options.clone(),
        }),
        port_mappings,
        labels,
        annotations,
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: qos::cgroup_parent(qos::class(pod), &uid),
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                run_as_user: psc.and_then(|s| s.run_as_user).map(|value| api::Int64Value { value }),
                run_as_group: psc.and_then(|s| s.run_as_group).map(|value| api::Int64Value { value }),
                supplemental_groups: supplemental_groups(psc),
                privileged,
                seccomp: Some(seccomp(psc.and_then(|s| s.seccomp_profile.as_ref()))),
                ..Default::default()
            }),
            sysctls,
            ..Default::default()
        }),
        windows: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec, Sysctl};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![
                        ContainerPort { container_port: 80, host_port: Some(8080), protocol: Some("TCP".into()), ..Default::default() },
                        ContainerPort { container_port: 53, protocol: Some("UDP".into()), ..Default::default() },
                    ]),
                    ..Default::default()
                }],
                security_context: Some(PodSecurityContext {
                    sysctls: Some(vec![Sysctl { name: "net.ipv4.ip_unprivileged_port_start".into(), value: "0".into() }]),
                    fs_group: Some(2000),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn sandbox_config() {
        let dns = Resolv { servers: vec!["10.43.0.10".into()], ..Default::default() };
        let cfg = config(&pod(), &SandboxInputs { logs_dir: Path::new("/l"), cluster_domain: "cluster.local", dns: &dns, attempt: 2 });
        let md = cfg.metadata.expect("metadata");
        assert_eq!((md.name.as_str(), md.namespace.as_str(), md.uid.as_str(), md.attempt), ("web", "ns", "u1", 2));
        assert_eq!(cfg.hostname, "web");
        assert_eq!(cfg.log_directory, "/l/ns_web_u1");
        assert_eq!(cfg.labels.get("io.kubernetes.pod.uid").map(String::as_str), Some("u1"));
        assert_eq!(cfg.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(cfg.port_mappings.len(), 1);
        assert_eq!(cfg.port_mappings[0].host_port, 8080);
        let linux = cfg.linux.expect("linux");
        assert_eq!(linux.cgroup_parent, "/kubepods/besteffort/podu1");
        assert_eq!(linux.sysctls.get("net.ipv4.ip_unprivileged_port_start").map(String::as_str), Some("0"));
        let sc = linux.security_context.expect("sc");
        assert_eq!(sc.supplemental_groups, [2000]);
        let ns = sc.namespace_options.expect("ns");
        assert_eq!(ns.network, api::NamespaceMode::Pod as i32);
        assert_eq!(ns.pid, api::NamespaceMode::Container as i32);
    }

    #[test]
    fn hostnames() {
        let mut p = pod();
        if let Some(s) = p.spec.as_mut() {
            s.hostname = Some("h".into());
            s.subdomain = Some("sub".into());
        }
        assert_eq!(hostname_and_domain(&p, "cluster.local"), ("h".into(), Some("sub.ns.svc.cluster.local".into())));
        assert_eq!(sandbox_hostname(&p, "cluster.local"), "h");
        if let Some(s) = p.spec.as_mut() {
            s.set_hostname_as_fqdn = Some(true);
        }
        assert_eq!(sandbox_hostname(&p, "cluster.local"), "h.sub.ns.svc.cluster.local");
        if let Some(s) = p.spec.as_mut() {
            s.host_network = Some(true);
        }
        assert_eq!(sandbox_hostname(&p, "cluster.local"), "");
        let long = format!("{}-{}", "a".repeat(62), "b");
        assert_eq!(truncate_hostname(&long), "a".repeat(62));
    }
}
