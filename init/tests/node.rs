//! The Node as a user sees it with kubectl, from a real `coracle server`
//! with its agent and real containerd: Ready within seconds with capacity,
//! nodeInfo and addresses, a Lease that is renewed, NotReady with the
//! runtime's failure, DiskPressure from a threshold, and a second node
//! joining from another network namespace with the server's token.

mod common;

use common::{eventually, free_port, kubectl_with, tempdir, Server};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A short name unique to this test process (links: 15 chars).
fn short(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id() % 100_000)
}

/// The Node, or null while it is not registered.
fn node(s: &Server, name: &str) -> Value {
    get_json(&s.kubeconfig, &["node", name])
}

/// The node's Lease, or null while there is none.
fn lease(s: &Server, name: &str) -> Value {
    get_json(&s.kubeconfig, &["lease", "-n", "kube-node-lease", name])
}

/// `kubectl get WHAT -o json`, null when it fails.
fn get_json(kubeconfig: &Path, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json"]);
    serde_json::from_slice(&kubectl_with(kubeconfig, &args, None, &[]).stdout).unwrap_or(Value::Null)
}

/// SIGTERM, then SIGKILL after 15 s; then whatever it left running
/// (containerd, shims) under `data_dir`.
fn stop(child: &mut Child, data_dir: &Path) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    coracle_agent::killall::kill_all(data_dir);
}

