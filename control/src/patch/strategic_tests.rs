//! Strategic merge patch as kubectl drives it.

use super::strategic_merge_patch;
use crate::patch::{annotate_definitions, PatchError};
use crate::schema::Definitions;
use serde_json::{json, Value};

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/definitions/{name}")})
}

/// `base` with the patch extensions added when `with_meta` is set.
fn meta(with_meta: bool, mut base: Value, strategy: &str, key: Option<&str>) -> Value {
    if with_meta {
        if let Some(node) = base.as_object_mut() {
            node.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
            if let Some(key) = key {
                node.insert("x-kubernetes-patch-merge-key".into(), json!(key));
            }
        }
    }
    base
}

fn array_of(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// A Deployment-shaped slice of the built-in schemas, in OpenAPI v2 style
/// (extensions next to `$ref`). `with_meta` adds the patch extensions by
/// hand, as the served documents carry them.
fn deployment_defs(with_meta: bool) -> Definitions {
    let m = with_meta;
    let mut defs = Definitions::new();
    let string = json!({"type": "string"});
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    defs.insert(
        DEPLOYMENT,
        json!({"type": "object", "properties": {
            "apiVersion": string, "kind": string,
            "metadata": r("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
            "spec": r("io.k8s.api.apps.v1.DeploymentSpec"),
        }}),
    );
    defs.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        json!({"type": "object", "properties": {
            "name": string, "labels": string_map, "annotations": string_map,
            "finalizers": meta(m, array_of(string.clone()), "merge", None),
            "ownerReferences": meta(m, array_of(r("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference")), "merge", Some("uid")),
        }}),
    );
    defs.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
        json!({"type": "object", "properties": {"uid": string, "name": string, "kind": string}}),
    );
    defs.insert(
        "io.k8s.api.apps.v1.DeploymentSpec",
        json!({"type": "object", "properties": {
            "replicas": {"type": "integer"},
            "strategy": meta(m, r("io.k8s.api.apps.v1.DeploymentStrategy"), "retainKeys", None),
            "template": r("io.k8s.api.core.v1.PodTemplateSpec"),
        }}),
    );
    defs.insert(
        "io.k8s.api.apps.v1.DeploymentStrategy",
        json!({"type": "object", "properties": {
            "type": string,
            "rollingUpdate": {"type": "object", "properties": {"maxSurge": {"x-kubernetes-int-or-string": true}}},
        }}),
    );
    defs.insert(
        "io.k8s.api.core.v1.PodTemplateSpec",
        json!({"type": "object", "properties": {
            "metadata": r("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
            "spec": r("io.k8s.api.core.v1.PodSpec"),
        }}),
    );
    defs.insert(
        "io.k8s.api.core.v1.PodSpec",
        json!({"type": "object", "properties": {
            "containers": meta(m, array_of(r("io.k8s.api.core.v1.Container")), "merge", Some("name")),
            "volumes": meta(m, array_of(r("io.k8s.api.core.v1.Volume")), "merge,retainKeys", Some("name")),
            "tolerations": array_of(json!({"type": "object"})),
            "nodeSelector": string_map,
        }}),
    );
    let mut ports = meta(m, array_of(r("io.k8s.api.core.v1.ContainerPort")), "merge", Some("containerPort"));
    if let Some(node) = ports.as_object_mut() {
        node.insert("x-kubernetes-list-type".into(), json!("map"));
        node.insert("x-kubernetes-list-map-keys".into(), json!(["containerPort", "protocol"]));
    }
    defs.insert(
        "io.k8s.api.core.v1.Container",
        json!({"type": "object", "properties": {
            "name": string, "image": string,
            "args": array_of(string.clone()),
            "env": meta(m, array_of(r("io.k8s.api.core.v1.EnvVar")), "merge", Some("name")),
            "ports": ports,
        }}),
    );
    defs.insert(
        "io.k8s.api.core.v1.EnvVar",
        json!({"type": "object", "properties": {"name": string, "value": string, "valueFrom": {"type": "object"}}}),
    );
    defs.insert(
        "io.k8s.api.core.v1.ContainerPort",
        json!({"type": "object", "properties": {"containerPort": {"type": "integer"}, "protocol": string, "name": string}}),
    );
    defs.insert(
        "io.k8s.api.core.v1.Volume",
        json!({"type": "object", "properties": {
            "name": string, "configMap": {"type": "object"}, "secret": {"type": "object"}, "emptyDir": {"type": "object"},
        }}),
    );
    defs
}

fn live_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}, "finalizers": ["a.example.com/x", "b.example.com/y"]},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:1.25",
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "1"}],
                         "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]},
                        {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "infinity"]}
                    ],
                    "volumes": [{"name": "cfg", "configMap": {"name": "web-config"}}],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                    "nodeSelector": {"disk": "hdd", "zone": "z1"}
                }
            }
        }
    })
}

