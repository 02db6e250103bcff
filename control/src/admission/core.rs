//! Core (`v1`) kinds other than Service and volumes: Pod, PodTemplate,
//! ConfigMap, Secret, Namespace, Node, ServiceAccount.

use super::meta::{self, LABEL, SUBDOMAIN};
use super::path::Path;
use super::util::{get, list, map_of, push_msgs, str_of, string, too_long, Errs};
use super::{pod, pod_update};
use crate::field_error::{ErrorType, FieldError};
use crate::names;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::{json, Map, Value};

/// Largest total size of a ConfigMap's or Secret's data.
const MAX_DATA_SIZE: usize = 1024 * 1024;
const IMMUTABLE_WHEN_SET: &str = "field is immutable when `immutable` is set";

/// Go's `base64.StdEncoding`, which `[]byte` fields are decoded with.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

pub(crate) fn pod(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::root("spec");
    pod::spec(spec, &path, &[], errs);
    match old {
        None => {
            for key in ["containers", "initContainers"] {
                for (i, c) in list(spec, key).iter().enumerate() {
                    let image = string(c, "image");
                    if image.trim() != image {
                        errs.push(FieldError::invalid(path.child(key).index(i).child("image"), json!(image), "must not have leading or trailing whitespace"));
                    }
                }
            }
            if !list(spec, "ephemeralContainers").is_empty() {
                errs.push(FieldError::forbidden(path.child("ephemeralContainers"), "cannot be set on create"));
            }
        }
        Some(old) => pod_update::validate(obj, old, errs),
    }
}

pub(crate) fn pod_template(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    pod::template(obj.get("template"), &Path::root("template"), &[], errs);
}

/// Decodes a base64 `[]byte` field like Go's JSON decoder, giving its
/// length or Go's error message.
pub(crate) fn decoded_len(s: &str) -> Result<usize, String> {
    let cleaned: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    BASE64.decode(cleaned.as_bytes()).map(|b| b.len()).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => i,
            base64::DecodeError::InvalidLength(n) => n,
            base64::DecodeError::InvalidPadding => cleaned.len(),
        };
        format!("illegal base64 data at input byte {at}")
    })
}

/// Keys and size of one data map; `binary` maps hold base64.
fn data_map(m: Option<&Map<String, Value>>, path: &Path, binary: bool, errs: &mut Errs) -> usize {
    let mut total = 0;
    for (k, v) in m.into_iter().flatten() {
        let p = path.key(k);
        push_msgs(errs, &p, k, names::config_map_key(k));
        match v {
            Value::String(s) if binary => match decoded_len(s) {
                Ok(n) => total += n,
                Err(msg) => errs.push(FieldError::invalid(&p, json!("<secret contents redacted>"), msg)),
            },
            Value::String(s) => total += s.len(),
            Value::Null => {}
            other => errs.push(FieldError::invalid(&p, other.clone(), "must be a string")),
        }
    }
    total
}

/// `immutable: true` freezes the data maps and itself.
fn immutable_data(obj: &Value, old: Option<&Value>, keys: &[&str], errs: &mut Errs) {
    let Some(old) = old else { return };
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(FieldError::forbidden(Path::root("immutable"), IMMUTABLE_WHEN_SET));
    }
    for key in keys {
        if !super::util::semantic_eq(get(obj, key), get(old, key)) {
            errs.push(FieldError::forbidden(Path::root(key), IMMUTABLE_WHEN_SET));
        }
    }
}

pub(crate) fn config_map(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    immutable_data(obj, old, &["data", "binaryData"], errs);
    let data = map_of(obj, "data");
    let binary = map_of(obj, "binaryData");
    let mut total = data_map(data, &Path::root("data"), false, errs);
    for k in data.into_iter().flat_map(|m| m.keys()) {
        if binary.is_some_and(|b| b.contains_key(k)) {
            errs.push(FieldError::invalid(Path::root("data").key(k), json!(k), "duplicate of key present in binaryData"));
        }
    }
    total += data_map(binary, &Path::root("binaryData"), true, errs);
    if total > MAX_DATA_SIZE {
        errs.push(too_long(&Path::root(""), MAX_DATA_SIZE));
    }
}

pub(crate) fn secret(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    if let Some(old) = old {
        super::util::immutable(get(obj, "type"), get(old, "type"), &Path::root("type"), errs);
    }
    immutable_data(obj, old, &["data"], errs);
    let data_path = Path::root("data");
    let data = map_of(obj, "data");
    let total = data_map(data, &data_path, true, errs);
    if total > MAX_DATA_SIZE {
        errs.push(too_long(&data_path, MAX_DATA_SIZE));
    }
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let require = |k: &str, errs: &mut Errs| {
        if !has(k) {
            errs.push(FieldError::required(data_path.key(k), ""));
        }
    };
    match string(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let sa = obj.get("metadata").and_then(|m| super::util::at(m, &["annotations", "kubernetes.io/service-account.name"]));
            if sa.and_then(Value::as_str).unwrap_or("").is_empty() {
                errs.push(FieldError::required(Path::root("metadata").child("annotations").key("kubernetes.io/service-account.name"), ""));
            }
        }
        "kubernetes.io/dockercfg" => docker_config(data, ".dockercfg", &data_path, errs),
        "kubernetes.io/dockerconfigjson" => docker_config(data, ".dockerconfigjson", &data_path, errs),
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            require("username", errs);
            require("password", errs);
        }
        "kubernetes.io/ssh-auth" => {
            let key = data.and_then(|d| d.get("ssh-privatekey")).and_then(Value::as_str).unwrap_or("");
            if key.is_empty() {
                errs.push(FieldError::required(data_path.key("ssh-privatekey"), ""));
            }
        }
        "kubernetes.io/tls" => {
            require("tls.crt", errs);
            require("tls.key", errs);
        }
        _ => {}
    }
}

