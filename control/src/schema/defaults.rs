//! Defaulting of custom resources from their structural schema.
//!
//! A property missing from an object (or `null` where the property is not
//! `nullable`) gets a copy of its `default`, itself pruned against the
//! property's schema first; defaulting then continues inside the value, so
//! defaults nested in a defaulted object apply too. Array items and
//! `additionalProperties` values that are `null` (and not nullable) take
//! the item / value default. A non-nullable `null` property without a
//! default is removed, as upstream does before defaulting.

use super::json_type::flag;
use super::prune::prune_value;
use serde_json::Value;

/// Apply the schema's `default`s to `obj`, recursively.
pub fn apply_defaults(obj: &mut Value, schema: &Value) {
    default_node(obj, schema);
}

/// The value a default puts in place: a pruned copy.
fn default_value(default: &Value, schema: &Value) -> Value {
    let mut value = default.clone();
    prune_value(&mut value, schema, false);
    value
}

/// A `null` that should be replaced by the node's default.
fn takes_default(v: &Value, s: &Value) -> Option<Value> {
    if v.is_null() && !flag(s, "nullable") {
        s.get("default").map(|d| default_value(d, s))
    } else {
        None
    }
}

fn default_node(x: &mut Value, s: &Value) {
    if !s.is_object() {
        return;
    }
    match x {
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            if let Some(props) = props {
                for (k, prop) in props {
                    let Some(default) = prop.get("default") else {
                        if map.get(k).is_some_and(Value::is_null) && !flag(prop, "nullable") {
                            map.shift_remove(k);
                        }
                        continue;
                    };
                    let missing = match map.get(k) {
                        None => true,
                        Some(v) => v.is_null() && !flag(prop, "nullable"),
                    };
                    if missing {
                        map.insert(k.clone(), default_value(default, prop));
                    }
                }
            }
            let extra = s.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in map.iter_mut() {
                if let Some(prop) = props.and_then(|p| p.get(k)) {
                    default_node(v, prop);
                } else if let Some(values) = extra {
                    if let Some(d) = takes_default(v, values) {
                        *v = d;
                    }
                    default_node(v, values);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for v in items.iter_mut() {
                    if let Some(d) = takes_default(v, item_schema) {
                        *v = d;
                    }
                    default_node(v, item_schema);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "replicas": {"type": "integer", "default": 1},
            "mode": {"type": "string", "default": "fast"},
            "note": {"type": "string", "nullable": true, "default": "n"},
            "gone": {"type": "string"},
            "kept": {"type": "string", "nullable": true},
            "policy": {"type": "object", "default": {"retries": 2, "junk": true},
                "properties": {"retries": {"type": "integer"}, "backoff": {"type": "string", "default": "exp"}}},
            "ports": {"type": "array", "items": {"type": "object", "default": {"port": 80},
                "properties": {"port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}}}},
            "limits": {"type": "object", "additionalProperties": {"type": "string", "default": "0"}}
        }}}})
    }

    #[test]
    fn fills_missing_and_non_nullable_null_fields_recursively() {
        let mut obj = json!({"spec": {"mode": null, "note": null, "gone": null, "kept": null,
            "ports": [{"port": 8080}, null], "limits": {"cpu": null, "mem": "1"}}});
        apply_defaults(&mut obj, &schema());
        assert_eq!(
            obj,
            json!({"spec": {
                "mode": "fast", "note": null, "kept": null,
                "ports": [{"port": 8080, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"}],
                "limits": {"cpu": "0", "mem": "1"},
                "replicas": 1,
                "policy": {"retries": 2, "backoff": "exp"}
            }})
        );
    }

    #[test]
    fn prune_then_default_like_a_create() {
        let mut obj = json!({"apiVersion": "example.com/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"bogus": 1, "ports": [{"port": 1, "x": 2}]}});
        let pruned = crate::schema::prune::prune(&mut obj, &schema());
        assert_eq!(pruned, vec!["spec.bogus", "spec.ports[0].x"]);
        apply_defaults(&mut obj, &schema());
        assert_eq!(obj["spec"]["ports"], json!([{"port": 1, "protocol": "TCP"}]));
        assert_eq!(obj["spec"]["replicas"], json!(1));
        assert_eq!(obj["metadata"], json!({"name": "a"}));
    }

    #[test]
    fn leaves_set_values_alone() {
        let mut obj = json!({"spec": {"replicas": 5, "mode": "slow", "policy": {"retries": 0}}});
        apply_defaults(&mut obj, &schema());
        assert_eq!(obj["spec"]["replicas"], json!(5));
        assert_eq!(obj["spec"]["mode"], json!("slow"));
        assert_eq!(obj["spec"]["policy"], json!({"retries": 0, "backoff": "exp"}));
    }
}
