//! Garbage collection and the namespace lifecycle, as a user sees them
//! through kubectl: dependents go with their owners (background,
//! foreground, orphan), dangling dependents are collected after a crash,
//! and deleting a namespace empties it of everything before it goes.

mod common;

use common::fake_node::{FakeNode, NodeSpec};
use common::{eventually, Server};

fn uid(s: &Server, what: &[&str]) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "jsonpath={.metadata.uid}"]);
    s.ok(&args)
}

fn exists(s: &Server, what: &[&str]) -> bool {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.push("--ignore-not-found");
    args.extend_from_slice(&["-o", "name"]);
    !s.ok(&args).trim().is_empty()
}

/// A ConfigMap owned by `owner` (ConfigMap with that uid).
fn dependent(name: &str, owner: &str, owner_uid: &str, block: bool, extra_meta: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{extra_meta}  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: {owner}\n    uid: {owner_uid}\n    blockOwnerDeletion: {block}\ndata: {{a: b}}\n"
    )
}

#[test]
fn dependents_follow_their_owners() {
    let s = Server::start("gc");
    s.ok_stdin(&["apply", "-f", "-"], CRD);
    // Background: the owner goes at once, the dependent after it.
    s.create_cm("owner", "k: v");
    let owner_uid = uid(&s, &["cm", "owner"]);
    s.ok_stdin(&["create", "-f", "-"], &dependent("dep", "owner", &owner_uid, false, ""));
    // Same owner name, another uid: that owner does not exist.
    s.ok_stdin(&["create", "-f", "-"], &dependent("stale", "owner", "00000000-0000-0000-0000-000000000000", false, ""));
    assert!(eventually(30, || !exists(&s, &["cm", "stale"])), "a dependent of a missing owner uid is collected");
    assert!(exists(&s, &["cm", "dep"]), "a dependent of a live owner stays");
    s.ok(&["delete", "cm", "owner"]);
    assert!(eventually(30, || !exists(&s, &["cm", "dep"])), "background deletion collects the dependent");

    // Foreground: the owner waits (foregroundDeletion) for blocking dependents.
    s.create_cm("fg", "k: v");
    let fg_uid = uid(&s, &["cm", "fg"]);
    s.ok_stdin(&["create", "-f", "-"], &dependent("fg-dep", "fg", &fg_uid, true, "  finalizers: [example.com/hold]\n"));
    s.ok(&["delete", "cm", "fg", "--cascade=foreground", "--wait=false"]);
    assert!(
        eventually(30, || !s.ok(&["get", "cm", "fg-dep", "-o", "jsonpath={.metadata.deletionTimestamp}"]).is_empty()),
        "the blocking dependent is being deleted"
    );
    assert_eq!(s.ok(&["get", "cm", "fg", "-o", "jsonpath={.metadata.finalizers}"]), "[\"foregroundDeletion\"]");
    assert!(!s.ok(&["get", "cm", "fg", "-o", "jsonpath={.metadata.deletionTimestamp}"]).is_empty());
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(exists(&s, &["cm", "fg"]), "the owner stays while a blocking dependent exists");
    s.ok(&["patch", "cm", "fg-dep", "--type=merge", "-p", "{\"metadata\":{\"finalizers\":null}}"]);
    assert!(eventually(30, || !exists(&s, &["cm", "fg"])), "the owner goes once its dependents are gone");
    assert!(!exists(&s, &["cm", "fg-dep"]));

    // Orphan: the dependent stays, without its reference to the owner.
    s.create_cm("orph", "k: v");
    let orph_uid = uid(&s, &["cm", "orph"]);
    s.ok_stdin(&["create", "-f", "-"], &dependent("orph-dep", "orph", &orph_uid, true, ""));
    s.ok(&["delete", "cm", "orph", "--cascade=orphan"]);
    assert!(!exists(&s, &["cm", "orph"]));
    assert!(exists(&s, &["cm", "orph-dep"]), "an orphaned dependent stays");
    assert_eq!(s.ok(&["get", "cm", "orph-dep", "-o", "jsonpath={.metadata.ownerReferences}"]), "");

    // Custom resources are collected like any other object.
    s.create_cm("cr-owner", "k: v");
    let cr_owner_uid = uid(&s, &["cm", "cr-owner"]);
    let widget = format!(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  ownerReferences: [{{apiVersion: v1, kind: ConfigMap, name: cr-owner, uid: {cr_owner_uid}}}]\n"
    );
    assert!(eventually(30, || s.kubectl_stdin(&["apply", "-f", "-"], Some(&widget)).status.success()));
    s.ok(&["delete", "cm", "cr-owner"]);
    assert!(eventually(30, || !exists(&s, &["widget", "w"])), "a custom resource whose owner is gone is collected");
}

