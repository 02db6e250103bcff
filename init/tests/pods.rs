//! The pod lifecycle on a real node: `coracle server` with its agent
//! (supervised containerd, runc), driven by the real kubectl. Pods use
//! the host network (pod networking is another module's) and a busybox
//! image packed from the host's busybox-static and pre-loaded.

mod common;

use common::node::BUSYBOX;
use common::{eventually, Server};
use serde_json::Value;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A server with its node agent, the busybox image in the runtime.
fn start(tag: &str) -> Server {
    let s = Server::start_node(tag, &["--node-ip", "127.0.0.1"]);
    assert!(s.wait_image(BUSYBOX), "busybox image not imported; log:\n{}", tail(&s.log(), 40));
    s
}

fn apply(s: &Server, manifest: &str) {
    s.ok_stdin(&["apply", "-f", "-"], manifest);
}

fn pod(s: &Server, name: &str) -> Option<Value> {
    let out = s.kubectl(&["get", "pod", name, "-o", "json"]);
    out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
}

/// Polls until `f` holds for the pod; panics with the pod, events and log.
fn wait_pod(s: &Server, name: &str, secs: u64, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let mut last = None;
    let ok = eventually(secs, || {
        last = pod(s, name);
        last.as_ref().is_some_and(&f)
    });
    if !ok {
        panic!(
            "pod {name}: {what} not reached in {secs}s; pod:\n{}\nevents:\n{}\nlog tail:\n{}",
            serde_json::to_string_pretty(&last).unwrap_or_default(),
            String::from_utf8_lossy(&s.kubectl(&["get", "events", "-o", "wide"]).stdout),
            tail(&s.log(), 60)
        );
    }
    last.unwrap_or_default()
}

