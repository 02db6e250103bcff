//! Tables of the core (`v1`) kinds: Node, Namespace, ConfigMap, Secret,
//! ServiceAccount, PersistentVolume(Claim), ResourceQuota,
//! ReplicationController, PodTemplate, ComponentStatus; Pod, Service,
//! Endpoints and Event live in their own files. (LimitRange uses the
//! default table.)

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::age::age;
use super::columns::{
    col, containers_cells, format_labels, name, template_spec, wide, Col, Printer, Row, AGE,
    CONTAINERS, IMAGES, NAME,
};
use super::value::{
    arr_at, bool_at, get, int_at, obj_at, obj_len, opt_int, opt_str, scalar_text, str_at,
};
use super::{event, service};

pub(super) fn lookup(kind: &str) -> Option<Printer> {
    Some(match kind {
        "Service" => service::SERVICE_PRINTER,
        "Node" => Printer::new(NODE, node),
        "Namespace" => Printer::new(NAMESPACE, namespace),
        "ConfigMap" => Printer::new(CONFIG_MAP, config_map),
        "Secret" => Printer::new(SECRET, secret),
        "ServiceAccount" => Printer::new(SERVICE_ACCOUNT, service_account),
        "Endpoints" => service::ENDPOINTS_PRINTER,
        "Event" => event::EVENT_PRINTER,
        "PersistentVolume" => Printer::new(PV, persistent_volume),
        "PersistentVolumeClaim" => Printer::new(PVC, persistent_volume_claim),
        "ResourceQuota" => Printer::new(RESOURCE_QUOTA, resource_quota),
        "ReplicationController" => Printer::new(REPLICATION_CONTROLLER, replication_controller),
        "PodTemplate" => Printer::new(POD_TEMPLATE, pod_template),
        "ComponentStatus" => Printer::new(COMPONENT_STATUS, component_status),
        _ => return None,
    })
}

// ---- Node ----

const NODE: &[Col] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col(
        "Version",
        "string",
        "The kubelet version reported by the node.",
    ),
    wide(
        "Internal-IP",
        "string",
        "The node's first internal IP address.",
    ),
    wide(
        "External-IP",
        "string",
        "The node's first external IP address.",
    ),
    wide(
        "OS-Image",
        "string",
        "The operating system image reported by the node.",
    ),
    wide(
        "Kernel-Version",
        "string",
        "The kernel version reported by the node.",
    ),
    wide(
        "Container-Runtime",
        "string",
        "The container runtime name and version reported by the node.",
    ),
];

/// Roles from `node-role.kubernetes.io/<role>` label keys and the value of a
/// `kubernetes.io/role` label, sorted.
fn node_roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    if let Some(labels) = obj_at(node, &["metadata", "labels"]) {
        for (key, value) in labels {
            if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if key == "kubernetes.io/role" {
                if let Some(v) = value.as_str().filter(|v| !v.is_empty()) {
                    roles.insert(v.to_string());
                }
            }
        }
    }
    if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

fn node_address(node: &Value, type_: &str) -> String {
    arr_at(node, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == type_)
        .map(|a| str_at(a, &["address"]).to_string())
        .unwrap_or_else(|| "<none>".to_string())
}

fn node(node: &Value, now: Timestamp) -> Row {
    let mut status: Vec<&str> = Vec::new();
    // The last Ready condition wins, as upstream keys conditions by type.
    if let Some(ready) = arr_at(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready")
    {
        status.push(if str_at(ready, &["status"]) == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if bool_at(node, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }
    let info = |field: &str| {
        let v = str_at(node, &["status", "nodeInfo", field]);
        if v.is_empty() {
            "<unknown>".to_string()
        } else {
            v.to_string()
        }
    };
    Row::new(vec![
        json!(name(node)),
        json!(status.join(",")),
        json!(node_roles(node)),
        json!(age(node, now)),
        json!(str_at(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(node_address(node, "InternalIP")),
        json!(node_address(node, "ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ])
}

// ---- Namespace, ConfigMap, Secret, ServiceAccount ----

const NAMESPACE: &[Col] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

fn namespace(ns: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(ns)),
        json!(str_at(ns, &["status", "phase"])),
        json!(age(ns, now)),
    ])
}

const CONFIG_MAP: &[Col] = &[
    NAME,
    col(
        "Data",
        "string",
        "The number of entries in data and binaryData.",
    ),
    AGE,
];

fn config_map(cm: &Value, now: Timestamp) -> Row {
    let entries = obj_len(cm, &["data"]) + obj_len(cm, &["binaryData"]);
    Row::new(vec![json!(name(cm)), json!(entries), json!(age(cm, now))])
}

const SECRET: &[Col] = &[
    NAME,
    col(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
    ),
    col("Data", "string", "The number of entries in data."),
    AGE,
];

fn secret(s: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(s)),
        json!(str_at(s, &["type"])),
        json!(obj_len(s, &["data"])),
        json!(age(s, now)),
    ])
}

const SERVICE_ACCOUNT: &[Col] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "The number of secrets listed for this service account.",
    ),
    AGE,
];

fn service_account(sa: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(sa)),
        json!(arr_at(sa, &["secrets"]).len()),
        json!(age(sa, now)),
    ])
}

