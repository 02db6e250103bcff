//! The Event table, for both core/v1 Events and events.k8s.io/v1 Events
//! (which use different field names for the same data).

use jiff::Timestamp;
use serde_json::{json, Value};

use super::age::{since, time_at};
use super::columns::{col, name, wide, Col, Printer, Row, NAME_DESCRIPTION};
use super::value::{get, int_at, opt_int, opt_str, str_at};

// ---- Event (core/v1 and events.k8s.io/v1) ----

const EVENT: &[Col] = &[
    col(
        "Last Seen",
        "string",
        "The time the event was last observed.",
    ),
    col("Type", "string", "Type of this event (Normal, Warning)."),
    col(
        "Reason",
        "string",
        "A short, machine understandable reason for the event.",
    ),
    col("Object", "string", "The object this event is about."),
    wide(
        "Subobject",
        "string",
        "The part of the object this event is about, if any.",
    ),
    wide("Source", "string", "The component reporting this event."),
    col(
        "Message",
        "string",
        "A human-readable description of the event.",
    ),
    wide(
        "First Seen",
        "string",
        "The time the event was first observed.",
    ),
    wide(
        "Count",
        "string",
        "The number of times this event has occurred.",
    ),
    Col {
        name: "Name",
        type_: "string",
        format: "name",
        description: NAME_DESCRIPTION,
        priority: 1,
    },
];

pub(super) const EVENT_PRINTER: Printer = Printer::new(EVENT, event);

/// Reads an Event of either API: core/v1 field names first, then the
/// events.k8s.io/v1 ones.
fn event(ev: &Value, now: Timestamp) -> Row {
    let first_of = |paths: &[&[&str]]| paths.iter().find_map(|p| time_at(ev, p));
    let event_time = time_at(ev, &["eventTime"]);
    let first_ts = first_of(&[&["firstTimestamp"], &["deprecatedFirstTimestamp"]]);
    let last_ts = first_of(&[&["lastTimestamp"], &["deprecatedLastTimestamp"]]);

    let first_seen = match first_ts {
        Some(t) => since(Some(t), now),
        None => since(event_time, now),
    };
    let mut last_seen = match last_ts {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = opt_int(ev, &["count"])
        .or_else(|| opt_int(ev, &["deprecatedCount"]))
        .unwrap_or(0);
    if let Some(series) = get(ev, &["series"]) {
        last_seen = since(time_at(series, &["lastObservedTime"]), now);
        count = int_at(series, &["count"]);
    } else if count == 0 {
        count = 1;
    }

    let regarding = get(ev, &["involvedObject"]).or_else(|| get(ev, &["regarding"]));
    let (obj_kind, obj_name, field_path) = match regarding {
        Some(r) => (
            str_at(r, &["kind"]),
            str_at(r, &["name"]),
            str_at(r, &["fieldPath"]),
        ),
        None => ("", "", ""),
    };
    let target = if obj_name.is_empty() {
        obj_kind.to_lowercase()
    } else {
        format!("{}/{obj_name}", obj_kind.to_lowercase())
    };

    let source = get(ev, &["source"]).or_else(|| get(ev, &["deprecatedSource"]));
    let pick = |a: &str, b: &'static [&'static str]| {
        let a = source.map(|s| str_at(s, &[a])).unwrap_or("");
        if a.is_empty() {
            str_at(ev, b).to_string()
        } else {
            a.to_string()
        }
    };
    let component = pick("component", &["reportingController"]);
    let instance = pick("host", &["reportingInstance"]);
    let source_text = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };

    let message = opt_str(ev, &["message"])
        .or_else(|| opt_str(ev, &["note"]))
        .unwrap_or("");
    Row::new(vec![
        json!(last_seen),
        json!(str_at(ev, &["type"])),
        json!(str_at(ev, &["reason"])),
        json!(target),
        json!(field_path),
        json!(source_text),
        json!(message.trim()),
        json!(first_seen),
        json!(count),
        json!(name(ev)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::columns::test_support::now;
    use serde_json::json;


    fn cells(p: Printer, obj: Value) -> Vec<Value> {
        let r = (p.row)(&obj, now());
        assert_eq!(r.cells.len(), p.columns.len());
        r.cells
    }

    #[test]
    fn core_event() {
        let c = cells(
            EVENT_PRINTER,
            json!({"metadata": {"name": "web.17a", "namespace": "default"},
                   "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
                   "reason": "Pulled", "message": "Successfully pulled image\n", "type": "Normal",
                   "source": {"component": "kubelet", "host": "node1"},
                   "firstTimestamp": "2024-05-01T11:00:00Z", "lastTimestamp": "2024-05-01T11:55:00Z", "count": 3}),
        );
        assert_eq!(
            c,
            vec![
                json!("5m"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web"),
                json!("spec.containers{app}"),
                json!("kubelet, node1"),
                json!("Successfully pulled image"),
                json!("60m"),
                json!(3),
                json!("web.17a")
            ]
        );
    }

    #[test]
    fn events_k8s_io_event() {
        let c = cells(
            EVENT_PRINTER,
            json!({"metadata": {"name": "e1"}, "eventTime": "2024-05-01T11:59:00.000000Z",
                   "regarding": {"kind": "Node", "name": "n1"}, "note": "Starting kubelet.", "type": "Normal",
                   "reason": "Starting", "reportingController": "kubelet", "reportingInstance": "n1"}),
        );
        assert_eq!(c[0], "60s");
        assert_eq!(c[3], "node/n1");
        assert_eq!(c[5], "kubelet, n1");
        assert_eq!(c[6], "Starting kubelet.");
        assert_eq!(c[7], "60s");
        assert_eq!(c[8], 1);
        let c = cells(
            EVENT_PRINTER,
            json!({"metadata": {"name": "e2"}, "eventTime": "2024-05-01T11:00:00.000000Z",
                   "series": {"count": 7, "lastObservedTime": "2024-05-01T11:58:00.000000Z"},
                   "regarding": {"kind": "Namespace"}, "reportingController": "ctl"}),
        );
        assert_eq!(c[0], "2m");
        assert_eq!(c[3], "namespace");
        assert_eq!(c[5], "ctl");
        assert_eq!(c[8], 7);
        let c = cells(EVENT_PRINTER, json!({"metadata": {"name": "e3"}}));
        assert_eq!(c[0], "<unknown>");
    }
}
