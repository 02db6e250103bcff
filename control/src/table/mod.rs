//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get`
//! asks for with `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! Owns: the column definitions and cell values of every built-in kind,
//! matching the columns upstream's server-side printers produce (all columns,
//! including the `priority: 1` ones that `kubectl` shows only with `-o wide`),
//! the custom-resource table built from a CRD's `additionalPrinterColumns`
//! (with the small JSONPath evaluator those columns need), the fallback
//! `Name` / `Created At` table for anything else, upstream's human-readable
//! durations ("3m10s", "5h20m", "2y100d"), and the `object` carried by each
//! row according to `?includeObject=`.
//!
//! Must not: read the store, decide which items are listed, or set list
//! metadata — the caller passes the items (already selected and ordered) and
//! sets `metadata.resourceVersion` / `metadata.continue` on the returned
//! table. Nothing here panics on malformed objects: a missing or mistyped
//! field prints the way upstream prints a zero value.

mod age;
mod apps;
mod batch;
mod columns;
mod core;
mod crd;
mod event;
pub mod jsonpath;
mod networking;
mod other;
mod pod;
mod service;
mod storage;
mod value;

use jiff::Timestamp;
use serde_json::{json, Map, Value};

pub use age::human_duration;
pub use jsonpath::JsonPathError;

use columns::{Col, Printer, Row};

/// What each row's `object` holds (`?includeObject=`; upstream's default for
/// tables is `Metadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No `object` on the rows.
    None,
    /// A `meta.k8s.io/v1` `PartialObjectMetadata` with the item's metadata.
    #[default]
    Metadata,
    /// The whole item as given.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter value (`None`, `Metadata`,
    /// `Object`); an empty value means the default.
    pub fn parse(value: &str) -> Option<IncludeObject> {
        match value {
            "" | "Metadata" => Some(IncludeObject::Metadata),
            "None" => Some(IncludeObject::None),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }
}

/// One `additionalPrinterColumns` entry of a CRD version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
    pub json_path: String,
}

