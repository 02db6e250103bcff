//! The Node as a user sees it with kubectl, from a real `coracle server`
//! with its agent and real containerd: Ready within seconds with capacity,
//! nodeInfo and addresses, a Lease that is renewed, NotReady with the
//! runtime's failure, DiskPressure from a threshold, and a second node
//! joining from another network namespace with the server's token.

mod common;

use common::{eventually, kubectl_with, tempdir};
use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("no free port")
}

/// A short name unique to this test process (bridges and links: 15 chars).
fn short(prefix: &str, n: u32) -> String {
    format!("{prefix}{}{n}", std::process::id() % 100_000)
}

/// A CNI config so the runtime's network is ready without pods (the
/// bridge is only made when a pod is added). Named to sort after the
/// agent's own config once it writes one.
fn write_cni_conf(data_dir: &Path, bridge: &str) {
    let dir = data_dir.join("agent").join("cni").join("net.d");
    std::fs::create_dir_all(&dir).expect("cni dir");
    let conf = format!(
        r#"{{"cniVersion":"1.0.0","name":"coracle-node-test","plugins":[{{"type":"bridge","bridge":"{bridge}","isGateway":true,"ipam":{{"type":"host-local","ranges":[[{{"subnet":"10.251.0.0/24"}}]]}}}},{{"type":"loopback"}}]}}"#
    );
    std::fs::write(dir.join("99-node-test.conflist"), conf).expect("cni conf");
}

/// SIGTERM, then SIGKILL after 15 s; then the containerd it left, if any.
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
    let pid_file = data_dir.join("agent").join("containerd").join("containerd.pid");
    if let Some(pid) = std::fs::read_to_string(pid_file).ok().and_then(|s| s.trim().parse::<i32>().ok()).and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// `coracle server` with its agent on this host.
struct NodeServer {
    child: Child,
    dir: PathBuf,
    port: u16,
    kubeconfig: PathBuf,
    node: String,
}

