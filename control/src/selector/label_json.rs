//! The JSON form of label selectors (`metav1.LabelSelector`): conversion to
//! a [`LabelSelector`] and the admission-time validation of its fields.

use super::error::{RequirementError, SelectorError};
use super::label::{LabelSelector, Operator, Requirement};
use crate::field_error::FieldError;
use crate::names;
use serde_json::{Map, Value};

/// The operators a `matchExpressions` entry may use.
const JSON_OPERATORS: [(&str, Operator); 4] = [
    ("In", Operator::In),
    ("NotIn", Operator::NotIn),
    ("Exists", Operator::Exists),
    ("DoesNotExist", Operator::DoesNotExist),
];

fn json_operator(name: &str) -> Option<Operator> {
    JSON_OPERATORS.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

/// A JSON string, or `""` for `null` (as Go decodes it); anything else is malformed.
fn string_of(v: &Value, what: &str) -> Result<String, SelectorError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        other => Err(SelectorError::Malformed(format!("{what} must be a string, got {other}"))),
    }
}

fn invalid(errs: Vec<FieldError>) -> SelectorError {
    SelectorError::InvalidRequirement(RequirementError::Invalid(errs))
}

impl LabelSelector {
    /// Converts a `metav1.LabelSelector` (`{"matchLabels":{..},
    /// "matchExpressions":[{"key","operator","values"}]}`).
    ///
    /// `null` gives `Ok` of the empty selector, which matches everything.
    /// Upstream treats a *nil* selector as matching nothing in some places
    /// (e.g. PodDisruptionBudget, NetworkPolicy peers) and as everything in
    /// others, so callers that care must test for `null`/absence themselves
    /// before calling this. `{}` (no requirements) matches everything.
    pub fn from_json(v: &Value) -> Result<LabelSelector, SelectorError> {
        let obj = match v {
            Value::Null => return Ok(LabelSelector::everything()),
            Value::Object(obj) => obj,
            other => return Err(SelectorError::Malformed(format!("expected an object, got {other}"))),
        };
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => requirements.extend(map_requirements(map)?),
            Some(other) => return Err(SelectorError::Malformed(format!("matchLabels must be an object, got {other}"))),
        }
        let expressions = match obj.get("matchExpressions") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(items)) => items.as_slice(),
            Some(other) => return Err(SelectorError::Malformed(format!("matchExpressions must be an array, got {other}"))),
        };
        for (i, expr) in expressions.iter().enumerate() {
            let Value::Object(expr) = expr else {
                return Err(SelectorError::Malformed(format!("matchExpressions[{i}] must be an object, got {expr}")));
            };
            let key = string_of(expr.get("key").unwrap_or(&Value::Null), &format!("matchExpressions[{i}].key"))?;
            let op_name = string_of(expr.get("operator").unwrap_or(&Value::Null), &format!("matchExpressions[{i}].operator"))?;
            let operator = json_operator(&op_name).ok_or(SelectorError::UnknownOperator(op_name))?;
            let values = match expr.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(vs)) => vs
                    .iter()
                    .enumerate()
                    .map(|(j, v)| string_of(v, &format!("matchExpressions[{i}].values[{j}]")))
                    .collect::<Result<Vec<_>, _>>()?,
                Some(other) => {
                    return Err(SelectorError::Malformed(format!("matchExpressions[{i}].values must be an array, got {other}")))
                }
            };
            requirements.push(Requirement::new(&key, operator, values, "key").map_err(invalid)?);
        }
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// A selector from a plain label map (`Service.spec.selector`,
    /// `matchLabels`): one `key=value` requirement per entry.
    pub fn from_map(map: &Map<String, Value>) -> Result<LabelSelector, SelectorError> {
        Ok(LabelSelector::from_requirements(map_requirements(map)?))
    }
}

fn map_requirements(map: &Map<String, Value>) -> Result<Vec<Requirement>, SelectorError> {
    map.iter()
        .map(|(k, v)| {
            let value = string_of(v, &format!("matchLabels.{k}"))?;
            Requirement::new(k, Operator::Equals, vec![value], "key").map_err(invalid)
        })
        .collect()
}