fn condition(node: &Value, t: &str) -> Value {
    node["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == t).cloned()).unwrap_or(Value::Null)
}

#[test]
fn the_servers_node_is_ready_with_its_status_and_lease() {
    let s = Server::start_node("node-ready", &["--node-label", "site=lab", "--node-taint", "dedicated=edge:PreferNoSchedule"]);
    let name = s.node_name().to_string();
    let up = Instant::now();
    assert!(
        eventually(10, || condition(&node(&s, &name), "Ready")["status"] == "True"),
        "node not Ready within 10 s of the API server: {}\nlog:\n{}",
        condition(&node(&s, &name), "Ready"),
        s.log()
    );
    eprintln!("Ready {:?} after the API server", up.elapsed());
    let n = node(&s, &name);
    let ready = condition(&n, "Ready");
    assert_eq!((ready["reason"].as_str(), ready["message"].as_str()), (Some("KubeletReady"), Some("kubelet is posting ready status")));
    for (t, reason) in [("MemoryPressure", "KubeletHasSufficientMemory"), ("DiskPressure", "KubeletHasNoDiskPressure"), ("PIDPressure", "KubeletHasSufficientPID")] {
        assert_eq!(condition(&n, t)["status"], "False", "{t}: {n}");
        assert_eq!(condition(&n, t)["reason"], reason);
    }
    let st = &n["status"];
    for r in ["cpu", "memory", "pods", "ephemeral-storage"] {
        assert!(st["capacity"][r].is_string() && st["allocatable"][r].is_string(), "{r} missing: {st}");
    }
    assert_eq!(st["capacity"]["pods"], "110");
    assert!(st["capacity"]["memory"] != st["allocatable"]["memory"], "allocatable memory keeps the eviction reserve: {st}");
    let version: Value = serde_json::from_str(&s.ok(&["get", "--raw", "/version"])).expect("version");
    let info = &st["nodeInfo"];
    assert_eq!(info["kubeletVersion"], version["gitVersion"]);
    assert!(info["containerRuntimeVersion"].as_str().unwrap_or("").starts_with("containerd://1.6"), "{info}");
    for f in ["kernelVersion", "osImage", "machineID", "bootID"] {
        assert!(!info[f].as_str().unwrap_or("").is_empty(), "{f} empty: {info}");
    }
    assert_eq!((info["operatingSystem"].as_str(), info["architecture"].as_str()), (Some("linux"), Some("amd64")));
    let addrs = st["addresses"].as_array().cloned().unwrap_or_default();
    assert!(addrs.iter().any(|a| a["type"] == "InternalIP" && !a["address"].as_str().unwrap_or("").is_empty()), "{addrs:?}");
    assert!(addrs.iter().any(|a| a["type"] == "Hostname" && a["address"] == name.as_str()), "{addrs:?}");
    assert!(st["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64().unwrap_or(0) > 0);
    let labels = &n["metadata"]["labels"];
    assert_eq!(labels["node-role.kubernetes.io/control-plane"], "true");
    assert_eq!(labels["kubernetes.io/hostname"], name.as_str());
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["site"], "lab");
    let taints = n["spec"]["taints"].to_string();
    assert!(taints.contains("dedicated") && taints.contains("PreferNoSchedule"), "{taints}");

    let wide = s.ok(&["get", "nodes", "-o", "wide"]);
    assert!(wide.contains("containerd://1.6.20") && wide.contains("control-plane") && wide.contains(" Ready "), "{wide}");
    assert!(
        eventually(15, || node(&s, &name)["status"]["images"].to_string().contains("coracle.local/pause:1")),
        "the pause image is not listed: {}",
        node(&s, &name)["status"]["images"]
    );

    assert!(eventually(10, || !lease(&s, &name).is_null()), "no lease for {name}");
    let l = lease(&s, &name);
    assert_eq!(l["spec"]["holderIdentity"], name.as_str());
    assert_eq!(l["spec"]["leaseDurationSeconds"], 40);
    assert_eq!(l["metadata"]["ownerReferences"][0]["uid"], n["metadata"]["uid"]);
    let first = l["spec"]["renewTime"].as_str().unwrap_or("").to_string();
    assert!(
        eventually(25, || lease(&s, &name)["spec"]["renewTime"].as_str() > Some(first.as_str())),
        "lease not renewed after {first}"
    );
}

#[test]
fn a_node_without_its_runtime_or_disk_says_why() {
    let dir = tempdir("node-sock");
    let sock = dir.join("nobody.sock");
    let s = Server::start_node_in(
        tempdir("node-trouble"),
        "node-trouble",
        &["--container-runtime-endpoint", sock.to_str().unwrap_or_default()],
        &[("CORACLE_EVICTION_HARD", "nodefs.available<100%")],
    );
    let name = s.node_name().to_string();
    let why = || condition(&node(&s, &name), "Ready");
    assert!(
        eventually(30, || why()["message"].as_str().unwrap_or("").starts_with("container runtime is down: ")),
        "Ready: {}\nlog:\n{}",
        why(),
        s.log()
    );
    let ready = why();
    assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("False"), Some("KubeletNotReady")));
    assert!(ready["message"].as_str().unwrap_or("").contains("nobody.sock"), "{ready}");
    let wide = s.ok(&["get", "nodes"]);
    assert!(wide.contains("NotReady"), "{wide}");
    // The API keeps serving.
    assert!(s.kubectl(&["get", "--raw", "/readyz"]).status.success());

    let disk = condition(&node(&s, &name), "DiskPressure");
    assert_eq!((disk["status"].as_str(), disk["reason"].as_str()), (Some("True"), Some("KubeletHasDiskPressure")), "{disk}");
    assert_eq!(disk["message"], "kubelet has disk pressure");
    assert!(
        eventually(15, || node(&s, &name)["spec"]["taints"].to_string().contains("node.kubernetes.io/disk-pressure")),
        "no disk-pressure taint: {}",
        node(&s, &name)["spec"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A network namespace with a veth pair; removed on drop.
struct Netns {
    name: String,
    host_link: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip must be installed");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Netns {
    fn new(host_addr: &str, ns_addr: &str) -> Netns {
        let n = Netns { name: short("crlns"), host_link: short("crlh") };
        let peer = short("crlp");
        ip(&["netns", "add", &n.name]);
        ip(&["link", "add", &n.host_link, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &n.name]);
        ip(&["addr", "add", &format!("{host_addr}/30"), "dev", &n.host_link]);
        ip(&["link", "set", &n.host_link, "up"]);
        ip(&["-n", &n.name, "addr", "add", &format!("{ns_addr}/30"), "dev", &peer]);
        ip(&["-n", &n.name, "link", "set", &peer, "up"]);
        ip(&["-n", &n.name, "link", "set", "lo", "up"]);
        n
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_link]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// A control plane without its own node, listening on every address (a
/// joining agent in another namespace reaches it through the veth).
struct ApiServer {
    child: Child,
    dir: PathBuf,
    port: u16,
    kubeconfig: PathBuf,
}

impl ApiServer {
    fn start(tag: &str, args: &[&str]) -> ApiServer {
        let dir = tempdir(tag);
        let port = free_port();
        let log = std::fs::File::create(dir.join("server.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_coracle"))
            .args(["server", "--disable-agent", "--bind-address", "0.0.0.0", "--https-listen-port", &port.to_string()])
            .arg("--data-dir")
            .arg(&dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn coracle server");
        let s = ApiServer { child, kubeconfig: dir.join("kubeconfig.yaml"), dir, port };
        let ready = || s.kubeconfig.exists() && kubectl_with(&s.kubeconfig, &["get", "--raw", "/readyz"], None, &[]).status.success();
        assert!(eventually(60, ready), "server did not become ready; log:\n{}", s.log());
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        stop(&mut self.child, &self.dir);
        if std::env::var_os("CORACLE_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `coracle agent` in the namespace; stopped on drop.
struct JoinedAgent {
    child: Child,
    dir: PathBuf,
}

impl Drop for JoinedAgent {
    fn drop(&mut self) {
        stop(&mut self.child, &self.dir);
    }
}

fn agent_cmd(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_coracle"), "agent"]).args(args);
    c
}

#[test]
fn an_agent_joins_from_another_network_namespace() {
    let octet = std::process::id() % 250 + 1;
    let (host_ip, agent_ip) = (format!("10.99.{octet}.1"), format!("10.99.{octet}.2"));
    let net = Netns::new(&host_ip, &agent_ip);
    let s = ApiServer::start("node-join", &["--tls-san", &host_ip]);
    let token = std::fs::read_to_string(s.dir.join("token")).expect("the server writes DATA_DIR/token");
    assert!(token.starts_with("K10") && token.contains("::server:"), "{token}");
    assert!(s.log().contains(&s.dir.join("token").display().to_string()), "the server says where the token is");
    let url = format!("https://{host_ip}:{}", s.port);
    let dir = tempdir("node-agent");
    let dir_s = dir.to_str().unwrap_or_default().to_string();
    let name = format!("joined-{}", std::process::id());
    let bridge = short("cnj");
    let kubelet_port = free_port().to_string();
    let base = ["--server", url.as_str(), "--node-name", name.as_str(), "--data-dir", dir_s.as_str(), "--cni-bridge", bridge.as_str(), "--kubelet-port", kubelet_port.as_str()];

    // A wrong secret is refused by the server; a wrong CA hash by the agent.
    let hash = &token[3..67];
    let bad = agent_cmd(&net.name, &base).args(["--token", &format!("K10{hash}::server:wrong")]).output().expect("run agent");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("refused the join token") && err.contains("401"), "{err}");
    let other = "0".repeat(64);
    let bad = agent_cmd(&net.name, &base).args(["--token", &format!("K10{other}::server:x")]).output().expect("run agent");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("pins sha256:0000") && err.contains("refusing to join"), "{err}");
    assert!(get_json(&s.kubeconfig, &["node", &name]).is_null(), "no node after refused joins");

    let spawn = |with_token: bool| {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("agent.log")).expect("agent log");
        let mut c = agent_cmd(&net.name, &base);
        c.args(["--node-ip", &agent_ip]);
        if with_token {
            c.args(["--token", token.trim()]);
        }
        JoinedAgent { child: c.stdout(Stdio::null()).stderr(log).spawn().expect("spawn agent"), dir: dir.clone() }
    };
    let agent_log = || std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
    let agent = spawn(true);
    assert!(
        eventually(30, || condition(&get_json(&s.kubeconfig, &["node", &name]), "Ready")["status"] == "True"),
        "joined node not Ready: {}\nagent log:\n{}",
        condition(&get_json(&s.kubeconfig, &["node", &name]), "Ready"),
        agent_log()
    );
    let n = get_json(&s.kubeconfig, &["node", &name]);
    let addrs = n["status"]["addresses"].to_string();
    assert!(addrs.contains(&agent_ip), "{addrs}");
    assert!(n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"].is_null(), "an agent is not a control plane");
    let whoami = kubectl_with(&dir.join("agent").join("kubelet.kubeconfig"), &["auth", "whoami", "-o", "json"], None, &[]);
    let who: Value = serde_json::from_slice(&whoami.stdout).unwrap_or_default();
    assert_eq!(who["status"]["userInfo"]["username"], format!("system:node:{name}"));
    assert!(who["status"]["userInfo"]["groups"].to_string().contains("system:nodes"));

    // A restart without the token reuses the credentials.
    drop(agent);
    let lease = || get_json(&s.kubeconfig, &["lease", "-n", "kube-node-lease", &name])["spec"]["renewTime"].as_str().unwrap_or("").to_string();
    let before = lease();
    let again = spawn(false);
    assert!(eventually(30, || agent_log().contains("reusing the credentials")), "agent log:\n{}", agent_log());
    assert!(eventually(30, || lease() > before), "the restarted agent does not renew its lease\n{}", agent_log());
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}
