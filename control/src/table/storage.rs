//! Tables of the `storage.k8s.io` kinds: StorageClass, VolumeAttachment,
//! CSIDriver, CSINode, CSIStorageCapacity, VolumeAttributesClass.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::age::age;
use super::columns::{col, name, Col, Printer, Row, AGE, NAME};
use super::value::{arr_at, get, obj_at, opt_bool, opt_str, scalar_text, str_at};

pub(super) fn lookup(kind: &str) -> Option<Printer> {
    Some(match kind {
        "StorageClass" => Printer::new(STORAGE_CLASS, storage_class),
        "VolumeAttachment" => Printer::new(VOLUME_ATTACHMENT, volume_attachment),
        "CSIDriver" => Printer::new(CSI_DRIVER, csi_driver),
        "CSINode" => Printer::new(CSI_NODE, csi_node),
        "CSIStorageCapacity" => Printer::new(CSI_STORAGE_CAPACITY, csi_storage_capacity),
        "VolumeAttributesClass" => Printer::new(VOLUME_ATTRIBUTES_CLASS, volume_attributes_class),
        _ => return None,
    })
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj_at(obj, &["metadata", "annotations"])?
        .get(key)?
        .as_str()
}

const STORAGE_CLASS: &[Col] = &[
    NAME,
    col(
        "Provisioner",
        "string",
        "The provisioner of volumes of this class.",
    ),
    col(
        "ReclaimPolicy",
        "string",
        "What happens to dynamically provisioned volumes when released.",
    ),
    col(
        "VolumeBindingMode",
        "string",
        "When volumes are provisioned and bound.",
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        "Whether volumes of this class can be expanded.",
    ),
    AGE,
];

fn storage_class(sc: &Value, now: Timestamp) -> Row {
    let is_default = annotation(sc, "storageclass.kubernetes.io/is-default-class") == Some("true")
        || annotation(sc, "storageclass.beta.kubernetes.io/is-default-class") == Some("true");
    let shown_name = if is_default {
        format!("{} (default)", name(sc))
    } else {
        name(sc).to_string()
    };
    Row::new(vec![
        json!(shown_name),
        json!(str_at(sc, &["provisioner"])),
        json!(opt_str(sc, &["reclaimPolicy"]).unwrap_or("Delete")),
        json!(opt_str(sc, &["volumeBindingMode"]).unwrap_or("Immediate")),
        json!(opt_bool(sc, &["allowVolumeExpansion"]).unwrap_or(false)),
        json!(age(sc, now)),
    ])
}

const VOLUME_ATTACHMENT: &[Col] = &[
    NAME,
    Col {
        name: "Attacher",
        type_: "string",
        format: "name",
        description: "The volume driver that attaches the volume.",
        priority: 0,
    },
    col("PV", "string", "The persistent volume being attached."),
    col("Node", "string", "The node the volume is attached to."),
    col(
        "Attached",
        "boolean",
        "Whether the attach operation succeeded.",
    ),
    AGE,
];

fn volume_attachment(va: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(va)),
        json!(str_at(va, &["spec", "attacher"])),
        json!(str_at(va, &["spec", "source", "persistentVolumeName"])),
        json!(str_at(va, &["spec", "nodeName"])),
        json!(opt_bool(va, &["status", "attached"]).unwrap_or(false)),
        json!(age(va, now)),
    ])
}

const CSI_DRIVER: &[Col] = &[
    NAME,
    col(
        "AttachRequired",
        "boolean",
        "Whether the driver needs an attach operation.",
    ),
    col(
        "PodInfoOnMount",
        "boolean",
        "Whether pod information is passed on mount.",
    ),
    col(
        "StorageCapacity",
        "boolean",
        "Whether the scheduler considers storage capacity of this driver.",
    ),
    col(
        "TokenRequests",
        "string",
        "Audiences of the service account tokens passed to the driver.",
    ),
    col(
        "RequiresRepublish",
        "boolean",
        "Whether NodePublishVolume is called periodically.",
    ),
    col(
        "Modes",
        "string",
        "The volume lifecycle modes the driver supports.",
    ),
    AGE,
];