#[test]
fn dangling_dependents_are_collected_after_a_crash() {
    let mut s = Server::start("gc-crash");
    s.create_cm("owner", "k: v");
    let owner_uid = uid(&s, &["cm", "owner"]);
    s.ok_stdin(&["create", "-f", "-"], &dependent("dep", "owner", &owner_uid, false, ""));
    // The owner disappears while nothing runs (kill -9, then gone from the store).
    s.kill9();
    {
        use coracle_control::store::sqlite::SqliteStore;
        use coracle_control::store::{Store, Write};
        let store = SqliteStore::open(&s.dir.join("db").join("state.db")).expect("open the store");
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(store.write(Write::Delete { key: "/core/configmaps/default/owner".into(), expected: None })).expect("delete the owner");
    }
    let (dir, port) = (s.dir.clone(), s.port);
    // The old handle would remove the data dir on drop.
    std::mem::forget(s);
    let s = Server::start_in(dir, port);
    assert!(!exists(&s, &["cm", "owner"]));
    assert!(eventually(30, || !exists(&s, &["cm", "dep"])), "the dangling dependent is collected after the restart");
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
";

#[test]
fn deleting_a_namespace_empties_it_first() {
    let s = Server::start("ns");
    let _n = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    s.ok_stdin(&["apply", "-f", "-"], CRD);
    s.ok(&["create", "namespace", "team"]);
    assert_eq!(s.ok(&["get", "ns", "team", "-o", "jsonpath={.spec.finalizers} {.status.phase}"]), "[\"kubernetes\"] Active");
    s.ok(&["-n", "team", "create", "configmap", "cm", "--from-literal=a=b"]);
    s.ok(&["-n", "team", "create", "secret", "generic", "sec", "--from-literal=a=b"]);
    s.ok(&["-n", "team", "create", "service", "clusterip", "svc", "--tcp=80:80"]);
    s.ok_stdin(&["-n", "team", "apply", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: n1, containers: [{name: c, image: busybox}]}\n");
    s.ok_stdin(&["-n", "team", "apply", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata: {name: unbound}\nspec: {containers: [{name: c, image: busybox}]}\n");
    // The Widget kind is served once the CRD is established.
    let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 1}\n";
    assert!(eventually(30, || s.kubectl_stdin(&["-n", "team", "apply", "-f", "-"], Some(widget)).status.success()));
    // A finalizer on a config map holds the namespace in Terminating.
    s.ok_stdin(&["-n", "team", "apply", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, finalizers: [example.com/hold]}\n");
    assert!(eventually(30, || s.ok(&["-n", "team", "get", "pod", "p", "-o", "jsonpath={.status.phase}"]) == "Running"));

    s.ok(&["delete", "namespace", "team", "--wait=false"]);
    assert_eq!(s.ok(&["get", "ns", "team", "-o", "jsonpath={.status.phase}"]), "Terminating");
    let err = s.fails(&["-n", "team", "create", "configmap", "late"], None);
    assert!(
        err.contains("configmaps \"late\" is forbidden: unable to create new content in namespace team because it is being terminated"),
        "{err}"
    );
    assert!(
        eventually(30, || {
            let c = s.ok(&["get", "ns", "team", "-o", "jsonpath={range .status.conditions[*]}{.type}={.reason};{end}"]);
            c.contains("NamespaceContentRemaining=SomeResourcesRemain") && c.contains("NamespaceFinalizersRemaining=SomeFinalizersRemain")
        }),
        "{}",
        s.ok(&["get", "ns", "team", "-o", "yaml"])
    );
    let msg = s.ok(&["get", "ns", "team", "-o", "jsonpath={.status.conditions[?(@.type==\"NamespaceFinalizersRemaining\")].message}"]);
    assert_eq!(msg, "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances");
    for what in [["pod", "p"], ["pod", "unbound"], ["secret", "sec"], ["service", "svc"], ["configmap", "cm"], ["widget", "w"]] {
        assert!(eventually(30, || !exists(&s, &["-n", "team", what[0], what[1]])), "{what:?} is deleted");
    }
    assert!(exists(&s, &["ns", "team"]), "the namespace waits for the held content");
    s.ok(&["-n", "team", "patch", "configmap", "held", "--type=merge", "-p", "{\"metadata\":{\"finalizers\":null}}"]);
    assert!(eventually(30, || !exists(&s, &["ns", "team"])), "the namespace goes once its content is gone");

    // `kubectl delete namespace` waits until the namespace is gone.
    s.ok(&["create", "namespace", "empty"]);
    s.ok(&["-n", "empty", "create", "configmap", "cm"]);
    s.ok(&["delete", "namespace", "empty", "--timeout=20s"]);
    assert!(!exists(&s, &["ns", "empty"]));

    let err = s.fails(&["delete", "namespace", "default"], None);
    assert!(err.contains("namespaces \"default\" is forbidden: this namespace may not be deleted"), "{err}");
    assert!(exists(&s, &["ns", "default"]));
}
