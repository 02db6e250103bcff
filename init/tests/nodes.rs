//! Nodes as a user sees them with kubectl: default tolerations and
//! priority given to pods at admission, a lost node going NotReady and
//! tainted, its pods evicted after their toleration, the node coming back,
//! cordon, and pods of a deleted node garbage-collected.

mod common;

use common::fake_node::{FakeNode, NodeSpec};
use common::{eventually, Server};

/// Short periods so a lost node shows within seconds.
const FLAGS: &[&str] = &[
    "--node-monitor-grace-period",
    "4",
    "--default-unreachable-toleration-seconds",
    "3",
    "--default-not-ready-toleration-seconds",
    "3",
];

fn pod_on(name: &str, node: &str, extra_spec: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec: {{nodeName: {node}, containers: [{{name: c, image: busybox}}]{extra_spec}}}\n")
}

fn jsonpath(s: &Server, what: &[&str], path: &str) -> String {
    let mut args: Vec<&str> = vec!["get"];
    args.extend_from_slice(what);
    let p = format!("jsonpath={path}");
    args.extend_from_slice(&["-o", &p]);
    let out = s.kubectl(&args);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn taints(s: &Server, node: &str) -> String {
    jsonpath(s, &["node", node], "{range .spec.taints[*]}{.key}:{.effect} {end}")
}

fn node_status(s: &Server, node: &str) -> String {
    let out = s.ok(&["get", "node", node, "--no-headers"]);
    out.split_whitespace().nth(1).unwrap_or("").to_string()
}

#[test]
fn pods_get_default_tolerations_and_priority() {
    let s = Server::start_with("nodes-admission", FLAGS, &[]);
    s.ok_stdin(&["create", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata: {name: plain}\nspec: {containers: [{name: c, image: busybox}]}\n");
    let tolerations = jsonpath(&s, &["pod", "plain"], "{range .spec.tolerations[*]}{.key}:{.effect}:{.operator}:{.tolerationSeconds} {end}");
    assert_eq!(tolerations.trim(), "node.kubernetes.io/not-ready:NoExecute:Exists:3 node.kubernetes.io/unreachable:NoExecute:Exists:3");
    let described = s.ok(&["describe", "pod", "plain"]);
    assert!(described.contains("node.kubernetes.io/unreachable:NoExecute op=Exists for 3s"), "{described}");
    assert_eq!(jsonpath(&s, &["pod", "plain"], "{.spec.priority} {.spec.preemptionPolicy}"), "0 PreemptLowerPriority");

    // A pod tolerating everything gets nothing more.
    s.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: tolerant}\nspec: {tolerations: [{operator: Exists}], containers: [{name: c, image: busybox}]}\n",
    );
    assert_eq!(jsonpath(&s, &["pod", "tolerant"], "{range .spec.tolerations[*]}{.operator} {end}").trim(), "Exists");

    // The built-in classes exist and cannot be deleted.
    let classes = s.ok(&["get", "priorityclasses"]);
    assert!(classes.contains("system-node-critical") && classes.contains("2000001000"), "{classes}");
    assert!(classes.contains("system-cluster-critical") && classes.contains("2000000000"), "{classes}");
    let err = s.fails(&["delete", "priorityclass", "system-node-critical"], None);
    assert!(err.contains("priorityclasses.scheduling.k8s.io \"system-node-critical\" is forbidden: this is a system priority class and cannot be deleted"), "{err}");

    s.ok(&["create", "priorityclass", "high", "--value=1000", "--preemption-policy=Never"]);
    s.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: important}\nspec: {priorityClassName: high, containers: [{name: c, image: busybox}]}\n",
    );
    assert_eq!(jsonpath(&s, &["pod", "important"], "{.spec.priority} {.spec.preemptionPolicy}"), "1000 Never");
    s.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: critical, namespace: kube-system}\nspec: {priorityClassName: system-node-critical, containers: [{name: c, image: busybox}]}\n",
    );
    assert_eq!(jsonpath(&s, &["-n", "kube-system", "pod", "critical"], "{.spec.priority}"), "2000001000");

    let err = s.fails(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {priorityClassName: foo, containers: [{name: c, image: busybox}]}\n"),
    );
    assert!(err.contains("Error from server (Forbidden): error when creating \"STDIN\": pods \"x\" is forbidden: no PriorityClass with name foo was found"), "{err}");
    let err = s.fails(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Pod\nmetadata: {name: given}\nspec: {priority: 5, containers: [{name: c, image: busybox}]}\n"),
    );
    assert!(
        err.contains("pods \"given\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name"),
        "{err}"
    );

    // A global default class is used when a pod names none; only one may exist.
    s.ok(&["create", "priorityclass", "std", "--value=10", "--global-default"]);
    let err = s.fails(&["create", "priorityclass", "other", "--value=20", "--global-default"], None);
    assert!(err.contains("priorityclasses.scheduling.k8s.io \"other\" is forbidden: PriorityClass std is already marked as default. Only one default can exist"), "{err}");
    s.ok(&["run", "defaulted", "--image=busybox"]);
    assert_eq!(jsonpath(&s, &["pod", "defaulted"], "{.spec.priorityClassName} {.spec.priority}"), "std 10");
    // Updates keep what admission set.
    s.ok(&["label", "pod", "important", "x=y"]);
    assert_eq!(jsonpath(&s, &["pod", "important"], "{.spec.priority}"), "1000");
}

