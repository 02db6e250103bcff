//! What the EndpointSlices of one Service should become, from the pods it
//! selects and the slices it has: endpoints grouped by the ports they serve,
//! at most [`MAX_PER_SLICE`] to a slice; endpoints stay in the slice they
//! are in, new ones fill free room first, then new slices; a slice no longer
//! needed is recycled for a new one before anything is deleted. A Service
//! without endpoints keeps one empty placeholder slice, as upstream.

use crate::controllers::endpoints::pods;
use crate::controllers::util::{controller_ref, is_pod_ready};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use kube::api::ObjectMeta;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const MAX_PER_SLICE: usize = 100;
pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER: &str = "endpointslice-controller.k8s.io";
pub const ZONE: &str = "topology.kubernetes.io/zone";

/// Endpoints serving one set of ports, keyed by (address, pod uid).
pub struct Group {
    pub ports: Vec<EndpointPort>,
    pub endpoints: BTreeMap<(String, String), Endpoint>,
}

/// The desired endpoints of `svc`, by port set. `node` answers a node's
/// zone label (`Some(None)`: node without zone; `None`: no such node).
/// Pods on nodes that do not exist are left out and counted in the second value.
pub fn desired(svc: &Service, selected: &[Arc<Pod>], node: impl Fn(&str) -> Option<Option<String>>) -> (BTreeMap<String, Group>, usize) {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut missing_nodes = 0;
    for pod in selected {
        if !pods::should_be_in_endpoints(pod, true) {
            continue;
        }
        let Some(ip) = pods::ipv4(pod) else { continue };
        let node_name = pods::node_name(pod);
        let zone = match &node_name {
            Some(n) => match node(n) {
                Some(z) => z,
                None => {
                    missing_nodes += 1;
                    continue;
                }
            },
            None => None,
        };
        let serving = is_pod_ready(pod);
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let ready = pods::publish_not_ready(svc) || (serving && !terminating);
        let ep = Endpoint {
            addresses: vec![ip.clone()],
            conditions: Some(EndpointConditions { ready: Some(ready), serving: Some(serving), terminating: Some(terminating) }),
            hostname: pods::hostname(pod, svc),
            node_name,
            target_ref: Some(pods::target_ref(pod)),
            zone,
            ..Default::default()
        };
        let mut ports: Vec<EndpointPort> = pods::ports(svc)
            .iter()
            .filter_map(|sp| {
                let port = pods::find_port(pod, sp)?;
                Some(EndpointPort {
                    name: Some(sp.name.clone().unwrap_or_default()),
                    port: Some(port),
                    protocol: Some(sp.protocol.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "TCP".into())),
                    app_protocol: sp.app_protocol.clone(),
                })
            })
            .collect();
        ports.sort_by(|a, b| (&a.name, a.port, &a.protocol).cmp(&(&b.name, b.port, &b.protocol)));
        let key = ports_key(&ports);
        let g = groups.entry(key).or_insert_with(|| Group { ports, endpoints: BTreeMap::new() });
        g.endpoints.insert((ip, pod.metadata.uid.clone().unwrap_or_default()), ep);
    }
    (groups, missing_nodes)
}

fn ports_key(ports: &[EndpointPort]) -> String {
    let mut sorted: Vec<String> = ports.iter().map(|p| serde_json::to_string(p).unwrap_or_default()).collect();
    sorted.sort();
    sorted.join(",")
}

fn endpoint_key(ep: &Endpoint) -> (String, String) {
    (
        ep.addresses.first().cloned().unwrap_or_default(),
        ep.target_ref.as_ref().and_then(|r| r.uid.clone()).unwrap_or_default(),
    )
}

/// Labels of the slices of `svc`: the Service's own, the service name,
/// the managing controller, and the headless marker.
pub fn labels_for(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME.into(), svc.metadata.name.clone().unwrap_or_default());
    labels.insert(MANAGED_BY.into(), CONTROLLER.into());
    if pods::is_headless(svc) {
        labels.insert(pods::HEADLESS.into(), String::new());
    } else {
        labels.remove(pods::HEADLESS);
    }
    labels
}

/// `<service>-` (base kept to 58 characters so the name stays a valid label).
pub fn generate_name(svc: &Service) -> String {
    let name = svc.metadata.name.clone().unwrap_or_default();
    let base: String = format!("{name}-").chars().take(58).collect();
    base
}

#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    /// Existing slices with new content (resourceVersion kept).
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<Arc<EndpointSlice>>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

fn same_ports(slice: &EndpointSlice, key: &str) -> bool {
    slice.address_type == "IPv4" && ports_key(slice.ports.as_deref().unwrap_or(&[])) == key
}

