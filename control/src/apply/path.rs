//! Path elements of field sets: their total order, their `fieldsV1` key
//! form (`f:name`, `k:{...}`, `v:...`, `i:N`) and their human form
//! (`.spec.containers[name="web"].image`), all as upstream renders them.

use crate::goquote::go_quote;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::fmt;

/// A JSON value ordered the way structured-merge-diff orders values:
/// numbers (compared numerically, ints and floats alike) < strings <
/// booleans < lists < maps < null.
#[derive(Debug, Clone)]
pub struct Scalar(pub Value);

impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        compare_values(&self.0, &other.0) == Ordering::Equal
    }
}
impl Eq for Scalar {}
impl PartialOrd for Scalar {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scalar {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_values(&self.0, &other.0)
    }
}

/// One step of a field path.
///
/// The derived order (field < key < value < index, then by content) is
/// the order upstream sorts and serialises sets in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathElement {
    /// A field of a struct or a key of a map: `f:name`.
    Field(String),
    /// An item of an associative (map) list, by its key fields sorted by name: `k:{"name":"web"}`.
    Key(Vec<(String, Scalar)>),
    /// An item of a set list, by value: `v:"x"`.
    Value(Scalar),
    /// An item of a list by position: `i:0` (only read, never produced).
    Index(i64),
}

impl PathElement {
    pub fn field(name: &str) -> Self {
        PathElement::Field(name.to_string())
    }

    /// The key of this element in `fieldsV1`.
    pub fn to_fields_v1_key(&self) -> String {
        let mut out = String::new();
        match self {
            PathElement::Field(name) => {
                out.push_str("f:");
                out.push_str(name);
            }
            PathElement::Key(fields) => {
                out.push_str("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    go_json_string(name, &mut out);
                    out.push(':');
                    go_json(&value.0, &mut out);
                }
                out.push('}');
            }
            PathElement::Value(value) => {
                out.push_str("v:");
                go_json(&value.0, &mut out);
            }
            PathElement::Index(i) => {
                out.push_str("i:");
                out.push_str(&i.to_string());
            }
        }
        out
    }

    /// Parse a `fieldsV1` key (everything but `.`).
    pub fn parse_fields_v1_key(key: &str) -> Result<Self, String> {
        let Some((kind, rest)) = key.split_once(':') else {
            return Err(format!("invalid path element {key:?}: no type prefix"));
        };
        match kind {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => {
                let parsed: Value = serde_json::from_str(rest)
                    .map_err(|e| format!("invalid key in path element {key:?}: {e}"))?;
                let Value::Object(map) = parsed else {
                    return Err(format!("invalid key in path element {key:?}: not an object"));
                };
                let mut fields: Vec<(String, Scalar)> =
                    map.into_iter().map(|(k, v)| (k, Scalar(v))).collect();
                fields.sort();
                Ok(PathElement::Key(fields))
            }
            "v" => serde_json::from_str(rest)
                .map(|v| PathElement::Value(Scalar(v)))
                .map_err(|e| format!("invalid value in path element {key:?}: {e}")),
            "i" => rest
                .parse::<i64>()
                .map(PathElement::Index)
                .map_err(|e| format!("invalid index in path element {key:?}: {e}")),
            other => Err(format!("invalid path element {key:?}: unknown type prefix {other:?}")),
        }
    }
}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(name, value)| format!("{name}={}", go_to_string(&value.0)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(value) => write!(f, "[={}]", go_to_string(&value.0)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path as upstream prints it in conflicts: `.spec.containers[name="web"].image`.
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// The total order of values used for keys and sets.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                let c = compare_values(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => compare_maps(x, y),
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Deep equality with numbers compared numerically (`1 == 1.0`).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    compare_values(a, b) == Ordering::Equal
}

fn compare_numbers(x: &serde_json::Number, y: &serde_json::Number) -> Ordering {
    fn as_int(n: &serde_json::Number) -> Option<i128> {
        n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
    }
    match (as_int(x), as_int(y)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => {
            let a = x.as_f64().unwrap_or(0.0);
            let b = y.as_f64().unwrap_or(0.0);
            a.partial_cmp(&b).unwrap_or(Ordering::Equal)
        }
    }
}

fn compare_maps(x: &Map<String, Value>, y: &Map<String, Value>) -> Ordering {
    let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        match (x.get(key.as_str()), y.get(key.as_str())) {
            (None, _) => return Ordering::Greater,
            (_, None) => return Ordering::Less,
            (Some(a), Some(b)) => {
                let c = compare_values(a, b);
                if c != Ordering::Equal {
                    return c;
                }
            }
        }
    }
    Ordering::Equal
}