/// Admission-time checks of a `metav1.LabelSelector` at field path `path`
/// (e.g. `spec.selector`), worded like upstream's `ValidateLabelSelector`.
/// `null` is valid (whether a selector is required is the caller's rule).
pub fn validate_label_selector(v: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let obj = match v {
        Value::Null => return errs,
        Value::Object(obj) => obj,
        other => {
            errs.push(FieldError::invalid(path, other.clone(), "must be an object"));
            return errs;
        }
    };
    let labels_path = child(path, "matchLabels");
    match obj.get("matchLabels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                for msg in names::qualified_name(k) {
                    errs.push(FieldError::invalid(&labels_path, Value::String(k.clone()), msg));
                }
                match v {
                    Value::String(s) => {
                        for msg in names::label_value(s) {
                            errs.push(FieldError::invalid(&labels_path, v.clone(), msg));
                        }
                    }
                    Value::Null => {}
                    other => errs.push(FieldError::invalid(format!("{labels_path}[{k}]"), other.clone(), "must be a string")),
                }
            }
        }
        Some(other) => errs.push(FieldError::invalid(&labels_path, other.clone(), "must be an object")),
    }
    let exprs_path = child(path, "matchExpressions");
    match obj.get("matchExpressions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, expr) in items.iter().enumerate() {
                errs.extend(validate_requirement(expr, &format!("{exprs_path}[{i}]")));
            }
        }
        Some(other) => errs.push(FieldError::invalid(&exprs_path, other.clone(), "must be an array")),
    }
    errs
}

