//! The downward API: pod fields and container resources rendered as file
//! contents (downwardAPI volumes, projected sources) and as environment
//! values (for `subPathExpr`). Formats follow upstream: labels and
//! annotations as sorted `key="value"` lines with Go's `%q` quoting, and
//! resources divided by the divisor and rounded up.

use super::atomic_writer::{FileProjection, Payload};
use crate::pods::node_info;
use crate::quantity;
use k8s_openapi::api::core::v1::{Container, DownwardAPIVolumeFile, Pod, ResourceFieldSelector};
use std::collections::BTreeMap;

/// What the node offers, used for limits a container does not set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allocatable {
    pub cpu_milli: i128,
    pub memory_bytes: i128,
    pub ephemeral_bytes: i128,
}

impl Allocatable {
    /// This machine's CPUs, memory (`MemTotal`) and the disk under `dir`.
    pub fn of_host(dir: &std::path::Path) -> Allocatable {
        let ephemeral_bytes = crate::node::capacity::fs_stats(dir).map(|s| s.0 as i128).unwrap_or(0);
        Allocatable { cpu_milli: node_info::cpu_milli(), memory_bytes: node_info::memory_bytes(), ephemeral_bytes }
    }
}

/// Go's `strconv.Quote`, enough for label and annotation values.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `k="v"` lines sorted by key, no trailing newline.
pub fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    m.map(|m| m.iter().map(|(k, v)| format!("{k}={}", go_quote(v))).collect::<Vec<_>>().join("\n")).unwrap_or_default()
}

/// `metadata.labels['key']` -> `("labels", "key")`.
fn subscript(path: &str) -> Option<(&str, &str)> {
    let (field, rest) = path.strip_prefix("metadata.")?.split_once("['")?;
    let key = rest.strip_suffix("']")?;
    Some((field, key))
}

/// The value of a pod field path (volume and env paths alike).
pub fn field_value(pod: &Pod, path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let s = |o: Option<&String>| o.cloned().unwrap_or_default();
    Ok(match path {
        "metadata.name" => s(meta.name.as_ref()),
        "metadata.namespace" => s(meta.namespace.as_ref()),
        "metadata.uid" => s(meta.uid.as_ref()),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => s(spec.and_then(|p| p.node_name.as_ref())),
        "spec.serviceAccountName" => s(spec.and_then(|p| p.service_account_name.as_ref())),
        "status.hostIP" => s(status.and_then(|p| p.host_ip.as_ref())),
        "status.podIP" => s(status.and_then(|p| p.pod_ip.as_ref())),
        "status.hostIPs" => status
            .and_then(|p| p.host_ips.as_ref())
            .map(|ips| ips.iter().map(|i| i.ip.clone()).collect::<Vec<_>>().join(","))
            .unwrap_or_default(),
        "status.podIPs" => status
            .and_then(|p| p.pod_ips.as_ref())
            .map(|ips| ips.iter().map(|i| i.ip.clone()).collect::<Vec<_>>().join(","))
            .unwrap_or_default(),
        other => match subscript(other) {
            Some(("labels", k)) => meta.labels.as_ref().and_then(|m| m.get(k)).cloned().unwrap_or_default(),
            Some(("annotations", k)) => meta.annotations.as_ref().and_then(|m| m.get(k)).cloned().unwrap_or_default(),
            _ => return Err(format!("unsupported fieldPath: {other}")),
        },
    })
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers.iter().chain(spec.init_containers.iter().flatten()).find(|c| c.name == name)
}

/// A `resourceFieldRef` (env `valueFrom` or downwardAPI file): the
/// container's request or limit divided by the divisor, rounded up. Unset
/// limits are the node's allocatable, unset requests zero, as upstream.
/// `own` is the container an env var belongs to.
pub fn resource_value(pod: &Pod, own: Option<&Container>, sel: &ResourceFieldSelector, node: Allocatable) -> Result<String, String> {
    let c = match sel.container_name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => find_container(pod, name).ok_or_else(|| format!("container {name} not found"))?,
        None => own.ok_or_else(|| format!("resourceFieldRef {} names no container", sel.resource))?,
    };
    let unsupported = || format!("unsupported container resource : {}", sel.resource);
    let (which, r) = sel.resource.split_once('.').ok_or_else(unsupported)?;
    let res = c.resources.as_ref();
    let set = match which {
        "limits" => quantity::of_resource(res.and_then(|r| r.limits.as_ref()), r),
        "requests" => quantity::of_resource(res.and_then(|r| r.requests.as_ref()), r),
        _ => return Err(unsupported()),
    };
    let node_value = match r {
        "cpu" => node.cpu_milli,
        "memory" => node.memory_bytes,
        "ephemeral-storage" => node.ephemeral_bytes,
        r if r.starts_with("hugepages-") => 0,
        _ => return Err(unsupported()),
    };
    let value = set.unwrap_or(if which == "limits" { node_value } else { 0 });
    let divisor = sel.divisor.as_ref().and_then(|d| if r == "cpu" { quantity::milli(&d.0) } else { quantity::value(&d.0) });
    let divisor = divisor.filter(|d| *d > 0).unwrap_or(if r == "cpu" { 1000 } else { 1 });
    Ok(((value + divisor - 1).div_euclid(divisor)).to_string())
}

