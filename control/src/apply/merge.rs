//! Merging an apply configuration into the live object.
//!
//! Values from the configuration win. Granular maps merge key by key;
//! keyed and set lists merge item by item, keeping live-only items where
//! they were while shared and new items follow the configuration's order;
//! atomic lists and maps are replaced. A null in the configuration clears
//! a leaf (the field is dropped unless the schema says `nullable`) and
//! leaves a granular map or list as it is.

use super::path::PathElement;
use super::shape::{list_elements, Node};
use crate::schema::Definitions;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// `live` merged with `config`; `None` when the field ends up absent.
pub(crate) fn merge(
    defs: &Definitions,
    node: Node<'_>,
    live: Option<&Value>,
    config: Option<&Value>,
) -> Option<Value> {
    match (live, config) {
        (None, None) => None,
        (Some(l), None) => Some(l.clone()),
        (l, Some(Value::Null)) => {
            match l {
                Some(Value::Object(m)) if !m.is_empty() && !node.map_atomic() => return Some(Value::Object(m.clone())),
                Some(Value::Array(a))
                    if !a.is_empty() && matches!(list_elements(defs, node, a), Ok(Some(_))) =>
                {
                    return Some(Value::Array(a.clone()))
                }
                _ => {}
            }
            node.nullable().then_some(Value::Null)
        }
        (None, Some(c)) => Some(clean(defs, node, c)),
        (Some(Value::Object(lm)), Some(Value::Object(cm))) if !node.map_atomic() => {
            Some(Value::Object(merge_maps(defs, node, lm, cm)))
        }
        (Some(Value::Array(la)), Some(Value::Array(ca))) => Some(merge_lists(defs, node, la, ca)),
        (Some(_), Some(c)) => Some(clean(defs, node, c)),
    }
}

fn merge_maps(defs: &Definitions, node: Node<'_>, live: &Map<String, Value>, config: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, lv) in live {
        let child = node.field(defs, key).0;
        if let Some(v) = merge(defs, child, Some(lv), config.get(key)) {
            out.insert(key.clone(), v);
        }
    }
    for (key, cv) in config.iter().filter(|(key, _)| !live.contains_key(key.as_str())) {
        let child = node.field(defs, key).0;
        if let Some(v) = merge(defs, child, None, Some(cv)) {
            out.insert(key.clone(), v);
        }
    }
    out
}

