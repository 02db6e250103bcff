//! The bridge between client-side and server-side `kubectl apply`.
//!
//! Upstream gives the field manager `kubectl` two favours when an object
//! carries `kubectl.kubernetes.io/last-applied-configuration`: conflicts on
//! fields that the annotation lists and that still hold the value it
//! records are taken over silently (switching from client-side to
//! server-side apply does not conflict), and after a successful apply the
//! annotation is rewritten to the new configuration, so a later
//! client-side apply sees what was applied.

use super::compare::compare;
use super::fieldset::FieldSet;
use super::path::go_json;
use super::shape::Node;
use super::tofieldset::field_set;
use crate::schema::Definitions;
use serde_json::{Map, Value};

pub(crate) const ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Field manager name of `kubectl apply --server-side`.
pub(crate) const KUBECTL: &str = "kubectl";
/// Upstream's limit on the total size of an object's annotations.
const ANNOTATIONS_SIZE_LIMIT: usize = 256 * 1024;

fn annotations(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.get("annotations")?.as_object()
}

fn last_applied(obj: &Value) -> Option<&str> {
    annotations(obj)?.get(ANNOTATION)?.as_str().filter(|s| !s.is_empty())
}

/// Fields whose conflicts a `kubectl` apply may take over: those in the
/// annotation that the live object still has at the annotated value.
pub(crate) fn allowed_conflicts(defs: &Definitions, root: Node<'_>, live: &Value) -> Option<FieldSet> {
    let recorded: Value = serde_json::from_str(last_applied(live)?).ok()?;
    if !recorded.is_object() {
        return None;
    }
    let set = field_set(defs, root, &recorded, false).ok()?;
    let diff = compare(defs, root, &recorded, live);
    Some(set.difference(&diff.modified).difference(&diff.removed))
}

/// Rewrite the annotation (when `merged` has one) to the applied configuration.
pub(crate) fn sync_annotation(merged: &mut Value, applied: &Value) {
    if last_applied(merged).is_none() {
        return;
    }
    let mut config = applied.clone();
    if let Some(a) = config
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        a.remove(ANNOTATION);
    }
    let mut text = String::new();
    go_json(&config, &mut text);
    text.push('\n');
    let Some(a) = merged
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    a.insert(ANNOTATION.into(), Value::String(text));
    let size: usize = a
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if size > ANNOTATIONS_SIZE_LIMIT {
        a.remove(ANNOTATION);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn allows_only_unchanged_annotated_fields() {
        let d = Definitions::new();
        let r = json!({});
        let live = json!({
            "metadata": {"annotations": {ANNOTATION: "{\"spec\":{\"replicas\":1,\"paused\":false}}\n"}},
            "spec": {"replicas": 1, "paused": true, "other": 2}
        });
        let allowed = allowed_conflicts(&d, Node::of(&d, &r), &live).expect("annotation");
        assert_eq!(allowed.paths(), vec![".spec", ".spec.replicas"]);
        assert!(allowed_conflicts(&d, Node::of(&d, &r), &json!({"spec": {}})).is_none());
    }

    #[test]
    fn rewrites_the_annotation_sorted_with_newline() {
        let mut merged = json!({"metadata": {"name": "x", "annotations": {ANNOTATION: "old", "keep": "me"}}});
        let applied = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x", "annotations": {"keep": "me"}}, "data": {"a": "<b>"}});
        sync_annotation(&mut merged, &applied);
        assert_eq!(
            merged["metadata"]["annotations"][ANNOTATION],
            json!("{\"apiVersion\":\"v1\",\"data\":{\"a\":\"\\u003cb\\u003e\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{\"keep\":\"me\"},\"name\":\"x\"}}\n")
        );
        let mut without = json!({"metadata": {"name": "x"}});
        sync_annotation(&mut without, &applied);
        assert_eq!(without, json!({"metadata": {"name": "x"}}));
    }
}
