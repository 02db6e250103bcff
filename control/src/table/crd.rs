//! The table of custom resources: Name plus the CRD version's
//! `additionalPrinterColumns` (upstream's default `Age` column when there
//! are none), each cell the first JSONPath result rendered per column type.

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::age::{parse_time, since};
use super::columns::{name, Row, NAME};
use super::jsonpath::Path;
use super::PrinterColumn;

/// The columns actually served: the given ones, or `Age` when none.
pub(super) fn effective_columns(columns: &[PrinterColumn]) -> Vec<PrinterColumn> {
    if !columns.is_empty() {
        return columns.to_vec();
    }
    vec![PrinterColumn {
        name: "Age".to_string(),
        type_: "date".to_string(),
        format: String::new(),
        description: super::columns::AGE_DESCRIPTION.to_string(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".to_string(),
    }]
}

pub(super) fn column_definitions(columns: &[PrinterColumn]) -> Vec<Value> {
    let mut defs = vec![NAME.to_json()];
    for c in columns {
        let description = if c.description.is_empty() {
            format!(
                "Custom resource definition column (in JSONPath format): {}",
                c.json_path
            )
        } else {
            c.description.clone()
        };
        defs.push(json!({
            "name": c.name,
            "type": c.type_,
            "format": c.format,
            "description": description,
            "priority": c.priority,
        }));
    }
    defs
}

/// A column with its parsed path (`None` when the path does not parse:
/// such a column prints empty cells).
pub(super) struct Compiled {
    type_: String,
    path: Option<Path>,
}

pub(super) fn compile(columns: &[PrinterColumn]) -> Vec<Compiled> {
    columns
        .iter()
        .map(|c| Compiled {
            type_: c.type_.clone(),
            path: Path::parse(&c.json_path).ok(),
        })
        .collect()
}

pub(super) fn row(obj: &Value, columns: &[Compiled], now: Timestamp) -> Row {
    let mut cells = vec![json!(name(obj))];
    for c in columns {
        let first = c.path.as_ref().and_then(|p| p.eval(obj).into_iter().next());
        cells.push(match first {
            Some(v) => cell(&c.type_, &v, now),
            None => Value::Null,
        });
    }
    Row::new(cells)
}

/// One cell for a value of a column of type `type_`.
fn cell(type_: &str, v: &Value, now: Timestamp) -> Value {
    match (type_, v) {
        (_, Value::Null) => Value::Null,
        ("string", _) => json!(text(v)),
        ("integer", Value::Number(n)) => match n.as_i64() {
            Some(i) => json!(i),
            // Truncation toward zero, saturating, like Go's int64(float64).
            None => n.as_f64().map(|f| json!(f as i64)).unwrap_or(Value::Null),
        },
        ("number", Value::Number(n)) => n.as_f64().map(|f| json!(f)).unwrap_or(Value::Null),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(s)) => {
            if s.is_empty() || s == "null" {
                json!("<unknown>")
            } else {
                match parse_time(s) {
                    Some(t) => json!(since(Some(t), now)),
                    None => json!("<invalid>"),
                }
            }
        }
        _ => Value::Null,
    }
}

