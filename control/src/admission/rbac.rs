//! `rbac.authorization.k8s.io/v1`: Role, ClusterRole, RoleBinding,
//! ClusterRoleBinding. Names are only path segments (`system:...` is fine).

use super::gorepr;
use super::meta::{self, PATH_SEGMENT};
use super::path::Path;
use super::util::{get, invalid_raw, list, push_msgs, string, Errs};
use crate::field_error::FieldError;
use crate::names;
use serde_json::{json, Value};

const GROUP: &str = "rbac.authorization.k8s.io";

fn rules(obj: &Value, namespaced: bool, errs: &mut Errs) {
    let path = Path::root("rules");
    for (i, rule) in list(obj, "rules").iter().enumerate() {
        let p = path.index(i);
        if list(rule, "verbs").is_empty() {
            errs.push(FieldError::required(p.child("verbs"), "verbs must contain at least one value"));
        }
        if !list(rule, "nonResourceURLs").is_empty() {
            let urls = gorepr::string_slice(rule.get("nonResourceURLs"));
            if namespaced {
                errs.push(invalid_raw(&p.child("nonResourceURLs"), &urls, "namespaced rules cannot apply to non-resource URLs"));
            }
            if !list(rule, "apiGroups").is_empty() || !list(rule, "resources").is_empty() || !list(rule, "resourceNames").is_empty() {
                errs.push(invalid_raw(&p.child("nonResourceURLs"), &urls, "rules cannot apply to both regular resources and non-resource URLs"));
            }
            continue;
        }
        if list(rule, "apiGroups").is_empty() {
            errs.push(FieldError::required(p.child("apiGroups"), "resource rules must supply at least one api group"));
        }
        if list(rule, "resources").is_empty() {
            errs.push(FieldError::required(p.child("resources"), "resource rules must supply at least one resource"));
        }
    }
}

pub(crate) fn role(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, PATH_SEGMENT, errs);
    rules(obj, true, errs);
}

pub(crate) fn cluster_role(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, PATH_SEGMENT, errs);
    if let Some(agg) = get(obj, "aggregationRule") {
        let p = Path::root("aggregationRule").child("clusterRoleSelectors");
        let selectors = list(agg, "clusterRoleSelectors");
        if selectors.is_empty() {
            errs.push(FieldError::required(&p, "at least one clusterRoleSelector required if aggregationRule is non-nil"));
        }
        for (i, s) in selectors.iter().enumerate() {
            meta::label_selector(Some(s), &p.index(i), errs);
        }
    }
    rules(obj, false, errs);
}

fn role_ref_raw(r: &Value) -> String {
    format!(
        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
        gorepr::quote(string(r, "apiGroup")),
        gorepr::quote(string(r, "kind")),
        gorepr::quote(string(r, "name"))
    )
}

fn binding(obj: &Value, old: Option<&Value>, kinds: &[&str], namespaced: bool, errs: &mut Errs) {
    meta::object(obj, old, PATH_SEGMENT, errs);
    let role_ref = obj.get("roleRef").unwrap_or(&Value::Null);
    let p = Path::root("roleRef");
    let api_group = string(role_ref, "apiGroup");
    if api_group != GROUP {
        errs.push(FieldError::not_supported(p.child("apiGroup"), json!(api_group), &[GROUP]));
    }
    let kind = string(role_ref, "kind");
    if !kinds.contains(&kind) {
        errs.push(FieldError::not_supported(p.child("kind"), json!(kind), kinds));
    }
    let name = string(role_ref, "name");
    if name.is_empty() {
        errs.push(FieldError::required(p.child("name"), ""));
    } else {
        push_msgs(errs, &p.child("name"), name, names::path_segment_name(name));
    }
    for (i, s) in list(obj, "subjects").iter().enumerate() {
        subject(s, namespaced, &Path::root("subjects").index(i), errs);
    }
    if let Some(old) = old {
        let old_ref = old.get("roleRef").unwrap_or(&Value::Null);
        let same = ["apiGroup", "kind", "name"].iter().all(|k| string(role_ref, k) == string(old_ref, k));
        if !same {
            errs.push(invalid_raw(&p, &role_ref_raw(role_ref), "cannot change roleRef"));
        }
    }
}

fn subject(s: &Value, namespaced: bool, path: &Path, errs: &mut Errs) {
    let name = string(s, "name");
    if name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    }
    let api_group = string(s, "apiGroup");
    match string(s, "kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                push_msgs(errs, &path.child("name"), name, names::dns1123_subdomain(name));
            }
            if !api_group.is_empty() {
                errs.push(FieldError::not_supported(path.child("apiGroup"), json!(api_group), &[""]));
            }
            if !namespaced && string(s, "namespace").is_empty() {
                errs.push(FieldError::required(path.child("namespace"), ""));
            }
        }
        "User" | "Group" => {
            if api_group != GROUP {
                errs.push(FieldError::not_supported(path.child("apiGroup"), json!(api_group), &[GROUP]));
            }
        }
        other => errs.push(FieldError::not_supported(path.child("kind"), json!(other), &["ServiceAccount", "User", "Group"])),
    }
}

pub(crate) fn role_binding(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    binding(obj, old, &["Role", "ClusterRole"], true, errs);
}

pub(crate) fn cluster_role_binding(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    binding(obj, old, &["ClusterRole"], false, errs);
}

#[cfg(test)]
mod tests {
    use crate::admission::{default, validate};
    use crate::field_error::aggregate;
    use serde_json::{json, Value};

    fn check(kind: &str, mut obj: Value, old: Option<Value>) -> String {
        default("rbac.authorization.k8s.io", kind, &mut obj);
        aggregate(&validate("rbac.authorization.k8s.io", kind, &obj, old.as_ref()))
    }

    #[test]
    fn rules_need_verbs() {
        let role = json!({"metadata": {"name": "system:reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]});
        assert_eq!(check("Role", role, None), "rules[0].verbs: Required value: verbs must contain at least one value");
        let role = json!({"metadata": {"name": "r"}, "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
        assert_eq!(
            check("Role", role.clone(), None),
            "rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs"
        );
        assert_eq!(check("ClusterRole", role, None), "[]");
    }

    fn binding(kind: &str, role: &str) -> Value {
        json!({"metadata": {"name": "b"}, "roleRef": {"kind": kind, "name": role},
               "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default", "namespace": "default"}]})
    }

    #[test]
    fn role_ref_rules() {
        assert_eq!(check("RoleBinding", binding("Role", "reader"), None), "[]");
        assert_eq!(
            check("RoleBinding", binding("Thing", "reader"), None),
            "roleRef.kind: Unsupported value: \"Thing\": supported values: \"Role\", \"ClusterRole\""
        );
        assert_eq!(
            check("ClusterRoleBinding", binding("Role", "reader"), None),
            "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\""
        );
        let mut old = binding("Role", "reader");
        default("rbac.authorization.k8s.io", "RoleBinding", &mut old);
        assert_eq!(
            check("RoleBinding", binding("Role", "writer"), Some(old)),
            "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"writer\"}: cannot change roleRef"
        );
    }
}