/// Turn `groups` into writes over `existing` (the slices this controller
/// manages for `svc`, owned by it).
pub fn plan(svc: &Service, mut groups: BTreeMap<String, Group>, existing: &[Arc<EndpointSlice>], annotations: BTreeMap<String, String>) -> Plan {
    let labels = labels_for(svc);
    let owner = vec![controller_ref(svc)];
    let meta_ok = |s: &EndpointSlice| s.metadata.labels.as_ref() == Some(&labels) && s.metadata.owner_references.as_ref() == Some(&owner);
    let mut sorted: Vec<Arc<EndpointSlice>> = existing.to_vec();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut out = Plan::default();
    let mut spare: Vec<Arc<EndpointSlice>> = Vec::new();
    // (slice, its endpoints now, changed)
    let mut kept: Vec<(Arc<EndpointSlice>, Vec<Endpoint>, bool)> = Vec::new();
    let mut to_create: Vec<(Vec<EndpointPort>, Vec<Endpoint>)> = Vec::new();
    for slice in sorted {
        let key = groups.keys().find(|k| same_ports(&slice, k)).cloned();
        let Some(key) = key else {
            spare.push(slice);
            continue;
        };
        let Some(group) = groups.get_mut(&key) else { continue };
        let mut now = Vec::new();
        for ep in slice.endpoints.iter() {
            if let Some(want) = group.endpoints.remove(&endpoint_key(ep)) {
                now.push(want);
            }
        }
        let changed = now != slice.endpoints;
        kept.push((slice, now, changed));
    }
    for (key, mut group) in groups {
        // Fill free room in the slices of the same ports first.
        for (_, now, changed) in kept.iter_mut().filter(|(s, _, _)| same_ports(s, &key)) {
            while now.len() < MAX_PER_SLICE {
                let Some((_, ep)) = group.endpoints.pop_first() else { break };
                now.push(ep);
                *changed = true;
            }
        }
        let rest: Vec<Endpoint> = group.endpoints.into_values().collect();
        for chunk in rest.chunks(MAX_PER_SLICE) {
            to_create.push((group.ports.clone(), chunk.to_vec()));
        }
    }
    for (slice, now, changed) in kept {
        if now.is_empty() {
            spare.push(slice);
        } else if changed || !meta_ok(&slice) {
            out.update.push(with_content(svc, &slice, &labels, &owner, &annotations, slice.ports.clone().unwrap_or_default(), now));
        }
    }
    let wants_placeholder = to_create.is_empty() && spare.len() == existing.len();
    if wants_placeholder {
        // No endpoints at all: one empty slice stays (an existing empty one if any).
        spare.sort_by_key(|s| !s.endpoints.is_empty() || s.ports.as_ref().is_some_and(|p| !p.is_empty()));
        match spare.first().cloned() {
            Some(s) => {
                spare.remove(0);
                let placeholder = s.endpoints.is_empty() && s.ports.as_ref().is_none_or(Vec::is_empty) && s.address_type == "IPv4";
                if !placeholder || !meta_ok(&s) {
                    out.update.push(with_content(svc, &s, &labels, &owner, &annotations, Vec::new(), Vec::new()));
                }
            }
            None => to_create.push((Vec::new(), Vec::new())),
        }
    }
    for (ports, eps) in to_create {
        match spare.pop() {
            Some(s) => out.update.push(with_content(svc, &s, &labels, &owner, &annotations, ports, eps)),
            None => out.create.push(EndpointSlice {
                metadata: ObjectMeta {
                    generate_name: Some(generate_name(svc)),
                    namespace: svc.metadata.namespace.clone(),
                    labels: Some(labels.clone()),
                    annotations: Some(annotations.clone()).filter(|a| !a.is_empty()),
                    owner_references: Some(owner.clone()),
                    ..Default::default()
                },
                address_type: "IPv4".into(),
                endpoints: eps,
                ports: Some(ports).filter(|p| !p.is_empty()),
            }),
        }
    }
    out.delete = spare;
    out
}

