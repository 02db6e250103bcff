//! Tables of the `apps` kinds: Deployment, ReplicaSet, DaemonSet,
//! StatefulSet, ControllerRevision.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::age::age;
use super::columns::{
    col, containers_cells, format_label_selector, format_labels, name, selector_string,
    template_spec, wide, Col, Printer, Row, AGE, CONTAINERS, IMAGES, NAME,
};
use super::value::{arr_at, bool_at, get, int_at, opt_int, str_at};

pub(super) fn lookup(kind: &str) -> Option<Printer> {
    Some(match kind {
        "Deployment" => Printer::new(DEPLOYMENT, deployment),
        "ReplicaSet" => Printer::new(REPLICA_SET, replica_set),
        "DaemonSet" => Printer::new(DAEMON_SET, daemon_set),
        "StatefulSet" => Printer::new(STATEFUL_SET, stateful_set),
        "ControllerRevision" => Printer::new(CONTROLLER_REVISION, controller_revision),
        _ => return None,
    })
}

/// `spec.replicas`, which the API server defaults to 1.
fn desired(obj: &Value) -> i64 {
    opt_int(obj, &["spec", "replicas"]).unwrap_or(1)
}

const READY_DESCRIPTION: &str = "Number of the pod with ready state";

const DEPLOYMENT: &[Col] = &[
    NAME,
    col("Ready", "string", READY_DESCRIPTION),
    col(
        "Up-to-date",
        "string",
        "Total number of pods targeted by this deployment that have the desired template.",
    ),
    col(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds).",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "Label selector for the pods managed by this deployment.",
    ),
];

fn deployment(d: &Value, now: Timestamp) -> Row {
    let (names, images) = containers_cells(template_spec(d));
    let selector =
        selector_string(get(d, &["spec", "selector"])).unwrap_or_else(|()| "<invalid>".to_string());
    Row::new(vec![
        json!(name(d)),
        json!(format!(
            "{}/{}",
            int_at(d, &["status", "readyReplicas"]),
            desired(d)
        )),
        json!(int_at(d, &["status", "updatedReplicas"])),
        json!(int_at(d, &["status", "availableReplicas"])),
        json!(age(d, now)),
        names,
        images,
        json!(selector),
    ])
}

const REPLICA_SET: &[Col] = &[
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
        "Label selector for the pods managed by this replica set.",
    ),
];

fn replica_set(rs: &Value, now: Timestamp) -> Row {
    let (names, images) = containers_cells(template_spec(rs));
    Row::new(vec![
        json!(name(rs)),
        json!(desired(rs)),
        json!(int_at(rs, &["status", "replicas"])),
        json!(int_at(rs, &["status", "readyReplicas"])),
        json!(age(rs, now)),
        names,
        images,
        json!(format_label_selector(get(rs, &["spec", "selector"]))),
    ])
}

const DAEMON_SET: &[Col] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "The number of nodes that should be running the daemon pod.",
    ),
    col(
        "Current",
        "integer",
        "The number of nodes running at least one daemon pod that should.",
    ),
    col(
        "Ready",
        "integer",
        "The number of nodes with a ready daemon pod.",
    ),
    col(
        "Up-to-date",
        "integer",
        "The number of nodes running the updated daemon pod.",
    ),
    col(
        "Available",
        "integer",
        "The number of nodes with an available daemon pod.",
    ),
    col(
        "Node Selector",
        "string",
        "The node labels the daemon pods are restricted to.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "Label selector for the pods managed by this daemon set.",
    ),
];

fn daemon_set(ds: &Value, now: Timestamp) -> Row {
    let (names, images) = containers_cells(template_spec(ds));
    Row::new(vec![
        json!(name(ds)),
        json!(int_at(ds, &["status", "desiredNumberScheduled"])),
        json!(int_at(ds, &["status", "currentNumberScheduled"])),
        json!(int_at(ds, &["status", "numberReady"])),
        json!(int_at(ds, &["status", "updatedNumberScheduled"])),
        json!(int_at(ds, &["status", "numberAvailable"])),
        json!(format_labels(
            ds,
            &["spec", "template", "spec", "nodeSelector"]
        )),
        json!(age(ds, now)),
        names,
        images,
        json!(format_label_selector(get(ds, &["spec", "selector"]))),
    ])
}

const STATEFUL_SET: &[Col] = &[
    NAME,
    col("Ready", "string", READY_DESCRIPTION),
    AGE,
    CONTAINERS,
    IMAGES,
];

