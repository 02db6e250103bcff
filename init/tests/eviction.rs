//! Node-pressure eviction and `activeDeadlineSeconds` on a real node
//! (`coracle server` with its agent and containerd), seen with the real
//! kubectl: the pressure condition and its NoSchedule taint, pods evicted
//! one at a time in upstream's order with upstream's status and events,
//! and a pod failed for running past its deadline.

mod common;

use common::node::BUSYBOX;
use common::{eventually, Server};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A threshold no machine crosses, so pods run undisturbed.
const NO_PRESSURE: &str = "memory.available<1Ki";
/// A threshold this machine certainly crosses (its disk is not 99% free).
const DISK_PRESSURE: &str = "nodefs.available<99%";

fn node_args(eviction_hard: &str) -> Vec<String> {
    ["--node-ip", "127.0.0.1", "--eviction-hard", eviction_hard].iter().map(|s| s.to_string()).collect()
}

fn start(tag: &str) -> Server {
    let args = node_args(NO_PRESSURE);
    let s = Server::start_node(tag, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(s.wait_image(BUSYBOX), "busybox image not imported; log:\n{}", s.log());
    s
}

fn get(s: &Server, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = s.kubectl(&all);
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

fn pod_json(s: &Server, ns: &str, name: &str) -> Value {
    get(s, &["pod", "-n", ns, name])
}

fn phase_of(s: &Server, ns: &str, name: &str) -> String {
    pod_json(s, ns, name)["status"]["phase"].as_str().unwrap_or("").to_string()
}

/// Polls `f`; on failure panics with `what`, the pods, events and log tail.
fn wait(s: &Server, secs: u64, what: &str, f: impl FnMut() -> bool) {
    if !eventually(secs, f) {
        let log = s.log();
        let tail: Vec<&str> = log.lines().rev().take(80).collect();
        panic!(
            "{what}: not reached in {secs}s\npods:\n{}\nevents:\n{}\nlog tail:\n{}",
            String::from_utf8_lossy(&s.kubectl(&["get", "pods", "-A", "-o", "wide"]).stdout),
            String::from_utf8_lossy(&s.kubectl(&["get", "events", "-A"]).stdout),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

/// A host-network busybox pod bound to the node that writes 1 MiB into an
/// emptyDir and its log, then sleeps. `extra` goes under `spec`,
/// `resources` under the container.
fn disk_pod(node: &str, ns: &str, name: &str, extra: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  nodeName: {node}\n  hostNetwork: true\n\
         {extra}  containers:\n  - name: c\n    image: {BUSYBOX}\n    command: [sh, -c, 'dd if=/dev/zero of=/data/fill bs=1024 count=1024; echo filled; exec sleep 1000']\n\
         {resources}    volumeMounts: [{{name: data, mountPath: /data}}]\n  volumes: [{{name: data, emptyDir: {{}}}}]\n"
    )
}

#[test]
fn disk_pressure_evicts_pods_one_at_a_time_in_upstream_order() {
    let mut s = start("evict");
    let node = s.node_name().to_string();
    s.ok_stdin(&["apply", "-f", "-"], "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n");
    // Expected order: BestEffort pods (over their zero request) first, the
    // lower priority before the higher; then the pod within its request,
    // although its priority is the lowest. The critical pod never goes.
    let pods = [
        ("default", "a-besteffort", "", ""),
        ("default", "b-high", "  priorityClassName: high\n", ""),
        ("default", "c-within", "", "    resources: {requests: {ephemeral-storage: 1Gi}}\n"),
        ("kube-system", "d-critical", "  priorityClassName: system-node-critical\n", ""),
    ];
    for (ns, name, extra, res) in pods {
        s.ok_stdin(&["apply", "-f", "-"], &disk_pod(&node, ns, name, extra, res));
    }
    for (ns, name, _, _) in pods {
        wait(&s, 90, &format!("{name} Running"), || phase_of(&s, ns, name) == "Running");
    }

    // The same node, restarted with a threshold it crosses: it adopts the
    // running pods and starts evicting.
    s.args = node_args(DISK_PRESSURE);
    s.restart_after_kill9();
    let cond = "jsonpath={.status.conditions[?(@.type==\"DiskPressure\")].status}";
    wait(&s, 60, "DiskPressure True", || s.ok(&["get", "node", &node, "-o", cond]).trim() == "True");
    wait(&s, 60, "disk-pressure taint", || {
        let taints = get(&s, &["node", &node])["spec"]["taints"].clone();
        taints.as_array().is_some_and(|t| t.iter().any(|t| t["key"] == "node.kubernetes.io/disk-pressure" && t["effect"] == "NoSchedule"))
    });
    // The scheduler keeps new pods off the node.
    s.ok_stdin(
        &["apply", "-f", "-"],
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: e-new}}\nspec:\n  containers: [{{name: c, image: {BUSYBOX}}}]\n"),
    );
    wait(&s, 30, "e-new unschedulable for the taint", || {
        let p = pod_json(&s, "default", "e-new");
        let conds = p["status"]["conditions"].as_array().cloned().unwrap_or_default();
        conds.iter().any(|c| c["type"] == "PodScheduled" && c["status"] == "False" && c["message"].as_str().unwrap_or("").contains("disk-pressure"))
    });

    // The node refuses a new pod bound to it directly, as upstream's
    // admission under disk pressure does.
    s.ok_stdin(&["apply", "-f", "-"], &disk_pod(&node, "default", "f-bound", "", ""));
    wait(&s, 30, "f-bound refused", || phase_of(&s, "default", "f-bound") == "Failed");
    let f = pod_json(&s, "default", "f-bound");
    assert_eq!(f["status"]["reason"], "Evicted", "{f}");
    assert_eq!(f["status"]["message"], "The node had condition: [DiskPressure]. ", "{f}");

    // Evictions, in order, one at a time.
    let mut order: Vec<&str> = Vec::new();
    let mut critical_running_at_last = false;
    let t0 = Instant::now();
    while order.len() < 3 && t0.elapsed() < Duration::from_secs(150) {
        for (ns, name, _, _) in &pods[..3] {
            if !order.contains(name) && phase_of(&s, ns, name) == "Failed" {
                order.push(name);
                if order.len() == 3 {
                    critical_running_at_last = phase_of(&s, "kube-system", "d-critical") == "Running";
                }
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(order, ["a-besteffort", "b-high", "c-within"], "eviction order; log:\n{}", s.log());
    assert!(critical_running_at_last, "the critical pod must stay: {}", pod_json(&s, "kube-system", "d-critical"));

    // Upstream's status: reason, message, DisruptionTarget, containers stopped.
    let a = pod_json(&s, "default", "a-besteffort");
    assert_eq!(a["status"]["reason"], "Evicted", "{a}");
    let msg = a["status"]["message"].as_str().unwrap_or("");
    assert!(msg.starts_with("The node was low on resource: ephemeral-storage. Threshold quantity: "), "{msg}");
    assert!(msg.contains(", available: ") && msg.contains("Container c was using ") && msg.contains("request is 0, has larger consumption of ephemeral-storage."), "{msg}");
    let conds = a["status"]["conditions"].as_array().cloned().unwrap_or_default();
    assert!(
        conds.iter().any(|c| c["type"] == "DisruptionTarget" && c["status"] == "True" && c["reason"] == "TerminationByKubelet"),
        "{a}"
    );
    assert!(!a["status"]["containerStatuses"][0]["state"]["terminated"].is_null(), "{a}");
    // One eviction per monitoring interval (10 s): the conditions' times
    // (whole seconds) are at least 9 s apart.
    let evicted_at = |name: &str| -> jiff::Timestamp {
        let p = pod_json(&s, "default", name);
        let conds = p["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let c = conds.iter().find(|c| c["type"] == "DisruptionTarget").cloned().unwrap_or_default();
        c["lastTransitionTime"].as_str().unwrap_or("").parse().unwrap_or_else(|_| panic!("no DisruptionTarget time: {p}"))
    };
    let times: Vec<jiff::Timestamp> = order.iter().map(|n| evicted_at(n)).collect();
    for w in times.windows(2) {
        assert!(w[1].duration_since(w[0]).as_secs() >= 9, "evictions too close: {times:?}");
    }
    // The pod within its request is not blamed on a container.
    let c = pod_json(&s, "default", "c-within");
    assert!(!c["status"]["message"].as_str().unwrap_or("").contains("Container c"), "{c}");

    // Events: Evicted on the pods, EvictionThresholdMet on the node.
    let events = get(&s, &["events", "-A"])["items"].as_array().cloned().unwrap_or_default();
    for (_, name, _, _) in &pods[..3] {
        assert!(
            events.iter().any(|e| e["involvedObject"]["name"] == *name && e["reason"] == "Evicted" && e["type"] == "Warning"),
            "no Evicted event for {name}: {events:?}"
        );
    }
    assert!(
        events.iter().any(|e| e["involvedObject"]["kind"] == "Node"
            && e["involvedObject"]["name"] == node.as_str()
            && e["reason"] == "EvictionThresholdMet"
            && e["message"] == "Attempting to reclaim ephemeral-storage"),
        "no EvictionThresholdMet event: {events:?}"
    );
}

/// A host-network busybox pod bound to the node that puts `mib` MiB in a
/// memory-backed emptyDir (charged to its cgroup), then sleeps.
fn memory_pod(node: &str, name: &str, mib: u32, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  hostNetwork: true\n  containers:\n  - name: c\n\
         \x20   image: {BUSYBOX}\n    command: [sh, -c, 'dd if=/dev/zero of=/mem/fill bs=1048576 count={mib}; exec sleep 1000']\n\
         {resources}    volumeMounts: [{{name: mem, mountPath: /mem}}]\n  volumes: [{{name: mem, emptyDir: {{medium: Memory}}}}]\n"
    )
}

#[test]
fn memory_pressure_evicts_the_pod_over_its_request_first() {
    let mut s = start("evictmem");
    let node = s.node_name().to_string();
    s.ok_stdin(&["apply", "-f", "-"], &memory_pod(&node, "hog", 32, ""));
    s.ok_stdin(&["apply", "-f", "-"], &memory_pod(&node, "within", 1, "    resources: {requests: {memory: 1Gi}}\n"));
    for name in ["hog", "within"] {
        wait(&s, 90, &format!("{name} Running"), || phase_of(&s, "default", name) == "Running");
    }
    s.args = node_args("memory.available<100Ti");
    s.restart_after_kill9();
    let mut within_phase = String::new();
    wait(&s, 60, "hog evicted", || {
        let evicted = phase_of(&s, "default", "hog") == "Failed";
        within_phase = phase_of(&s, "default", "within");
        evicted
    });
    assert_eq!(within_phase, "Running", "the pod within its request went first");
    let p = pod_json(&s, "default", "hog");
    assert_eq!(p["status"]["reason"], "Evicted", "{p}");
    let msg = p["status"]["message"].as_str().unwrap_or("");
    assert!(msg.starts_with("The node was low on resource: memory. Threshold quantity: 100Ti, available: "), "{msg}");
    assert!(msg.contains("Container c was using ") && msg.ends_with("request is 0, has larger consumption of memory. "), "{msg}");
    let cond = "jsonpath={.status.conditions[?(@.type==\"MemoryPressure\")].status}";
    assert_eq!(s.ok(&["get", "node", &node, "-o", cond]).trim(), "True");
}

#[test]
fn active_deadline_fails_the_pod() {
    let s = start("deadline");
    let node = s.node_name().to_string();
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: deadline}}\nspec:\n  nodeName: {node}\n  hostNetwork: true\n  activeDeadlineSeconds: 5\n\
         \x20 containers: [{{name: c, image: {BUSYBOX}, command: [sleep, '1000']}}]\n"
    );
    s.ok_stdin(&["apply", "-f", "-"], &manifest);
    wait(&s, 60, "deadline pod Failed", || phase_of(&s, "default", "deadline") == "Failed");
    let p = pod_json(&s, "default", "deadline");
    assert_eq!(p["status"]["reason"], "DeadlineExceeded", "{p}");
    assert_eq!(p["status"]["message"], "Pod was active on the node longer than the specified deadline", "{p}");
    let start = p["status"]["startTime"].as_str().unwrap_or("").parse::<jiff::Timestamp>().expect("startTime");
    let finished = p["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"].as_str().unwrap_or("");
    let finished = finished.parse::<jiff::Timestamp>().unwrap_or_else(|_| panic!("container not terminated: {p}"));
    assert!(finished.duration_since(start).as_secs() >= 5, "stopped before the deadline: {p}");
    let events = get(&s, &["events"])["items"].as_array().cloned().unwrap_or_default();
    assert!(
        events.iter().any(|e| e["involvedObject"]["name"] == "deadline" && e["reason"] == "DeadlineExceeded"),
        "no DeadlineExceeded event: {events:?}"
    );
}
