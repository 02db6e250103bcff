//! Streaming through the API server with the real kubectl: `kubectl logs`
//! (every flag), `get --raw .../nodes/NODE/proxy/...`, and the errors a user
//! sees. The kubelet endpoint is the agent's real one (`coracle_agent::server`)
//! run in this process next to a `coracle server --disable-agent`, reading
//! CRI log files this test writes; exec, attach, port-forward and cp with
//! real containers are in the node tests below.

mod common;

use common::Server;
use coracle_agent::containerd::Health;
use coracle_agent::cri::Cri;
use coracle_agent::{AgentConfig, Context};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

/// Run the agent's kubelet endpoint for node `node` on a free port (with
/// the admin's client for reading pods, and no container runtime).
fn stub_kubelet(server: &Server, node: &str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let mut cfg = AgentConfig::new(node, server.dir.clone());
    cfg.kubelet_port = port;
    cfg.node_log_dir = server.dir.join("node-logs");
    let kubeconfig = server.kubeconfig.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async move {
            let client = coracle_agent::client_from_kubeconfig(&kubeconfig).await.expect("client");
            let cri = Cri::new(&cfg.agent_dir().join("no-runtime.sock")).expect("cri");
            let ctx = Arc::new(Context {
                cfg,
                client,
                cri,
                runtime_health: tokio::sync::watch::channel(Health::Running { pid: 0 }).1,
                started: std::time::Instant::now(),
            });
            let acceptor = coracle_agent::server::acceptor(&ctx).expect("kubelet TLS");
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = ready_tx.send(());
            coracle_agent::server::serve(listener, acceptor, ctx).await;
        });
    });
    ready_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("kubelet endpoint started");
    port
}

fn register_node(s: &Server, name: &str, port: u16) {
    s.ok_stdin(
        &["create", "-f", "-"],
        &format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\n"),
    );
    let status = format!(
        r#"{{"status":{{"addresses":[{{"type":"InternalIP","address":"127.0.0.1"}},{{"type":"Hostname","address":"{name}"}}],"daemonEndpoints":{{"kubeletEndpoint":{{"Port":{port}}}}}}}}}"#
    );
    s.ok(&["patch", "node", name, "--subresource=status", "--type=merge", "-p", &status]);
}

/// A pod bound to `node` whose status says: c1 running (restarted once),
/// c2 still being created.
fn pod_with_status(s: &Server, name: &str, node: &str) -> String {
    s.ok_stdin(
        &["create", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  containers:\n  - {{name: c1, image: busybox}}\n  - {{name: c2, image: busybox}}\n"
        ),
    );
    let status = r#"{"status":{"phase":"Running","containerStatuses":[
        {"name":"c1","image":"busybox","imageID":"","ready":true,"restartCount":1,"containerID":"containerd://current",
         "state":{"running":{"startedAt":"2024-05-01T10:00:00Z"}},
         "lastState":{"terminated":{"exitCode":1,"containerID":"containerd://previous"}}},
        {"name":"c2","image":"busybox","imageID":"","ready":false,"restartCount":0,
         "state":{"waiting":{"reason":"ContainerCreating"}}}]}}"#;
    s.ok(&["patch", "pod", name, "--subresource=status", "--type=merge", "-p", status]);
    s.ok(&["get", "pod", name, "-o", "jsonpath={.metadata.uid}"])
}

fn log_dir(s: &Server, pod: &str, uid: &str, container: &str) -> PathBuf {
    let d = s
        .dir
        .join("agent")
        .join("logs")
        .join(format!("default_{pod}_{uid}"))
        .join(container);
    std::fs::create_dir_all(&d).expect("log dir");
    d
}

/// A long line the runtime split (P + F), then two short ones.
const CURRENT: &str = "2024-05-01T10:00:01Z stdout P on\n\
2024-05-01T10:00:01.000000001Z stdout F e\n\
2024-05-01T10:00:02.5Z stderr F two\n\
2024-05-01T10:00:03Z stdout F three\n";

fn append(path: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).expect("open log");
    f.write_all(line.as_bytes()).expect("append");
}

