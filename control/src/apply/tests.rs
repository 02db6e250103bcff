//! End-to-end behaviour of apply and update tracking on a Deployment-like type.

use super::*;
use serde_json::json;

const T1: &str = "2024-05-01T10:00:00Z";
const T2: &str = "2024-05-01T10:05:00Z";
const T3: &str = "2024-05-01T10:10:00Z";

fn defs() -> Definitions {
    let mut d = Definitions::new();
    d.insert(
        "ObjectMeta",
        json!({"type": "object", "properties": {
            "name": {"type": "string"},
            "namespace": {"type": "string"},
            "uid": {"type": "string"},
            "resourceVersion": {"type": "string"},
            "creationTimestamp": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "finalizers": {"type": "array", "items": {"type": "string"},
                "x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-type": "set"},
            "managedFields": {"type": "array", "items": {"type": "object"}}
        }}),
    );
    d.insert(
        "LabelSelector",
        json!({"type": "object", "x-kubernetes-map-type": "atomic", "properties": {
            "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}}}),
    );
    d.insert(
        "ContainerPort",
        json!({"type": "object", "properties": {
            "containerPort": {"type": "integer"}, "name": {"type": "string"},
            "protocol": {"type": "string", "default": "TCP"}}}),
    );
    d.insert(
        "Container",
        json!({"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"},
            "image": {"type": "string"},
            "args": {"type": "array", "items": {"type": "string"}},
            // as in the real OpenAPI: merge key containerPort, map keys containerPort + protocol
            "ports": {"type": "array", "items": {"$ref": "#/definitions/ContainerPort"},
                "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "containerPort",
                "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["containerPort", "protocol"]}
        }}),
    );
    d.insert(
        "Deployment",
        json!({"type": "object", "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"$ref": "#/definitions/ObjectMeta", "default": {}},
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer"},
                "paused": {"type": "boolean"},
                "selector": {"$ref": "#/definitions/LabelSelector"},
                "template": {"type": "object", "properties": {
                    "metadata": {"$ref": "#/definitions/ObjectMeta"},
                    "spec": {"type": "object", "properties": {
                        "containers": {"type": "array", "items": {"$ref": "#/definitions/Container"},
                            "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"}
                    }}
                }}
            }},
            "status": {"type": "object", "properties": {
                "replicas": {"type": "integer"}, "readyReplicas": {"type": "integer"}}}
        }}),
    );
    d
}

fn schema() -> Value {
    json!({"$ref": "#/definitions/Deployment"})
}

fn config(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

fn req<'a>(manager: &'a str, now: &'a str) -> ApplyRequest<'a> {
    ApplyRequest { manager, force: false, api_version: "apps/v1", subresource: None, now }
}

fn run(live: Option<&Value>, applied: &Value, r: &ApplyRequest<'_>) -> Result<Value, ApplyError> {
    apply(live, applied, r, &defs(), &schema())
}

/// The object as the server would store it after creation.
fn stored(mut obj: Value) -> Value {
    obj["metadata"]["uid"] = json!("1234");
    obj["metadata"]["resourceVersion"] = json!("1");
    obj["metadata"]["creationTimestamp"] = json!(T1);
    obj
}

fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["manager"] == manager))
        .unwrap_or(&Value::Null)
}

#[test]
fn create_by_apply_records_upstream_fields_v1() {
    let out = run(None, &config(2, "nginx:1"), &req("kubectl", T1)).expect("applied");
    assert_eq!(out["spec"]["replicas"], 2);
    assert_eq!(
        out["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                            ".": {}, "f:image": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                        }}}
                    }
                }
            }
        }])
    );
}

#[test]
fn applying_the_same_file_twice_changes_nothing() {
    let first = stored(run(None, &config(2, "nginx:1"), &req("kubectl", T1)).expect("applied"));
    let second = run(Some(&first), &config(2, "nginx:1"), &req("kubectl", T2)).expect("applied again");
    assert_eq!(second, first);
    assert_eq!(second.to_string(), first.to_string());
}