impl NodeServer {
    fn start(tag: &str, n: u32, args: &[&str], env: &[(&str, &str)]) -> NodeServer {
        let dir = tempdir(tag);
        let port = free_port();
        let node = format!("node-{tag}-{}", std::process::id());
        let bridge = short("cnd", n);
        write_cni_conf(&dir, &bridge);
        let log = std::fs::File::create(dir.join("server.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_coracle"))
            .args(["server", "--https-listen-port", &port.to_string(), "--node-name", &node, "--cni-bridge", &bridge])
            .args(["--kubelet-port", &free_port().to_string()])
            .arg("--data-dir")
            .arg(&dir)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn coracle server");
        let s = NodeServer { child, kubeconfig: dir.join("kubeconfig.yaml"), dir, port, node };
        assert!(
            eventually(60, || s.kubeconfig.exists() && s.kubectl(&["get", "--raw", "/readyz"]).status.success()),
            "server did not become ready; log:\n{}",
            s.log()
        );
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        kubectl_with(&self.kubeconfig, args, None, &[])
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The node's Lease, or null while there is none.
    fn lease(&self, name: &str) -> Value {
        let out = self.kubectl(&["get", "lease", "-n", "kube-node-lease", name, "-o", "json"]);
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    /// The Node, or null while it is not registered.
    fn node(&self, name: &str) -> Value {
        let out = self.kubectl(&["get", "node", name, "-o", "json"]);
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        stop(&mut self.child, &self.dir);
        if std::env::var_os("CORACLE_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn condition(node: &Value, t: &str) -> Value {
    node["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == t).cloned()).unwrap_or(Value::Null)
}

#[test]
fn the_servers_node_is_ready_with_its_status_and_lease() {
    let s = NodeServer::start("node-ready", 1, &["--bind-address", "127.0.0.1", "--node-label", "site=lab", "--node-taint", "dedicated=edge:PreferNoSchedule"], &[]);
    let up = Instant::now();
    assert!(
        eventually(10, || condition(&s.node(&s.node), "Ready")["status"] == "True"),
        "node not Ready within 10 s of the API server: {}\nlog:\n{}",
        condition(&s.node(&s.node), "Ready"),
        s.log()
    );
    eprintln!("Ready {:?} after the API server", up.elapsed());
    let n = s.node(&s.node);
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
    assert!(addrs.iter().any(|a| a["type"] == "Hostname" && a["address"] == s.node.as_str()), "{addrs:?}");
    assert!(st["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64().unwrap_or(0) > 0);
    let labels = &n["metadata"]["labels"];
    assert_eq!(labels["node-role.kubernetes.io/control-plane"], "true");
    assert_eq!(labels["kubernetes.io/hostname"], s.node.as_str());
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["site"], "lab");
    let taints = n["spec"]["taints"].to_string();
    assert!(taints.contains("dedicated") && taints.contains("PreferNoSchedule"), "{taints}");

    let wide = s.ok(&["get", "nodes", "-o", "wide"]);
    assert!(wide.contains("containerd://1.6.20") && wide.contains("control-plane") && wide.contains(" Ready "), "{wide}");
    assert!(
        eventually(15, || s.node(&s.node)["status"]["images"].to_string().contains("coracle.local/pause:1")),
        "the pause image is not listed: {}",
        s.node(&s.node)["status"]["images"]
    );

    assert!(eventually(10, || !s.lease(&s.node).is_null()), "no lease for {}", s.node);
    let lease = s.lease(&s.node);
    assert_eq!(lease["spec"]["holderIdentity"], s.node.as_str());
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    assert_eq!(lease["metadata"]["ownerReferences"][0]["uid"], n["metadata"]["uid"]);
    let first = lease["spec"]["renewTime"].as_str().unwrap_or("").to_string();
    assert!(
        eventually(25, || s.lease(&s.node)["spec"]["renewTime"].as_str() > Some(first.as_str())),
        "lease not renewed after {first}"
    );
}

#[test]
fn a_node_without_its_runtime_or_disk_says_why() {
    let dir = tempdir("node-sock");
    let sock = dir.join("nobody.sock");
    let s = NodeServer::start(
        "node-trouble",
        2,
        &["--bind-address", "127.0.0.1", "--container-runtime-endpoint", sock.to_str().unwrap_or_default()],
        &[("CORACLE_EVICTION_HARD", "nodefs.available<100%")],
    );
    let why = || condition(&s.node(&s.node), "Ready");
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

    let disk = condition(&s.node(&s.node), "DiskPressure");
    assert_eq!((disk["status"].as_str(), disk["reason"].as_str()), (Some("True"), Some("KubeletHasDiskPressure")), "{disk}");
    assert_eq!(disk["message"], "kubelet has disk pressure");
    assert!(
        eventually(15, || s.node(&s.node)["spec"]["taints"].to_string().contains("node.kubernetes.io/disk-pressure")),
        "no disk-pressure taint: {}",
        s.node(&s.node)["spec"]
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
        let n = Netns { name: short("crlns", 0), host_link: short("crlh", 0) };
        let peer = short("crlp", 0);
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
    let s = NodeServer::start("node-join", 3, &["--bind-address", "0.0.0.0", "--tls-san", &host_ip], &[]);
    let token = std::fs::read_to_string(s.dir.join("token")).expect("the server writes DATA_DIR/token");
    assert!(token.starts_with("K10") && token.contains("::server:"), "{token}");
    assert!(s.log().contains(&s.dir.join("token").display().to_string()), "the server says where the token is");
    let url = format!("https://{host_ip}:{}", s.port);
    let dir = tempdir("node-agent");
    let dir_s = dir.to_str().unwrap_or_default().to_string();
    let name = format!("joined-{}", std::process::id());
    let bridge = short("cnj", 3);
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
    assert!(s.kubectl(&["get", "node", &name]).stdout.is_empty(), "no node after refused joins");

    write_cni_conf(&dir, &bridge);
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
        eventually(30, || condition(&s.node(&name), "Ready")["status"] == "True"),
        "joined node not Ready: {}\nagent log:\n{}",
        condition(&s.node(&name), "Ready"),
        agent_log()
    );
    let n = s.node(&name);
    let addrs = n["status"]["addresses"].to_string();
    assert!(addrs.contains(&agent_ip), "{addrs}");
    assert!(n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"].is_null(), "an agent is not a control plane");
    let whoami = kubectl_with(&dir.join("agent").join("kubelet.kubeconfig"), &["auth", "whoami", "-o", "json"], None, &[]);
    let who: Value = serde_json::from_slice(&whoami.stdout).unwrap_or_default();
    assert_eq!(who["status"]["userInfo"]["username"], format!("system:node:{name}"));
    assert!(who["status"]["userInfo"]["groups"].to_string().contains("system:nodes"));

    // A restart without the token reuses the credentials.
    drop(agent);
    let lease = || s.lease(&name)["spec"]["renewTime"].as_str().unwrap_or("").to_string();
    let before = lease();
    let again = spawn(false);
    assert!(eventually(30, || agent_log().contains("reusing the credentials")), "agent log:\n{}", agent_log());
    assert!(eventually(30, || lease() > before), "the restarted agent does not renew its lease\n{}", agent_log());
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}