fn apply(patch: Value) -> Result<Value, PatchError> {
    let defs = deployment_defs(true);
    let schema = defs.get(DEPLOYMENT).cloned().unwrap_or_default();
    strategic_merge_patch(&live_deployment(), &patch, &defs, &schema)
}

fn message(result: Result<Value, PatchError>) -> String {
    match result {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e.to_string(),
    }
}

fn assert_no_directives(value: &Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                assert!(!key.starts_with('$'), "directive {key} left in result");
                assert_no_directives(child);
            }
        }
        Value::Array(list) => list.iter().for_each(assert_no_directives),
        _ => {}
    }
}

fn containers(out: &Value) -> &Value {
    &out["spec"]["template"]["spec"]["containers"]
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|l| l.iter().filter_map(|e| e["name"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

#[test]
fn kubectl_apply_of_one_changed_image_keeps_the_other_container() -> Result<(), PatchError> {
    let out = apply(json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
            "containers": [{"image": "nginx:1.26", "name": "app"}]
        }}}
    }))?;
    let live = live_deployment();
    let mut expected = containers(&live).clone();
    expected[0]["image"] = json!("nginx:1.26");
    assert_eq!(containers(&out), &expected);
    assert_eq!(out["spec"]["template"]["spec"]["volumes"], live["spec"]["template"]["spec"]["volumes"]);
    assert_eq!(out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"], json!("{}"));
    assert_no_directives(&out);
    Ok(())
}

#[test]
fn set_element_order_reorders_and_keeps_server_only_elements() -> Result<(), PatchError> {
    let out = apply(json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]
    }}}}))?;
    assert_eq!(names(containers(&out)), ["sidecar", "app"]);
    // A new container named in the order list, with a server-only one left alone.
    let out = apply(json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "extra"}],
        "containers": [{"name": "extra", "image": "redis"}]
    }}}}))?;
    assert_eq!(names(containers(&out)), ["app", "extra", "sidecar"]);
    assert_no_directives(&out);
    Ok(())
}

#[test]
fn env_merges_by_name() -> Result<(), PatchError> {
    let out = apply(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [
            {"name": "B", "value": "2"},
            {"name": "C", "value": "3"},
            {"name": "A", "value": null, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        ]}
    ]}}}}))?;
    assert_eq!(
        containers(&out)[0]["env"],
        json!([
            {"name": "B", "value": "2"},
            {"name": "C", "value": "3"},
            {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        ])
    );
    assert_eq!(containers(&out)[0]["image"], json!("nginx:1.25"));
    assert_eq!(containers(&out)[1], containers(&live_deployment())[1]);
    Ok(())
}

#[test]
fn patch_delete_removes_a_container() -> Result<(), PatchError> {
    let out = apply(json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [{"$patch": "delete", "name": "sidecar"}]
    }}}}))?;
    assert_eq!(names(containers(&out)), ["app"]);
    assert_eq!(containers(&out)[0], containers(&live_deployment())[0]);
    // Deleting an element that is not there is not an error.
    let out = apply(json!({"spec": {"template": {"spec": {
        "containers": [{"$patch": "delete", "name": "nope"}]
    }}}}))?;
    assert_eq!(names(containers(&out)), ["app", "sidecar"]);
    Ok(())
}

#[test]
fn retain_keys_drops_rolling_update_on_switch_to_recreate() -> Result<(), PatchError> {
    let out = apply(json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}))?;
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    let out = apply(json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}))?;
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    // Without the directive the map merges and rollingUpdate stays.
    let out = apply(json!({"spec": {"strategy": {"type": "Recreate"}}}))?;
    assert_eq!(out["spec"]["strategy"]["rollingUpdate"]["maxSurge"], json!("25%"));
    Ok(())
}

#[test]
fn retain_keys_on_a_volume_switches_its_source() -> Result<(), PatchError> {
    let out = apply(json!({"spec": {"template": {"spec": {"volumes": [
        {"name": "cfg", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}}
    ]}}}}))?;
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "cfg", "secret": {"secretName": "s"}}])
    );
    Ok(())
}