#[test]
fn a_change_updates_the_object_and_the_time() {
    let first = stored(run(None, &config(2, "nginx:1"), &req("kubectl", T1)).expect("applied"));
    let second = run(Some(&first), &config(2, "nginx:2"), &req("kubectl", T2)).expect("applied");
    assert_eq!(second["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
    assert_eq!(entry(&second, "kubectl")["time"], T2);
    assert_eq!(second["metadata"]["uid"], "1234");
}

/// The object `kubectl apply` (client-side) leaves: annotation, replicas 1, an Update entry.
fn client_side_applied() -> Value {
    let mut cfg = config(1, "nginx:1");
    let annotation = {
        let mut text = String::new();
        super::path::go_json(&cfg, &mut text);
        text + "\n"
    };
    cfg["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/last-applied-configuration": annotation});
    let mut obj = cfg;
    track_update(None, &mut obj, "kubectl-client-side-apply", "apps/v1", None, T1, &defs(), &schema())
        .expect("tracked");
    stored(obj)
}

#[test]
fn client_side_apply_then_server_side_apply_conflicts() {
    let live = client_side_applied();
    let csa = entry(&live, "kubectl-client-side-apply");
    assert_eq!(csa["operation"], "Update");
    assert_eq!(
        csa["fieldsV1"]["f:metadata"],
        json!({
            "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
            "f:labels": {".": {}, "f:app": {}}
        })
    );
    let err = run(Some(&live), &config(3, "nginx:1"), &req("deployer", T2)).expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    let ApplyError::Conflicts(conflicts) = &err else { panic!("not a conflict: {err:?}") };
    assert_eq!(conflicts[0].field, ".spec.replicas");
    assert_eq!(conflicts[0].message(), "conflict with \"kubectl-client-side-apply\" using apps/v1");

    // two changed fields owned by the same manager
    let err = run(Some(&live), &config(3, "nginx:2"), &req("deployer", T2)).expect_err("conflicts");
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );

    // force takes ownership
    let forced = run(Some(&live), &config(3, "nginx:1"), &ApplyRequest { force: true, ..req("deployer", T2) })
        .expect("forced");
    assert_eq!(forced["spec"]["replicas"], 3);
    assert_eq!(entry(&forced, "kubectl-client-side-apply")["fieldsV1"]["f:spec"].get("f:replicas"), None);
    assert_eq!(entry(&forced, "deployer")["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    // and the field is now the applier's: the old owner's next apply would conflict with it
    let back = run(Some(&forced), &config(3, "nginx:1"), &req("deployer", T3)).expect("no conflict with itself");
    assert_eq!(back["spec"]["replicas"], 3);
}

#[test]
fn same_values_are_shared_without_conflict() {
    let live = client_side_applied();
    let out = run(Some(&live), &config(1, "nginx:1"), &req("deployer", T2)).expect("no conflict");
    assert_eq!(entry(&out, "deployer")["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    assert_eq!(entry(&out, "kubectl-client-side-apply")["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    // nothing changed in the object itself
    let mut without = out.clone();
    let mut before = live.clone();
    for o in [&mut without, &mut before] {
        o["metadata"].as_object_mut().map(|m| m.remove("managedFields"));
    }
    assert_eq!(without, before);
}

#[test]
fn kubectl_server_side_takes_over_from_client_side_apply() {
    let live = client_side_applied();
    let out = run(Some(&live), &config(3, "nginx:1"), &req("kubectl", T2)).expect("upgrade without conflict");
    assert_eq!(out["spec"]["replicas"], 3);
    assert_eq!(entry(&out, "kubectl")["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    assert_eq!(entry(&out, "kubectl-client-side-apply")["fieldsV1"]["f:spec"].get("f:replicas"), None);
    // the annotation now records the server-side configuration
    let annotation = out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap_or("");
    assert!(annotation.contains("\"replicas\":3") && annotation.ends_with("}\n"), "{annotation}");

    // a field someone changed since the client-side apply still conflicts
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    track_update(Some(&live), &mut scaled, "kubectl-scale", "apps/v1", None, T2, &defs(), &schema()).expect("tracked");
    let err = run(Some(&scaled), &config(3, "nginx:1"), &req("kubectl", T3)).expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn second_manager_labels_coexist_and_dropped_fields_go() {
    let first = stored(run(None, &config(2, "nginx:1"), &req("kubectl", T1)).expect("applied"));
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"team": "blue"}}});
    let second = run(Some(&first), &other, &req("labeller", T2)).expect("applied");
    assert_eq!(second["metadata"]["labels"], json!({"app": "web", "team": "blue"}));
    assert_eq!(second["spec"]["replicas"], 2);
    assert_eq!(entry(&second, "labeller")["fieldsV1"], json!({"f:metadata": {"f:labels": {"f:team": {}}}}));

    // kubectl stops applying the app label, the replicas and the ports: they go
    let mut smaller = config(2, "nginx:1");
    smaller["metadata"]["labels"] = json!({"tier": "front"});
    smaller["spec"].as_object_mut().map(|s| s.remove("replicas"));
    smaller["spec"]["template"]["spec"]["containers"][0].as_object_mut().map(|c| c.remove("ports"));
    let third = run(Some(&second), &smaller, &req("kubectl", T3)).expect("applied");
    assert_eq!(third["metadata"]["labels"], json!({"team": "blue", "tier": "front"}));
    assert_eq!(third["spec"].get("replicas"), None);
    assert_eq!(third["spec"]["template"]["spec"]["containers"][0].get("ports"), None);
    assert_eq!(third["metadata"]["uid"], "1234");

    // the labeller drops its only field: its label goes and so does its entry
    let none = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
    let fourth = run(Some(&third), &none, &req("labeller", T3)).expect("applied");
    assert_eq!(fourth["metadata"]["labels"], json!({"tier": "front"}));
    assert_eq!(entry(&fourth, "labeller"), &Value::Null);
}

#[test]
fn a_field_another_manager_owns_stays_when_the_applier_drops_it() {
    let first = stored(run(None, &config(2, "nginx:1"), &req("kubectl", T1)).expect("applied"));
    let also = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    let second = run(Some(&first), &also, &req("other", T2)).expect("shared");
    let mut without_replicas = config(2, "nginx:1");
    without_replicas["spec"].as_object_mut().map(|s| s.remove("replicas"));
    let third = run(Some(&second), &without_replicas, &req("kubectl", T3)).expect("applied");
    assert_eq!(third["spec"]["replicas"], 2);
    assert_eq!(entry(&third, "kubectl")["fieldsV1"]["f:spec"].get("f:replicas"), None);
}

#[test]
fn list_items_merge_by_key_and_atomic_lists_are_replaced() {
    let mut cfg = config(1, "nginx:1");
    cfg["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["a", "b"]);
    let first = stored(run(None, &cfg, &req("kubectl", T1)).expect("applied"));
    let sidecar = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy"}]}}}});
    let second = run(Some(&first), &sidecar, &req("injector", T2)).expect("applied");
    let names: Vec<&str> = second["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["web", "proxy"]);
    cfg["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["c"]);
    let third = run(Some(&second), &cfg, &req("kubectl", T3)).expect("applied");
    assert_eq!(third["spec"]["template"]["spec"]["containers"][0]["args"], json!(["c"]));
    assert_eq!(third["spec"]["template"]["spec"]["containers"][1]["name"], "proxy");
}

#[test]
fn finalizers_are_a_set() {
    let mut a = config(1, "nginx:1");
    a["metadata"]["finalizers"] = json!(["example.com/a"]);
    let first = stored(run(None, &a, &req("kubectl", T1)).expect("applied"));
    let b = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "finalizers": ["example.com/b"]}});
    let second = run(Some(&first), &b, &req("controller", T2)).expect("applied");
    assert_eq!(second["metadata"]["finalizers"], json!(["example.com/a", "example.com/b"]));
    assert_eq!(
        entry(&second, "controller")["fieldsV1"],
        json!({"f:metadata": {"f:finalizers": {"v:\"example.com/b\"": {}}}})
    );
}

#[test]
fn status_and_main_resource_do_not_touch_each_other() {
    let mut with_status = config(2, "nginx:1");
    with_status["status"] = json!({"replicas": 7});
    let first = stored(run(None, &with_status, &req("kubectl", T1)).expect("applied"));
    assert_eq!(first.get("status"), None);
    assert_eq!(entry(&first, "kubectl")["fieldsV1"].get("f:status"), None);

    let status_cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 9}, "status": {"replicas": 2, "readyReplicas": 1}});
    let status_req = ApplyRequest { subresource: Some("status"), ..req("controller", T2) };
    let second = run(Some(&first), &status_cfg, &status_req).expect("status applied");
    assert_eq!(second["status"], json!({"replicas": 2, "readyReplicas": 1}));
    assert_eq!(second["spec"]["replicas"], 2);
    let e = entry(&second, "controller");
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status": {"f:readyReplicas": {}, "f:replicas": {}}}));

    // an apply to the main resource leaves status alone, and its conflicts ignore it
    let third = run(Some(&second), &with_status, &req("kubectl", T3)).expect("applied");
    assert_eq!(third["status"], json!({"replicas": 2, "readyReplicas": 1}));

    // the status manager's conflicts name the subresource
    let mut other_status = status_cfg.clone();
    other_status["status"]["replicas"] = json!(5);
    let err = run(Some(&third), &other_status, &ApplyRequest { subresource: Some("status"), ..req("other", T3) })
        .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"controller\" with subresource \"status\": .status.replicas"
    );
}