fn csi_driver(d: &Value, now: Timestamp) -> Row {
    let token_requests = match get(d, &["spec", "tokenRequests"]) {
        Some(list) => arr_at(list, &[])
            .iter()
            .map(|t| str_at(t, &["audience"]))
            .collect::<Vec<_>>()
            .join(","),
        None => "<unset>".to_string(),
    };
    let modes: Vec<&str> = arr_at(d, &["spec", "volumeLifecycleModes"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes = if modes.is_empty() {
        "<none>".to_string()
    } else {
        modes.join(",")
    };
    Row::new(vec![
        json!(name(d)),
        json!(opt_bool(d, &["spec", "attachRequired"]).unwrap_or(true)),
        json!(opt_bool(d, &["spec", "podInfoOnMount"]).unwrap_or(false)),
        json!(opt_bool(d, &["spec", "storageCapacity"]).unwrap_or(false)),
        json!(token_requests),
        json!(opt_bool(d, &["spec", "requiresRepublish"]).unwrap_or(false)),
        json!(modes),
        json!(age(d, now)),
    ])
}

const CSI_NODE: &[Col] = &[
    NAME,
    col(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    ),
    AGE,
];

fn csi_node(n: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(n)),
        json!(arr_at(n, &["spec", "drivers"]).len()),
        json!(age(n, now)),
    ])
}

const CSI_STORAGE_CAPACITY: &[Col] = &[
    NAME,
    col(
        "StorageClassName",
        "string",
        "The storage class this capacity applies to.",
    ),
    col("Capacity", "string", "The capacity reported by the driver."),
];

fn csi_storage_capacity(c: &Value, _now: Timestamp) -> Row {
    let capacity = get(c, &["capacity"])
        .map(scalar_text)
        .unwrap_or_else(|| "<unset>".to_string());
    Row::new(vec![
        json!(name(c)),
        json!(str_at(c, &["storageClassName"])),
        json!(capacity),
    ])
}

const VOLUME_ATTRIBUTES_CLASS: &[Col] = &[
    NAME,
    col(
        "DriverName",
        "string",
        "The CSI driver handling volumes of this class.",
    ),
    AGE,
];

fn volume_attributes_class(v: &Value, now: Timestamp) -> Row {
    let is_default = annotation(v, "storage.kubernetes.io/is-default-class") == Some("true");
    let shown_name = if is_default {
        format!("{} (default)", name(v))
    } else {
        name(v).to_string()
    };
    Row::new(vec![
        json!(shown_name),
        json!(str_at(v, &["driverName"])),
        json!(age(v, now)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::columns::test_support;


    fn cells(kind: &str, obj: Value) -> Vec<Value> {
        test_support::cells(lookup(kind), &obj, kind)
    }

    #[test]
    fn storage_class_default_marker_and_defaults() {
        let c = cells(
            "StorageClass",
            json!({"metadata": {"name": "local-path", "creationTimestamp": "2024-05-01T11:00:00Z",
                   "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                   "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}),
        );
        assert_eq!(
            c,
            vec![
                json!("local-path (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false),
                json!("60m")
            ]
        );
    }

    #[test]
    fn csi_driver_defaults() {
        let c = cells("CSIDriver", json!({"metadata": {"name": "d"}, "spec": {}}));
        assert_eq!(
            c[1..7],
            [
                json!(true),
                json!(false),
                json!(false),
                json!("<unset>"),
                json!(false),
                json!("<none>")
            ]
        );
        let c = cells(
            "CSIDriver",
            json!({"metadata": {"name": "d"}, "spec": {"tokenRequests": [{"audience": "a"}, {"audience": "b"}],
                   "volumeLifecycleModes": ["Persistent", "Ephemeral"]}}),
        );
        assert_eq!(c[4], "a,b");
        assert_eq!(c[6], "Persistent,Ephemeral");
    }
}
