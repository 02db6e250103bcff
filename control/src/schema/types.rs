//! Type checking of built-in objects against their schemas.
//!
//! Reports a value whose JSON type does not fit its field, in the wording
//! custom resource validation uses (`spec.replicas: Invalid value: "string":
//! spec.replicas in body must be of type integer: "string"`). For built-in
//! types `null` means "absent" (the Go decoder leaves the zero value), so
//! nulls are never a type error here. Values of the wrong type are not
//! walked further.

use super::json_type::{is_integral, matches_type, type_error};
use super::node::{Extra, Node};
use super::path::{child, index};
use super::Definitions;
use crate::field_error::FieldError;
use serde_json::Value;

/// Type errors of `obj` against `schema` (a built-in definition or any
/// schema without `$ref`s, such as a CRD's), in document order.
///
/// `x-kubernetes-int-or-string` fields take strings and numbers; Quantity
/// carries that flag too, so it takes any number, while an IntOrString
/// (`...intstr.IntOrString` reference or `format: int-or-string`) takes
/// only whole numbers.
pub fn type_errors(obj: &Value, defs: &Definitions, schema: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    walk(obj, Node::new(defs, schema), "", &mut out);
    out
}

fn walk(value: &Value, node: Node<'_>, path: &str, out: &mut Vec<FieldError>) {
    if value.is_null() {
        return;
    }
    if node.flag("x-kubernetes-int-or-string") {
        let ok = match value {
            Value::String(_) => true,
            Value::Number(n) => !whole_numbers_only(node) || is_integral(n),
            _ => false,
        };
        if !ok {
            out.push(type_error(path, path, value, "integer,string"));
        }
        return;
    }
    let types = node.types();
    if !types.is_empty() && !types.iter().any(|t| matches_type(value, t)) {
        out.push(type_error(path, path, value, &types.join(",")));
        return;
    }
    match value {
        Value::Object(map) => {
            let extra = node.extra();
            for (k, v) in map {
                if let Some(prop) = node.property(k) {
                    walk(v, prop, &child(path, k), out);
                } else if let Extra::Schema(values) = extra {
                    walk(v, values, &child(path, k), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = node.items() {
                for (i, v) in items.iter().enumerate() {
                    walk(v, item, &index(path, i), out);
                }
            }
        }
        _ => {}
    }
}

fn whole_numbers_only(node: Node<'_>) -> bool {
    node.reference().is_some_and(|r| r.ends_with("intstr.IntOrString"))
        || node.res.get("format").and_then(Value::as_str) == Some("int-or-string")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::strict::tests::deployment_defs;
    use serde_json::json;

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn wrong_scalar_types_are_reported_with_upstream_wording() {
        let (defs, root) = deployment_defs();
        let obj = json!({"spec": {"replicas": "string", "template": {"spec": {
            "hostNetwork": "yes",
            "containers": [{"name": "a", "ports": [{"containerPort": 80.5}]}, "oops"]
        }}}});
        assert_eq!(
            messages(&type_errors(&obj, &defs, &root)),
            vec![
                "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
                "spec.template.spec.hostNetwork: Invalid value: \"string\": spec.template.spec.hostNetwork in body must be of type boolean: \"string\"",
                "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: \"number\": spec.template.spec.containers[0].ports[0].containerPort in body must be of type integer: \"number\"",
                "spec.template.spec.containers[1]: Invalid value: \"string\": spec.template.spec.containers[1] in body must be of type object: \"string\"",
            ]
        );
    }

    #[test]
    fn int_or_string_and_quantity() {
        let (defs, root) = deployment_defs();
        let good = json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": "25%"}},
            "template": {"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": 0.5, "memory": "1Gi"}}}]}}}});
        assert!(type_errors(&good, &defs, &root).is_empty());
        let good = json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1}}}});
        assert!(type_errors(&good, &defs, &root).is_empty());
        let bad = json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": true}},
            "template": {"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": [1]}}}]}}}});
        assert_eq!(
            messages(&type_errors(&bad, &defs, &root)),
            vec![
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"boolean\": spec.strategy.rollingUpdate.maxSurge in body must be of type integer,string: \"boolean\"",
                "spec.template.spec.containers[0].resources.limits.cpu: Invalid value: \"array\": spec.template.spec.containers[0].resources.limits.cpu in body must be of type integer,string: \"array\"",
            ]
        );
        let bad = json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1.5}}}});
        assert_eq!(type_errors(&bad, &defs, &root).len(), 1);
    }

    #[test]
    fn nulls_are_absent_and_map_values_are_checked() {
        let (defs, root) = deployment_defs();
        let obj =
            json!({"metadata": {"labels": {"app": 1, "tier": null}}, "spec": {"replicas": null, "template": null}});
        assert_eq!(
            messages(&type_errors(&obj, &defs, &root)),
            vec!["metadata.labels.app: Invalid value: \"integer\": metadata.labels.app in body must be of type string: \"integer\""]
        );
    }
}