#[test]
fn logs_and_node_proxy_through_the_api_server() {
    let s = Server::start("stream-logs");
    let port = stub_kubelet(&s, "stub");
    register_node(&s, "stub", port);
    let uid = pod_with_status(&s, "web", "stub");
    let dir = log_dir(&s, "web", &uid, "c1");
    std::fs::write(dir.join("1.log"), CURRENT).expect("write log");
    std::fs::write(dir.join("0.log"), "2024-05-01T09:00:00Z stdout F before the restart\n").expect("write log");

    assert_eq!(s.ok(&["logs", "web", "-c", "c1"]), "one\ntwo\nthree\n");
    assert_eq!(s.ok(&["logs", "web", "-c", "c1", "--tail=1"]), "three\n");
    assert_eq!(s.ok(&["logs", "web", "-c", "c1", "--limit-bytes=6"]), "one\ntw");
    assert_eq!(
        s.ok(&["logs", "web", "-c", "c1", "--since-time=2024-05-01T10:00:02Z"]),
        "two\nthree\n"
    );
    assert_eq!(
        s.ok(&["logs", "web", "-c", "c1", "--timestamps", "--tail=2"]),
        "2024-05-01T10:00:02.5Z two\n2024-05-01T10:00:03Z three\n"
    );
    assert_eq!(s.ok(&["logs", "web", "-c", "c1", "--previous"]), "before the restart\n");
    assert_eq!(
        s.ok(&["logs", "web", "-c", "c1", "-p", "--timestamps"]),
        "2024-05-01T09:00:00Z before the restart\n"
    );
    // The first container is kubectl's default.
    assert_eq!(s.ok(&["logs", "pod/web"]), "one\ntwo\nthree\n");
    // sinceSeconds far in the past of the file: nothing newer.
    assert_eq!(s.ok(&["logs", "web", "-c", "c1", "--since=1s"]), "");

    let err = s.fails(&["logs", "web", "-c", "c2"], None);
    assert!(
        err.contains("container \"c2\" in pod \"web\" is waiting to start: ContainerCreating"),
        "{err}"
    );
    assert!(err.contains("BadRequest"), "{err}");
    let err = s.fails(&["logs", "web", "-c", "c2", "--previous"], None);
    assert!(
        err.contains("previous terminated container \"c2\" in pod \"web\" not found"),
        "{err}"
    );
    let err = s.fails(&["logs", "web", "-c", "nope"], None);
    assert!(err.contains("container nope is not valid for pod web"), "{err}");
    let err = s.fails(&["logs", "missing"], None);
    assert!(err.contains("pods \"missing\" not found"), "{err}");

    // --all-containers: c1's lines whatever c2 answers (kubectl may ask
    // for the containers in any order and stops at the first error unless
    // told to ignore it).
    let out = s.kubectl(&["logs", "web", "--all-containers", "--ignore-errors"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("one\ntwo\nthree\n"));

    // -f: a line written later arrives on the open stream.
    let mut follow = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args(["logs", "-f", "web", "-c", "c1", "--tail=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl logs -f");
    let mut lines = BufReader::new(follow.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("three"));
    append(&dir.join("1.log"), "2024-05-01T10:00:04Z stdout F four, later\n");
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("four, later"));
    let _ = follow.kill();
    let _ = follow.wait();

    // Unscheduled pods have no logs yet (upstream answers empty).
    s.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: pending}\nspec:\n  containers:\n  - {name: c, image: busybox}\n",
    );
    assert_eq!(s.ok(&["logs", "pending"]), "");
    let err = s.fails(&["exec", "pending", "--", "true"], None);
    assert!(err.contains("pod pending does not have a host assigned"), "{err}");

    // nodes/NODE/proxy: health and node log files.
    assert_eq!(s.ok(&["get", "--raw", "/api/v1/nodes/stub/proxy/healthz"]), "ok");
    std::fs::create_dir_all(s.dir.join("node-logs")).expect("node logs");
    std::fs::write(s.dir.join("node-logs").join("coracle.log"), "booted\n").expect("node log");
    assert_eq!(s.ok(&["get", "--raw", "/api/v1/nodes/stub/proxy/logs/coracle.log"]), "booted\n");
    assert!(s
        .ok(&["get", "--raw", "/api/v1/nodes/stub/proxy/logs/"])
        .contains("<a href=\"coracle.log\">coracle.log</a>"));
    let raw = s.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/stub/proxy/containerLogs/default/web/c1?tailLines=1"),
    ]);
    assert_eq!(raw, "four, later\n");

    // A node whose kubelet is down: a clear 502.
    register_node(&s, "gone", common_free_port());
    let err = s.fails(&["get", "--raw", "/api/v1/nodes/gone/proxy/healthz"], None);
    assert!(err.contains("error dialing backend") && err.contains("connection refused"), "{err}");
}

fn common_free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

// ---- Real containers: exec, attach, port-forward, cp, logs -f ----
//
// The pod objects are bound to a second Node object whose kubelet address
// is this node's real endpoint; the sandbox and containers are created
// here over CRI with the kubelet's labels, so the test exercises the
// runtime's streaming server without depending on the pod worker.


fn kubectl_cmd(s: &Server, args: &[&str]) -> Command {
    let mut c = Command::new("kubectl");
    c.arg("--kubeconfig").arg(&s.kubeconfig).args(args);
    c
}