#[test]
fn retain_keys_must_list_the_fields_the_patch_sets() {
    assert_eq!(
        message(apply(json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}}))),
        r#"the patch sets field "rollingUpdate" at spec.strategy which is not listed in $retainKeys ["type"]"#
    );
    assert_eq!(
        message(apply(json!({"spec": {"strategy": {"$retainKeys": "type"}}}))),
        r#"invalid $retainKeys directive at spec.strategy: it must be a list of field names, got: "type""#
    );
}

#[test]
fn null_removes_labels() -> Result<(), PatchError> {
    let out = apply(json!({"metadata": {"labels": {"tier": null, "env": "prod"}}}))?;
    assert_eq!(out["metadata"]["labels"], json!({"app": "web", "env": "prod"}));
    let out = apply(json!({"metadata": {"labels": null}}))?;
    assert_eq!(out["metadata"].get("labels"), None);
    assert_eq!(out["metadata"]["name"], json!("web"));
    Ok(())
}

#[test]
fn ports_merge_by_container_port() -> Result<(), PatchError> {
    let out = apply(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "ports": [{"containerPort": 80, "name": "web"}, {"containerPort": 443, "name": "https"}]}
    ]}}}}))?;
    assert_eq!(
        containers(&out)[0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP", "name": "web"}, {"containerPort": 443, "name": "https"}])
    );
    Ok(())
}

#[test]
fn finalizers_union_and_delete_from_primitive_list() -> Result<(), PatchError> {
    let out = apply(json!({"metadata": {"finalizers": ["c.example.com/z", "a.example.com/x"]}}))?;
    let finalizers = &out["metadata"]["finalizers"];
    assert_eq!(finalizers.as_array().map(Vec::len), Some(3));
    let out = apply(json!({"metadata": {"finalizers": ["a.example.com/x", "c.example.com/z"]}}))?;
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["a.example.com/x", "c.example.com/z", "b.example.com/y"])
    );
    let out = apply(json!({"metadata": {
        "$setElementOrder/finalizers": ["a.example.com/x", "b.example.com/y", "c.example.com/z"],
        "finalizers": ["c.example.com/z"]
    }}))?;
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["a.example.com/x", "b.example.com/y", "c.example.com/z"])
    );
    let out = apply(json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example.com/x"]}}))?;
    assert_eq!(out["metadata"]["finalizers"], json!(["b.example.com/y"]));
    // What kubectl apply sends when one finalizer is swapped for another.
    let out = apply(json!({"metadata": {
        "$setElementOrder/finalizers": ["c.example.com/z", "b.example.com/y"],
        "$deleteFromPrimitiveList/finalizers": ["a.example.com/x"],
        "finalizers": ["c.example.com/z"]
    }}))?;
    assert_eq!(out["metadata"]["finalizers"], json!(["c.example.com/z", "b.example.com/y"]));
    assert_no_directives(&out);
    assert_eq!(
        message(apply(json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}))),
        r#"invalid $deleteFromPrimitiveList/finalizers directive at metadata: it must be a list of primitive values, got: "a""#
    );
    Ok(())
}

#[test]
fn owner_references_merge_by_uid() -> Result<(), PatchError> {
    let defs = deployment_defs(true);
    let schema = defs.get(DEPLOYMENT).cloned().unwrap_or_default();
    let live = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a", "kind": "X"}]}});
    let out = strategic_merge_patch(
        &live,
        &json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}, {"uid": "1", "name": "a2"}]}}),
        &defs,
        &schema,
    )?;
    assert_eq!(
        out["metadata"]["ownerReferences"],
        json!([{"uid": "2", "name": "b"}, {"uid": "1", "name": "a2", "kind": "X"}])
    );
    Ok(())
}

#[test]
fn lists_without_strategy_are_replaced() -> Result<(), PatchError> {
    let out = apply(json!({"spec": {"template": {"spec": {
        "tolerations": [{"key": "b", "operator": "Exists"}],
        "containers": [{"name": "sidecar", "args": ["sleep", "10"]}]
    }}}}))?;
    assert_eq!(out["spec"]["template"]["spec"]["tolerations"], json!([{"key": "b", "operator": "Exists"}]));
    assert_eq!(containers(&out)[1]["args"], json!(["sleep", "10"]));
    Ok(())
}

#[test]
fn new_elements_come_first_without_set_element_order_and_clean() -> Result<(), PatchError> {
    // `kubectl patch -p '{"spec":{"template":{"spec":{"containers":[{"name":"new",...}]}}}}'`
    // shows the new container first on upstream too.
    let out = apply(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "new", "image": "redis", "args": null, "env": [{"name": "X", "value": "1", "valueFrom": null}]}
    ]}}}}))?;
    assert_eq!(names(containers(&out)), ["new", "app", "sidecar"]);
    assert_eq!(
        containers(&out)[0],
        json!({"name": "new", "image": "redis", "env": [{"name": "X", "value": "1"}]})
    );
    Ok(())
}