#[test]
fn bad_configurations_are_rejected() {
    let r = req("kubectl", T1);
    assert!(matches!(run(None, &json!([1]), &r), Err(ApplyError::Invalid(_))));
    let mut dup = config(1, "x");
    dup["spec"]["template"]["spec"]["containers"] = json!([{"name": "a"}, {"name": "a"}]);
    assert_eq!(
        run(None, &dup, &r).expect_err("duplicate").to_string(),
        "failed to create typed patch object (apps/v1, Kind=Deployment): .spec.template.spec.containers: duplicate entries for key [name=\"a\"]"
    );
    let mut keyless = config(1, "x");
    keyless["spec"]["template"]["spec"]["containers"] = json!([{"image": "a"}]);
    assert!(run(None, &keyless, &r)
        .expect_err("missing key")
        .to_string()
        .ends_with(".spec.template.spec.containers: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"));
    let mut with_mf = config(1, "x");
    with_mf["metadata"]["managedFields"] = json!([]);
    assert_eq!(run(None, &with_mf, &r).expect_err("managedFields").to_string(), "metadata.managedFields must be nil");
    let mut wrong = config(1, "x");
    wrong["apiVersion"] = json!("apps/v1beta1");
    assert_eq!(
        run(None, &wrong, &r).expect_err("version").to_string(),
        "Incorrect version specified in apply patch. Specified patch version: apps/v1beta1, expected: apps/v1"
    );
}