fn stateful_set(ss: &Value, now: Timestamp) -> Row {
    let (names, images) = containers_cells(template_spec(ss));
    Row::new(vec![
        json!(name(ss)),
        json!(format!(
            "{}/{}",
            int_at(ss, &["status", "readyReplicas"]),
            desired(ss)
        )),
        json!(age(ss, now)),
        names,
        images,
    ])
}

const CONTROLLER_REVISION: &[Col] = &[
    NAME,
    col("Controller", "string", "Controller of the object"),
    col(
        "Revision",
        "string",
        "The revision of the state this object represents.",
    ),
    AGE,
];

/// "kind.group/name" (lowercased kind and group) of the controlling owner.
fn controller_name(obj: &Value) -> String {
    let Some(owner) = arr_at(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|o| bool_at(o, &["controller"]))
    else {
        return "<none>".to_string();
    };
    let api_version = str_at(owner, &["apiVersion"]);
    let group = match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    };
    let kind = str_at(owner, &["kind"]);
    let owner_name = str_at(owner, &["name"]);
    if kind.is_empty() && group.is_empty() {
        return owner_name.to_string();
    }
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{owner_name}", group_kind.to_lowercase())
}

fn controller_revision(cr: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(cr)),
        json!(controller_name(cr)),
        json!(int_at(cr, &["revision"])),
        json!(age(cr, now)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::columns::test_support;


    fn cells(kind: &str, obj: Value) -> Vec<Value> {
        test_support::cells(lookup(kind), &obj, kind)
    }

    fn template() -> Value {
        json!({"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}})
    }

    #[test]
    fn deployment_ready_counts() {
        let c = cells(
            "Deployment",
            json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T09:00:00Z"},
                   "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
                   "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}),
        );
        assert_eq!(
            c,
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("3h"),
                json!("web,log"),
                json!("nginx:1.27,busybox"),
                json!("app=web")
            ]
        );
        // A fresh deployment without status, replicas defaulted.
        let c = cells("Deployment", json!({"metadata": {"name": "d"}, "spec": {}}));
        assert_eq!(c[1], "0/1");
        assert_eq!(c[2], 0);
        assert_eq!(c[7], "");
        let c = cells(
            "Deployment",
            json!({"metadata": {"name": "d"}, "spec": {"replicas": 0}}),
        );
        assert_eq!(c[1], "0/0");
    }

    #[test]
    fn replica_set_daemon_set_stateful_set() {
        let c = cells(
            "ReplicaSet",
            json!({"metadata": {"name": "web-5d4"}, "spec": {"replicas": 2, "selector": {"matchLabels":
                   {"app": "web", "pod-template-hash": "5d4"}}, "template": template()},
                   "status": {"replicas": 2, "readyReplicas": 1}}),
        );
        assert_eq!(c[1..4], [json!(2), json!(2), json!(1)]);
        assert_eq!(c[7], "app=web,pod-template-hash=5d4");

        let c = cells(
            "DaemonSet",
            json!({"metadata": {"name": "proxy"}, "spec": {"selector": {"matchLabels": {"k": "v"}},
                   "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": []}}},
                   "status": {"desiredNumberScheduled": 1, "currentNumberScheduled": 1, "numberReady": 1,
                              "updatedNumberScheduled": 1, "numberAvailable": 1}}),
        );
        assert_eq!(
            c[1..7],
            [
                json!(1),
                json!(1),
                json!(1),
                json!(1),
                json!(1),
                json!("kubernetes.io/os=linux")
            ]
        );
        assert_eq!(c[10], "k=v");
        let c = cells("DaemonSet", json!({"metadata": {"name": "p"}, "spec": {}}));
        assert_eq!(c[6], "<none>");
        assert_eq!(c[10], "<none>");

        let c = cells(
            "StatefulSet",
            json!({"metadata": {"name": "db"}, "spec": {"replicas": 3, "template": template()}, "status": {"readyReplicas": 3}}),
        );
        assert_eq!(c[1], "3/3");
        assert_eq!(c.len(), 5);
    }

    #[test]
    fn controller_revision_owner() {
        let c = cells(
            "ControllerRevision",
            json!({"metadata": {"name": "db-7f", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": true}]}, "revision": 2}),
        );
        assert_eq!(c[1], "statefulset.apps/db");
        assert_eq!(c[2], 2);
        let c = cells(
            "ControllerRevision",
            json!({"metadata": {"name": "r"}, "revision": 1}),
        );
        assert_eq!(c[1], "<none>");
        let c = cells(
            "ControllerRevision",
            json!({"metadata": {"name": "r", "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p", "controller": true}]}}),
        );
        assert_eq!(c[1], "pod/p");
    }
}
