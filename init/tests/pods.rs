//! The pod lifecycle on a real node: `coracle server` with its agent
//! (supervised containerd, runc), driven by the real kubectl. Pods use
//! the host network (pod networking is another module's) and a busybox
//! image packed from the host's busybox-static and pre-loaded.

mod common;

use common::{eventually, kubectl_with, tempdir};
use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BUSYBOX: &str = "coracle.local/busybox:1";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("no free port")
}

/// Packs /bin/busybox and a symlink per applet as an OCI archive.
fn write_busybox_archive(images: &Path) {
    use coracle_agent::images::oci::{write_archive, Entry, ImageConfig};
    let bin = std::fs::read("/bin/busybox").expect("busybox-static is installed (/bin/busybox)");
    let list = Command::new("/bin/busybox").arg("--list").output().expect("busybox --list");
    let mut entries = vec![
        Entry::Dir { path: "bin".into(), mode: 0o755 },
        Entry::Dir { path: "tmp".into(), mode: 0o1777 },
        Entry::Dir { path: "etc".into(), mode: 0o755 },
        Entry::File { path: "bin/busybox".into(), mode: 0o755, data: bin },
    ];
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox" {
            entries.push(Entry::Symlink { path: format!("bin/{applet}"), target: "busybox".into() });
        }
    }
    let cfg = ImageConfig {
        name: BUSYBOX.into(),
        cmd: vec!["sh".into()],
        env: vec!["PATH=/bin".into()],
        arch: std::env::consts::ARCH.into(),
        ..Default::default()
    };
    write_archive(&entries, &cfg, &images.join("busybox.tar")).expect("busybox archive");
}

/// A `coracle server` with its node agent.
struct Node {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    kubelet_port: u16,
    name: String,
    kubeconfig: PathBuf,
}

impl Node {
    fn start(tag: &str) -> Node {
        let dir = tempdir(tag);
        write_busybox_archive(&dir.join("images"));
        let mut n = Node {
            child: None,
            kubeconfig: dir.join("kubeconfig.yaml"),
            dir,
            port: free_port(),
            kubelet_port: free_port(),
            name: format!("pods-{tag}-{}", std::process::id()),
        };
        n.spawn(false);
        n.ensure_node_object();
        n
    }

