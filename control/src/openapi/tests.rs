//! Tests of the generated documents, checked the way `kubectl` reads them.

use super::*;
use crate::registry::{builtin, CustomInfo, Resource, ScalePaths, ALL_VERBS};
use serde_json::json;
use std::time::Instant;

fn crontab() -> Resource {
    Resource {
        group: "stable.example.com".into(),
        version: "v1".into(),
        kind: "CronTab".into(),
        plural: "crontabs".into(),
        singular: "crontab".into(),
        namespaced: true,
        short_names: vec!["ct".into()],
        categories: vec![],
        verbs: ALL_VERBS.to_vec(),
        status: true,
        scale: Some(ScalePaths {
            spec_replicas: "spec.replicas".into(),
            status_replicas: "status.replicas".into(),
            label_selector: None,
        }),
        extra_subresources: vec![],
        definition: String::new(),
        schema_fn: None,
        stored: true,
        custom: Some(CustomInfo {
            schema: json!({
                "type": "object",
                "properties": {
                    "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}},
                    "spec": {
                        "type": "object",
                        "description": "Desired crontab.",
                        "properties": {
                            "cronSpec": {"type": "string", "description": "When to run."},
                            "replicas": {"type": "integer"},
                            "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}
                        }
                    }
                }
            }),
            printer_columns: vec![],
            crd_name: "crontabs.stable.example.com".into(),
            storage: true,
        }),
    }
}

fn resources(with_crd: bool) -> Vec<Arc<Resource>> {
    let mut all: Vec<Arc<Resource>> = builtin::all().into_iter().map(Arc::new).collect();
    if with_crd {
        all.push(Arc::new(crontab()));
    }
    all
}

fn built() -> OpenApi {
    build(&resources(true))
}

/// Every string `$ref` anywhere in `node` (a generic walk: values such as
/// the `$ref` *property* of JSONSchemaProps are objects and are skipped).
fn all_refs(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(obj) => {
            for (k, v) in obj {
                match (k.as_str(), v) {
                    ("$ref", Value::String(s)) => out.push(s.clone()),
                    _ => all_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| all_refs(v, out)),
        _ => {}
    }
}

/// Resolve a local JSON pointer reference within `doc`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

fn v3_doc(api: &OpenApi, gv: &str) -> Value {
    match api.v3_group_version(gv) {
        Some(doc) => doc,
        None => panic!("no v3 document for {gv}"),
    }
}

/// What kubectl's query-param verifier does: find the PATCH operation of
/// the GVK and look for the parameter among its query parameters.
fn patch_supports_param(doc: &Value, gvk: &Value, param: &str) -> Result<(), String> {
    let paths = doc["paths"].as_object().ok_or("no paths")?;
    for item in paths.values() {
        let Some(op) = item.get("patch") else { continue };
        if op.get("x-kubernetes-group-version-kind") != Some(gvk) {
            continue;
        }
        let params = op["parameters"].as_array().ok_or("no parameters")?;
        if params.iter().any(|p| p["name"] == json!(param) && p["in"] == json!("query")) {
            return Ok(());
        }
        return Err(format!("{param} unsupported for {gvk}"));
    }
    Err(format!("path not found for {gvk}"))
}

/// What `kubectl explain` does: find the GVK through the resource's
/// paths, then the schema whose GVK list contains it.
fn explain<'a>(doc: &'a Value, prefix: &str, plural: &str, namespaced: bool) -> Option<&'a Value> {
    let mut candidates = vec![format!("{prefix}/{plural}"), format!("{prefix}/{plural}/{{name}}")];
    if namespaced {
        candidates.push(format!("{prefix}/namespaces/{{namespace}}/{plural}"));
    }
    let gvk = candidates.iter().find_map(|p| {
        let item = doc["paths"].get(p)?;
        ["get", "post", "put", "patch", "delete"]
            .iter()
            .find_map(|m| item.get(*m).and_then(|op| op.get("x-kubernetes-group-version-kind")))
    })?;
    doc["components"]["schemas"].as_object()?.values().find(|s| {
        s.get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
            .is_some_and(|l| l.contains(gvk))
    })
}