// ---- PersistentVolume / PersistentVolumeClaim ----

const PV: &[Col] = &[
    NAME,
    col("Capacity", "string", "The storage capacity of the volume."),
    col(
        "Access Modes",
        "string",
        "The ways the volume can be mounted.",
    ),
    col(
        "Reclaim Policy",
        "string",
        "What happens to the volume when released from its claim.",
    ),
    col("Status", "string", "The phase of the volume."),
    col("Claim", "string", "The claim bound to this volume."),
    col("StorageClass", "string", "StorageClass of the pv"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    col(
        "Reason",
        "string",
        "A brief reason describing why the volume is in its phase.",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "Whether the volume is a filesystem or a raw block device.",
    ),
];

/// "RWO,ROX,RWX,RWOP" in that order, each once.
fn access_modes(list: &[Value]) -> String {
    let has = |m: &str| list.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The class from the beta annotation, else `spec.storageClassName`.
fn storage_class(obj: &Value) -> &str {
    if let Some(class) = obj_at(obj, &["metadata", "annotations"])
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
        .and_then(Value::as_str)
    {
        return class;
    }
    str_at(obj, &["spec", "storageClassName"])
}

/// A quantity as printed (missing → "0").
fn quantity(v: Option<&Value>) -> String {
    match v.map(scalar_text) {
        Some(s) if !s.is_empty() => s,
        _ => "0".to_string(),
    }
}

fn deleting(obj: &Value) -> bool {
    get(obj, &["metadata", "deletionTimestamp"]).is_some()
}

fn persistent_volume(pv: &Value, now: Timestamp) -> Row {
    let claim = match get(pv, &["spec", "claimRef"]) {
        Some(c) => format!("{}/{}", str_at(c, &["namespace"]), str_at(c, &["name"])),
        None => String::new(),
    };
    let phase = if deleting(pv) {
        "Terminating"
    } else {
        str_at(pv, &["status", "phase"])
    };
    Row::new(vec![
        json!(name(pv)),
        json!(quantity(get(pv, &["spec", "capacity", "storage"]))),
        json!(access_modes(arr_at(pv, &["spec", "accessModes"]))),
        json!(str_at(pv, &["spec", "persistentVolumeReclaimPolicy"])),
        json!(phase),
        json!(claim),
        json!(storage_class(pv)),
        json!(opt_str(pv, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        json!(str_at(pv, &["status", "reason"])),
        json!(age(pv, now)),
        json!(opt_str(pv, &["spec", "volumeMode"]).unwrap_or("<unset>")),
    ])
}

const PVC: &[Col] = &[
    NAME,
    col("Status", "string", "The phase of the claim."),
    col("Volume", "string", "The volume bound to this claim."),
    col(
        "Capacity",
        "string",
        "The actual capacity of the bound volume.",
    ),
    col(
        "Access Modes",
        "string",
        "The access modes of the bound volume.",
    ),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "Whether the volume is a filesystem or a raw block device.",
    ),
];

fn persistent_volume_claim(pvc: &Value, now: Timestamp) -> Row {
    let phase = if deleting(pvc) {
        "Terminating"
    } else {
        str_at(pvc, &["status", "phase"])
    };
    let volume = str_at(pvc, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(get(pvc, &["status", "capacity", "storage"])),
            access_modes(arr_at(pvc, &["status", "accessModes"])),
        )
    };
    Row::new(vec![
        json!(name(pvc)),
        json!(phase),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(storage_class(pvc)),
        json!(opt_str(pvc, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        json!(age(pvc, now)),
        json!(opt_str(pvc, &["spec", "volumeMode"]).unwrap_or("<unset>")),
    ])
}

// ---- ResourceQuota ----

const RESOURCE_QUOTA: &[Col] = &[
    NAME,
    AGE,
    col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
];

/// "resource: used/hard" for each hard limit, sorted by resource name;
/// `limits.*` resources go to the LIMIT column, everything else to REQUEST.
fn resource_quota(rq: &Value, now: Timestamp) -> Row {
    let mut requests: Vec<String> = Vec::new();
    let mut limits: Vec<String> = Vec::new();
    if let Some(hard) = obj_at(rq, &["status", "hard"]) {
        let mut resources: Vec<&String> = hard.keys().collect();
        resources.sort();
        for resource in resources {
            let used =
                quantity(obj_at(rq, &["status", "used"]).and_then(|u| u.get(resource.as_str())));
            let limit = quantity(hard.get(resource.as_str()));
            let text = format!("{resource}: {used}/{limit}");
            let mut pieces = resource.split('.');
            let is_limit = pieces.next() == Some("limits") && pieces.next().is_some();
            if is_limit {
                limits.push(text);
            } else {
                requests.push(text);
            }
        }
    }
    Row::new(vec![
        json!(name(rq)),
        json!(age(rq, now)),
        json!(requests.join(", ")),
        json!(limits.join(", ")),
    ])
}

// ---- ReplicationController, PodTemplate, ComponentStatus ----

const REPLICATION_CONTROLLER: &[Col] = &[
    NAME,
    col("Desired", "integer", "The number of replicas wanted."),
    col("Current", "integer", "The number of replicas observed."),
    col("Ready", "integer", "The number of ready replicas."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "The labels of the pods this controller manages.",
    ),
];

fn replication_controller(rc: &Value, now: Timestamp) -> Row {
    let (names, images) = containers_cells(template_spec(rc));
    Row::new(vec![
        json!(name(rc)),
        json!(opt_int(rc, &["spec", "replicas"]).unwrap_or(1)),
        json!(int_at(rc, &["status", "replicas"])),
        json!(int_at(rc, &["status", "readyReplicas"])),
        json!(age(rc, now)),
        names,
        images,
        json!(format_labels(rc, &["spec", "selector"])),
    ])
}

const POD_TEMPLATE: &[Col] = &[
    NAME,
    col(
        "Containers",
        "string",
        "Names of each container in the template.",
    ),
    col(
        "Images",
        "string",
        "Images referenced by each container in the template.",
    ),
    col("Pod Labels", "string", "The labels for the pod template."),
];

fn pod_template(pt: &Value, _now: Timestamp) -> Row {
    let (names, images) = containers_cells(get(pt, &["template", "spec"]));
    Row::new(vec![
        json!(name(pt)),
        names,
        images,
        json!(format_labels(pt, &["template", "metadata", "labels"])),
    ])
}

const COMPONENT_STATUS: &[Col] = &[
    NAME,
    col("Status", "string", "Status of the component conditions"),
    col("Message", "string", "Message of the component conditions"),
    col("Error", "string", "Error of the component conditions"),
];

fn component_status(cs: &Value, _now: Timestamp) -> Row {
    let healthy = arr_at(cs, &["conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if str_at(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            str_at(c, &["message"]),
            str_at(c, &["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    Row::new(vec![
        json!(name(cs)),
        json!(status),
        json!(message),
        json!(error),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::columns::test_support;


    fn cells(kind: &str, obj: Value) -> Vec<Value> {
        test_support::cells(lookup(kind), &obj, kind)
    }

    fn meta() -> Value {
        json!({"name": "x", "creationTimestamp": "2024-05-01T11:00:00Z"})
    }

    #[test]
    fn node_roles_and_status() {
        let c = cells(
            "Node",
            json!({"metadata": {"name": "n1", "creationTimestamp": "2024-04-01T12:00:00Z", "labels": {
                    "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "true",
                    "kubernetes.io/role": "master", "node-role.kubernetes.io/": "x"}},
                   "spec": {"unschedulable": true},
                   "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                              "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "192.168.1.5"}],
                              "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Coracle", "kernelVersion": "6.6.0",
                                           "containerRuntimeVersion": "containerd://2.0.0"}}}),
        );
        assert_eq!(
            c,
            vec![
                json!("n1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,etcd,master"),
                json!("30d"),
                json!("v1.32.0"),
                json!("192.168.1.5"),
                json!("<none>"),
                json!("Coracle"),
                json!("6.6.0"),
                json!("containerd://2.0.0")
            ]
        );
        let c = cells(
            "Node",
            json!({"metadata": {"name": "n2"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}),
        );
        assert_eq!(c[1], "NotReady");
        assert_eq!(c[2], "<none>");
        assert_eq!(c[7], "<unknown>");
        let c = cells("Node", json!({"metadata": {"name": "n3"}}));
        assert_eq!(c[1], "Unknown");
    }

    #[test]
    fn secret_and_service_account_counts() {
        let c = cells(
            "Secret",
            json!({"metadata": meta(), "type": "Opaque", "data": {"a": "", "b": ""}}),
        );
        assert_eq!(c, vec![json!("x"), json!("Opaque"), json!(2), json!("60m")]);
        let c = cells(
            "ServiceAccount",
            json!({"metadata": meta(), "secrets": [{"name": "t"}]}),
        );
        assert_eq!(c[1], 1);
        let c = cells("ServiceAccount", json!({"metadata": meta()}));
        assert_eq!(c[1], 0);
    }

    #[test]
    fn pv_and_pvc() {
        let c = cells(
            "PersistentVolume",
            json!({"metadata": meta(), "spec": {"capacity": {"storage": "10Gi"},
                   "accessModes": ["ReadWriteMany", "ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
                   "claimRef": {"namespace": "default", "name": "data"}, "storageClassName": "local-path"},
                   "status": {"phase": "Bound"}}),
        );
        assert_eq!(
            c,
            vec![
                json!("x"),
                json!("10Gi"),
                json!("RWO,RWX"),
                json!("Retain"),
                json!("Bound"),
                json!("default/data"),
                json!("local-path"),
                json!("<unset>"),
                json!(""),
                json!("60m"),
                json!("<unset>")
            ]
        );
        let c = cells(
            "PersistentVolumeClaim",
            json!({"metadata": meta(), "spec": {"volumeName": "pv1", "storageClassName": "local-path",
                   "volumeMode": "Filesystem", "resources": {"requests": {"storage": "1Gi"}}},
                   "status": {"phase": "Bound", "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"]}}),
        );
        assert_eq!(
            c,
            vec![
                json!("x"),
                json!("Bound"),
                json!("pv1"),
                json!("2Gi"),
                json!("RWO"),
                json!("local-path"),
                json!("<unset>"),
                json!("60m"),
                json!("Filesystem")
            ]
        );
        let c = cells(
            "PersistentVolumeClaim",
            json!({"metadata": {"name": "p", "deletionTimestamp": "2024-05-01T11:00:00Z"}, "status": {"phase": "Pending"}}),
        );
        assert_eq!(c[1], "Terminating");
        assert_eq!(c[3], "");
    }

    #[test]
    fn resource_quota_columns() {
        let c = cells(
            "ResourceQuota",
            json!({"metadata": meta(), "status": {
                "hard": {"pods": "10", "limits.cpu": "2", "requests.memory": "1Gi", "limits.memory": "2Gi"},
                "used": {"pods": "3", "limits.cpu": "500m"}}}),
        );
        assert_eq!(
            c,
            vec![
                json!("x"),
                json!("60m"),
                json!("pods: 3/10, requests.memory: 0/1Gi"),
                json!("limits.cpu: 500m/2, limits.memory: 0/2Gi")
            ]
        );
    }

    #[test]
    fn replication_controller_and_pod_template() {
        let c = cells(
            "ReplicationController",
            json!({"metadata": meta(), "spec": {"replicas": 3, "selector": {"app": "a"},
                   "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
                   "status": {"replicas": 3, "readyReplicas": 2}}),
        );
        assert_eq!(
            c,
            vec![
                json!("x"),
                json!(3),
                json!(3),
                json!(2),
                json!("60m"),
                json!("c"),
                json!("i"),
                json!("app=a")
            ]
        );
        let c = cells(
            "PodTemplate",
            json!({"metadata": meta(), "template": {"metadata": {"labels": {"a": "b"}},
                   "spec": {"containers": [{"name": "c1", "image": "i1"}, {"name": "c2", "image": "i2"}]}}}),
        );
        assert_eq!(
            c,
            vec![json!("x"), json!("c1,c2"), json!("i1,i2"), json!("a=b")]
        );
    }
}
