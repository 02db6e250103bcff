//! The Node as a user sees it with kubectl, from a real `coracle server`
//! with its agent and real containerd: Ready within seconds with capacity,
//! nodeInfo and addresses, a Lease that is renewed, NotReady with the
//! runtime's failure, DiskPressure from a threshold, and a second node
//! joining from another network namespace with the server's token.

mod common;

use common::join::{AgentNode, Netns};
use common::{eventually, kubectl_with, tempdir, Server};
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

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

#[test]
fn an_agent_joins_from_another_network_namespace() {
    let net = Netns::new();
    let host_ip = net.host_ip.clone();
    let s = Server::start_with("node-join", &["--bind-address", "0.0.0.0", "--tls-san", &host_ip], &[]);
    let token = std::fs::read_to_string(s.dir.join("token")).expect("the server writes DATA_DIR/token");
    assert!(token.starts_with("K10") && token.contains("::server:"), "{token}");
    assert!(s.log().contains(&s.dir.join("token").display().to_string()), "the server says where the token is");
    let url = format!("https://{host_ip}:{}", s.port);
    let joined = AgentNode::new("joined", &net, &url);
    let name = joined.name.clone();

    // A wrong secret is refused by the server; a wrong CA hash by the agent.
    let hash = &token[3..67];
    let bad = joined.command(&["--token", &format!("K10{hash}::server:wrong")]).output().expect("run agent");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("refused the join token") && err.contains("401"), "{err}");
    let other = "0".repeat(64);
    let bad = joined.command(&["--token", &format!("K10{other}::server:x")]).output().expect("run agent");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("pins sha256:0000") && err.contains("refusing to join"), "{err}");
    assert!(node(&s, &name).is_null(), "no node after refused joins");

    let agent = joined.spawn(&["--token", token.trim()]);
    assert!(
        eventually(30, || condition(&node(&s, &name), "Ready")["status"] == "True"),
        "joined node not Ready: {}\nagent log:\n{}",
        condition(&node(&s, &name), "Ready"),
        joined.log()
    );
    let n = node(&s, &name);
    let addrs = n["status"]["addresses"].to_string();
    assert!(addrs.contains(&net.ns_ip), "{addrs}");
    assert!(n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"].is_null(), "an agent is not a control plane");
    let whoami = kubectl_with(&joined.kubeconfig(), &["auth", "whoami", "-o", "json"], None, &[]);
    let who: Value = serde_json::from_slice(&whoami.stdout).unwrap_or_default();
    assert_eq!(who["status"]["userInfo"]["username"], format!("system:node:{name}"));
    assert!(who["status"]["userInfo"]["groups"].to_string().contains("system:nodes"));

    // A restart without the token reuses the credentials.
    drop(agent);
    let renewed = || lease(&s, &name)["spec"]["renewTime"].as_str().unwrap_or("").to_string();
    let before = renewed();
    let _again = joined.spawn(&[]);
    assert!(eventually(30, || joined.log().contains("reusing the credentials")), "agent log:\n{}", joined.log());
    assert!(eventually(30, || renewed() > before), "the restarted agent does not renew its lease\n{}", joined.log());
}