/// Follow a v3 property node to its schema the way the explain template
/// does (`$ref`, or a single `allOf` entry).
fn follow<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    let target = node.get("$ref").or_else(|| node.get("allOf").and_then(|a| a.get(0)).and_then(|a| a.get("$ref")));
    match target.and_then(Value::as_str).and_then(|r| resolve(doc, r)) {
        Some(t) => t,
        None => node,
    }
}

#[test]
fn deployment_patch_operation_accepts_field_validation() {
    let api = built();
    let doc = &v3_doc(&api, "apis/apps/v1");
    let op = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(op["x-kubernetes-group-version-kind"], json!({"group": "apps", "kind": "Deployment", "version": "v1"}));
    let names: Vec<&str> = op["parameters"].as_array().map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect()).unwrap_or_default();
    assert_eq!(names, vec!["dryRun", "fieldManager", "fieldValidation", "force"]);
    assert!(op["requestBody"]["content"].get("application/strategic-merge-patch+json").is_some());

    let gvk = json!({"group": "apps", "kind": "Deployment", "version": "v1"});
    assert_eq!(patch_supports_param(doc, &gvk, "fieldValidation"), Ok(()));
    assert_eq!(patch_supports_param(&api.v2(), &gvk, "fieldValidation"), Ok(()));
}

#[test]
fn every_patchable_resource_passes_the_query_param_verifier() {
    let api = built();
    for r in resources(true) {
        if !r.verbs.contains(&"patch") {
            continue;
        }
        let gv = operations::group_version_key(&r.group, &r.version);
        let gvk = json!({"group": r.group, "kind": r.kind, "version": r.version});
        // Map order in kubectl is random: every matching PATCH must pass.
        let doc = &v3_doc(&api, &gv);
        let mut matching = 0;
        for item in doc["paths"].as_object().into_iter().flat_map(|p| p.values()) {
            if let Some(op) = item.get("patch").filter(|op| op["x-kubernetes-group-version-kind"] == gvk) {
                matching += 1;
                let ok = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == json!("fieldValidation") && p["in"] == json!("query")));
                assert!(ok, "{r:?}");
            }
        }
        assert!(matching >= 1, "{r:?} has no PATCH operation");
        assert_eq!(patch_supports_param(doc, &gvk, "fieldValidation"), Ok(()), "{r:?}");
    }
}

#[test]
fn definitions_carry_kubernetes_extensions() {
    let api = built();
    let deployment = api.schema_for("io.k8s.api.apps.v1.Deployment").cloned().unwrap_or_default();
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    let pod_spec = api.schema_for("io.k8s.api.core.v1.PodSpec").cloned().unwrap_or_default();
    let containers = &pod_spec["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], json!("name"));
    assert_eq!(containers["x-kubernetes-patch-strategy"], json!("merge"));
    assert_eq!(containers["x-kubernetes-list-type"], json!("map"));
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    assert_eq!(pod_spec["properties"]["tolerations"].get("x-kubernetes-patch-strategy"), None);

    let container = api.schema_for("io.k8s.api.core.v1.Container").cloned().unwrap_or_default();
    assert_eq!(container["properties"]["ports"]["x-kubernetes-list-map-keys"], json!(["containerPort", "protocol"]));
    let meta = api.schema_for(definitions::OBJECT_META).cloned().unwrap_or_default();
    assert_eq!(meta["properties"]["finalizers"]["x-kubernetes-list-type"], json!("set"));
    let strategy = api.schema_for("io.k8s.api.apps.v1.DeploymentSpec").cloned().unwrap_or_default();
    assert_eq!(strategy["properties"]["strategy"]["x-kubernetes-patch-strategy"], json!("retainKeys"));
    assert!(strategy["properties"]["strategy"].get("x-kubernetes-list-type").is_none());
    let selector = api.schema_for("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector").cloned().unwrap_or_default();
    assert_eq!(selector["x-kubernetes-map-type"], json!("atomic"));

    // The extensions reach the v3 document on the property node, beside the allOf.
    let doc = &v3_doc(&api, "api/v1");
    let containers = &doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], json!("name"));
}

