//! Values printed the way Go's `%#v` prints them inside upstream error
//! messages (`map[string]string{"app":"x"}`, `v1.LabelSelector{...}`), for
//! the messages kubectl users search for verbatim.

use serde_json::Value;

pub(crate) use crate::goquote::go_quote as quote;

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        other => quote(&other.to_string()),
    }
}

/// `map[string]string{"a":"1", "b":"2"}` (keys sorted, as fmt does), or
/// `map[string]string(nil)` when absent.
pub(crate) fn string_map(v: Option<&Value>) -> String {
    match v.and_then(Value::as_object) {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body = entries.iter().map(|(k, v)| format!("{}:{}", quote(k), scalar(v))).collect::<Vec<_>>().join(", ");
            format!("map[string]string{{{body}}}")
        }
    }
}

/// `[]string{"a", "b"}` or `[]string(nil)`.
pub(crate) fn string_slice(v: Option<&Value>) -> String {
    match v.and_then(Value::as_array) {
        None => "[]string(nil)".to_string(),
        Some(items) => format!("[]string{{{}}}", items.iter().map(scalar).collect::<Vec<_>>().join(", ")),
    }
}

/// `v1.LabelSelector{MatchLabels:map[string]string{...}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`
pub(crate) fn label_selector(v: &Value) -> String {
    let exprs = match v.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(items) => {
            let body = items
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        quote(e.get("key").and_then(Value::as_str).unwrap_or("")),
                        quote(e.get("operator").and_then(Value::as_str).unwrap_or("")),
                        string_slice(e.get("values"))
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("[]v1.LabelSelectorRequirement{{{body}}}")
        }
    };
    format!("v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}", string_map(v.get("matchLabels")), exprs)
}

/// `intstr.IntOrString{Type:1, IntVal:0, StrVal:"25%"}` (upstream passes
/// IntOrString by value, which has no `String()` method, so `%#v` it is).
pub(crate) fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}", quote(s)),
        other => {
            let n = other.and_then(super::util::as_int).unwrap_or(0);
            format!("intstr.IntOrString{{Type:0, IntVal:{n}, StrVal:\"\"}}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_like_go() {
        assert_eq!(string_map(Some(&json!({"b": "2", "a": "1"}))), r#"map[string]string{"a":"1", "b":"2"}"#);
        assert_eq!(string_map(None), "map[string]string(nil)");
        assert_eq!(string_map(Some(&json!({}))), "map[string]string{}");
        assert_eq!(string_slice(Some(&json!(["/x", "/y"]))), r#"[]string{"/x", "/y"}"#);
        assert_eq!(
            label_selector(&json!({"matchLabels": {"app": "nginx2"}})),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"nginx2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
        assert_eq!(
            label_selector(&json!({"matchExpressions": [{"key": "k", "operator": "Exists"}]})),
            r#"v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"k", Operator:"Exists", Values:[]string(nil)}}}"#
        );
        assert_eq!(quote("a\"b\n"), r#""a\"b\n""#);
        assert_eq!(int_or_string(Some(&json!(0))), r#"intstr.IntOrString{Type:0, IntVal:0, StrVal:""}"#);
        assert_eq!(int_or_string(Some(&json!("0%"))), r#"intstr.IntOrString{Type:1, IntVal:0, StrVal:"0%"}"#);
    }
}