#[test]
fn a_lost_node_is_tainted_its_pods_evicted_and_it_comes_back() {
    let s = Server::start_with("nodes-lost", FLAGS, &[]);
    let n1 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    let _n2 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n2"));
    s.ok_stdin(&["create", "-f", "-"], &pod_on("evicted", "n1", ""));
    s.ok_stdin(
        &["create", "-f", "-"],
        &pod_on("stays", "n1", ", tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute}]"),
    );
    s.ok_stdin(&["create", "-f", "-"], &pod_on("elsewhere", "n2", ""));
    for p in ["evicted", "stays", "elsewhere"] {
        assert!(eventually(20, || jsonpath(&s, &["pod", p], "{.status.phase}") == "Running"), "{p} not running");
    }
    assert_eq!(taints(&s, "n1"), "");

    n1.lose();
    assert!(eventually(15, || node_status(&s, "n1") == "NotReady"), "{}", s.ok(&["get", "nodes"]));
    assert!(
        eventually(5, || taints(&s, "n1") == "node.kubernetes.io/unreachable:NoSchedule node.kubernetes.io/unreachable:NoExecute "),
        "{}",
        taints(&s, "n1")
    );
    assert_eq!(node_status(&s, "n2"), "Ready");
    assert_eq!(taints(&s, "n2"), "");
    let ready = jsonpath(&s, &["node", "n1"], "{.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].reason}");
    assert_eq!(ready, "Unknown NodeStatusUnknown");
    let described = s.ok(&["describe", "node", "n1"]);
    assert!(described.contains("Kubelet stopped posting node status."), "{described}");
    // Pods on the lost node are no longer Ready.
    assert!(eventually(5, || jsonpath(&s, &["pod", "stays"], "{.status.conditions[?(@.type==\"Ready\")].status}") == "False"));

    // After the 3 s default toleration the pod is deleted (it stays
    // Terminating: no kubelet confirms it), the one tolerating forever stays.
    assert!(eventually(10, || !jsonpath(&s, &["pod", "evicted"], "{.metadata.deletionTimestamp}").is_empty()));
    let cond = jsonpath(&s, &["pod", "evicted"], "{.status.conditions[?(@.type==\"DisruptionTarget\")].reason}");
    assert_eq!(cond, "DeletionByTaintManager");
    let events = s.ok(&["get", "events"]);
    assert!(events.contains("TaintManagerEviction") && events.contains("Marking for deletion Pod default/evicted"), "{events}");
    assert!(events.contains("NodeNotReady"), "{events}");
    assert_eq!(jsonpath(&s, &["pod", "stays"], "{.metadata.deletionTimestamp}"), "");
    assert_eq!(jsonpath(&s, &["pod", "elsewhere"], "{.metadata.deletionTimestamp}"), "");

    // The kubelet comes back (renews its lease) and reports Ready again.
    let lease = |s: &Server| jsonpath(s, &["-n", "kube-node-lease", "lease", "n1"], "{.spec.renewTime}");
    let last_renewal = lease(&s);
    n1.recover();
    assert!(eventually(10, || lease(&s) != last_renewal));
    s.ok(&[
        "patch",
        "node",
        "n1",
        "--subresource=status",
        "--type=strategic",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}]}}"#,
    ]);
    assert!(eventually(10, || taints(&s, "n1").is_empty()), "{}", taints(&s, "n1"));
    assert_eq!(node_status(&s, "n1"), "Ready");
    // Its kubelet finishes the evicted pod; the other one runs on.
    assert!(eventually(10, || !s.ok(&["get", "pods"]).contains("evicted")));
    assert!(eventually(10, || jsonpath(&s, &["pod", "stays"], "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"));
}

#[test]
fn cordon_taints_a_lone_lost_node_keeps_its_pods_and_a_deleted_node_loses_them() {
    let mut s = Server::start_with("nodes-gc", FLAGS, &[]);
    let n = FakeNode::start(&s.kubeconfig, NodeSpec::new("solo"));
    s.ok(&["cordon", "solo"]);
    assert!(eventually(5, || taints(&s, "solo") == "node.kubernetes.io/unschedulable:NoSchedule "), "{}", taints(&s, "solo"));
    assert!(s.ok(&["get", "nodes"]).contains("Ready,SchedulingDisabled"));
    s.ok(&["uncordon", "solo"]);
    assert!(eventually(5, || taints(&s, "solo").is_empty()), "{}", taints(&s, "solo"));

    s.ok_stdin(&["create", "-f", "-"], &pod_on("orphan", "solo", ""));
    assert!(eventually(20, || jsonpath(&s, &["pod", "orphan"], "{.status.phase}") == "Running"));
    // The only node lost: the controller assumes it is the one cut off and
    // taints for scheduling only, evicting nothing (as upstream).
    n.lose();
    assert!(eventually(15, || taints(&s, "solo") == "node.kubernetes.io/unreachable:NoSchedule "), "{}", taints(&s, "solo"));
    assert_eq!(node_status(&s, "solo"), "NotReady");

    // Restarted (the new controllers wait out the old leader's 15 s lease),
    // they find the state where it was and collect the pods of the node
    // once it is deleted.
    s.restart_after_kill9();
    s.ok(&["delete", "node", "solo"]);
    assert!(eventually(40, || !s.ok(&["get", "pods"]).contains("orphan")), "{}", s.ok(&["get", "pods", "-o", "yaml"]));
}