fn validate_requirement(expr: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Value::Object(expr) = expr else {
        errs.push(FieldError::invalid(path, expr.clone(), "must be an object"));
        return errs;
    };
    let values: &[Value] = match expr.get("values") {
        Some(Value::Array(vs)) => vs,
        _ => &[],
    };
    let values_path = child(path, "values");
    let operator = expr.get("operator").cloned().unwrap_or(Value::Null);
    match operator.as_str().and_then(json_operator) {
        Some(Operator::In | Operator::NotIn) if values.is_empty() => {
            errs.push(FieldError::required(&values_path, "must be specified when `operator` is 'In' or 'NotIn'"));
        }
        Some(Operator::Exists | Operator::DoesNotExist) if !values.is_empty() => {
            errs.push(FieldError::forbidden(&values_path, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
        }
        Some(_) => {}
        None => {
            let shown = if operator.is_null() { Value::String(String::new()) } else { operator };
            errs.push(FieldError::invalid(child(path, "operator"), shown, "not a valid selector operator"));
        }
    }
    let key = expr.get("key").cloned().unwrap_or(Value::Null);
    let key_path = child(path, "key");
    match &key {
        Value::String(k) => {
            for msg in names::qualified_name(k) {
                errs.push(FieldError::invalid(&key_path, key.clone(), msg));
            }
        }
        Value::Null => errs.push(FieldError::required(&key_path, "")),
        other => errs.push(FieldError::invalid(&key_path, other.clone(), "must be a string")),
    }
    for (i, v) in values.iter().enumerate() {
        let value_path = format!("{values_path}[{i}]");
        match v {
            Value::String(s) => {
                for msg in names::label_value(s) {
                    errs.push(FieldError::invalid(&value_path, v.clone(), msg));
                }
            }
            other => errs.push(FieldError::invalid(&value_path, other.clone(), "must be a string")),
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<String, String> {
        LabelSelector::from_json(&v).map(|s| s.to_string()).map_err(|e| e.to_string())
    }

    #[test]
    fn valid_json_selectors() {
        assert_eq!(parse(json!(null)), Ok(String::new()));
        assert_eq!(parse(json!({})), Ok(String::new()));
        assert_eq!(parse(json!({"matchLabels": {"tier": "front", "app": "web"}})), Ok("app=web,tier=front".into()));
        assert_eq!(
            parse(json!({
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "env", "operator": "NotIn", "values": ["prod", "dev"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                    {"key": "zone", "operator": "Exists", "values": []},
                    {"key": "ver", "operator": "In", "values": ["2"]}
                ]
            })),
            Ok("app=web,!canary,env notin (dev,prod),ver in (2),zone".into())
        );
        let sel = LabelSelector::from_json(&json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x", "y"]}]}));
        let round = sel.as_ref().map_err(|e| e.to_string()).and_then(|s| LabelSelector::parse(&s.to_string()).map_err(|e| e.to_string()));
        assert_eq!(round, sel.map_err(|e| e.to_string()));
    }

    #[test]
    fn invalid_json_selectors() {
        assert_eq!(
            parse(json!({"matchExpressions": [{"key": "a", "operator": "In"}]})),
            Err("values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty".into())
        );
        assert_eq!(
            parse(json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]})),
            Err("values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty".into())
        );
        assert_eq!(
            parse(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})),
            Err("values: Invalid value: [\"x\"]: values set must be empty for exists and does not exist".into())
        );
        assert_eq!(
            parse(json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})),
            Err("\"Gt\" is not a valid label selector operator".into())
        );
        let e = parse(json!({"matchLabels": {"x/y/z": "a"}})).err().unwrap_or_default();
        assert!(e.starts_with("key: Invalid value: \"x/y/z\": a qualified name must consist of"), "{e}");
        let e = parse(json!({"matchLabels": {"app": "-web"}})).err().unwrap_or_default();
        assert!(e.starts_with("values[0][app]: Invalid value: \"-web\": a valid label must be"), "{e}");
        assert_eq!(parse(json!({"matchLabels": {"app": 3}})), Err("invalid label selector: matchLabels.app must be a string, got 3".into()));
        assert_eq!(parse(json!({"matchLabels": []})), Err("invalid label selector: matchLabels must be an object, got []".into()));
        assert_eq!(parse(json!("app=web")), Err("invalid label selector: expected an object, got \"app=web\"".into()));
        assert_eq!(
            parse(json!({"matchExpressions": {"key": "a"}})),
            Err("invalid label selector: matchExpressions must be an array, got {\"key\":\"a\"}".into())
        );
    }

    #[test]
    fn matching_json_selectors() {
        let sel = LabelSelector::from_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]
        }));
        let Ok(sel) = sel else { panic!("{sel:?}") };
        let labels = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(sel.matches(Some(&labels(json!({"app": "web"})))));
        assert!(sel.matches(Some(&labels(json!({"app": "web", "env": "dev"})))));
        assert!(!sel.matches(Some(&labels(json!({"app": "web", "env": "prod"})))));
        assert!(!sel.matches(Some(&labels(json!({"env": "dev"})))));
        assert!(!sel.matches(None));
        let svc = LabelSelector::from_map(&labels(json!({"app": "web"})));
        assert_eq!(svc.map(|s| s.to_string()).map_err(|e| e.to_string()), Ok("app=web".to_string()));
    }

    #[test]
    fn validation_messages() {
        let errs: Vec<String> = validate_label_selector(
            &json!({
                "matchLabels": {"-a": "ok", "b": "bad value"},
                "matchExpressions": [
                    {"key": "a", "operator": "In"},
                    {"key": "b", "operator": "Exists", "values": ["x"]},
                    {"key": "c", "operator": "Gt", "values": ["1"]}
                ]
            }),
            "spec.selector",
        )
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(errs.len(), 5, "{errs:#?}");
        assert!(errs[0].starts_with("spec.selector.matchLabels: Invalid value: \"-a\": name part must consist of"));
        assert!(errs[1].starts_with("spec.selector.matchLabels: Invalid value: \"bad value\": a valid label must be"));
        assert_eq!(errs[2], "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'");
        assert_eq!(errs[3], "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
        assert_eq!(errs[4], "spec.selector.matchExpressions[2].operator: Invalid value: \"Gt\": not a valid selector operator");
        assert!(validate_label_selector(&json!(null), "spec.selector").is_empty());
        assert!(validate_label_selector(&json!({"matchLabels": {"app": "web"}}), "spec.selector").is_empty());
    }
}