#[test]
fn patch_replace_directives() -> Result<(), PatchError> {
    let out = apply(json!({"spec": {"template": {"spec": {
        "nodeSelector": {"$patch": "replace", "disk": "ssd"}
    }}}}))?;
    assert_eq!(out["spec"]["template"]["spec"]["nodeSelector"], json!({"disk": "ssd"}));
    let out = apply(json!({"spec": {"template": {"spec": {"containers": [
        {"$patch": "replace"}, {"name": "only", "image": "x"}
    ]}}}}))?;
    assert_eq!(containers(&out), &json!([{"name": "only", "image": "x"}]));
    let out = apply(json!({"metadata": {"finalizers": [{"$patch": "replace"}, "z"]}}))?;
    assert_eq!(out["metadata"]["finalizers"], json!(["z"]));
    Ok(())
}

#[test]
fn patch_delete_and_merge_on_maps() -> Result<(), PatchError> {
    let out = apply(json!({"spec": {"strategy": {"$patch": "delete"}}}))?;
    assert_eq!(out["spec"].get("strategy"), None);
    assert_eq!(out["spec"]["replicas"], json!(2));
    let out = apply(json!({"spec": {"$patch": "merge", "replicas": 5}}))?;
    assert_eq!(out["spec"]["replicas"], json!(5));
    assert_eq!(out["spec"]["strategy"]["type"], json!("RollingUpdate"));
    assert_no_directives(&out);
    Ok(())
}

#[test]
fn invalid_directives_are_errors() {
    assert_eq!(
        message(apply(json!({"spec": {"strategy": {"$patch": "frob"}}}))),
        r#"unknown patch type: "frob" at spec.strategy: $patch must be one of "replace", "delete", "merge""#
    );
    assert_eq!(
        message(apply(json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": 1}]}}}}))),
        r#"unknown patch type: 1 at spec.template.spec.containers[0]: $patch must be one of "replace", "delete", "merge""#
    );
    assert_eq!(
        message(apply(json!({"spec": {"template": {"spec": {"$setElementOrder/containers": "app"}}}}))),
        r#"invalid $setElementOrder/containers directive at spec.template.spec: it must be a list, got: "app""#
    );
    assert_eq!(
        message(apply(json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"image": "x"}]}}}}))),
        r#"invalid $setElementOrder/containers directive at spec.template.spec: element {"image":"x"} does not contain the merge key name"#
    );
    assert_eq!(
        message(apply(json!({"metadata": {"finalizers": [{"$patch": "delete"}]}}))),
        "$patch: delete is not supported in the list of primitive values at metadata.finalizers; use $deleteFromPrimitiveList"
    );
}

#[test]
fn merge_key_is_required() {
    let err = apply(json!({"spec": {"template": {"spec": {"containers": [{"image": "nginx"}]}}}}));
    assert_eq!(
        err,
        Err(PatchError::MissingMergeKey {
            field: "spec.template.spec.containers".into(),
            key: "name".into(),
            element: r#"{"image":"nginx"}"#.into(),
        })
    );
    assert_eq!(
        message(apply(json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}}))),
        r#"map: {"$patch":"delete"} does not contain declared merge key: name"#
    );
    assert_eq!(
        message(apply(json!({"spec": {"template": {"spec": {"containers": ["app"]}}}}))),
        r#"map: "app" does not contain declared merge key: name"#
    );
}

#[test]
fn patch_must_be_an_object() {
    let err = apply(json!([{"op": "add"}]));
    assert_eq!(err.as_ref().map_err(PatchError::http_status).err(), Some(400));
    assert_eq!(
        message(err),
        r#"strategic merge patch must be a JSON object, got: [{"op":"add"}]"#
    );
}

#[test]
fn mismatched_types_take_the_patch_value() -> Result<(), PatchError> {
    let out = apply(json!({"spec": {"replicas": {"a": null, "b": 1}, "template": {"spec": {"nodeSelector": ["x"]}}}}))?;
    assert_eq!(out["spec"]["replicas"], json!({"b": 1}));
    assert_eq!(out["spec"]["template"]["spec"]["nodeSelector"], json!(["x"]));
    Ok(())
}