fn docker_config(data: Option<&Map<String, Value>>, key: &str, path: &Path, errs: &mut Errs) {
    let Some(v) = data.and_then(|d| d.get(key)).and_then(Value::as_str) else {
        errs.push(FieldError::required(path.key(key), ""));
        return;
    };
    let cleaned: String = v.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    if let Ok(bytes) = BASE64.decode(cleaned.as_bytes()) {
        if let Err(e) = serde_json::from_slice::<Map<String, Value>>(&bytes) {
            errs.push(FieldError::invalid(path.key(key), json!("<secret contents redacted>"), e.to_string()));
        }
    }
}

pub(crate) fn namespace(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, LABEL, errs);
    let path = Path::root("spec").child("finalizers");
    for f in list(obj.get("spec").unwrap_or(&Value::Null), "finalizers").iter().filter_map(Value::as_str) {
        push_msgs(errs, &path, f, names::qualified_name(f));
        if !f.contains('/') && !matches!(f, "kubernetes" | "orphan" | "foregroundDeletion") {
            errs.push(FieldError::invalid(&path, json!(f), "name is neither a standard finalizer name nor is it fully qualified"));
        }
    }
}

pub(crate) fn node(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let path = Path::root("spec").child("taints");
    let mut seen = Vec::new();
    for (i, t) in list(obj.get("spec").unwrap_or(&Value::Null), "taints").iter().enumerate() {
        let idx = path.index(i);
        let key = string(t, "key");
        push_msgs(errs, &idx.child("key"), key, names::qualified_name(key));
        let value = string(t, "value");
        push_msgs(errs, &idx.child("value"), value, names::label_value(value));
        let effect = str_of(t, "effect").unwrap_or("");
        pod::taint_effect(effect, &idx.child("effect"), errs);
        let id = (key.to_string(), effect.to_string());
        if seen.contains(&id) {
            errs.push(FieldError::new(
                ErrorType::Duplicate,
                &idx,
                Some(t.clone()),
                "taints must be unique by key and effect pair",
            ));
        } else {
            seen.push(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_error::aggregate;

    fn run(f: fn(&Value, Option<&Value>, &mut Errs), obj: Value, old: Option<Value>) -> String {
        let mut errs = Vec::new();
        f(&obj, old.as_ref(), &mut errs);
        aggregate(&errs)
    }

    #[test]
    fn config_map_keys_and_immutability() {
        assert_eq!(run(config_map, json!({"metadata": {"name": "c"}, "data": {"a.txt": "x"}}), None), "[]");
        assert!(run(config_map, json!({"metadata": {"name": "c"}, "data": {"a/b": "x"}}), None)
            .starts_with("data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters"));
        let old = json!({"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": true});
        assert_eq!(
            run(config_map, json!({"metadata": {"name": "c"}, "data": {"a": "2"}, "immutable": true}), Some(old.clone())),
            "data: Forbidden: field is immutable when `immutable` is set"
        );
        assert_eq!(
            run(config_map, json!({"metadata": {"name": "c"}, "data": {"a": "1"}}), Some(old)),
            "immutable: Forbidden: field is immutable when `immutable` is set"
        );
        let big = "x".repeat(MAX_DATA_SIZE + 1);
        assert_eq!(run(config_map, json!({"metadata": {"name": "c"}, "data": {"a": big}}), None), "Too long: may not be more than 1048576 bytes");
    }

    #[test]
    fn secret_data_is_base64() {
        assert_eq!(run(secret, json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "aGVsbG8="}}), None), "[]");
        assert_eq!(
            run(secret, json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "not base64!"}}), None),
            "data[k]: Invalid value: \"<secret contents redacted>\": illegal base64 data at input byte 3"
        );
        assert_eq!(
            run(secret, json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": ""}}), None),
            "data[tls.key]: Required value"
        );
        let old = json!({"metadata": {"name": "s"}, "type": "Opaque"});
        assert_eq!(
            run(secret, json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}), Some(old)),
            "type: Invalid value: \"kubernetes.io/tls\": field is immutable"
        );
    }

    #[test]
    fn namespace_names_are_labels() {
        assert!(run(namespace, json!({"metadata": {"name": "a.b"}}), None).contains("must not contain dots"));
        assert_eq!(run(namespace, json!({"metadata": {"name": "ok"}, "spec": {"finalizers": ["kubernetes"]}}), None), "[]");
        assert_eq!(
            run(namespace, json!({"metadata": {"name": "ok"}, "spec": {"finalizers": ["custom"]}}), None),
            "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
        );
    }

    #[test]
    fn pod_create_checks_image_whitespace() {
        let p = json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "a", "image": "nginx ", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}});
        assert_eq!(run(pod, p, None), "spec.containers[0].image: Invalid value: \"nginx \": must not have leading or trailing whitespace");
    }

    #[test]
    fn defaulted_minimal_pod_is_valid_and_updates_are_limited() {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27", "env": [{"name": "MODE", "value": "x"}]}]}});
        crate::admission::default("", "Pod", &mut p);
        assert_eq!(run(pod, p.clone(), None), "[]");
        let mut new = p.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:1.28");
        new["metadata"]["labels"] = json!({"tier": "web"});
        assert_eq!(run(pod, new, Some(p.clone())), "[]");
        let mut new = p.clone();
        new["spec"]["containers"][0]["env"][0]["value"] = json!("y");
        assert!(run(pod, new, Some(p)).starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"));
    }

    #[test]
    fn node_taints() {
        let n = json!({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}, {"key": "k", "effect": "Bogus"}]}});
        assert_eq!(
            run(node, n, None),
            "spec.taints[1].effect: Unsupported value: \"Bogus\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""
        );
    }
}