fn merge_lists(defs: &Definitions, node: Node<'_>, live: &[Value], config: &[Value]) -> Value {
    let (Ok(Some((item_node, lp))), Ok(Some((_, cp)))) =
        (list_elements(defs, node, live), list_elements(defs, node, config))
    else {
        return Value::Array(config.iter().map(|c| clean(defs, node.items(defs), c)).collect());
    };
    // live items by key; a repeated key maps to None (the configuration replaces them all)
    let mut live_items: BTreeMap<&PathElement, Option<&Value>> = BTreeMap::new();
    for (pe, item) in lp.iter().zip(live) {
        live_items
            .entry(pe)
            .and_modify(|slot| *slot = None)
            .or_insert(Some(item));
    }
    let in_config: BTreeSet<&PathElement> = cp.iter().collect();
    let mut shared: VecDeque<&PathElement> = cp.iter().filter(|pe| live_items.contains_key(pe)).collect();
    let mut next_shared = shared.pop_front();
    let mut merged_config: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(live.len().max(config.len()));
    let (mut i, mut j) = (0, 0);
    let emit = |pe: &PathElement, c: &Value, out: &mut Vec<Value>| {
        let l = live_items.get(pe).copied().flatten();
        if let Some(v) = merge(defs, item_node, l, Some(c)) {
            out.push(v);
        }
    };
    while i < lp.len() || j < cp.len() {
        if i < lp.len() && j < cp.len() {
            if lp[i] == cp[j] {
                emit(&cp[j], &config[j], &mut out);
                merged_config.insert(&cp[j]);
                i += 1;
                j += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if in_config.contains(&lp[i]) && next_shared.is_some_and(|n| *n != lp[i]) {
                i += 1;
                continue;
            }
        }
        if i < lp.len() {
            if !in_config.contains(&lp[i]) {
                out.push(live[i].clone());
                i += 1;
                continue;
            }
            if merged_config.contains(&lp[i]) {
                i += 1;
                continue;
            }
        }
        if j < cp.len() {
            emit(&cp[j], &config[j], &mut out);
            merged_config.insert(&cp[j]);
            if next_shared.is_some_and(|n| *n == cp[j]) {
                next_shared = shared.pop_front();
            }
            j += 1;
        } else {
            i += 1;
        }
    }
    Value::Array(out)
}

/// A configuration value taken as is, less its non-nullable null fields.
fn clean(defs: &Definitions, node: Node<'_>, value: &Value) -> Value {
    match value {
        Value::Object(map) if !node.map_atomic() => {
            let mut out = Map::new();
            for (key, v) in map {
                let child = node.field(defs, key).0;
                if v.is_null() && !child.nullable() {
                    continue;
                }
                out.insert(key.clone(), clean(defs, child, v));
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let item_node = node.items(defs);
            Value::Array(items.iter().map(|i| clean(defs, item_node, i)).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn root() -> Value {
        json!({"type": "object", "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "selector": {"type": "object", "x-kubernetes-map-type": "atomic"},
            "args": {"type": "array", "items": {"type": "string"}},
            "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "replicas": {"type": "integer"},
            "containers": {"type": "array", "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-patch-merge-key": "name",
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "image": {"type": "string"}}}}
        }})
    }

    fn names(v: &Value) -> Vec<&str> {
        v["containers"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn merges_by_schema() {
        let d = Definitions::new();
        let r = root();
        let live = json!({
            "labels": {"a": "1", "b": "2"}, "selector": {"x": "1", "y": "2"}, "args": ["a", "b"],
            "finalizers": ["f1", "f2"], "replicas": 3,
            "containers": [{"name": "web", "image": "v1", "extra": 1}, {"name": "side", "image": "s"}]
        });
        let config = json!({
            "labels": {"b": "3"}, "selector": {"z": "1"}, "args": ["c"], "finalizers": ["f3", "f1"],
            "replicas": null, "containers": [{"name": "web", "image": "v2"}]
        });
        let out = merge(&d, Node::of(&d, &r), Some(&live), Some(&config)).expect("merged");
        assert_eq!(
            out,
            json!({
                "labels": {"a": "1", "b": "3"}, "selector": {"z": "1"}, "args": ["c"],
                "finalizers": ["f3", "f1", "f2"],
                "containers": [{"name": "web", "image": "v2", "extra": 1}, {"name": "side", "image": "s"}]
            })
        );
    }

    #[test]
    fn list_order_keeps_live_only_items_in_place() {
        let d = Definitions::new();
        let r = root();
        let c = |n: &[&str]| json!({"containers": n.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()});
        let merged = |l: &[&str], cfg: &[&str]| {
            merge(&d, Node::of(&d, &r), Some(&c(l)), Some(&c(cfg))).expect("merged")
        };
        assert_eq!(names(&merged(&["a", "b", "x"], &["b", "a"])), vec!["b", "x", "a"]);
        assert_eq!(names(&merged(&["a", "x", "b"], &["a", "new", "b"])), vec!["a", "x", "new", "b"]);
        assert_eq!(names(&merged(&["a"], &["b"])), vec!["a", "b"]);
        assert_eq!(names(&merged(&[], &["b", "c"])), vec!["b", "c"]);
    }

    #[test]
    fn null_keeps_granular_maps_and_drops_leaves() {
        let d = Definitions::new();
        let r = root();
        let live = json!({"labels": {"a": "1"}, "selector": {"x": "1"}});
        let config = json!({"labels": null, "selector": null, "fresh": {"k": null}});
        let out = merge(&d, Node::of(&d, &r), Some(&live), Some(&config)).expect("merged");
        assert_eq!(out, json!({"labels": {"a": "1"}, "fresh": {}}));
    }
}
