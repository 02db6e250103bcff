//! The test node the scheduler and controller tests stand on: it shows up
//! in `kubectl get nodes` as Ready, and pods bound to it run and finish as
//! a kubelet would report them.

mod common;

use common::fake_node::{FakeNode, NodeSpec};
use common::{eventually, Server};

#[test]
fn a_fake_node_is_ready_and_runs_pods_bound_to_it() {
    let s = Server::start("fake-node");
    let _n = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    let nodes = s.ok(&["get", "nodes"]);
    assert!(nodes.contains("n1") && nodes.contains("Ready"), "{nodes}");
    s.ok_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: n1, containers: [{name: c, image: busybox}]}\n");
    assert!(eventually(20, || s.ok(&["get", "pod", "p", "-o", "jsonpath={.status.phase}"]) == "Running"), "{}", s.ok(&["get", "pod", "p", "-o", "yaml"]));
    s.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: done, annotations: {coracle.test/exit-code: \"3\"}}\nspec: {nodeName: n1, restartPolicy: Never, containers: [{name: c, image: busybox}]}\n",
    );
    assert!(eventually(20, || s.ok(&["get", "pod", "done", "-o", "jsonpath={.status.phase}"]) == "Failed"));
    s.ok(&["delete", "pod", "p", "--wait=true", "--timeout=20s"]);
}
