//! `apps/v1`: Deployment, ReplicaSet, DaemonSet, StatefulSet.

use super::gorepr;
use super::meta::{self, SUBDOMAIN};
use super::path::Path;
use super::pod;
use super::util::{get, invalid_raw, list, nonnegative, positive, semantic_eq, str_of, string, int_of, Errs};
use super::workload::{self, Selector};
use crate::field_error::FieldError;
use serde_json::{json, Value};

fn spec_of(obj: &Value) -> &Value {
    obj.get("spec").unwrap_or(&Value::Null)
}

/// Selector, template and restart rules of Deployments and ReplicaSets.
fn replica_set_like(spec: &Value, kind_word: &str, path: &Path, errs: &mut Errs) {
    let sel = workload::selector(spec, Some("deployment"), path, errs);
    if let Selector::Invalid = sel {
        let raw = get(spec, "selector").map(gorepr::label_selector).unwrap_or_default();
        errs.push(invalid_raw(&path.child("selector"), &raw, "invalid label selector"));
        return;
    }
    let template = get(spec, "template");
    workload::match_template(&sel, template, path, errs);
    pod::template(template, &path.child("template"), &[], errs);
    workload::long_running_template(template, kind_word, path, errs);
}

pub(crate) fn deployment(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let spec = spec_of(obj);
    let path = Path::root("spec");
    nonnegative(spec, "replicas", &path, errs);
    replica_set_like(spec, "ReplicaSet", &path, errs);
    deployment_strategy(spec, &path.child("strategy"), errs);
    nonnegative(spec, "minReadySeconds", &path, errs);
    nonnegative(spec, "revisionHistoryLimit", &path, errs);
    if let Some(pds) = int_of(spec, "progressDeadlineSeconds") {
        positive(spec, "progressDeadlineSeconds", &path, errs);
        if pds <= int_of(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(path.child("progressDeadlineSeconds"), json!(pds), "must be greater than minReadySeconds"));
        }
    }
    if let Some(old) = old {
        workload::selector_immutable(spec, spec_of(old), &path, errs);
    }
}