#[test]
fn every_resource_has_a_root_definition_with_its_gvk() {
    let api = built();
    for r in resources(true) {
        let name = definitions::definition_name(&r);
        let gvk = json!({"group": r.group, "kind": r.kind, "version": r.version});
        let def = api.schema_for(&name);
        assert!(def.is_some(), "{name} missing");
        let list = def.and_then(|d| d["x-kubernetes-group-version-kind"].as_array()).cloned().unwrap_or_default();
        assert!(list.contains(&gvk), "{name}: {list:?}");
    }
    for name in [
        definitions::OBJECT_META,
        definitions::LIST_META,
        definitions::STATUS,
        definitions::DELETE_OPTIONS,
        "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    ] {
        assert!(api.schema_for(name).is_some(), "{name} missing");
    }
}

#[test]
fn custom_resource_is_served_in_v3_and_v2() {
    let api = built();
    let index = api.v3_index();
    let url = index["paths"]["apis/stable.example.com/v1"]["serverRelativeURL"].as_str().unwrap_or_default();
    assert!(url.starts_with("/openapi/v3/apis/stable.example.com/v1?hash="), "{url}");

    let doc = &v3_doc(&api, "apis/stable.example.com/v1");
    let schema = &doc["components"]["schemas"]["com.example.stable.v1.CronTab"];
    assert_eq!(schema["x-kubernetes-group-version-kind"], json!([{"group": "stable.example.com", "kind": "CronTab", "version": "v1"}]));
    assert_eq!(
        schema["properties"]["metadata"]["allOf"],
        json!([{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}])
    );
    assert_eq!(schema["properties"]["spec"]["properties"]["cronSpec"]["type"], json!("string"));
    assert!(doc["components"]["schemas"].get(definitions::OBJECT_META).is_some());

    let item = &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"];
    let patch = &item["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], json!("CronTab"));
    // No strategic merge patch for custom resources: client-side apply uses a merge patch.
    assert!(patch["requestBody"]["content"].get("application/strategic-merge-patch+json").is_none());
    assert!(patch["requestBody"]["content"].get("application/merge-patch+json").is_some());
    let scale = &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/scale"]["patch"];
    assert_eq!(scale["x-kubernetes-group-version-kind"], json!({"group": "autoscaling", "kind": "Scale", "version": "v1"}));

    // v2 keeps the definition but drops what swagger 2.0 cannot say.
    let v2 = &api.v2()["definitions"]["com.example.stable.v1.CronTab"];
    assert_eq!(v2["properties"]["spec"]["properties"]["port"], json!({"x-kubernetes-int-or-string": true}));
    assert_eq!(v2["properties"]["metadata"]["$ref"], json!("#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    // The table used for validation keeps the full schema.
    let full = api.schema_for("com.example.stable.v1.CronTab").cloned().unwrap_or_default();
    assert!(full["properties"]["spec"]["properties"]["port"].get("anyOf").is_some());
}

#[test]
fn v3_references_point_into_components_and_resolve() {
    let api = built();
    let index = api.v3_index();
    let gvs: Vec<String> = index["paths"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
    assert!(gvs.contains(&"api/v1".to_string()) && gvs.contains(&"apis/apps/v1".to_string()), "{gvs:?}");
    for gv in gvs {
        let doc = &v3_doc(&api, &gv);
        assert_eq!(doc["openapi"], json!("3.0.0"));
        let mut refs = Vec::new();
        all_refs(doc, &mut refs);
        assert!(!refs.is_empty(), "{gv}");
        for r in refs {
            assert!(r.starts_with("#/components/schemas/"), "{gv}: {r}");
            assert!(resolve(doc, &r).is_some(), "{gv}: {r} does not resolve");
        }
    }
}

#[test]
fn v2_references_resolve() {
    let api = built();
    let doc = api.v2();
    assert_eq!(doc["swagger"], json!("2.0"));
    let mut refs = Vec::new();
    all_refs(&doc, &mut refs);
    assert!(refs.len() > 100);
    for r in refs {
        assert!(r.starts_with("#/definitions/"), "{r}");
        assert!(resolve(&doc, &r).is_some(), "{r} does not resolve");
    }
    // The definitions table resolves its own references too.
    for (name, schema) in &api.defs.0 {
        let mut refs = Vec::new();
        refs::referenced_names(schema, refs::V2_PREFIX, &mut refs);
        for r in refs {
            assert!(api.defs.get(&r).is_some(), "{name} -> {r}");
        }
    }
}

#[test]
fn explain_finds_deployment_strategy() {
    let api = built();
    let doc = &v3_doc(&api, "apis/apps/v1");
    let root = explain(doc, "/apis/apps/v1", "deployments", true);
    assert!(root.is_some(), "no schema for deployments");
    let root = root.cloned().unwrap_or_default();
    let spec = follow(doc, &root["properties"]["spec"]);
    let strategy_prop = &spec["properties"]["strategy"];
    assert!(strategy_prop["description"].as_str().is_some_and(|d| !d.is_empty()));
    let strategy = follow(doc, strategy_prop);
    assert!(strategy["properties"].get("rollingUpdate").is_some(), "{strategy}");
    assert!(strategy["properties"].get("type").is_some());

    let core = &v3_doc(&api, "api/v1");
    let pod = explain(core, "/api/v1", "pods", true).cloned().unwrap_or_default();
    assert_eq!(pod["x-kubernetes-group-version-kind"], json!([{"group": "", "kind": "Pod", "version": "v1"}]));
    let ns = explain(core, "/api/v1", "namespaces", false).cloned().unwrap_or_default();
    assert_eq!(ns["x-kubernetes-group-version-kind"][0]["kind"], json!("Namespace"));
    let crd_doc = v3_doc(&api, "apis/stable.example.com/v1");
    let crd = explain(&crd_doc, "/apis/stable.example.com/v1", "crontabs", true);
    assert!(crd.is_some());
}

#[test]
fn index_hash_is_the_content_hash() {
    use sha2::Digest;
    let api = build(&resources(false));
    let doc = &v3_doc(&api, "apis/apps/v1");
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let expected: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02X}")).collect();
    let index = api.v3_index();
    assert_eq!(
        index["paths"]["apis/apps/v1"]["serverRelativeURL"],
        json!(format!("/openapi/v3/apis/apps/v1?hash={expected}"))
    );
    assert_eq!(api.v3_hash("apis/apps/v1"), Some(expected.as_str()));
    assert!(index["paths"].get("apis/stable.example.com/v1").is_none());
    // Same input, same hash; a CRD elsewhere leaves apps/v1 alone.
    let again = built();
    assert_eq!(again.v3_hash("apis/apps/v1"), Some(expected.as_str()));
}

#[test]
fn create_only_resources_have_no_object_paths() {
    let api = built();
    let doc = &v3_doc(&api, "apis/authentication.k8s.io/v1");
    let item = &doc["paths"]["/apis/authentication.k8s.io/v1/tokenreviews"];
    assert_eq!(item["post"]["x-kubernetes-group-version-kind"]["kind"], json!("TokenReview"));
    assert!(item.get("get").is_none());
    // A PATCH entry advertises fieldValidation so kubectl validates server-side.
    let gvk = json!({"group": "authentication.k8s.io", "kind": "TokenReview", "version": "v1"});
    assert_eq!(patch_supports_param(doc, &gvk, "fieldValidation"), Ok(()));
    assert!(item["patch"]["requestBody"]["content"].get("application/strategic-merge-patch+json").is_none());
    assert!(doc["paths"].get("/apis/authentication.k8s.io/v1/tokenreviews/{name}").is_none());
}

#[test]
fn build_is_fast_enough() {
    let all = resources(true);
    let _ = build(&all);
    let start = Instant::now();
    let api = build(&all);
    let elapsed = start.elapsed();
    let size: usize = api
        .v3_index()["paths"]
        .as_object()
        .map(|p| p.keys().filter_map(|k| api.v3_group_version_json(k)).map(|d| d.len()).sum())
        .unwrap_or(0);
    println!("openapi build: {elapsed:?} for {} definitions, v3 documents {size} bytes", api.defs.0.len());
    assert!(elapsed.as_millis() < 3000, "build took {elapsed:?}");
}