fn with_content(
    _svc: &Service,
    slice: &EndpointSlice,
    labels: &BTreeMap<String, String>,
    owner: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
    annotations: &BTreeMap<String, String>,
    ports: Vec<EndpointPort>,
    endpoints: Vec<Endpoint>,
) -> EndpointSlice {
    let mut s = slice.clone();
    s.metadata.labels = Some(labels.clone());
    s.metadata.owner_references = Some(owner.to_vec());
    let mut ann = s.metadata.annotations.take().unwrap_or_default();
    ann.extend(annotations.clone());
    s.metadata.annotations = Some(ann).filter(|a| !a.is_empty());
    s.metadata.managed_fields = None;
    s.address_type = "IPv4".into();
    s.ports = Some(ports).filter(|p| !p.is_empty());
    s.endpoints = endpoints;
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::endpoints::pods::fixtures::{pod, service};
    use serde_json::json;

    fn svc() -> Service {
        service("web", json!({"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}))
    }

    fn pods(n: usize) -> Vec<Arc<Pod>> {
        (0..n).map(|i| pod(&format!("p{i:03}"), json!({"app": "web"}), &format!("10.42.{}.{}", i / 200, i % 200 + 2), i % 2 == 0)).collect()
    }

    fn zone(_: &str) -> Option<Option<String>> {
        Some(Some("z1".into()))
    }

    fn stored(mut s: EndpointSlice, name: &str) -> Arc<EndpointSlice> {
        s.metadata.name = Some(name.into());
        s.metadata.resource_version = Some("1".into());
        Arc::new(s)
    }

    #[test]
    fn endpoints_carry_conditions_and_slices_hold_a_hundred() {
        let svc = svc();
        let (groups, missing) = desired(&svc, &pods(250), zone);
        assert_eq!(missing, 0);
        let p = plan(&svc, groups, &[], BTreeMap::new());
        assert_eq!(p.create.len(), 3);
        assert_eq!(p.create.iter().map(|s| s.endpoints.len()).collect::<Vec<_>>(), vec![100, 100, 50]);
        let s = &p.create[0];
        assert_eq!(s.metadata.generate_name.as_deref(), Some("web-"));
        let labels = s.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels.get(SERVICE_NAME).map(String::as_str), Some("web"));
        assert_eq!(labels.get(MANAGED_BY).map(String::as_str), Some(CONTROLLER));
        assert_eq!(s.metadata.owner_references.as_ref().expect("owner")[0].kind, "Service");
        assert_eq!(s.ports.as_ref().expect("ports")[0].port, Some(8080));
        let e = &s.endpoints[0];
        assert_eq!(e.zone.as_deref(), Some("z1"));
        assert_eq!(e.node_name.as_deref(), Some("n1"));
        assert_eq!(e.conditions.as_ref().and_then(|c| c.ready), Some(true));
        let not_ready = s.endpoints.iter().find(|e| e.conditions.as_ref().and_then(|c| c.serving) == Some(false)).expect("a not ready pod");
        assert_eq!(not_ready.conditions.as_ref().and_then(|c| c.ready), Some(false));
    }

    #[test]
    fn an_unchanged_service_needs_no_writes_and_changes_stay_in_place() {
        let svc = svc();
        let (groups, _) = desired(&svc, &pods(150), zone);
        let first = plan(&svc, groups, &[], BTreeMap::new());
        let existing: Vec<Arc<EndpointSlice>> = first.create.into_iter().enumerate().map(|(i, s)| stored(s, &format!("web-{i}"))).collect();
        let (groups, _) = desired(&svc, &pods(150), zone);
        assert!(plan(&svc, groups, &existing, BTreeMap::new()).is_empty());
        // One pod gone, two new: the gap is filled, the second goes to the slice with room.
        let mut now = pods(152);
        now.remove(3);
        let (groups, _) = desired(&svc, &now, zone);
        let p = plan(&svc, groups, &existing, BTreeMap::new());
        assert!(p.create.is_empty() && p.delete.is_empty(), "{p:?}");
        let total: usize = p.update.iter().map(|s| s.endpoints.len()).sum();
        assert!(p.update.iter().all(|s| s.endpoints.len() <= MAX_PER_SLICE));
        assert!(total >= 51, "{total}");
    }

    #[test]
    fn no_endpoints_leave_one_placeholder_and_pods_on_unknown_nodes_wait() {
        let svc = svc();
        let (groups, missing) = desired(&svc, &pods(3), |_| None);
        assert_eq!(missing, 3);
        let p = plan(&svc, groups, &[], BTreeMap::new());
        assert_eq!(p.create.len(), 1);
        assert!(p.create[0].endpoints.is_empty() && p.create[0].ports.is_none());
        let existing = vec![stored(p.create[0].clone(), "web-abcde")];
        let (groups, _) = desired(&svc, &[], zone);
        assert!(plan(&svc, groups, &existing, BTreeMap::new()).is_empty(), "the placeholder stays as it is");
        // Pods arrive: the placeholder is recycled.
        let (groups, _) = desired(&svc, &pods(2), zone);
        let p = plan(&svc, groups, &existing, BTreeMap::new());
        assert!(p.create.is_empty() && p.delete.is_empty());
        assert_eq!(p.update[0].metadata.name.as_deref(), Some("web-abcde"));
        assert_eq!(p.update[0].endpoints.len(), 2);
    }
}
