//! Which fields an operation added, changed or removed.
//!
//! Leaves compare by value. A granular map, a keyed list, or a list item
//! that appears is added itself as well as everything below it (that is
//! where the `".": {}` of `Update` entries comes from); one that
//! disappears is removed with everything below it. Two empty (or null)
//! containers compare as leaves, so `{}` vs absent is a change.

use super::fieldset::FieldSet;
use super::path::{values_equal, PathElement};
use super::shape::{list_elements, Node};
use crate::schema::Definitions;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    /// Added or modified.
    pub fn changed(&self) -> FieldSet {
        self.added.union(&self.modified)
    }

    pub fn retain_top_fields(&mut self, keep: impl Fn(&str) -> bool + Copy) {
        self.added.retain_top_fields(keep);
        self.modified.retain_top_fields(keep);
        self.removed.retain_top_fields(keep);
    }
}

pub(crate) fn compare(defs: &Definitions, node: Node<'_>, old: &Value, new: &Value) -> Comparison {
    let mut out = Comparison::default();
    walk(defs, node, Some(old), Some(new), &mut Vec::new(), &mut out);
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    List,
    Leaf,
}

fn kind(v: Option<&Value>) -> Option<Kind> {
    match v? {
        Value::Null => None,
        Value::Object(_) => Some(Kind::Map),
        Value::Array(_) => Some(Kind::List),
        _ => Some(Kind::Leaf),
    }
}

fn empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

fn leaf(old: Option<&Value>, new: Option<&Value>, path: &[PathElement], out: &mut Comparison) {
    match (old, new) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(a), Some(b)) if !values_equal(a, b) => out.modified.insert(path),
        _ => {}
    }
}

fn walk(
    defs: &Definitions,
    node: Node<'_>,
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) {
    let k = match (kind(old), kind(new)) {
        (Some(a), Some(b)) if a != b => Kind::Leaf,
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => Kind::Leaf,
    };
    let granular = match k {
        Kind::Leaf => false,
        Kind::Map => !(node.map_atomic() || (empty(old) && empty(new))),
        Kind::List => !(empty(old) && empty(new)),
    };
    if !granular {
        leaf(old, new, path, out);
        return;
    }
    match k {
        Kind::Map => {
            let none = serde_json::Map::new();
            let om = old.and_then(Value::as_object).unwrap_or(&none);
            let nm = new.and_then(Value::as_object).unwrap_or(&none);
            for (key, ov) in om {
                path.push(PathElement::Field(key.clone()));
                walk(defs, node.field(defs, key).0, Some(ov), nm.get(key), path, out);
                path.pop();
            }
            for (key, nv) in nm.iter().filter(|(key, _)| !om.contains_key(key.as_str())) {
                path.push(PathElement::Field(key.clone()));
                walk(defs, node.field(defs, key).0, None, Some(nv), path, out);
                path.pop();
            }
        }
        _ => {
            let none = Vec::new();
            let ol = old.and_then(Value::as_array).unwrap_or(&none);
            let nl = new.and_then(Value::as_array).unwrap_or(&none);
            let keyed_old = list_elements(defs, node, ol).ok().flatten();
            let keyed_new = list_elements(defs, node, nl).ok().flatten();
            let (Some((item_node, old_pes)), Some((_, new_pes))) = (keyed_old, keyed_new) else {
                leaf(old, new, path, out);
                return;
            };
            let mut order: Vec<&PathElement> = Vec::new();
            let mut olds: BTreeMap<&PathElement, Vec<&Value>> = BTreeMap::new();
            let mut news: BTreeMap<&PathElement, Vec<&Value>> = BTreeMap::new();
            for (pe, item) in old_pes.iter().zip(ol) {
                if !olds.contains_key(pe) {
                    order.push(pe);
                }
                olds.entry(pe).or_default().push(item);
            }
            for (pe, item) in new_pes.iter().zip(nl) {
                if !olds.contains_key(pe) && !news.contains_key(pe) {
                    order.push(pe);
                }
                news.entry(pe).or_default().push(item);
            }
            for pe in order {
                let o = olds.get(pe).map(Vec::as_slice).unwrap_or(&[]);
                let n = news.get(pe).map(Vec::as_slice).unwrap_or(&[]);
                path.push(pe.clone());
                if o.len() > 1 || n.len() > 1 {
                    // repeated keys: the items are compared as a whole
                    let same = o.len() == n.len() && o.iter().zip(n).all(|(a, b)| values_equal(a, b));
                    if !same {
                        if o.is_empty() {
                            out.added.insert(path);
                        } else if n.is_empty() {
                            out.removed.insert(path);
                        } else {
                            out.modified.insert(path);
                        }
                    }
                } else {
                    walk(defs, item_node, o.first().copied(), n.first().copied(), path, out);
                }
                path.pop();
            }
        }
    }
    if old.is_none() {
        out.added.insert(path);
    } else if new.is_none() {
        out.removed.insert(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn root() -> Value {
        json!({"type": "object", "properties": {
            "metadata": {"type": "object", "properties": {
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer"},
                "containers": {"type": "array", "x-kubernetes-patch-strategy": "merge",
                    "x-kubernetes-patch-merge-key": "name",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}, "image": {"type": "string"}}}}
            }}
        }})
    }

    #[test]
    fn reports_added_modified_removed() {
        let d = Definitions::new();
        let r = root();
        let old = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 1,
            "containers": [{"name": "web", "image": "v1"}, {"name": "old", "image": "x"}]}});
        let new = json!({"metadata": {"labels": {"a": "2"}}, "spec": {"replicas": 1,
            "containers": [{"name": "web", "image": "v1"}, {"name": "side", "image": "y"}], "paused": true}});
        let c = compare(&d, Node::of(&d, &r), &old, &new);
        assert_eq!(c.modified.paths(), vec![".metadata.labels.a"]);
        assert_eq!(
            c.added.to_fields_v1(),
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"side\"}": {".": {}, "f:image": {}, "f:name": {}}}, "f:paused": {}}})
        );
        assert_eq!(
            c.removed.to_fields_v1(),
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"old\"}": {".": {}, "f:image": {}, "f:name": {}}}}})
        );
    }

    #[test]
    fn new_maps_are_added_themselves_and_empty_ones_are_leaves() {
        let d = Definitions::new();
        let r = root();
        let c = compare(&d, Node::of(&d, &r), &json!({}), &json!({"metadata": {"labels": {"app": "x"}}, "spec": {}}));
        assert_eq!(
            c.added.to_fields_v1(),
            json!({"f:metadata": {".": {}, "f:labels": {".": {}, "f:app": {}}}, "f:spec": {}})
        );
        let same = compare(&d, Node::of(&d, &r), &json!({"spec": {"replicas": 1}}), &json!({"spec": {"replicas": 1.0}}));
        assert!(same.changed().is_empty() && same.removed.is_empty());
    }
}