/// Builds the `Table` for `items` of `group`/`kind` (group `""` is core).
///
/// `crd_columns` is `Some` for custom resources (the served version's
/// `additionalPrinterColumns`; an empty slice gives upstream's default `Age`
/// column) and `None` for built-in kinds; a built-in kind this module does not
/// know gets upstream's default `Name` / `Created At` table. `now` is the time
/// ages are measured against.
pub fn table(
    group: &str,
    kind: &str,
    items: &[Value],
    crd_columns: Option<&[PrinterColumn]>,
    include: IncludeObject,
    now: Timestamp,
) -> Value {
    let mut ordered: Vec<&Value> = items.iter().collect();
    let (column_definitions, rows): (Vec<Value>, Vec<Row>) = match crd_columns {
        Some(columns) => {
            let columns = crd::effective_columns(columns);
            let compiled = crd::compile(&columns);
            let rows = ordered
                .iter()
                .map(|item| crd::row(item, &compiled, now))
                .collect();
            (crd::column_definitions(&columns), rows)
        }
        None => {
            let printer = lookup(group, kind).unwrap_or(columns::DEFAULT_PRINTER);
            if let Some(order) = printer.order {
                // Upstream's list printer sorts these (FlowSchemas by precedence).
                ordered.sort_by(|a, b| order(a, b));
            }
            let rows = ordered
                .iter()
                .map(|item| (printer.row)(item, now))
                .collect();
            (
                printer.columns.iter().copied().map(Col::to_json).collect(),
                rows,
            )
        }
    };
    let rows: Vec<Value> = rows
        .into_iter()
        .zip(ordered)
        .map(|(row, item)| row_json(row, item, include))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

fn lookup(group: &str, kind: &str) -> Option<Printer> {
    match group {
        "" | "core" => {
            if kind == "Pod" {
                Some(pod::PRINTER)
            } else {
                core::lookup(kind)
            }
        }
        "apps" => apps::lookup(kind),
        "batch" => batch::lookup(kind),
        _ => other::lookup(group, kind),
    }
}

fn row_json(row: Row, item: &Value, include: IncludeObject) -> Value {
    let mut out = Map::new();
    out.insert("cells".into(), Value::Array(row.cells));
    if let Some(conditions) = row.conditions {
        out.insert("conditions".into(), conditions);
    }
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            let metadata = match item.get("metadata") {
                Some(m @ Value::Object(_)) => m.clone(),
                _ => json!({}),
            };
            out.insert(
                "object".into(),
                json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": metadata,
                }),
            );
        }
        IncludeObject::Object => {
            out.insert("object".into(), item.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::columns::test_support::now;


    fn names(t: &Value) -> Vec<String> {
        t["columnDefinitions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| c["name"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn table_envelope_and_partial_metadata() {
        let items = vec![json!({
            "metadata": {"name": "cm1", "namespace": "default", "creationTimestamp": "2024-05-01T11:55:00Z",
                          "labels": {"a": "b"}},
            "data": {"x": "1", "y": "2"}, "binaryData": {"z": "AA=="}
        })];
        let t = table(
            "",
            "ConfigMap",
            &items,
            None,
            IncludeObject::Metadata,
            now(),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], json!({}));
        assert_eq!(names(&t), ["Name", "Data", "Age"]);
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        assert_eq!(t["columnDefinitions"][0]["priority"], 0);
        assert_eq!(t["rows"][0]["cells"], json!(["cm1", 3, "5m"]));
        let obj = &t["rows"][0]["object"];
        assert_eq!(obj["kind"], "PartialObjectMetadata");
        assert_eq!(obj["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(obj["metadata"]["labels"]["a"], "b");
        assert!(obj.get("data").is_none());
    }

    #[test]
    fn include_object_none_and_object() {
        let items = vec![
            json!({"kind": "Namespace", "metadata": {"name": "ns"}, "status": {"phase": "Active"}}),
        ];
        let t = table("", "Namespace", &items, None, IncludeObject::None, now());
        assert!(t["rows"][0].get("object").is_none());
        assert_eq!(t["rows"][0]["cells"], json!(["ns", "Active", "<unknown>"]));
        let t = table("", "Namespace", &items, None, IncludeObject::Object, now());
        assert_eq!(t["rows"][0]["object"], items[0]);
    }

    #[test]
    fn empty_list_has_empty_rows() {
        let t = table(
            "apps",
            "Deployment",
            &[],
            None,
            IncludeObject::Metadata,
            now(),
        );
        assert_eq!(t["rows"], json!([]));
        assert_eq!(
            names(&t)[..5],
            ["Name", "Ready", "Up-to-date", "Available", "Age"]
        );
    }

    #[test]
    fn unknown_kind_gets_name_and_created_at() {
        let items = vec![
            json!({"metadata": {"name": "r", "creationTimestamp": "2024-01-02T03:04:05+01:00"}}),
        ];
        let t = table(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            &items,
            None,
            IncludeObject::None,
            now(),
        );
        assert_eq!(names(&t), ["Name", "Created At"]);
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert_eq!(t["rows"][0]["cells"], json!(["r", "2024-01-02T02:04:05Z"]));
        let t = table(
            "",
            "LimitRange",
            &[json!({"metadata": {"name": "l"}})],
            None,
            IncludeObject::None,
            now(),
        );
        assert_eq!(t["rows"][0]["cells"], json!(["l", "0001-01-01T00:00:00Z"]));
    }

    #[test]
    fn include_object_parse() {
        assert_eq!(IncludeObject::parse(""), Some(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse("None"), Some(IncludeObject::None));
        assert_eq!(IncludeObject::parse("Object"), Some(IncludeObject::Object));
        assert_eq!(IncludeObject::parse("object"), None);
    }

    #[test]
    fn malformed_items_do_not_panic() {
        let junk = vec![
            json!(null),
            json!(5),
            json!({"metadata": 3, "spec": "x", "status": []}),
        ];
        for (g, k) in [
            ("", "Pod"),
            ("", "Service"),
            ("", "Node"),
            ("", "Event"),
            ("events.k8s.io", "Event"),
            ("", "Endpoints"),
            ("", "PersistentVolume"),
            ("", "PersistentVolumeClaim"),
            ("", "ResourceQuota"),
            ("apps", "Deployment"),
            ("apps", "DaemonSet"),
            ("apps", "ControllerRevision"),
            ("batch", "Job"),
            ("batch", "CronJob"),
            ("networking.k8s.io", "Ingress"),
            ("autoscaling", "HorizontalPodAutoscaler"),
            ("discovery.k8s.io", "EndpointSlice"),
            ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
            ("x.example.com", "Thing"),
        ] {
            let t = table(g, k, &junk, None, IncludeObject::Metadata, now());
            let width = t["columnDefinitions"].as_array().map(Vec::len).unwrap_or(0);
            for row in t["rows"].as_array().into_iter().flatten() {
                assert_eq!(
                    row["cells"].as_array().map(Vec::len),
                    Some(width),
                    "{g}/{k}"
                );
            }
        }
        let cols = vec![PrinterColumn {
            name: "X".into(),
            type_: "integer".into(),
            json_path: ".spec.x[?(@.a==1)].b".into(),
            ..Default::default()
        }];
        let t = table(
            "x.example.com",
            "Thing",
            &junk,
            Some(&cols),
            IncludeObject::Metadata,
            now(),
        );
        assert_eq!(t["rows"].as_array().map(Vec::len), Some(3));
    }
}