fn deployment_strategy(spec: &Value, path: &Path, errs: &mut Errs) {
    let strategy = spec.get("strategy").unwrap_or(&Value::Null);
    let rolling = get(strategy, "rollingUpdate");
    match string(strategy, "type") {
        "Recreate" => {
            if rolling.is_some() {
                errs.push(FieldError::forbidden(path.child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"));
            }
        }
        "RollingUpdate" => match rolling {
            None => errs.push(FieldError::required(path.child("rollingUpdate"), "this should be defaulted and never be nil")),
            Some(r) => {
                let p = path.child("rollingUpdate");
                let (mu, ms) = (get(r, "maxUnavailable"), get(r, "maxSurge"));
                workload::positive_int_or_percent(mu, &p.child("maxUnavailable"), errs);
                workload::positive_int_or_percent(ms, &p.child("maxSurge"), errs);
                if workload::int_or_percent_value(mu) == 0 && workload::int_or_percent_value(ms) == 0 {
                    errs.push(invalid_raw(&p.child("maxUnavailable"), &gorepr::int_or_string(mu), "may not be 0 when `maxSurge` is 0"));
                }
                workload::not_more_than_100_percent(mu, &p.child("maxUnavailable"), errs);
            }
        },
        other => {
            let raw = format!(
                "apps.DeploymentStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}}",
                gorepr::quote(other)
            );
            errs.push(super::util::not_supported_raw(path, &raw, &["Recreate", "RollingUpdate"]));
        }
    }
}

pub(crate) fn replica_set(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let spec = spec_of(obj);
    let path = Path::root("spec");
    nonnegative(spec, "replicas", &path, errs);
    nonnegative(spec, "minReadySeconds", &path, errs);
    replica_set_like(spec, "ReplicaSet", &path, errs);
    if let Some(old) = old {
        workload::selector_immutable(spec, spec_of(old), &path, errs);
    }
}

pub(crate) fn daemon_set(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let spec = spec_of(obj);
    let path = Path::root("spec");
    let sel = workload::selector(spec, Some("daemonset"), &path, errs);
    let template = get(spec, "template");
    workload::match_template(&sel, template, &path, errs);
    pod::template(template, &path.child("template"), &[], errs);
    let spec_path = path.child("template").child("spec");
    let policy = pod::template_restart_policy(template);
    if policy != "Always" {
        errs.push(FieldError::not_supported(spec_path.child("restartPolicy"), json!(policy), &["Always"]));
    }
    if let Some(ads) = template.and_then(|t| super::util::at(t, &["spec", "activeDeadlineSeconds"])) {
        errs.push(FieldError::invalid(spec_path.child("activeDeadlineSeconds"), ads.clone(), "activeDeadlineSeconds must be nil for daemonsets"));
    }
    nonnegative(spec, "minReadySeconds", &path, errs);
    nonnegative(spec, "templateGeneration", &path, errs);
    daemon_set_strategy(spec, &path.child("updateStrategy"), errs);
    nonnegative(spec, "revisionHistoryLimit", &path, errs);
    if let Some(old) = old {
        workload::selector_immutable(spec, spec_of(old), &path, errs);
    }
}

fn daemon_set_strategy(spec: &Value, path: &Path, errs: &mut Errs) {
    let strategy = spec.get("updateStrategy").unwrap_or(&Value::Null);
    match string(strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => {
            let Some(r) = get(strategy, "rollingUpdate") else {
                errs.push(FieldError::required(path.child("rollingUpdate"), ""));
                return;
            };
            let p = path.child("rollingUpdate");
            let (mu, ms) = (get(r, "maxUnavailable"), get(r, "maxSurge"));
            workload::positive_int_or_percent(mu, &p.child("maxUnavailable"), errs);
            workload::positive_int_or_percent(ms, &p.child("maxSurge"), errs);
            workload::not_more_than_100_percent(mu, &p.child("maxUnavailable"), errs);
            workload::not_more_than_100_percent(ms, &p.child("maxSurge"), errs);
            let has_unavailable = workload::int_or_percent_value(mu) != 0;
            let has_surge = workload::int_or_percent_value(ms) != 0;
            if has_unavailable && has_surge {
                errs.push(invalid_raw(&p.child("maxSurge"), &gorepr::int_or_string(ms), "may not be set when maxUnavailable is non-zero"));
            } else if !has_unavailable && !has_surge {
                errs.push(FieldError::required(p.child("maxUnavailable"), "cannot be 0 when maxSurge is 0"));
            }
        }
        other => {
            let raw = format!(
                "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}",
                gorepr::quote(other)
            );
            errs.push(super::util::not_supported_raw(path, &raw, &["RollingUpdate", "OnDelete"]));
        }
    }
}

const STATEFUL_SET_UPDATABLE: &[&str] =
    &["replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy", "minReadySeconds"];

pub(crate) fn stateful_set(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta::object(obj, old, SUBDOMAIN, errs);
    let spec = spec_of(obj);
    let path = Path::root("spec");
    match string(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required(path.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(path.child("podManagementPolicy"), json!(other), "must be 'OrderedReady' or 'Parallel'")),
    }
    stateful_set_strategy(spec, &path.child("updateStrategy"), errs);
    if let Some(policy) = get(spec, "persistentVolumeClaimRetentionPolicy") {
        for key in ["whenDeleted", "whenScaled"] {
            let v = string(policy, key);
            if !matches!(v, "Retain" | "Delete") {
                errs.push(FieldError::not_supported(
                    path.child("persistentVolumeClaimRetentionPolicy").child(key),
                    json!(v),
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    nonnegative(spec, "replicas", &path, errs);
    nonnegative(spec, "minReadySeconds", &path, errs);
    if let Some(ordinals) = get(spec, "ordinals") {
        nonnegative(ordinals, "start", &path.child("ordinals"), errs);
    }
    let sel = workload::selector(spec, Some("statefulset"), &path, errs);
    let template = get(spec, "template");
    if let Selector::Invalid = sel {
        let raw = get(spec, "selector").map(gorepr::label_selector).unwrap_or_default();
        errs.push(invalid_raw(&path.child("selector"), &raw, ""));
    } else {
        workload::match_template(&sel, template, &path, errs);
        // The claim templates become volumes of every pod.
        let claims: Vec<String> = list(spec, "volumeClaimTemplates")
            .iter()
            .filter_map(|c| c.get("metadata").and_then(|m| str_of(m, "name")))
            .map(str::to_string)
            .collect();
        pod::template(template, &path.child("template"), &claims, errs);
    }
    workload::long_running_template(template, "StatefulSet", &path, errs);
    if let Some(old) = old {
        let mut new_rest = spec.clone();
        let mut old_rest = spec_of(old).clone();
        for s in [&mut new_rest, &mut old_rest] {
            if let Some(m) = s.as_object_mut() {
                for key in STATEFUL_SET_UPDATABLE {
                    m.remove(*key);
                }
            }
        }
        if !semantic_eq(Some(&new_rest), Some(&old_rest)) {
            errs.push(FieldError::forbidden(
                &path,
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
    }
}

fn stateful_set_strategy(spec: &Value, path: &Path, errs: &mut Errs) {
    let strategy = spec.get("updateStrategy").unwrap_or(&Value::Null);
    let rolling = get(strategy, "rollingUpdate");
    match string(strategy, "type") {
        "" => errs.push(FieldError::required(path, "")),
        "OnDelete" => {
            if let Some(r) = rolling {
                errs.push(FieldError::invalid(path.child("rollingUpdate"), r.clone(), "only allowed for updateStrategy 'RollingUpdate'"));
            }
        }
        "RollingUpdate" => {
            if let Some(r) = rolling {
                let p = path.child("rollingUpdate");
                nonnegative(r, "partition", &p, errs);
                if let Some(mu) = get(r, "maxUnavailable") {
                    let mu_path = p.child("maxUnavailable");
                    workload::positive_int_or_percent(Some(mu), &mu_path, errs);
                    if workload::int_or_percent_value(Some(mu)) == 0 {
                        errs.push(invalid_raw(&mu_path, &gorepr::int_or_string(Some(mu)), "cannot be 0"));
                    }
                    workload::not_more_than_100_percent(Some(mu), &mu_path, errs);
                }
            }
        }
        other => {
            let raw = format!(
                "apps.StatefulSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}",
                gorepr::quote(other)
            );
            errs.push(invalid_raw(path, &raw, "must be 'RollingUpdate' or 'OnDelete'"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{default, validate};
    use crate::field_error::aggregate;

    fn deploy(labels: Value, selector: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": selector,
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}
            }
        })
    }

    fn check(group: &str, kind: &str, mut obj: Value, old: Option<Value>) -> String {
        default(group, kind, &mut obj);
        let old = old.map(|mut o| {
            default(group, kind, &mut o);
            o
        });
        aggregate(&validate(group, kind, &obj, old.as_ref()))
    }

    #[test]
    fn valid_deployment_passes() {
        assert_eq!(check("apps", "Deployment", deploy(json!({"app": "web"}), json!({"matchLabels": {"app": "web"}})), None), "[]");
    }

    #[test]
    fn selector_must_match_template_labels() {
        assert_eq!(
            check("apps", "Deployment", deploy(json!({"app": "x"}), json!({"matchLabels": {"app": "web"}})), None),
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`"
        );
    }

    #[test]
    fn selector_is_required() {
        let mut d = deploy(json!({"app": "x"}), json!(null));
        if let Some(spec) = d["spec"].as_object_mut() {
            spec.remove("selector");
        }
        assert_eq!(
            check("apps", "Deployment", d, None),
            "[spec.selector: Required value, spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`]"
        );
        assert_eq!(
            check("apps", "Deployment", deploy(json!({"app": "x"}), json!({})), None),
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
        );
    }

    #[test]
    fn selector_is_immutable() {
        let old = deploy(json!({"app": "web"}), json!({"matchLabels": {"app": "web"}}));
        let new = deploy(json!({"app": "web2"}), json!({"matchLabels": {"app": "web2"}}));
        assert_eq!(
            check("apps", "Deployment", new, Some(old)),
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
        );
    }

    #[test]
    fn replicas_restart_policy_and_strategy() {
        let mut d = deploy(json!({"app": "web"}), json!({"matchLabels": {"app": "web"}}));
        d["spec"]["replicas"] = json!(-1);
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}});
        assert_eq!(
            check("apps", "Deployment", d, None),
            "[spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\", spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate']"
        );
        let mut d = deploy(json!({"app": "web"}), json!({"matchLabels": {"app": "web"}}));
        d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}});
        assert_eq!(
            check("apps", "Deployment", d, None),
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0"
        );
        let mut d = deploy(json!({"app": "web"}), json!({"matchLabels": {"app": "web"}}));
        d["spec"]["strategy"] = json!({"rollingUpdate": {"maxUnavailable": "150%"}});
        assert_eq!(
            check("apps", "Deployment", d, None),
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%"
        );
    }

    #[test]
    fn template_errors_use_full_paths() {
        let mut d = deploy(json!({"app": "web"}), json!({"matchLabels": {"app": "web"}}));
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("");
        assert_eq!(check("apps", "Deployment", d, None), "spec.template.spec.containers[0].image: Required value");
    }

    fn sts() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16",
                    "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql"}]}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
            }
        })
    }

    #[test]
    fn stateful_set_claims_count_as_volumes_and_updates_are_limited() {
        assert_eq!(check("apps", "StatefulSet", sts(), None), "[]");
        let mut new = sts();
        new["spec"]["replicas"] = json!(3);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("postgres:17");
        assert_eq!(check("apps", "StatefulSet", new, Some(sts())), "[]");
        let mut new = sts();
        new["spec"]["serviceName"] = json!("other");
        assert_eq!(
            check("apps", "StatefulSet", new, Some(sts())),
            "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
        );
    }

    #[test]
    fn daemon_set_strategy() {
        let ds = json!({
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "agent:1"}]}},
                "updateStrategy": {"rollingUpdate": {"maxSurge": 1}}
            }
        });
        assert_eq!(
            check("apps", "DaemonSet", ds, None),
            "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:\"\"}: may not be set when maxUnavailable is non-zero"
        );
    }

    #[test]
    fn replica_set_selector() {
        let rs = json!({
            "metadata": {"name": "rs"},
            "spec": {
                "selector": {"matchLabels": {"app": "a"}},
                "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "a", "image": "a"}]}}
            }
        });
        assert_eq!(
            check("apps", "ReplicaSet", rs, None),
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`"
        );
    }
}