/// The files of a downwardAPI volume or projected source.
pub fn payload(pod: &Pod, items: &[DownwardAPIVolumeFile], default_mode: u32, node: Allocatable) -> Result<Payload, String> {
    let mut out = Payload::new();
    for item in items {
        let data = if let Some(f) = &item.field_ref {
            field_value(pod, &f.field_path)?
        } else if let Some(r) = &item.resource_field_ref {
            resource_value(pod, None, r, node)?
        } else {
            String::new()
        };
        let mode = item.mode.map(|m| m as u32).unwrap_or(default_mode);
        out.insert(item.path.clone(), FileProjection { data: data.into_bytes(), mode });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ObjectFieldSelector, PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    const NODE: Allocatable = Allocatable { cpu_milli: 4000, memory_bytes: 8 << 30, ephemeral_bytes: 0 };

    fn pod() -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("web".into());
        p.metadata.namespace = Some("prod".into());
        p.metadata.uid = Some("u-1".into());
        p.metadata.labels = Some([("zone".to_string(), "a".to_string()), ("app".to_string(), "we\"b\n".to_string())].into());
        let c = Container {
            name: "main".into(),
            resources: Some(ResourceRequirements {
                limits: Some([("memory".to_string(), Quantity("64Mi".into())), ("cpu".to_string(), Quantity("250m".into()))].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        p.spec = Some(PodSpec { containers: vec![c], ..Default::default() });
        p
    }

    fn field(path: &str) -> DownwardAPIVolumeFile {
        DownwardAPIVolumeFile {
            path: path.replace(['.', '[', ']', '\''], "_"),
            field_ref: Some(ObjectFieldSelector { field_path: path.into(), api_version: Some("v1".into()) }),
            ..Default::default()
        }
    }

    fn res(resource: &str, divisor: Option<&str>) -> ResourceFieldSelector {
        ResourceFieldSelector {
            container_name: Some("main".into()),
            resource: resource.into(),
            divisor: divisor.map(|d| Quantity(d.into())),
        }
    }

    #[test]
    fn labels_render_sorted_and_quoted() {
        let p = pod();
        assert_eq!(field_value(&p, "metadata.labels").expect("test setup"), "app=\"we\\\"b\\n\"\nzone=\"a\"");
        assert_eq!(field_value(&p, "metadata.labels['zone']").expect("test setup"), "a");
        assert_eq!(field_value(&p, "metadata.annotations").expect("test setup"), "");
        assert_eq!(field_value(&p, "metadata.annotations['x']").expect("test setup"), "");
        assert!(field_value(&p, "spec.bogus").is_err());
        assert_eq!(go_quote("tab\there \u{1}é"), "\"tab\\there \\x01é\"");
    }

    #[test]
    fn payload_maps_items_and_modes() {
        let p = pod();
        let mut items = vec![field("metadata.name"), field("metadata.namespace"), field("metadata.uid")];
        items[0].mode = Some(0o600);
        let out = payload(&p, &items, 0o644, NODE).expect("test setup");
        assert_eq!(out["metadata_name"].data, b"web");
        assert_eq!(out["metadata_name"].mode, 0o600);
        assert_eq!(out["metadata_namespace"].data, b"prod");
        assert_eq!(out["metadata_uid"].mode, 0o644);
    }

    #[test]
    fn resources_divide_and_round_up() {
        let p = pod();
        assert_eq!(resource_value(&p, None, &res("limits.memory", None), NODE).expect("test setup"), "67108864");
        assert_eq!(resource_value(&p, None, &res("limits.memory", Some("1Mi")), NODE).expect("test setup"), "64");
        assert_eq!(resource_value(&p, None, &res("limits.memory", Some("1G")), NODE).expect("test setup"), "1");
        assert_eq!(resource_value(&p, None, &res("limits.cpu", None), NODE).expect("test setup"), "1");
        assert_eq!(resource_value(&p, None, &res("limits.cpu", Some("1m")), NODE).expect("test setup"), "250");
        // Unset: limits are the node's, requests zero.
        assert_eq!(resource_value(&p, None, &res("requests.cpu", None), NODE).expect("test setup"), "0");
        assert_eq!(resource_value(&p, None, &res("limits.ephemeral-storage", None), NODE).expect("test setup"), "0");
        let mut q = p.clone();
        if let Some(s) = q.spec.as_mut() {
            s.containers[0].resources = None;
        }
        assert_eq!(resource_value(&q, None, &res("limits.cpu", None), NODE).expect("test setup"), "4");
        assert!(resource_value(&p, None, &res("limits.gpu", None), NODE).is_err());
    }
}
