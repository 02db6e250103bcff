//! The subsets of a Service's Endpoints (upstream's `RepackSubsets`): each
//! pod address with the ports it serves, grouped so that addresses serving
//! the same ports share a subset; ready pods in `addresses`, the others in
//! `notReadyAddresses` (all in `addresses` with `publishNotReadyAddresses`).

use super::pods;
use crate::controllers::util::is_pod_ready;
use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Pod, Service};
use std::collections::BTreeMap;
use std::sync::Arc;

/// At most this many addresses in one Endpoints object.
pub const MAX_ADDRESSES: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PortKey {
    name: String,
    port: i32,
    protocol: String,
    app_protocol: Option<String>,
}

type AddrKey = (String, String);
/// Addresses (with readiness) serving the same ports, and those ports.
type Group = (Vec<(EndpointAddress, bool)>, Vec<PortKey>);

#[derive(Debug, Default, PartialEq)]
pub struct Desired {
    pub subsets: Vec<EndpointSubset>,
    /// More than [`MAX_ADDRESSES`] addresses: some were left out.
    pub truncated: bool,
}

pub fn desired(svc: &Service, selected: &[Arc<Pod>]) -> Desired {
    let tolerate = pods::publish_not_ready(svc);
    let svc_ports = pods::ports(svc);
    // Each port (None: a headless service without ports) to the addresses serving it.
    let mut by_port: BTreeMap<Option<PortKey>, BTreeMap<AddrKey, (EndpointAddress, bool)>> = BTreeMap::new();
    for pod in selected {
        if !pods::should_be_in_endpoints(pod, tolerate) {
            continue;
        }
        let Some(ip) = pods::ipv4(pod) else { continue };
        let addr = EndpointAddress {
            ip: ip.clone(),
            hostname: pods::hostname(pod, svc),
            node_name: pods::node_name(pod),
            target_ref: Some(pods::target_ref(pod)),
        };
        let key = (ip, pod.metadata.uid.clone().unwrap_or_default());
        let ready = tolerate || is_pod_ready(pod);
        if svc_ports.is_empty() {
            if pods::is_headless(svc) {
                by_port.entry(None).or_default().insert(key, (addr, ready));
            }
            continue;
        }
        for sp in svc_ports {
            let Some(port) = pods::find_port(pod, sp) else { continue };
            let pk = PortKey {
                name: sp.name.clone().unwrap_or_default(),
                port,
                protocol: sp.protocol.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "TCP".into()),
                app_protocol: sp.app_protocol.clone(),
            };
            by_port.entry(Some(pk)).or_default().insert(key.clone(), (addr.clone(), ready));
        }
    }
    // Addresses (with their readiness) to the ports they all serve.
    let mut groups: BTreeMap<Vec<(AddrKey, bool)>, Group> = BTreeMap::new();
    for (port, addrs) in by_port {
        let key: Vec<(AddrKey, bool)> = addrs.iter().map(|(k, (_, r))| (k.clone(), *r)).collect();
        let entry = groups.entry(key).or_insert_with(|| (addrs.into_values().collect(), Vec::new()));
        if let Some(p) = port {
            entry.1.push(p);
        }
    }
    let mut budget = MAX_ADDRESSES;
    let mut truncated = false;
    let mut subsets = Vec::new();
    for (_, (addrs, ports)) in groups {
        let mut ready: Vec<EndpointAddress> = addrs.iter().filter(|(_, r)| *r).map(|(a, _)| a.clone()).collect();
        let mut not_ready: Vec<EndpointAddress> = addrs.iter().filter(|(_, r)| !*r).map(|(a, _)| a.clone()).collect();
        for list in [&mut ready, &mut not_ready] {
            if list.len() > budget {
                list.truncate(budget);
                truncated = true;
            }
            budget -= list.len();
        }
        if ready.is_empty() && not_ready.is_empty() {
            continue;
        }
        let ports: Vec<EndpointPort> = ports
            .into_iter()
            .map(|p| EndpointPort {
                name: Some(p.name).filter(|n| !n.is_empty()),
                port: p.port,
                protocol: Some(p.protocol),
                app_protocol: p.app_protocol,
            })
            .collect();
        subsets.push(EndpointSubset {
            addresses: Some(ready).filter(|v| !v.is_empty()),
            not_ready_addresses: Some(not_ready).filter(|v| !v.is_empty()),
            ports: Some(ports).filter(|v| !v.is_empty()),
        });
    }
    Desired { subsets, truncated }
}

