//! Column definitions, the printer type every kind implements, and cell
//! helpers shared by several kinds (label maps, label selectors, container
//! lists).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::age::{rfc3339, time_at};
use super::value::{arr_at, get, obj_at, str_at};

/// One column definition (`name`, `type`, `format`, `description`,
/// `priority`); priority 1 columns are shown only with `-o wide`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Col {
    pub name: &'static str,
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

impl Col {
    pub(super) fn to_json(self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// A column shown by default.
pub(super) const fn col(name: &'static str, type_: &'static str, description: &'static str) -> Col {
    Col {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

/// A column shown only with `-o wide`.
pub(super) const fn wide(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
) -> Col {
    Col {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

pub(super) const NAME_DESCRIPTION: &str =
    "Name must be unique within a namespace. It is the object's identifier among its kind.";
pub(super) const AGE_DESCRIPTION: &str =
    "CreationTimestamp is the time the server created this object, shown as the time elapsed since then.";

pub(super) const NAME: Col = Col {
    name: "Name",
    type_: "string",
    format: "name",
    description: NAME_DESCRIPTION,
    priority: 0,
};
pub(super) const AGE: Col = col("Age", "string", AGE_DESCRIPTION);
pub(super) const CONTAINERS: Col = wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
pub(super) const IMAGES: Col = wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

/// The cells (and optional row conditions) of one row.
pub(super) struct Row {
    pub cells: Vec<Value>,
    pub conditions: Option<Value>,
}

impl Row {
    pub(super) fn new(cells: Vec<Value>) -> Row {
        Row {
            cells,
            conditions: None,
        }
    }
}

/// How one kind prints: its columns, one row per object, and optionally
/// the order upstream's list printer puts the objects in.
#[derive(Clone, Copy)]
pub(super) struct Printer {
    pub columns: &'static [Col],
    pub row: fn(&Value, Timestamp) -> Row,
    pub order: Option<fn(&Value, &Value) -> Ordering>,
}

impl Printer {
    pub(super) const fn new(columns: &'static [Col], row: fn(&Value, Timestamp) -> Row) -> Printer {
        Printer {
            columns,
            row,
            order: None,
        }
    }
}

/// Upstream's table for kinds without a printer: Name and the creation
/// time as an RFC 3339 string.
pub(super) const DEFAULT_PRINTER: Printer = Printer::new(
    &[
        NAME,
        col(
            "Created At",
            "date",
            "CreationTimestamp is the time the server created this object.",
        ),
    ],
    default_row,
);

fn default_row(obj: &Value, _now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(obj)),
        json!(rfc3339(time_at(obj, &["metadata", "creationTimestamp"]))),
    ])
}

/// `metadata.name`.
pub(super) fn name(obj: &Value) -> &str {
    str_at(obj, &["metadata", "name"])
}

/// Upstream's `labels.FormatLabels`: `k=v` pairs sorted by key and joined
/// with commas, `<none>` for an empty map.
pub(super) fn format_labels(obj: &Value, path: &[&str]) -> String {
    let pairs: BTreeMap<&str, String> = obj_at(obj, path)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str(), label_value(v)))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn label_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Upstream's `LabelSelectorAsSelector(sel).String()`: requirements sorted by
/// key, `k=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`; an unset or empty
/// selector prints as "". `Err` for an operator upstream rejects.
pub(super) fn selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = sel else {
        return Ok(String::new());
    };
    if !sel.is_object() {
        return Err(());
    }
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(labels) = obj_at(sel, &["matchLabels"]) {
        for (k, v) in labels {
            reqs.push((k.clone(), format!("{k}={}", label_value(v))));
        }
    }
    for expr in arr_at(sel, &["matchExpressions"]) {
        let key = str_at(expr, &["key"]);
        let mut values: Vec<String> = arr_at(expr, &["values"]).iter().map(label_value).collect();
        values.sort();
        let text = match str_at(expr, &["operator"]) {
            "In" if !values.is_empty() => format!("{key} in ({})", values.join(",")),
            "NotIn" if !values.is_empty() => format!("{key} notin ({})", values.join(",")),
            "Exists" if values.is_empty() => key.to_string(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(","))
}

/// Upstream's `FormatLabelSelector`: like [`selector_string`] but `<none>`
/// for an empty result and `<error>` for an invalid selector.
pub(super) fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Err(()) => "<error>".to_string(),
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
    }
}

/// Container names and images of a pod spec, each joined with commas.
pub(super) fn containers_cells(pod_spec: Option<&Value>) -> (Value, Value) {
    let containers = pod_spec.map(|s| arr_at(s, &["containers"])).unwrap_or(&[]);
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (json!(names.join(",")), json!(images.join(",")))
}

/// `spec.template.spec` of a workload.
pub(super) fn template_spec(obj: &Value) -> Option<&Value> {
    get(obj, &["spec", "template", "spec"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sorted_or_none() {
        let v = json!({"m": {"b": "2", "a": "1"}});
        assert_eq!(format_labels(&v, &["m"]), "a=1,b=2");
        assert_eq!(format_labels(&v, &["x"]), "<none>");
    }

    #[test]
    fn selectors() {
        let sel = json!({
            "matchLabels": {"app": "web", "tier": "fe"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "zz", "operator": "DoesNotExist"},
                {"key": "b", "operator": "Exists"},
                {"key": "c", "operator": "NotIn", "values": ["x"]}
            ]
        });
        assert_eq!(
            selector_string(Some(&sel)),
            Ok("app=web,b,c notin (x),env in (dev,prod),tier=fe,!zz".to_string())
        );
        assert_eq!(selector_string(None), Ok(String::new()));
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]});
        assert_eq!(format_label_selector(Some(&bad)), "<error>");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "Near"}]});
        assert!(selector_string(Some(&bad)).is_err());
    }
}

/// Shared fixtures for the printers' tests.
#[cfg(test)]
pub(super) mod test_support {
    use super::Printer;
    use jiff::Timestamp;
    use serde_json::Value;

    /// The fixed "now" every printer test measures ages against.
    pub fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// The row cells `printer` makes for `obj`, checking there is one per
    /// column; no printer gives no cells. `label` names the case on failure.
    pub fn cells(printer: Option<Printer>, obj: &Value, label: &str) -> Vec<Value> {
        match printer {
            Some(p) => {
                let r = (p.row)(obj, now());
                assert_eq!(r.cells.len(), p.columns.len(), "{label}");
                r.cells
            }
            None => Vec::new(),
        }
    }
}
