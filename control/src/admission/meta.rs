//! `metadata` checks shared by every kind (upstream `ValidateObjectMeta` and
//! `ValidateObjectMetaUpdate`), plus label, annotation and selector rules
//! that specs reuse.

use super::path::Path;
use super::util::{get, int_of, push_msgs, str_of, string, too_long, Errs};
use crate::field_error::FieldError;
use crate::names;
use serde_json::{json, Value};

/// A name rule: the messages for an invalid name, empty when valid.
pub(crate) type NameFn = fn(&str) -> Vec<String>;

/// Most names.
pub(crate) const SUBDOMAIN: NameFn = names::dns1123_subdomain;
/// Namespaces.
pub(crate) const LABEL: NameFn = names::dns1123_label;
/// Services.
pub(crate) const DNS1035: NameFn = names::dns1035_label;
/// RBAC objects (`system:controller:...`).
pub(crate) const PATH_SEGMENT: NameFn = names::path_segment_name;

/// Total size of all annotation keys and values.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Create or update checks of `metadata`, with `name_fn` for the name.
pub(crate) fn object(obj: &Value, old: Option<&Value>, name_fn: NameFn, errs: &mut Errs) {
    let meta = obj.get("metadata").unwrap_or(&Value::Null);
    match old {
        None => create(meta, name_fn, errs),
        Some(old) => update(meta, old.get("metadata").unwrap_or(&Value::Null), errs),
    }
}

/// A name checked as a `generateName` prefix: a trailing `-` is fine.
fn check_name(name_fn: NameFn, name: &str, prefix: bool) -> Vec<String> {
    if prefix && name.len() > 1 && name.ends_with('-') {
        let masked = format!("{}a", &name[..name.len() - 1]);
        return name_fn(&masked);
    }
    name_fn(name)
}

fn create(meta: &Value, name_fn: NameFn, errs: &mut Errs) {
    let path = Path::root("metadata");
    let generate_name = string(meta, "generateName");
    if !generate_name.is_empty() {
        push_msgs(errs, &path.child("generateName"), generate_name, check_name(name_fn, generate_name, true));
    }
    let name = string(meta, "name");
    if name.is_empty() {
        // With a generateName the API layer makes up the name before storing.
        if generate_name.is_empty() {
            errs.push(FieldError::required(path.child("name"), "name or generateName is required"));
        }
    } else {
        push_msgs(errs, &path.child("name"), name, check_name(name_fn, name, false));
    }
    common(meta, &path, errs);
}

/// Checks done on both create and update.
fn common(meta: &Value, path: &Path, errs: &mut Errs) {
    let namespace = string(meta, "namespace");
    if !namespace.is_empty() {
        push_msgs(errs, &path.child("namespace"), namespace, names::dns1123_label(namespace));
    }
    if let Some(g) = int_of(meta, "generation") {
        if g < 0 {
            errs.push(FieldError::invalid(path.child("generation"), json!(g), super::util::NEGATIVE));
        }
    }
    labels(meta.get("labels"), &path.child("labels"), errs);
    annotations(meta.get("annotations"), &path.child("annotations"), errs);
    owner_references(meta.get("ownerReferences"), &path.child("ownerReferences"), errs);
    finalizers(meta.get("finalizers"), &path.child("finalizers"), errs);
}