fn events_of(s: &Server, pod: &str) -> Vec<Value> {
    let out = s.ok(&["get", "events", "-o", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_default();
    v["items"].as_array().cloned().unwrap_or_default().into_iter().filter(|e| e["involvedObject"]["name"] == pod).collect()
}

fn ctr(s: &Server, args: &[&str]) -> Output {
    Command::new("ctr")
        .arg("--address")
        .arg(s.dir.join("agent/containerd/containerd.sock"))
        .args(["--namespace", "k8s.io"])
        .args(args)
        .output()
        .expect("ctr")
}

/// IDs of the runtime's running tasks (containers and sandboxes).
fn running_tasks(s: &Server) -> Vec<String> {
    let out = ctr(s, &["tasks", "ls"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter(|l| l.contains("RUNNING"))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A host-network pod bound to the node (the scheduler would wait for the
/// node to be Ready, which needs pod networking, another module's part).
fn pod_manifest(node: &str, name: &str, restart: &str, body: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  hostNetwork: true\n  restartPolicy: {restart}\n  terminationGracePeriodSeconds: 10\n{body}"
    )
}

fn shell_container(name: &str, script: &str) -> String {
    format!("  - name: {name}\n    image: {BUSYBOX}\n    command: [sh, -c, {}]\n", serde_json::to_string(script).unwrap_or_default())
}

fn phase(p: &Value) -> &str {
    p["status"]["phase"].as_str().unwrap_or("")
}

fn cstatus<'a>(p: &'a Value, name: &str) -> &'a Value {
    for key in ["containerStatuses", "initContainerStatuses"] {
        if let Some(s) = p["status"][key].as_array().and_then(|a| a.iter().find(|c| c["name"] == name)) {
            return s;
        }
    }
    &Value::Null
}

/// The container's current log file (`logs/NS_NAME_UID/CONTAINER/N.log`).
fn log_file(node: &Server, pod: &Value, container: &str, n: i64) -> String {
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let path = node.dir.join(format!("agent/logs/default_{name}_{uid}/{container}/{n}.log"));
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn pods_run_restart_fail_and_terminate() {
    let node = start("pods");
    let shared = node.dir.join("shared");
    std::fs::create_dir_all(&shared).expect("shared dir");
    let shared_s = shared.to_string_lossy().to_string();
    let vol = format!("  volumes:\n  - name: shared\n    hostPath: {{path: {shared_s}, type: Directory}}\n");
    let mount = "    volumeMounts:\n    - {name: shared, mountPath: /data}\n";
    node.ok_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {FROM_CM: \"yes\"}\n");

    // All pods at once; each is checked below.
    apply(&node, &pod_manifest(node.node_name(), "hello", "Never", &format!("  containers:\n{}", shell_container("c", "echo hello from $(hostname); exit 0"))));
    apply(&node, &pod_manifest(node.node_name(), "fails", "Never", &format!("  containers:\n{}", shell_container("c", "echo failing >&2; exit 3"))));
    apply(&node, &pod_manifest(
        node.node_name(),
        "init",
        "Always",
        &format!(
            "  initContainers:\n{}{mount}{}{mount}  containers:\n{}{mount}{vol}",
            shell_container("i1", "sleep 1; echo i1 >> /data/order"),
            shell_container("i2", "echo i2 >> /data/order"),
            shell_container("app", "echo app >> /data/order; exec sleep 3600"),
        ),
    ));
    apply(&node, &pod_manifest(node.node_name(), "crash", "Always", &format!("  containers:\n{}", shell_container("c", "echo crashing; exit 1"))));
    apply(&node, &pod_manifest(node.node_name(), "badcmd", "Always", "  containers:\n  - name: c\n    image: coracle.local/busybox:1\n    command: [/no/such/binary]\n"));
    apply(&node, &pod_manifest(node.node_name(), "noimage", "Always", "  containers:\n  - name: c\n    image: 127.0.0.1:1/nope:1\n"));
    apply(&node, &pod_manifest(
        node.node_name(),
        "env",
        "Never",
        &format!(
            "  containers:\n{}    env:\n    - {{name: A, value: one}}\n    - {{name: B, value: \"$(A)-two\"}}\n    - name: POD\n      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}\n    envFrom:\n    - configMapRef: {{name: cfg}}\n",
            shell_container("c", "echo \"B=$B POD=$POD FROM_CM=$FROM_CM\"")
        ),
    ));
    apply(&node, &pod_manifest(
        node.node_name(),
        "term",
        "Always",
        &format!(
            "  containers:\n{}{mount}{vol}",
            shell_container("c", "trap 'echo TERM > /data/term; exit 0' TERM; echo ready > /data/ready; while true; do sleep 0.2; done")
        ),
    ));

    // A pod that prints and exits 0: Succeeded, exit code 0, its output logged.
    let p = wait_pod(&node, "hello", 60, "Succeeded", |p| phase(p) == "Succeeded");
    let t = &cstatus(&p, "c")["state"]["terminated"];
    assert_eq!((t["exitCode"].as_i64(), t["reason"].as_str()), (Some(0), Some("Completed")), "{p}");
    assert!(t["containerID"].as_str().unwrap_or("").starts_with("containerd://"), "{p}");
    assert!(log_file(&node, &p, "c", 0).contains(" stdout F hello from "), "log: {}", log_file(&node, &p, "c", 0));
    assert_eq!(p["status"]["hostIP"], "127.0.0.1");
    assert_eq!(p["status"]["podIP"], "127.0.0.1");
    let conds: Vec<(String, String)> = p["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| (c["type"].as_str().unwrap_or("").to_string(), c["reason"].as_str().unwrap_or("").to_string()))
        .collect();
    assert!(conds.contains(&("Ready".into(), "PodCompleted".into())), "{conds:?}");

    // A failing pod: Failed with the exit code.
    let p = wait_pod(&node, "fails", 60, "Failed", |p| phase(p) == "Failed");
    let t = &cstatus(&p, "c")["state"]["terminated"];
    assert_eq!((t["exitCode"].as_i64(), t["reason"].as_str()), (Some(3), Some("Error")), "{p}");

    // Environment: $(VAR) expansion, fieldRef, envFrom.
    let p = wait_pod(&node, "env", 60, "Succeeded", |p| phase(p) == "Succeeded");
    let log = log_file(&node, &p, "c", 0);
    assert!(log.contains("B=one-two POD=env FROM_CM=yes"), "log: {log}");

    // Init containers ran in order, then the app.
    let p = wait_pod(&node, "init", 60, "Running", |p| phase(p) == "Running" && cstatus(p, "app")["ready"] == true);
    assert_eq!(std::fs::read_to_string(shared.join("order")).unwrap_or_default(), "i1\ni2\napp\n");
    assert_eq!(cstatus(&p, "i1")["state"]["terminated"]["reason"], "Completed");
    // (Ready itself follows the node, NotReady here without pod networking.)
    let ready = p["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "ContainersReady").cloned()).unwrap_or_default();
    assert_eq!(ready["status"], "True", "{p}");

    // A crashing container: CrashLoopBackOff with restarts counting, as kubectl shows it.
    let p = wait_pod(&node, "crash", 60, "CrashLoopBackOff", |p| {
        cstatus(p, "c")["state"]["waiting"]["reason"] == "CrashLoopBackOff" && cstatus(p, "c")["restartCount"].as_i64() >= Some(1)
    });
    let cs = cstatus(&p, "c");
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1, "{p}");
    let msg = cs["state"]["waiting"]["message"].as_str().unwrap_or("");
    let uid = p["metadata"]["uid"].as_str().unwrap_or("");
    assert!(msg.starts_with("back-off 10s restarting failed container=c pod=crash_default(") && msg.contains(uid), "{msg}");
    let row = node.ok(&["get", "pod", "crash", "--no-headers"]);
    assert!(row.contains("CrashLoopBackOff"), "{row}");
    assert!(events_of(&node, "crash").iter().any(|e| e["reason"] == "BackOff"), "no BackOff event");

    // A command that does not exist: the runtime's message in the status.
    let p = wait_pod(&node, "badcmd", 60, "RunContainerError", |p| {
        let cs = cstatus(p, "c");
        let waiting = cs["state"]["waiting"]["message"].as_str().unwrap_or("");
        let last = cs["lastState"]["terminated"]["message"].as_str().unwrap_or("");
        (cs["state"]["waiting"]["reason"] == "RunContainerError" && waiting.contains("/no/such/binary"))
            || (cs["state"]["waiting"]["reason"] == "CrashLoopBackOff" && last.contains("/no/such/binary"))
    });
    // Like upstream: a container that keeps failing to start leaves the pod Running.
    assert_eq!(cstatus(&p, "c")["ready"], false, "{p}");
    assert!(events_of(&node, "badcmd").iter().any(|e| e["reason"] == "Failed" && e["message"].as_str().unwrap_or("").contains("/no/such/binary")));

    // An image that cannot be pulled: ErrImagePull, then ImagePullBackOff, and the events.
    wait_pod(&node, "noimage", 60, "ImagePullBackOff", |p| cstatus(p, "c")["state"]["waiting"]["reason"] == "ImagePullBackOff");
    let evs = events_of(&node, "noimage");
    assert!(
        evs.iter().any(|e| e["reason"] == "Failed" && e["message"].as_str().unwrap_or("").starts_with("Failed to pull image \"127.0.0.1:1/nope:1\": ")),
        "{evs:?}"
    );
    assert!(evs.iter().any(|e| e["reason"] == "BackOff" && e["message"] == "Back-off pulling image \"127.0.0.1:1/nope:1\""), "{evs:?}");
    assert!(evs.iter().any(|e| e["reason"] == "Pulling"), "{evs:?}");

    // Graceful deletion: SIGTERM reaches the container, the pod goes away.
    wait_pod(&node, "term", 60, "Running", |p| phase(p) == "Running");
    assert!(eventually(20, || shared.join("ready").exists()), "term never started");
    let t0 = Instant::now();
    node.ok(&["delete", "pod", "term", "--timeout=60s"]);
    assert!(t0.elapsed() < Duration::from_secs(9), "deletion waited for the whole grace period: {:?}", t0.elapsed());
    assert_eq!(std::fs::read_to_string(shared.join("term")).unwrap_or_default(), "TERM\n");
    assert!(pod(&node, "term").is_none());
    assert!(events_of(&node, "term").iter().any(|e| e["reason"] == "Killing"));

    // Everything else deleted: nothing left running in the runtime.
    node.ok(&["delete", "pods", "--all", "--timeout=60s"]);
    assert!(eventually(30, || running_tasks(&node).is_empty()), "tasks left: {:?}", running_tasks(&node));
}

#[test]
fn pods_are_adopted_after_kill9_and_orphans_removed() {
    let mut node = start("adopt");
    apply(&node, &pod_manifest(node.node_name(), "keep", "Always", &format!("  containers:\n{}", shell_container("c", "exec sleep 3600"))));
    apply(&node, &pod_manifest(node.node_name(), "orphan", "Always", &format!("  containers:\n{}", shell_container("c", "exec sleep 3600"))));
    let before = wait_pod(&node, "keep", 60, "Running", |p| phase(p) == "Running");
    wait_pod(&node, "orphan", 60, "Running", |p| phase(p) == "Running");
    let id = cstatus(&before, "c")["containerID"].as_str().unwrap_or("").to_string();
    let orphan_uid = pod(&node, "orphan").map(|p| p["metadata"]["uid"].as_str().unwrap_or("").to_string()).unwrap_or_default();
    assert!(!id.is_empty());

    // kill -9, and while the agent is away the orphan's pod object goes.
    let info = node.node.take();
    node.restart_after_kill9();
    node.ok(&["delete", "pod", "orphan", "--grace-period=0", "--force"]);
    node.node = info;
    node.restart_after_kill9();

    // A new pod running proves the restarted agent is syncing.
    apply(&node, &pod_manifest(node.node_name(), "after", "Always", &format!("  containers:\n{}", shell_container("c", "exec sleep 3600"))));
    wait_pod(&node, "after", 60, "Running", |p| phase(p) == "Running");
    let after = wait_pod(&node, "keep", 30, "Running", |p| phase(p) == "Running");
    let cs = cstatus(&after, "c");
    assert_eq!(cs["containerID"].as_str(), Some(id.as_str()), "container replaced: {after}");
    assert_eq!(cs["restartCount"], 0, "{after}");
    assert!(running_tasks(&node).contains(&id.trim_start_matches("containerd://").to_string()));
    // The orphan's sandbox and container are gone from the runtime.
    assert!(
        eventually(30, || {
            let out = ctr(&node, &["containers", "ls", &format!("labels.\"io.kubernetes.pod.uid\"=={orphan_uid}")]);
            String::from_utf8_lossy(&out.stdout).lines().count() <= 1
        }),
        "orphan left in the runtime; log:\n{}",
        tail(&node.log(), 40)
    );
    node.ok(&["delete", "pods", "--all", "--timeout=60s"]);
    assert!(eventually(30, || running_tasks(&node).is_empty()), "tasks left: {:?}", running_tasks(&node));
}
