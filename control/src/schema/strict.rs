//! Strict field validation of built-in objects (`?fieldValidation=Strict`).
//!
//! Walks an object against its built-in schema and lists the fields the
//! schema does not know, with the paths the upstream strict JSON decoder
//! reports (`spec.template.spec.containers[0].bad`). Duplicate fields are
//! the JSON decoder's business, not this walker's.

use crate::goquote::go_quote;
use super::node::{Extra, Node};
use super::path::{child, index};
use super::Definitions;
use serde_json::Value;

/// The fields of `obj` unknown to `schema`, in document order.
///
/// Nodes with `x-kubernetes-preserve-unknown-fields`, free-form objects
/// (no `properties`, or `additionalProperties: true`) accept anything
/// beneath them; embedded resources (`x-kubernetes-embedded-resource`)
/// accept `apiVersion`, `kind` and `metadata`. A value of the wrong type is
/// not walked (that is a type error, see `types::type_errors`).
pub fn unknown_fields(obj: &Value, defs: &Definitions, schema: &Value) -> Vec<String> {
    drop_unknown_fields(&mut obj.clone(), defs, schema)
}

/// Remove the fields of `obj` unknown to `schema` (what decoding into the
/// Go type does upstream) and return their paths, as [`unknown_fields`].
pub fn drop_unknown_fields(obj: &mut Value, defs: &Definitions, schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(obj, Node::new(defs, schema), "", &mut out);
    out
}

/// The upstream message for unknown fields:
/// `strict decoding error: unknown field "spec.foo", unknown field "x"`.
pub fn strict_decoding_message(paths: &[String]) -> String {
    let parts: Vec<String> = paths.iter().map(|p| format!("unknown field {}", go_quote(p))).collect();
    format!("strict decoding error: {}", parts.join(", "))
}

fn walk(value: &mut Value, node: Node<'_>, path: &str, out: &mut Vec<String>) {
    if node.flag("x-kubernetes-preserve-unknown-fields") {
        return;
    }
    match value {
        Value::Object(map) => {
            let embedded = node.flag("x-kubernetes-embedded-resource");
            let extra = node.extra();
            if !node.has_properties() {
                if let Extra::Schema(values) = extra {
                    for (k, v) in map.iter_mut() {
                        walk(v, values, &child(path, k), out);
                    }
                }
                return;
            }
            let mut unknown = Vec::new();
            for (k, v) in map.iter_mut() {
                let here = child(path, k);
                if let Some(prop) = node.property(k) {
                    walk(v, prop, &here, out);
                } else if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                } else {
                    match extra {
                        Extra::Schema(values) => walk(v, values, &here, out),
                        Extra::Any => {}
                        Extra::None => {
                            out.push(here);
                            unknown.push(k.clone());
                        }
                    }
                }
            }
            for k in unknown {
                map.shift_remove(&k);
            }
        }
        Value::Array(items) => {
            if let Some(item) = node.items() {
                for (i, v) in items.iter_mut().enumerate() {
                    walk(v, item, &index(path, i), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A trimmed Deployment schema in the shape the built-in definitions have.
    pub(crate) fn deployment_defs() -> (Definitions, Value) {
        let mut defs = Definitions::new();
        defs.insert(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            json!({"type": "object", "properties": {
                "name": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
            }}),
        );
        defs.insert(
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
            json!({"x-kubernetes-int-or-string": true}),
        );
        defs.insert(
            "io.k8s.apimachinery.pkg.api.resource.Quantity",
            json!({"x-kubernetes-int-or-string": true}),
        );
        defs.insert(
            "io.k8s.api.core.v1.Container",
            json!({"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"},
                "image": {"type": "string"},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "containerPort": {"type": "integer", "format": "int32"}
                }}},
                "resources": {"type": "object", "properties": {
                    "limits": {"type": "object", "additionalProperties": {
                        "$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"}}
                }}
            }}),
        );
        defs.insert(
            "io.k8s.api.core.v1.PodSpec",
            json!({"type": "object", "properties": {
                "containers": {"type": "array", "items": {"$ref": "#/definitions/io.k8s.api.core.v1.Container"},
                    "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
                "hostNetwork": {"type": "boolean"}
            }}),
        );
        defs.insert(
            "io.k8s.api.apps.v1.DeploymentSpec",
            json!({"type": "object", "properties": {
                "replicas": {"type": "integer", "format": "int32"},
                "strategy": {"type": "object", "properties": {
                    "rollingUpdate": {"type": "object", "properties": {
                        "maxSurge": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}
                    }}
                }},
                "template": {"type": "object", "properties": {
                    "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
                    "spec": {"$ref": "#/definitions/io.k8s.api.core.v1.PodSpec", "description": "pods"}
                }},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "raw": {"type": "object"}
            }}),
        );
        defs.insert(
            "io.k8s.api.apps.v1.Deployment",
            json!({"type": "object", "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
                "spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"}
            }}),
        );
        let root = json!({"$ref": "#/definitions/io.k8s.api.apps.v1.Deployment"});
        (defs, root)
    }

    #[test]
    fn reports_unknown_nested_and_list_item_fields() {
        let (defs, root) = deployment_defs();
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "bogus": 1},
            "spec": {
                "replicas": 2, "foo": true,
                "template": {"spec": {"containers": [
                    {"name": "a", "image": "nginx"},
                    {"name": "b", "bad": 1, "ports": [{"containerPort": 80, "hostPortt": 1}]}
                ]}}
            }
        });
        let paths = unknown_fields(&obj, &defs, &root);
        assert_eq!(
            paths,
            vec![
                "metadata.bogus",
                "spec.foo",
                "spec.template.spec.containers[1].bad",
                "spec.template.spec.containers[1].ports[0].hostPortt",
            ]
        );
        assert_eq!(
            strict_decoding_message(&paths[1..3]),
            "strict decoding error: unknown field \"spec.foo\", unknown field \"spec.template.spec.containers[1].bad\""
        );
    }

    #[test]
    fn preserve_unknown_and_free_form_subtrees_accept_anything() {
        let (defs, root) = deployment_defs();
        let obj = json!({"spec": {
            "extra": {"anything": {"deep": [1, {"x": 2}]}},
            "raw": {"whatever": 1},
            "template": {"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": 5}}}]}}
        }});
        assert!(unknown_fields(&obj, &defs, &root).is_empty());
    }

    #[test]
    fn embedded_resources_accept_type_and_object_meta() {
        let defs = Definitions::new();
        let schema = json!({"type": "object", "properties": {
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}}}
        }});
        let obj = json!({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
            "spec": {"a": "b", "c": 1}, "other": 2}});
        assert_eq!(
            unknown_fields(&obj, &defs, &schema),
            vec!["template.spec.c", "template.other"]
        );
    }

    #[test]
    fn wrong_types_are_not_walked() {
        let (defs, root) = deployment_defs();
        let obj = json!({"spec": "oops", "metadata": [1, 2]});
        assert!(unknown_fields(&obj, &defs, &root).is_empty());
    }
}