/// An inline CRD-style schema: list types without patch strategies and a
/// subtree of preserved unknown fields.
fn crd_schema() -> Value {
    json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "zone"],
                      "items": {"type": "object", "properties": {"name": {"type": "string"}, "zone": {"type": "string"}, "size": {"type": "integer"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "atomic": {"type": "array", "x-kubernetes-list-type": "atomic", "items": {"type": "string"}},
            "blob": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "objs": {"type": "array", "x-kubernetes-patch-strategy": "merge", "items": {"type": "object"}}
        }}
    }})
}

#[test]
fn list_type_map_and_set_without_patch_strategy() -> Result<(), PatchError> {
    let defs = Definitions::new();
    let live = json!({"spec": {
        "items": [{"name": "a", "zone": "1", "size": 1}, {"name": "a", "zone": "2", "size": 2}],
        "tags": ["x", "y"], "atomic": ["p", "q"]
    }});
    let patch = json!({"spec": {
        "items": [{"name": "a", "zone": "2", "size": 20}, {"name": "b", "zone": "1", "size": 3}],
        "tags": ["z", "x"], "atomic": ["r"]
    }});
    let out = strategic_merge_patch(&live, &patch, &defs, &crd_schema())?;
    assert_eq!(
        out["spec"]["items"],
        json!([{"name": "a", "zone": "1", "size": 1}, {"name": "a", "zone": "2", "size": 20}, {"name": "b", "zone": "1", "size": 3}])
    );
    let tags = out["spec"]["tags"].as_array().cloned().unwrap_or_default();
    assert_eq!(tags.len(), 3);
    assert!(["x", "y", "z"].iter().all(|t| tags.contains(&json!(t))));
    assert_eq!(out["spec"]["atomic"], json!(["r"]));
    Ok(())
}

#[test]
fn unknown_and_preserved_fields_behave_like_merge_patch() -> Result<(), PatchError> {
    let defs = Definitions::new();
    let live = json!({"spec": {"blob": {"a": {"b": 1, "c": 2}, "l": [1, 2]}, "other": {"x": [{"name": "k", "v": 1}]}}});
    let patch = json!({"spec": {
        "blob": {"a": {"c": null, "d": 3}, "l": [3]},
        "other": {"x": [{"name": "k", "w": 2}]}
    }});
    let out = strategic_merge_patch(&live, &patch, &defs, &crd_schema())?;
    assert_eq!(out["spec"]["blob"], json!({"a": {"b": 1, "d": 3}, "l": [3]}));
    assert_eq!(out["spec"]["other"], json!({"x": [{"name": "k", "w": 2}]}));
    Ok(())
}

#[test]
fn merge_strategy_without_key_on_objects_is_an_error() {
    let defs = Definitions::new();
    let err = strategic_merge_patch(&json!({}), &json!({"spec": {"objs": [{"a": 1}]}}), &defs, &crd_schema());
    assert_eq!(
        err.map_err(|e| e.to_string()),
        Err("cannot merge lists without merge key for spec.objs".to_string())
    );
}

#[test]
fn top_level_directives() -> Result<(), PatchError> {
    let defs = deployment_defs(true);
    let schema = defs.get(DEPLOYMENT).cloned().unwrap_or_default();
    let out = strategic_merge_patch(&live_deployment(), &json!({"$patch": "replace", "kind": "Deployment"}), &defs, &schema)?;
    assert_eq!(out, json!({"kind": "Deployment"}));
    let out = strategic_merge_patch(&live_deployment(), &json!({"$patch": "delete"}), &defs, &schema)?;
    assert_eq!(out, json!({}));
    Ok(())
}

#[test]
fn schema_built_from_the_builtin_table_drives_kubectl_apply() -> Result<(), PatchError> {
    let mut defs = deployment_defs(false);
    // ObjectMeta (2), DeploymentSpec.strategy, PodSpec containers+volumes, Container env+ports.
    assert_eq!(annotate_definitions(&mut defs), 7);
    let by_hand = deployment_defs(true);
    assert_eq!(defs.0, by_hand.0);

    let schema = defs.get(DEPLOYMENT).cloned().unwrap_or_default();
    let out = strategic_merge_patch(
        &live_deployment(),
        &json!({"spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
            "template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{"name": "sidecar", "image": "busybox:1.37"}]
            }}
        }}),
        &defs,
        &schema,
    )?;
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(names(containers(&out)), ["app", "sidecar"]);
    assert_eq!(containers(&out)[0], containers(&live_deployment())[0]);
    assert_eq!(containers(&out)[1]["image"], json!("busybox:1.37"));
    assert_eq!(containers(&out)[1]["args"], json!(["sleep", "infinity"]));
    Ok(())
}
