//! Helm 3 (client-side apply, protobuf release Secrets) and Helm 4
//! (server-side apply) against a real `coracle server`.

mod common;
use common::Server;
use std::path::{Path, PathBuf};
use std::process::Command;

fn helm_binary(dir: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(".tools").join(dir).join("helm");
    assert!(path.exists(), "{} is missing: run ./scripts/setup.sh (it fetches helm 3 and 4)", path.display());
    path
}

fn helm(s: &Server, bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .env("KUBECONFIG", &s.kubeconfig)
        .env("HOME", &s.dir)
        .env("HELM_CACHE_HOME", s.dir.join("helm-cache"))
        .env("HELM_CONFIG_HOME", s.dir.join("helm-config"))
        .env("HELM_DATA_HOME", s.dir.join("helm-data"))
        .current_dir(&s.dir)
        .output()
        .expect("run helm");
    assert!(out.status.success(), "helm {args:?} failed:\n{}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lifecycle(tool: &str) {
    let s = Server::start(tool);
    let bin = helm_binary(tool);
    helm(&s, &bin, &["create", "demo"]);
    helm(&s, &bin, &["install", "demo", "./demo"]);
    assert_eq!(s.ok(&["get", "deploy", "demo", "-o", "jsonpath={.spec.replicas}"]), "1");
    let operations = s.ok(&["get", "deploy", "demo", "-o", "jsonpath={.metadata.managedFields[*].operation}"]);
    // Helm 4 applies server-side; Helm 3 creates and patches client-side.
    assert_eq!(operations.split_whitespace().any(|o| o == "Apply"), tool == "helm4", "{tool}: {operations}");
    // Helm keeps its releases as Secrets (sent as protobuf by its typed client).
    let secrets = s.ok(&["get", "secrets", "-l", "owner=helm", "-o", "name"]);
    assert!(secrets.contains("sh.helm.release.v1.demo.v1"), "{secrets}");
    helm(&s, &bin, &["upgrade", "demo", "./demo", "--set", "replicaCount=3"]);
    assert_eq!(s.ok(&["get", "deploy", "demo", "-o", "jsonpath={.spec.replicas}"]), "3");
    helm(&s, &bin, &["rollback", "demo", "1"]);
    assert_eq!(s.ok(&["get", "deploy", "demo", "-o", "jsonpath={.spec.replicas}"]), "1");
    let list = helm(&s, &bin, &["list"]);
    let row = list.lines().find(|l| l.starts_with("demo")).unwrap_or("");
    assert!(row.contains("deployed") && row.split_whitespace().nth(2) == Some("3"), "{list}");
    helm(&s, &bin, &["uninstall", "demo"]);
    // What is left is what every cluster has in `default`.
    assert_eq!(s.ok(&["get", "deploy,svc,sa,secrets", "-o", "name"]).trim(), "service/kubernetes\nserviceaccount/default");
    assert!(helm(&s, &bin, &["list"]).lines().all(|l| !l.starts_with("demo")));
}

#[test]
fn helm3_install_upgrade_rollback_uninstall() {
    lifecycle("helm3");
}

#[test]
fn helm4_install_upgrade_rollback_uninstall() {
    lifecycle("helm4");
}