    fn spawn(&mut self, disable_agent: bool) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("server.log")).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coracle"));
        cmd.args(["server", "--bind-address", "127.0.0.1", "--https-listen-port"])
            .arg(self.port.to_string())
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--node-name", &self.name, "--kubelet-port", &self.kubelet_port.to_string(), "--node-ip", "127.0.0.1"])
            // No lease renewals yet (node registration is another module):
            // keep the node from being declared lost during the test.
            .args(["--node-monitor-grace-period", "3600"]);
        if disable_agent {
            cmd.arg("--disable-agent");
        }
        let child = cmd.env("RUST_LOG", "info,coracle_agent=debug").stdout(Stdio::null()).stderr(log).spawn().expect("spawn coracle server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.kubeconfig.exists() && self.kubectl(&["get", "--raw", "/readyz"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("server did not become ready; log:\n{}", self.log());
    }

    /// The Node object, unless the agent registers it itself (pods on a
    /// node that does not exist are garbage-collected).
    fn ensure_node_object(&self) {
        if eventually(5, || self.kubectl(&["get", "node", &self.name]).status.success()) {
            return;
        }
        let manifest = format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {}}}\n", self.name);
        let out = self.kubectl_stdin(&["create", "-f", "-"], &manifest);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() || err.contains("AlreadyExists") || err.contains("already exists"), "creating the Node: {err}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        kubectl_with(&self.kubeconfig, args, None, &[])
    }

    fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        kubectl_with(&self.kubeconfig, args, Some(stdin), &[])
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn apply(&self, manifest: &str) {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], manifest);
        assert!(out.status.success(), "kubectl apply failed:\n{}\n{manifest}", String::from_utf8_lossy(&out.stderr));
    }

    fn pod(&self, name: &str) -> Option<Value> {
        let out = self.kubectl(&["get", "pod", name, "-o", "json"]);
        out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
    }

    /// Polls until `f` holds for the pod; panics with the pod and the log.
    fn wait_pod(&self, name: &str, secs: u64, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let mut last = None;
        let ok = eventually(secs, || {
            last = self.pod(name);
            last.as_ref().is_some_and(&f)
        });
        if !ok {
            panic!(
                "pod {name}: {what} not reached in {secs}s; pod:\n{}\nevents:\n{}\nlog tail:\n{}",
                serde_json::to_string_pretty(&last).unwrap_or_default(),
                String::from_utf8_lossy(&self.kubectl(&["get", "events", "-o", "wide"]).stdout),
                tail(&self.log(), 60)
            );
        }
        last.unwrap_or_default()
    }

    fn events_of(&self, pod: &str) -> Vec<Value> {
        let out = self.ok(&["get", "events", "-o", "json"]);
        let v: Value = serde_json::from_str(&out).unwrap_or_default();
        v["items"].as_array().cloned().unwrap_or_default().into_iter().filter(|e| e["involvedObject"]["name"] == pod).collect()
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.dir.join("agent/containerd/containerd.sock"))
            .args(["--namespace", "k8s.io"])
            .args(args)
            .output()
            .expect("ctr")
    }

    /// IDs of the runtime's running tasks (containers and sandboxes).
    fn running_tasks(&self) -> Vec<String> {
        let out = self.ctr(&["tasks", "ls"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter(|l| l.contains("RUNNING"))
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    /// Kills the server, then every task it left and its containerd.
    fn drop(&mut self) {
        self.kill9();
        let tasks = self.ctr(&["tasks", "ls", "-q"]);
        for id in String::from_utf8_lossy(&tasks.stdout).split_whitespace() {
            let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]);
        }
        std::thread::sleep(Duration::from_millis(300));
        for id in String::from_utf8_lossy(&tasks.stdout).split_whitespace() {
            let _ = self.ctr(&["tasks", "delete", id]);
        }
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("agent/containerd/containerd.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        if std::env::var_os("CORACLE_KEEP_TEST_DIRS").is_none() {
            std::thread::sleep(Duration::from_millis(500));
            let _ = Command::new("umount").arg("-R").arg("-l").arg(self.dir.join("agent/containerd")).stderr(Stdio::null()).status();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn pod_manifest(name: &str, restart: &str, body: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  hostNetwork: true\n  restartPolicy: {restart}\n  terminationGracePeriodSeconds: 10\n{body}"
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
fn log_file(node: &Node, pod: &Value, container: &str, n: i64) -> String {
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let path = node.dir.join(format!("agent/logs/default_{name}_{uid}/{container}/{n}.log"));
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn pods_run_restart_fail_and_terminate() {
    let node = Node::start("pods");
    let shared = node.dir.join("shared");
    std::fs::create_dir_all(&shared).expect("shared dir");
    let shared_s = shared.to_string_lossy().to_string();
    let vol = format!("  volumes:\n  - name: shared\n    hostPath: {{path: {shared_s}, type: Directory}}\n");
    let mount = "    volumeMounts:\n    - {name: shared, mountPath: /data}\n";
    node.create_cm();

    // All pods at once; each is checked below.
    node.apply(&pod_manifest("hello", "Never", &format!("  containers:\n{}", shell_container("c", "echo hello from $(hostname); exit 0"))));
    node.apply(&pod_manifest("fails", "Never", &format!("  containers:\n{}", shell_container("c", "echo failing >&2; exit 3"))));
    node.apply(&pod_manifest(
        "init",
        "Always",
        &format!(
            "  initContainers:\n{}{mount}{}{mount}  containers:\n{}{mount}{vol}",
            shell_container("i1", "sleep 1; echo i1 >> /data/order"),
            shell_container("i2", "echo i2 >> /data/order"),
            shell_container("app", "echo app >> /data/order; exec sleep 3600"),
        ),
    ));
    node.apply(&pod_manifest("crash", "Always", &format!("  containers:\n{}", shell_container("c", "echo crashing; exit 1"))));
    node.apply(&pod_manifest("badcmd", "Always", "  containers:\n  - name: c\n    image: coracle.local/busybox:1\n    command: [/no/such/binary]\n"));
    node.apply(&pod_manifest("noimage", "Always", "  containers:\n  - name: c\n    image: 127.0.0.1:1/nope:1\n"));
    node.apply(&pod_manifest(
        "env",
        "Never",
        &format!(
            "  containers:\n{}    env:\n    - {{name: A, value: one}}\n    - {{name: B, value: \"$(A)-two\"}}\n    - name: POD\n      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}\n    envFrom:\n    - configMapRef: {{name: cfg}}\n",
            shell_container("c", "echo \"B=$B POD=$POD FROM_CM=$FROM_CM\"")
        ),
    ));
    node.apply(&pod_manifest(
        "term",
        "Always",
        &format!(
            "  containers:\n{}{mount}{vol}",
            shell_container("c", "trap 'echo TERM > /data/term; exit 0' TERM; echo ready > /data/ready; while true; do sleep 0.2; done")
        ),
    ));

    // A pod that prints and exits 0: Succeeded, exit code 0, its output logged.
    let p = node.wait_pod("hello", 60, "Succeeded", |p| phase(p) == "Succeeded");
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
    let p = node.wait_pod("fails", 60, "Failed", |p| phase(p) == "Failed");
    let t = &cstatus(&p, "c")["state"]["terminated"];
    assert_eq!((t["exitCode"].as_i64(), t["reason"].as_str()), (Some(3), Some("Error")), "{p}");

    // Environment: $(VAR) expansion, fieldRef, envFrom.
    let p = node.wait_pod("env", 60, "Succeeded", |p| phase(p) == "Succeeded");
    let log = log_file(&node, &p, "c", 0);
    assert!(log.contains("B=one-two POD=env FROM_CM=yes"), "log: {log}");

    // Init containers ran in order, then the app.
    let p = node.wait_pod("init", 60, "Running", |p| phase(p) == "Running" && cstatus(p, "app")["ready"] == true);
    assert_eq!(std::fs::read_to_string(shared.join("order")).unwrap_or_default(), "i1\ni2\napp\n");
    assert_eq!(cstatus(&p, "i1")["state"]["terminated"]["reason"], "Completed");
    let ready = p["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned()).unwrap_or_default();
    assert_eq!(ready["status"], "True", "{p}");

    // A crashing container: CrashLoopBackOff with restarts counting, as kubectl shows it.
    let p = node.wait_pod("crash", 60, "CrashLoopBackOff", |p| {
        cstatus(p, "c")["state"]["waiting"]["reason"] == "CrashLoopBackOff" && cstatus(p, "c")["restartCount"].as_i64() >= Some(1)
    });
    let cs = cstatus(&p, "c");
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1, "{p}");
    let msg = cs["state"]["waiting"]["message"].as_str().unwrap_or("");
    let uid = p["metadata"]["uid"].as_str().unwrap_or("");
    assert!(msg.starts_with("back-off 10s restarting failed container=c pod=crash_default(") && msg.contains(uid), "{msg}");
    let row = node.ok(&["get", "pod", "crash", "--no-headers"]);
    assert!(row.contains("CrashLoopBackOff"), "{row}");
    assert!(node.events_of("crash").iter().any(|e| e["reason"] == "BackOff"), "no BackOff event");

    // A command that does not exist: the runtime's message in the status.
    let p = node.wait_pod("badcmd", 60, "RunContainerError", |p| {
        let cs = cstatus(p, "c");
        let waiting = cs["state"]["waiting"]["message"].as_str().unwrap_or("");
        let last = cs["lastState"]["terminated"]["message"].as_str().unwrap_or("");
        (cs["state"]["waiting"]["reason"] == "RunContainerError" && waiting.contains("/no/such/binary"))
            || (cs["state"]["waiting"]["reason"] == "CrashLoopBackOff" && last.contains("/no/such/binary"))
    });
    assert_eq!(phase(&p), "Pending", "{p}");
    assert!(node.events_of("badcmd").iter().any(|e| e["reason"] == "Failed" && e["message"].as_str().unwrap_or("").contains("/no/such/binary")));

    // An image that cannot be pulled: ErrImagePull, then ImagePullBackOff, and the events.
    node.wait_pod("noimage", 60, "ImagePullBackOff", |p| cstatus(p, "c")["state"]["waiting"]["reason"] == "ImagePullBackOff");
    let evs = node.events_of("noimage");
    assert!(
        evs.iter().any(|e| e["reason"] == "Failed" && e["message"].as_str().unwrap_or("").starts_with("Failed to pull image \"127.0.0.1:1/nope:1\": ")),
        "{evs:?}"
    );
    assert!(evs.iter().any(|e| e["reason"] == "BackOff" && e["message"] == "Back-off pulling image \"127.0.0.1:1/nope:1\""), "{evs:?}");
    assert!(evs.iter().any(|e| e["reason"] == "Pulling"), "{evs:?}");

    // Graceful deletion: SIGTERM reaches the container, the pod goes away.
    node.wait_pod("term", 60, "Running", |p| phase(p) == "Running");
    assert!(eventually(20, || shared.join("ready").exists()), "term never started");
    let t0 = Instant::now();
    node.ok(&["delete", "pod", "term", "--timeout=60s"]);
    assert!(t0.elapsed() < Duration::from_secs(9), "deletion waited for the whole grace period: {:?}", t0.elapsed());
    assert_eq!(std::fs::read_to_string(shared.join("term")).unwrap_or_default(), "TERM\n");
    assert!(node.pod("term").is_none());
    assert!(node.events_of("term").iter().any(|e| e["reason"] == "Killing"));

    // Everything else deleted: nothing left running in the runtime.
    node.ok(&["delete", "pods", "--all", "--timeout=60s"]);
    assert!(eventually(30, || node.running_tasks().is_empty()), "tasks left: {:?}", node.running_tasks());
}

impl Node {
    fn create_cm(&self) {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {FROM_CM: \"yes\"}\n");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn pods_are_adopted_after_kill9_and_orphans_removed() {
    let mut node = Node::start("adopt");
    node.apply(&pod_manifest("keep", "Always", &format!("  containers:\n{}", shell_container("c", "exec sleep 3600"))));
    node.apply(&pod_manifest("orphan", "Always", &format!("  containers:\n{}", shell_container("c", "exec sleep 3600"))));
    let before = node.wait_pod("keep", 60, "Running", |p| phase(p) == "Running");
    node.wait_pod("orphan", 60, "Running", |p| phase(p) == "Running");
    let id = cstatus(&before, "c")["containerID"].as_str().unwrap_or("").to_string();
    let orphan_uid = node.pod("orphan").map(|p| p["metadata"]["uid"].as_str().unwrap_or("").to_string()).unwrap_or_default();
    assert!(!id.is_empty());

    // kill -9, and while the agent is away the orphan's pod object goes.
    node.kill9();
    node.spawn(true);
    node.ok(&["delete", "pod", "orphan", "--grace-period=0", "--force"]);
    node.kill9();
    node.spawn(false);

    // A new pod running proves the restarted agent is syncing.
    node.apply(&pod_manifest("after", "Always", &format!("  containers:\n{}", shell_container("c", "exec sleep 3600"))));
    node.wait_pod("after", 60, "Running", |p| phase(p) == "Running");
    let after = node.wait_pod("keep", 30, "Running", |p| phase(p) == "Running");
    let cs = cstatus(&after, "c");
    assert_eq!(cs["containerID"].as_str(), Some(id.as_str()), "container replaced: {after}");
    assert_eq!(cs["restartCount"], 0, "{after}");
    assert!(node.running_tasks().contains(&id.trim_start_matches("containerd://").to_string()));
    // The orphan's sandbox and container are gone from the runtime.
    assert!(
        eventually(30, || {
            let out = node.ctr(&["containers", "ls", &format!("labels.\"io.kubernetes.pod.uid\"=={orphan_uid}")]);
            String::from_utf8_lossy(&out.stdout).lines().count() <= 1
        }),
        "orphan left in the runtime; log:\n{}",
        tail(&node.log(), 40)
    );
    node.ok(&["delete", "pods", "--all", "--timeout=60s"]);
    assert!(eventually(30, || node.running_tasks().is_empty()), "tasks left: {:?}", node.running_tasks());
}