fn update(new: &Value, old: &Value, errs: &mut Errs) {
    let path = Path::root("metadata");
    if let (Some(n), Some(o)) = (int_of(new, "generation"), int_of(old, "generation")) {
        if n < o {
            errs.push(FieldError::invalid(path.child("generation"), json!(n), "must not be decremented"));
        }
    }
    for key in ["name", "namespace"] {
        let (n, o) = (string(new, key), string(old, key));
        if n != o {
            errs.push(FieldError::invalid(path.child(key), json!(n), super::util::IMMUTABLE));
        }
    }
    // The API layer copies these from the stored object when a client
    // leaves them out, so only a different value is a change.
    for key in ["uid", "creationTimestamp"] {
        if let Some(n) = get(new, key) {
            if get(old, key).is_some_and(|o| o != n) {
                errs.push(FieldError::invalid(path.child(key), n.clone(), super::util::IMMUTABLE));
            }
        }
    }
    if get(old, "deletionTimestamp").is_some() {
        let old_f: Vec<&str> = super::util::list(old, "finalizers").iter().filter_map(Value::as_str).collect();
        let mut added: Vec<&str> = super::util::list(new, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .filter(|f| !old_f.contains(f))
            .collect();
        added.sort_unstable();
        added.dedup();
        if !added.is_empty() {
            errs.push(FieldError::forbidden(
                path.child("finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    super::gorepr::string_slice(Some(&json!(added)))
                ),
            ));
        }
    }
    common(new, &path, errs);
}

/// `ValidateLabels`: keys are qualified names, values label values; both
/// reported at the map's own path.
pub(crate) fn labels(v: Option<&Value>, path: &Path, errs: &mut Errs) {
    let Some(v) = v.filter(|v| !v.is_null()) else { return };
    let Some(map) = v.as_object() else {
        errs.push(FieldError::invalid(path, v.clone(), "must be a map of strings"));
        return;
    };
    for (k, val) in map {
        push_msgs(errs, path, k, names::qualified_name(k));
        match val {
            Value::String(s) => push_msgs(errs, path, s, names::label_value(s)),
            Value::Null => {}
            other => errs.push(FieldError::invalid(path.key(k), other.clone(), "must be a string")),
        }
    }
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitively),
/// and keys plus values stay under 256 KiB.
pub(crate) fn annotations(v: Option<&Value>, path: &Path, errs: &mut Errs) {
    let Some(v) = v.filter(|v| !v.is_null()) else { return };
    let Some(map) = v.as_object() else {
        errs.push(FieldError::invalid(path, v.clone(), "must be a map of strings"));
        return;
    };
    let mut total = 0;
    for (k, val) in map {
        push_msgs(errs, path, k, names::qualified_name(&k.to_lowercase()));
        total += k.len();
        match val {
            Value::String(s) => total += s.len(),
            Value::Null => {}
            other => errs.push(FieldError::invalid(path.key(k), other.clone(), "must be a string")),
        }
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

fn owner_references(v: Option<&Value>, path: &Path, errs: &mut Errs) {
    let Some(refs) = v.and_then(Value::as_array) else { return };
    let mut first_controller: Option<String> = None;
    for r in refs {
        let api_version = string(r, "apiVersion");
        let version = api_version.rsplit_once('/').map(|(_, v)| v).unwrap_or(api_version);
        if version.is_empty() {
            errs.push(FieldError::invalid(path.child("apiVersion"), json!(api_version), "version must not be empty"));
        }
        for key in ["kind", "name", "uid"] {
            if string(r, key).is_empty() {
                errs.push(FieldError::invalid(path.child(key), json!(string(r, key)), "must not be empty"));
            }
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let this = format!("{}/{}", string(r, "kind"), string(r, "name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    Value::Array(refs.clone()),
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"),
                )),
                None => first_controller = Some(this),
            }
        }
    }
}

fn finalizers(v: Option<&Value>, path: &Path, errs: &mut Errs) {
    let Some(list) = v.and_then(Value::as_array) else { return };
    let names_: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
    for f in &names_ {
        push_msgs(errs, path, f, names::qualified_name(f));
    }
    if names_.contains(&"orphan") && names_.contains(&"foregroundDeletion") {
        errs.push(FieldError::invalid(path, Value::Array(list.clone()), "finalizer orphan and foregroundDeletion cannot be both set"));
    }
}

/// `ValidateLabelSelector` of an optional selector at `path`.
pub(crate) fn label_selector(v: Option<&Value>, path: &Path, errs: &mut Errs) {
    if let Some(v) = v {
        errs.extend(crate::selector::validate_label_selector(v, &path.to_string()));
    }
}

/// The object's `metadata.name`.
pub(crate) fn name(obj: &Value) -> &str {
    obj.get("metadata").and_then(|m| str_of(m, "name")).unwrap_or("")
}

/// The path-segment check upstream runs on every created object after the
/// kind's own validation passed.
pub(crate) fn path_segment(obj: &Value, errs: &mut Errs) {
    let name = name(obj);
    let msgs = names::path_segment_name(name);
    if !msgs.is_empty() {
        errs.push(FieldError::invalid(Path::root("metadata").child("name"), json!(name), msgs.join(",")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_error::aggregate;

    fn check(obj: Value, old: Option<Value>, name_fn: NameFn) -> String {
        let mut errs = Vec::new();
        object(&obj, old.as_ref(), name_fn, &mut errs);
        aggregate(&errs)
    }

    #[test]
    fn name_is_required_unless_generated() {
        assert_eq!(check(json!({"metadata": {}}), None, SUBDOMAIN), "metadata.name: Required value: name or generateName is required");
        assert_eq!(check(json!({"metadata": {"generateName": "web-"}}), None, SUBDOMAIN), "[]");
        assert!(check(json!({"metadata": {"generateName": "Web-"}}), None, SUBDOMAIN).starts_with("metadata.generateName: Invalid value: \"Web-\""));
    }

    #[test]
    fn bad_names_use_the_kind_rule() {
        assert_eq!(
            check(json!({"metadata": {"name": "My_App"}}), None, SUBDOMAIN),
            "metadata.name: Invalid value: \"My_App\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert!(check(json!({"metadata": {"name": "a.b"}}), None, LABEL).contains("must not contain dots"));
        assert!(check(json!({"metadata": {"name": "1abc"}}), None, DNS1035).contains("a DNS-1035 label must consist"));
        assert_eq!(check(json!({"metadata": {"name": "system:x"}}), None, PATH_SEGMENT), "[]");
    }

    #[test]
    fn labels_and_annotations() {
        let out = check(json!({"metadata": {"name": "a", "labels": {"bad key": "v", "k": "bad value"}}}), None, SUBDOMAIN);
        assert!(out.contains("metadata.labels: Invalid value: \"bad key\": name part must consist of"), "{out}");
        assert!(out.contains("metadata.labels: Invalid value: \"bad value\": a valid label must be"), "{out}");
        let big = "x".repeat(300 * 1024);
        assert_eq!(
            check(json!({"metadata": {"name": "a", "annotations": {"k": big}}}), None, SUBDOMAIN),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
        assert_eq!(check(json!({"metadata": {"name": "a", "annotations": {"Example.com/Key": "v"}}}), None, SUBDOMAIN), "[]");
    }

    #[test]
    fn identity_is_immutable_on_update() {
        let old = json!({"metadata": {"name": "a", "namespace": "ns", "uid": "1"}});
        assert_eq!(
            check(json!({"metadata": {"name": "b", "namespace": "ns", "uid": "1"}}), Some(old.clone()), SUBDOMAIN),
            "metadata.name: Invalid value: \"b\": field is immutable"
        );
        assert_eq!(
            check(json!({"metadata": {"name": "a", "namespace": "other", "uid": "2"}}), Some(old.clone()), SUBDOMAIN),
            "[metadata.namespace: Invalid value: \"other\": field is immutable, metadata.uid: Invalid value: \"2\": field is immutable]"
        );
        assert_eq!(check(json!({"metadata": {"name": "a", "namespace": "ns"}}), Some(old), SUBDOMAIN), "[]");
    }

    #[test]
    fn owner_references_and_finalizers() {
        let out = check(json!({"metadata": {"name": "a", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "", "uid": "u"}]}}), None, SUBDOMAIN);
        assert_eq!(out, "metadata.ownerReferences.name: Invalid value: \"\": must not be empty");
        let out = check(json!({"metadata": {"name": "a", "finalizers": ["orphan", "foregroundDeletion"]}}), None, SUBDOMAIN);
        assert!(out.contains("cannot be both set"), "{out}");
    }

    #[test]
    fn path_segment_check() {
        let mut errs = Vec::new();
        path_segment(&json!({"metadata": {"name": "a/b"}}), &mut errs);
        assert_eq!(aggregate(&errs), "metadata.name: Invalid value: \"a/b\": may not contain '/'");
    }
}