/// A value printed as upstream's JSONPath printer does: scalars as text,
/// objects and arrays as compact JSON with sorted keys.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => n.as_f64().map(go_float).unwrap_or_default(),
        },
        Value::Null => String::new(),
        Value::Array(_) | Value::Object(_) => go_json(&sorted(v)),
    }
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                if let Some(child) = map.get(k) {
                    out.insert(k.clone(), sorted(child));
                }
            }
            Value::Object(out)
        }
        Value::Array(list) => Value::Array(list.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Compact JSON with Go's HTML-safe escaping of `<`, `>`, `&`.
fn go_json(v: &Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A float as Go's `%v` prints it: shortest digits, exponent form
/// (`1.5e+06`, `1e-05`) when the exponent is below -4 or at least 6.
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".to_string();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => return sci,
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::{table, IncludeObject};
    use super::*;
    use crate::table::columns::test_support::now;


    fn column(name: &str, type_: &str, path: &str) -> PrinterColumn {
        PrinterColumn {
            name: name.into(),
            type_: type_.into(),
            json_path: path.into(),
            ..Default::default()
        }
    }

    fn certificate() -> Value {
        json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "web-tls", "creationTimestamp": "2024-05-01T10:00:00Z"},
            "spec": {"secretName": "web-tls", "dnsNames": ["a.example.com", "b.example.com"], "replicas": 2.0},
            "status": {"conditions": [
                {"type": "Issuing", "status": "False"},
                {"type": "Ready", "status": "True", "message": "Certificate is up to date and has not expired",
                 "lastTransitionTime": "2024-05-01T11:30:00Z"}
            ], "ratio": 0.25, "renewed": true}
        })
    }

    #[test]
    fn crd_columns_with_filter_jsonpath() {
        let mut ready = column(
            "Ready",
            "string",
            ".status.conditions[?(@.type==\"Ready\")].status",
        );
        ready.description = "Whether the certificate is ready".into();
        let mut message = column(
            "Status",
            "string",
            ".status.conditions[?(@.type==\"Ready\")].message",
        );
        message.priority = 1;
        let cols = vec![
            ready,
            column("Secret", "string", ".spec.secretName"),
            message,
            column(
                "Since",
                "date",
                ".status.conditions[?(@.type=='Ready')].lastTransitionTime",
            ),
            column("Age", "date", ".metadata.creationTimestamp"),
        ];
        let t = table(
            "cert-manager.io",
            "Certificate",
            &[certificate()],
            Some(&cols),
            IncludeObject::Metadata,
            now(),
        );
        let defs = &t["columnDefinitions"];
        assert_eq!(defs[0]["name"], "Name");
        assert_eq!(defs[0]["format"], "name");
        assert_eq!(
            defs[1],
            json!({"name": "Ready", "type": "string", "format": "",
                                   "description": "Whether the certificate is ready", "priority": 0})
        );
        assert_eq!(
            defs[2]["description"],
            "Custom resource definition column (in JSONPath format): .spec.secretName"
        );
        assert_eq!(defs[3]["priority"], 1);
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "web-tls",
                "True",
                "web-tls",
                "Certificate is up to date and has not expired",
                "30m",
                "120m"
            ])
        );
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn crd_without_columns_gets_age() {
        let t = table(
            "x.io",
            "Thing",
            &[certificate()],
            Some(&[]),
            IncludeObject::None,
            now(),
        );
        assert_eq!(t["columnDefinitions"].as_array().map(Vec::len), Some(2));
        assert_eq!(t["columnDefinitions"][1]["name"], "Age");
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert_eq!(t["rows"][0]["cells"], json!(["web-tls", "120m"]));
    }

    #[test]
    fn typed_cells() {
        let cols = vec![
            column("Replicas", "integer", ".spec.replicas"),
            column("Ratio", "number", ".status.ratio"),
            column("Renewed", "boolean", ".status.renewed"),
            column("Names", "string", ".spec.dnsNames"),
            column("First", "string", ".spec.dnsNames[0]"),
            column("Missing", "string", ".spec.nothing"),
            column("WrongType", "boolean", ".spec.secretName"),
            column("BadDate", "date", ".spec.secretName"),
            column("Cond", "string", ".status.conditions[1]"),
            column("BadPath", "string", ".spec[?("),
        ];
        let t = table(
            "x.io",
            "Thing",
            &[certificate()],
            Some(&cols),
            IncludeObject::None,
            now(),
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "web-tls", 2, 0.25, true, "[\"a.example.com\",\"b.example.com\"]", "a.example.com", null, null,
                "<invalid>",
                "{\"lastTransitionTime\":\"2024-05-01T11:30:00Z\",\"message\":\"Certificate is up to date and has not expired\",\"status\":\"True\",\"type\":\"Ready\"}",
                null
            ])
        );
    }

    #[test]
    fn text_rendering_like_go() {
        assert_eq!(text(&json!(3)), "3");
        assert_eq!(text(&json!(0.5)), "0.5");
        assert_eq!(text(&json!(1.5e6)), "1.5e+06");
        assert_eq!(text(&json!(123456.5)), "123456.5");
        assert_eq!(text(&json!(0.00001)), "1e-05");
        assert_eq!(text(&json!(0.0001)), "0.0001");
        assert_eq!(text(&json!(false)), "false");
        assert_eq!(
            text(&json!({"b": "<x>", "a": 1})),
            "{\"a\":1,\"b\":\"\\u003cx\\u003e\"}"
        );
    }
}