#[test]
fn updates_move_ownership_and_drop_removed_fields() {
    let first = stored(run(None, &config(2, "nginx:1"), &req("kubectl", T1)).expect("applied"));
    let mut edited = first.clone();
    edited["spec"]["replicas"] = json!(4);
    edited["spec"]["paused"] = json!(true);
    edited["metadata"]["labels"].as_object_mut().map(|l| l.remove("app"));
    track_update(Some(&first), &mut edited, "kubectl-edit", "apps/v1", None, T2, &defs(), &schema()).expect("tracked");
    assert_eq!(
        entry(&edited, "kubectl-edit")["fieldsV1"],
        json!({"f:spec": {"f:paused": {}, "f:replicas": {}}})
    );
    let applied = &entry(&edited, "kubectl")["fieldsV1"];
    assert_eq!(applied["f:spec"].get("f:replicas"), None);
    assert_eq!(applied["f:metadata"], Value::Null);
    // Apply entries come first
    assert_eq!(edited["metadata"]["managedFields"][0]["manager"], "kubectl");

    // a write that changes nothing leaves the entries (and times) alone
    let mut same = edited.clone();
    same["metadata"]["resourceVersion"] = json!("2");
    track_update(Some(&edited), &mut same, "someone", "apps/v1", None, T3, &defs(), &schema()).expect("tracked");
    assert_eq!(same["metadata"]["managedFields"], edited["metadata"]["managedFields"]);

    // the same manager writing again keeps one entry with the union and a new time
    let mut again = edited.clone();
    again["spec"]["replicas"] = json!(5);
    track_update(Some(&edited), &mut again, "kubectl-edit", "apps/v1", None, T3, &defs(), &schema()).expect("tracked");
    let e = entry(&again, "kubectl-edit");
    assert_eq!(e["time"], T3);
    assert_eq!(e["fieldsV1"], json!({"f:spec": {"f:paused": {}, "f:replicas": {}}}));
}