#[test]
fn exec_attach_port_forward_and_cp_with_real_containers() {
    let s = Server::start_node("stream-run", &[]);
    assert!(s.wait_image(common::node::BUSYBOX), "busybox not imported; log:\n{}", s.log());
    assert!(s.wait_image("coracle.local/pause:1"), "pause image not imported; log:\n{}", s.log());
    let kubelet_port = s.node.as_ref().map(|n| n.kubelet_port).expect("node server");
    let _ = kubelet_port;
    let http_port = common::free_port();
    // An ordinary pod on the real node, run by the pod worker; `ghost`
    // exits at once (so exec finds no running container of that name).
    let web = format!(
        "mkdir -p /www && echo hello-from-pod > /www/index.html && echo web started && exec httpd -f -p 127.0.0.1:{http_port} -h /www"
    );
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: box}}\nspec:\n  nodeName: {node}\n  tolerations: [{{operator: Exists}}]\n  containers:\n  - name: web\n    image: {img}\n    imagePullPolicy: Never\n    command: [sh, -c, {web:?}]\n  - name: echo\n    image: {img}\n    imagePullPolicy: Never\n    stdin: true\n    command: [sh, -c, \"while read l; do echo got:$l; done\"]\n  - {{name: ghost, image: {img}, imagePullPolicy: Never, command: [sh, -c, \"exit 0\"]}}\n",
        node = s.node_name(),
        img = common::node::BUSYBOX,
    );
    s.ok_stdin(&["create", "-f", "-"], &manifest);
    assert!(
        common::eventually(90, || {
            let out = s.kubectl(&["get", "pod", "box", "-o", "jsonpath={.status.containerStatuses[?(@.name==\"web\")].state.running.startedAt} {.status.containerStatuses[?(@.name==\"echo\")].state.running.startedAt}"]);
            String::from_utf8_lossy(&out.stdout).split_whitespace().count() == 2
        }),
        "web and echo did not start: {}\n{}",
        s.ok(&["get", "pod", "box", "-o", "yaml"]),
        s.log()
    );
    assert!(common::eventually(30, || s.kubectl(&["exec", "box", "-c", "web", "--", "wget", "-qO-", &format!("http://127.0.0.1:{http_port}/index.html")]).status.success()));

    // exec: output, exit codes, stdin with EOF.
    assert_eq!(
        s.ok(&["exec", "box", "-c", "web", "--", "cat", "/www/index.html"]),
        "hello-from-pod\n"
    );
    let out = s.kubectl(&["exec", "box", "-c", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    let out = s.kubectl_stdin(
        &["exec", "-i", "box", "-c", "web", "--", "sh", "-c", "cat; echo done"],
        Some("piped line\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped line\ndone\n");
    let err = s.fails(&["exec", "box", "-c", "ghost", "--", "true"], None);
    assert!(err.contains("container not found (\"ghost\")"), "{err}");

    // cp both ways (tar over exec).
    let local = s.dir.join("to-pod.txt");
    std::fs::write(&local, "copied in\n").expect("local file");
    s.ok(&["cp", &local.to_string_lossy(), "box:/tmp/in.txt", "-c", "web"]);
    assert_eq!(s.ok(&["exec", "box", "-c", "web", "--", "cat", "/tmp/in.txt"]), "copied in\n");
    let back = s.dir.join("from-pod.html");
    s.ok(&["cp", "box:/www/index.html", &back.to_string_lossy(), "-c", "web"]);
    assert_eq!(std::fs::read_to_string(&back).expect("copied out"), "hello-from-pod\n");

    // attach -i: stdin reaches the running process, its output comes back.
    let mut attach = kubectl_cmd(&s, &["attach", "-i", "box", "-c", "echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl attach");
    let mut stdin = attach.stdin.take().expect("stdin");
    let mut lines = BufReader::new(attach.stdout.take().expect("stdout")).lines();
    stdin.write_all(b"hi there\n").expect("write");
    stdin.flush().expect("flush");
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("got:hi there"));
    let _ = attach.kill();
    let _ = attach.wait();

    // port-forward: two HTTP requests through one forward, over kubectl's
    // default WebSocket tunnel and over its plain SPDY fallback.
    for websockets in ["true", "false"] {
        let local_port = common::free_port();
        let mut pf = kubectl_cmd(&s, &["port-forward", "pod/box", &format!("{local_port}:{http_port}")])
            .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", websockets)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl port-forward");
        let mut pf_out = BufReader::new(pf.stdout.take().expect("stdout")).lines();
        let first = pf_out.next().and_then(Result::ok).unwrap_or_default();
        assert!(first.contains("Forwarding from"), "{first}");
        for _ in 0..2 {
            let mut conn = std::net::TcpStream::connect(("127.0.0.1", local_port)).expect("connect to the forward");
            conn.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n").expect("request");
            let mut body = String::new();
            std::io::Read::read_to_string(&mut conn, &mut body).expect("response");
            assert!(body.contains("hello-from-pod"), "{body}");
        }
        let _ = pf.kill();
        let _ = pf.wait();
    }
}