/// JSON the way Go's encoding/json writes it: map keys sorted, `<`, `>`,
/// `&`, U+2028 and U+2029 escaped, floats without a trailing `.0`.
pub fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                out.push_str(&go_float(n.as_f64().unwrap_or(0.0), true));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => go_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(key, out);
                out.push(':');
                if let Some(value) = map.get(key.as_str()) {
                    go_json(value, out);
                }
            }
            out.push('}');
        }
    }
}

pub fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's formatting of a float64: `%v` (json = false) or encoding/json (json = true).
fn go_float(f: f64, json: bool) -> String {
    let abs = f.abs();
    let exponent_form = if json {
        abs != 0.0 && !(1e-6..1e21).contains(&abs)
    } else {
        abs != 0.0 && !(1e-4..1e21).contains(&abs)
    };
    if !exponent_form {
        if f == f.trunc() {
            return format!("{f:.0}");
        }
        return format!("{f}");
    }
    let formatted = format!("{f:e}");
    let Some((mantissa, exp)) = formatted.split_once('e') else {
        return formatted;
    };
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    if json || digits.len() >= 2 {
        format!("{mantissa}e{sign}{digits}")
    } else {
        format!("{mantissa}e{sign}0{digits}")
    }
}

/// structured-merge-diff's `value.ToString`, used in key path elements.
fn go_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.is_f64() => go_float(n.as_f64().unwrap_or(0.0), false),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(go_to_string).collect::<Vec<_>>().join(","))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.into_iter()
                .filter_map(|k| map.get(k.as_str()).map(|v| format!("{k}={}", go_to_string(v))))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(pairs: &[(&str, Value)]) -> PathElement {
        PathElement::Key(pairs.iter().map(|(k, v)| (k.to_string(), Scalar(v.clone()))).collect())
    }

    #[test]
    fn renders_like_upstream() {
        let path = vec![
            PathElement::field("spec"),
            PathElement::field("containers"),
            key(&[("name", json!("web"))]),
            PathElement::field("image"),
        ];
        assert_eq!(path_string(&path), ".spec.containers[name=\"web\"].image");
        let ports = key(&[("containerPort", json!(80)), ("protocol", json!("TCP"))]);
        assert_eq!(ports.to_string(), "[containerPort=80,protocol=\"TCP\"]");
        assert_eq!(ports.to_fields_v1_key(), "k:{\"containerPort\":80,\"protocol\":\"TCP\"}");
        let set_item = PathElement::Value(Scalar(json!("example.com/x")));
        assert_eq!(set_item.to_string(), "[=\"example.com/x\"]");
        assert_eq!(set_item.to_fields_v1_key(), "v:\"example.com/x\"");
        assert_eq!(PathElement::Value(Scalar(json!("<&>"))).to_fields_v1_key(), "v:\"\\u003c\\u0026\\u003e\"");
    }

    #[test]
    fn parses_what_it_renders() {
        for pe in [
            PathElement::field("a.b/c"),
            key(&[("containerPort", json!(80)), ("protocol", json!("UDP"))]),
            PathElement::Value(Scalar(json!(true))),
            PathElement::Index(3),
        ] {
            assert_eq!(PathElement::parse_fields_v1_key(&pe.to_fields_v1_key()), Ok(pe));
        }
        // key fields come back sorted whatever order the client wrote them in
        assert_eq!(
            PathElement::parse_fields_v1_key("k:{\"protocol\":\"TCP\",\"containerPort\":80}"),
            Ok(key(&[("containerPort", json!(80)), ("protocol", json!("TCP"))]))
        );
        assert!(PathElement::parse_fields_v1_key("x:1").is_err());
        assert!(PathElement::parse_fields_v1_key("k:[1]").is_err());
        assert!(PathElement::parse_fields_v1_key("name").is_err());
    }

    #[test]
    fn orders_like_upstream() {
        assert!(PathElement::field("z") < key(&[("a", json!(1))]));
        assert!(key(&[("a", json!(1))]) < PathElement::Value(Scalar(json!(0))));
        assert!(compare_values(&json!(5), &json!("a")) == Ordering::Less);
        assert!(compare_values(&json!(1), &json!(1.0)) == Ordering::Equal);
        assert!(compare_values(&json!(2), &json!(1.5)) == Ordering::Greater);
        assert!(compare_values(&json!({"a": 1}), &json!({"a": 1, "b": 1})) == Ordering::Greater);
        assert!(!values_equal(&json!([1, 2]), &json!([2, 1])));
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(1.5, true), "1.5");
        assert_eq!(go_float(100.0, true), "100");
        assert_eq!(go_float(1e21, true), "1e+21");
        assert_eq!(go_float(1.5e-7, true), "1.5e-7");
        assert_eq!(go_float(1.5e-7, false), "1.5e-07");
    }
}