#[test]
fn clients_may_reset_or_replace_managed_fields() {
    let first = stored(run(None, &config(2, "nginx:1"), &req("kubectl", T1)).expect("applied"));
    // a client that does not know the field sends none: the stored ones stay
    let mut unaware = first.clone();
    unaware["metadata"].as_object_mut().map(|m| m.remove("managedFields"));
    unaware["spec"]["paused"] = json!(true);
    track_update(Some(&first), &mut unaware, "script", "apps/v1", None, T2, &defs(), &schema()).expect("tracked");
    assert!(entry(&unaware, "kubectl").is_object());
    assert!(entry(&unaware, "script").is_object());

    // [{}] (or []) clears them; only this write is recorded
    for reset in [json!([{}]), json!([])] {
        let mut cleared = first.clone();
        cleared["metadata"]["managedFields"] = reset;
        cleared["spec"]["paused"] = json!(true);
        track_update(Some(&first), &mut cleared, "script", "apps/v1", None, T2, &defs(), &schema()).expect("tracked");
        assert_eq!(
            cleared["metadata"]["managedFields"],
            json!([{"manager": "script", "operation": "Update", "apiVersion": "apps/v1", "time": T2,
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:paused": {}}}}])
        );
    }
    let mut cleared = first.clone();
    cleared["metadata"]["managedFields"] = json!([{}]);
    track_update(Some(&first), &mut cleared, "script", "apps/v1", None, T2, &defs(), &schema()).expect("tracked");
    assert_eq!(cleared["metadata"].get("managedFields"), None);

    // valid entries replace the stored ones
    let mut replaced = first.clone();
    replaced["metadata"]["managedFields"] = json!([{"manager": "mine", "operation": "Update", "apiVersion": "apps/v1",
        "time": T1, "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
    track_update(Some(&first), &mut replaced, "script", "apps/v1", None, T2, &defs(), &schema()).expect("tracked");
    let managers: Vec<&str> = replaced["metadata"]["managedFields"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["manager"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(managers, vec!["mine"]);

    // garbage is ignored
    let mut garbage = first.clone();
    garbage["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Nope"}]);
    track_update(Some(&first), &mut garbage, "script", "apps/v1", None, T2, &defs(), &schema()).expect("tracked");
    assert_eq!(garbage["metadata"]["managedFields"], first["metadata"]["managedFields"]);
}

#[test]
fn create_by_update_marks_new_containers_like_upstream() {
    let mut obj = config(1, "nginx:1");
    track_update(None, &mut obj, "kubectl-create", "apps/v1", None, T1, &defs(), &schema()).expect("tracked");
    let e = entry(&obj, "kubectl-create");
    assert_eq!(e["operation"], "Update");
    assert_eq!(
        e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"],
        json!({".": {}, "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {},
            "f:ports": {".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}})
    );
    assert_eq!(e["fieldsV1"]["f:metadata"], json!({"f:labels": {".": {}, "f:app": {}}}));
}

#[test]
fn status_updates_are_recorded_with_their_subresource() {
    let first = stored(run(None, &config(2, "nginx:1"), &req("kubectl", T1)).expect("applied"));
    let mut with_status = first.clone();
    with_status["status"] = json!({"replicas": 2});
    track_update(Some(&first), &mut with_status, "kube-controller-manager", "apps/v1", Some("status"), T2, &defs(), &schema())
        .expect("tracked");
    let e = entry(&with_status, "kube-controller-manager");
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status": {".": {}, "f:replicas": {}}}));
}

#[test]
fn fields_of_leaves_out_server_owned_metadata() {
    let mut obj = stored(config(1, "x"));
    obj["metadata"]["generation"] = json!(1);
    let set = fields_of(&obj, &defs(), &schema());
    let paths = set.paths();
    assert!(paths.contains(&".spec.replicas".to_string()));
    assert!(paths.contains(&".metadata.labels.app".to_string()));
    for gone in [".apiVersion", ".kind", ".metadata.name", ".metadata.namespace", ".metadata.uid",
        ".metadata.resourceVersion", ".metadata.creationTimestamp", ".metadata.generation"] {
        assert!(!paths.contains(&gone.to_string()), "{gone} listed");
    }
    assert_eq!(FieldSet::from_fields_v1(&set.to_fields_v1()).expect("round trip"), set);
}
