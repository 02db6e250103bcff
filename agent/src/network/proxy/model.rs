//! What the proxy programs, computed from Services and EndpointSlices: one
//! entry per service port with its virtual addresses and its ready
//! endpoints. Pure; IPv4 only (the pod and service networks are IPv4).
//! Only the `Cluster` traffic policies are implemented: `Local`
//! external/internal traffic policies are treated as `Cluster`.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn parse(s: Option<&str>) -> Option<Proto> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Proto::Tcp),
            "UDP" => Some(Proto::Udp),
            "SCTP" => Some(Proto::Sctp),
            _ => None,
        }
    }
    /// The nftables name.
    pub fn nft(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServicePort {
    pub namespace: String,
    pub name: String,
    /// The port's name ("" for the single unnamed port).
    pub port_name: String,
    pub protocol: Proto,
    /// ClusterIP (`None` for headless services: nothing to proxy but the
    /// NodePort, which headless services do not have).
    pub cluster_ip: Option<Ipv4Addr>,
    pub external_ips: Vec<Ipv4Addr>,
    pub port: u16,
    pub node_port: Option<u16>,
    /// Ready endpoints (address, target port), sorted, no duplicates.
    pub endpoints: Vec<(Ipv4Addr, u16)>,
}

fn port_u16(p: i32) -> Option<u16> {
    u16::try_from(p).ok().filter(|p| *p != 0)
}

/// The service ports to program, sorted.
pub fn build<'a>(services: impl IntoIterator<Item = &'a Service>, slices: &[&EndpointSlice]) -> Vec<ServicePort> {
    let mut out = Vec::new();
    for svc in services {
        let (Some(ns), Some(name), Some(spec)) = (svc.metadata.namespace.as_deref(), svc.metadata.name.as_deref(), svc.spec.as_ref()) else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let cluster_ip = spec
            .cluster_ips
            .iter()
            .flatten()
            .chain(spec.cluster_ip.iter())
            .find_map(|ip| ip.parse::<Ipv4Addr>().ok());
        let external_ips: Vec<Ipv4Addr> = spec.external_ips.iter().flatten().filter_map(|ip| ip.parse().ok()).collect();
        let mine: Vec<&&EndpointSlice> = slices
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(ns))
            .filter(|s| s.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)).map(String::as_str) == Some(name))
            .filter(|s| s.address_type == "IPv4")
            .collect();
        for p in spec.ports.iter().flatten() {
            let (Some(protocol), Some(port)) = (Proto::parse(p.protocol.as_deref()), port_u16(p.port)) else { continue };
            let port_name = p.name.clone().unwrap_or_default();
            let node_port = p.node_port.and_then(port_u16).filter(|_| matches!(spec.type_.as_deref(), Some("NodePort") | Some("LoadBalancer")));
            if cluster_ip.is_none() && node_port.is_none() {
                continue;
            }
            let mut endpoints = BTreeSet::new();
            for s in &mine {
                let Some(target) = s
                    .ports
                    .iter()
                    .flatten()
                    .find(|sp| sp.name.clone().unwrap_or_default() == port_name && Proto::parse(sp.protocol.as_deref()) == Some(protocol))
                    .and_then(|sp| sp.port.and_then(port_u16))
                else {
                    continue;
                };
                for ep in &s.endpoints {
                    if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                        continue;
                    }
                    for a in &ep.addresses {
                        if let Ok(ip) = a.parse::<Ipv4Addr>() {
                            endpoints.insert((ip, target));
                        }
                    }
                }
            }
            out.push(ServicePort {
                namespace: ns.to_string(),
                name: name.to_string(),
                port_name,
                protocol,
                cluster_ip,
                external_ips: external_ips.clone(),
                port,
                node_port,
                endpoints: endpoints.into_iter().collect(),
            });
        }
    }
    out.sort();
    out
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort as SvcPort, ServiceSpec};
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
    use kube::api::ObjectMeta;

    pub fn service(ns: &str, name: &str, type_: &str, ip: &str, ports: &[(&str, i32, Option<i32>)]) -> Service {
        Service {
            metadata: ObjectMeta { namespace: Some(ns.into()), name: Some(name.into()), ..Default::default() },
            spec: Some(ServiceSpec {
                type_: Some(type_.into()),
                cluster_ip: Some(ip.into()),
                cluster_ips: Some(vec![ip.into()]),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p, np)| SvcPort { name: (!n.is_empty()).then(|| n.to_string()), port: *p, node_port: *np, protocol: Some("TCP".into()), ..Default::default() })
                        .collect(),
                ),
                ..Default::default()
            }),
            status: None,
        }
    }

    pub fn slice(ns: &str, svc: &str, port: (&str, i32), eps: &[(&str, Option<bool>, Option<&str>)]) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(format!("{svc}-abc")),
                labels: Some([(SERVICE_NAME_LABEL.to_string(), svc.to_string())].into()),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: eps
                .iter()
                .map(|(ip, ready, host)| Endpoint {
                    addresses: vec![ip.to_string()],
                    conditions: Some(EndpointConditions { ready: *ready, ..Default::default() }),
                    hostname: host.map(Into::into),
                    ..Default::default()
                })
                .collect(),
            ports: Some(vec![EndpointPort { name: (!port.0.is_empty()).then(|| port.0.to_string()), port: Some(port.1), protocol: Some("TCP".into()), ..Default::default() }]),
        }
    }

    #[test]
    fn ready_endpoints_of_the_matching_port_only() {
        let svcs = [service("default", "web", "NodePort", "10.43.0.20", &[("http", 80, Some(30080))])];
        let s1 = slice("default", "web", ("http", 8080), &[("10.42.0.5", Some(true), None), ("10.42.0.6", None, None), ("10.42.0.7", Some(false), None)]);
        let other_port = slice("default", "web", ("metrics", 9090), &[("10.42.0.8", Some(true), None)]);
        let other_ns = slice("kube-system", "web", ("http", 8080), &[("10.42.0.9", Some(true), None)]);
        let ports = build(svcs.iter(), &[&s1, &other_port, &other_ns]);
        assert_eq!(ports.len(), 1);
        let p = &ports[0];
        assert_eq!(p.cluster_ip, Some(Ipv4Addr::new(10, 43, 0, 20)));
        assert_eq!(p.node_port, Some(30080));
        assert_eq!(p.endpoints, vec![(Ipv4Addr::new(10, 42, 0, 5), 8080), (Ipv4Addr::new(10, 42, 0, 6), 8080)]);
    }

    #[test]
    fn headless_and_external_name_services_are_not_proxied() {
        let svcs = [service("default", "h", "ClusterIP", "None", &[("", 80, None)]), service("default", "x", "ExternalName", "", &[("", 80, None)])];
        assert!(build(svcs.iter(), &[]).is_empty());
        let cip = [service("default", "c", "ClusterIP", "10.43.0.30", &[("", 80, Some(30001))])];
        assert_eq!(build(cip.iter(), &[])[0].node_port, None, "a ClusterIP service has no NodePort");
    }
}