#[cfg(test)]
mod tests {
    use super::super::pods::fixtures::{pod, service};
    use super::*;
    use serde_json::json;

    fn ips(list: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        list.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn ready_and_not_ready_pods_share_a_subset_for_the_same_ports() {
        let svc = service("web", json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http", "protocol": "TCP"}]}));
        let pods = vec![pod("a", json!({"app": "web"}), "10.42.0.5", true), pod("b", json!({"app": "web"}), "10.42.0.6", false)];
        let d = desired(&svc, &pods);
        assert_eq!(d.subsets.len(), 1);
        let s = &d.subsets[0];
        assert_eq!(ips(&s.addresses), vec!["10.42.0.5"]);
        assert_eq!(ips(&s.not_ready_addresses), vec!["10.42.0.6"]);
        let p = &s.ports.as_ref().expect("ports")[0];
        assert_eq!((p.port, p.protocol.as_deref(), p.name.as_deref()), (8080, Some("TCP"), None));
        let a = &s.addresses.as_ref().expect("addresses")[0];
        assert_eq!(a.node_name.as_deref(), Some("n1"));
        assert_eq!(a.target_ref.as_ref().and_then(|r| r.name.as_deref()), Some("a"));
        let tolerant = service("web", json!({"selector": {"app": "web"}, "publishNotReadyAddresses": true, "ports": [{"port": 80, "protocol": "TCP"}]}));
        let d = desired(&tolerant, &pods);
        assert_eq!(ips(&d.subsets[0].addresses), vec!["10.42.0.5", "10.42.0.6"]);
        assert!(d.subsets[0].not_ready_addresses.is_none());
    }

    #[test]
    fn pods_serving_different_ports_get_different_subsets() {
        let svc = service("web", json!({"selector": {"app": "web"}, "ports": [
            {"name": "named", "port": 80, "targetPort": "http", "protocol": "TCP"},
            {"name": "num", "port": 81, "targetPort": 9000, "protocol": "TCP"}]}));
        let with_named = pod("a", json!({"app": "web"}), "10.42.0.5", true);
        let mut without: Pod = (*pod("b", json!({"app": "web"}), "10.42.0.6", true)).clone();
        if let Some(spec) = without.spec.as_mut() {
            spec.containers[0].ports = None;
        }
        let d = desired(&svc, &[with_named, Arc::new(without)]);
        assert_eq!(d.subsets.len(), 2, "{:?}", d.subsets);
        let both = d.subsets.iter().find(|s| ips(&s.addresses) == vec!["10.42.0.5"]).expect("pod a alone serves the named port");
        assert_eq!(both.ports.as_ref().map(Vec::len), Some(1));
        let all = d.subsets.iter().find(|s| ips(&s.addresses).len() == 2).expect("both serve the numeric port");
        assert_eq!(all.ports.as_ref().expect("ports")[0].port, 9000);
    }

    #[test]
    fn headless_services_without_ports_list_addresses_with_hostnames() {
        let svc = service("db", json!({"selector": {"app": "db"}, "clusterIP": "None"}));
        let mut p: Pod = (*pod("db-0", json!({"app": "db"}), "10.42.0.7", true)).clone();
        if let Some(spec) = p.spec.as_mut() {
            spec.hostname = Some("db-0".into());
            spec.subdomain = Some("db".into());
        }
        let d = desired(&svc, &[Arc::new(p)]);
        assert_eq!(d.subsets.len(), 1);
        assert!(d.subsets[0].ports.is_none());
        assert_eq!(d.subsets[0].addresses.as_ref().expect("addresses")[0].hostname.as_deref(), Some("db-0"));
        let with_ports = service("x", json!({"selector": {"app": "db"}}));
        assert!(desired(&with_ports, &[pod("a", json!({"app": "db"}), "10.42.0.8", true)]).subsets.is_empty());
    }

    #[test]
    fn more_than_a_thousand_addresses_are_truncated() {
        let svc = service("big", json!({"selector": {"app": "big"}, "ports": [{"port": 80, "protocol": "TCP"}]}));
        let pods: Vec<Arc<Pod>> = (0..1005).map(|i| pod(&format!("p{i}"), json!({"app": "big"}), &format!("10.42.{}.{}", i / 250, i % 250 + 1), true)).collect();
        let d = desired(&svc, &pods);
        assert!(d.truncated);
        assert_eq!(d.subsets[0].addresses.as_ref().map(Vec::len), Some(MAX_ADDRESSES));
    }
}
