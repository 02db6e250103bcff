//! Two nodes, one cluster: a `coracle server` node on the host and a
//! `coracle agent` joined from its own network namespace (veth pair, its
//! own address, containerd, bridge, pod network from the node IPAM,
//! routes, nftables table and cluster DNS). Pods on each node reach pods
//! on the other through a ClusterIP Service by its DNS name (host-gw
//! routes between the nodes), the host reaches a NodePort on the joined
//! node's address, and `kubectl logs`/`exec` reach pods on the joined node
//! through the API server.

mod common;

use common::join::{AgentNode, Netns};
use common::node::BUSYBOX;
use common::{eventually, Server};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

const NS: &str = "cross";

/// busybox httpd on 8080 serving a page that names its pod; `client`
/// pods only sleep. Each is pinned to a node by hostname.
fn pods(server_node: &str, agent_node: &str) -> String {
    let web = |name: &str, node: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {NS}, labels: {{app: {name}}}}}\nspec:\n  \
             nodeSelector: {{kubernetes.io/hostname: {node}}}\n  terminationGracePeriodSeconds: 1\n  containers:\n  \
             - name: web\n    image: {BUSYBOX}\n    ports: [{{containerPort: 8080}}]\n    \
             readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}\n    \
             command: [sh, -c, 'mkdir -p /www && echo {name} > /www/index.html && echo {name} serving && exec httpd -f -p 8080 -h /www']\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  type: NodePort\n  \
             selector: {{app: {name}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n---\n"
        )
    };
    let client = |name: &str, node: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  nodeName: {node}\n  \
             terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {BUSYBOX}\n    command: [sleep, '3600']\n---\n"
        )
    };
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NS}}}\n---\n{}{}{}{}",
        web("server-web", server_node),
        web("agent-web", agent_node),
        client("server-client", server_node),
        client("agent-client", agent_node)
    )
}

fn pod(s: &Server, name: &str) -> Value {
    serde_json::from_slice(&s.kubectl(&["get", "pod", "-n", NS, name, "-o", "json"]).stdout).unwrap_or(Value::Null)
}

fn ready(p: &Value) -> bool {
    p["status"]["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// `kubectl exec -n NS POD -- CMD...` (through the API server and the
/// pod's kubelet): stdout, or what went wrong.
fn exec(s: &Server, pod: &str, cmd: &[&str]) -> Result<String, String> {
    let mut args = vec!["exec", "-n", NS, pod, "--"];
    args.extend_from_slice(cmd);
    let out = s.kubectl(&args);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

/// The answer's address in busybox `nslookup` output (the lines after
/// `Name:`; the first `Address:` is the server's).
fn looked_up(out: &str) -> Option<String> {
    let answer = out.split_once("Name:")?.1;
    answer.lines().find_map(|l| l.strip_prefix("Address:")).map(|a| a.trim().to_string())
}

/// An HTTP GET from the host; the body.
fn http_get(addr: SocketAddr) -> Result<String, std::io::Error> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split_once("\r\n\r\n").map(|(_, body)| body.trim().to_string()).unwrap_or_default())
}

#[test]
fn pods_on_a_joined_node_reach_the_servers_pods_through_services_and_back() {
    let t0 = Instant::now();
    let net = Netns::new();
    let host_ip = net.host_ip.clone();
    let mut s = Server::start_node(
        "join",
        &["--bind-address", "0.0.0.0", "--tls-san", &host_ip, "--node-ip", &host_ip, "--service-node-port-range", "32600-32699"],
    );
    let token = std::fs::read_to_string(s.dir.join("token")).expect("the server writes DATA_DIR/token");
    let joined = AgentNode::new("join-agent", &net, &format!("https://{host_ip}:{}", s.port)).with_busybox();
    let agent = joined.spawn(&["--token", token.trim()]);
    let (server_node, agent_node) = (s.node_name().to_string(), joined.name.clone());
    let logs = || format!("server log:\n{}\nagent log:\n{}", tail(&s.log(), 40), tail(&joined.log(), 60));
    for n in [&server_node, &agent_node] {
        assert!(
            eventually(60, || s.kubectl(&["get", "node", n, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]).stdout == b"True"),
            "node {n} not Ready\n{}",
            logs()
        );
    }
    assert!(s.wait_image(BUSYBOX) && joined.wait_image(BUSYBOX), "busybox not imported\n{}", logs());
    eprintln!("two nodes Ready after {:?}", t0.elapsed());

    s.ok_stdin(&["apply", "-f", "-"], &pods(&server_node, &agent_node));
    for (p, node) in [("server-web", &server_node), ("agent-web", &agent_node), ("server-client", &server_node), ("agent-client", &agent_node)] {
        let ok = eventually(90, || {
            let v = pod(&s, p);
            ready(&v) && v["spec"]["nodeName"] == node.as_str()
        });
        assert!(
            ok,
            "pod {p} not ready on {node}:\n{}\nevents:\n{}\n{}",
            serde_json::to_string_pretty(&pod(&s, p)["status"]).unwrap_or_default(),
            String::from_utf8_lossy(&s.kubectl(&["get", "events", "-n", NS]).stdout),
            logs()
        );
    }
    eprintln!("pods ready after {:?}", t0.elapsed());
    let agent_pod_ip = pod(&s, "agent-web")["status"]["podIP"].as_str().unwrap_or("").to_string();
    let agent_cidr = s.ok(&["get", "node", &agent_node, "-o", "jsonpath={.spec.podCIDR}"]);
    let server_cidr = s.ok(&["get", "node", &server_node, "-o", "jsonpath={.spec.podCIDR}"]);
    assert!(!agent_cidr.is_empty() && agent_cidr != server_cidr, "podCIDRs: {agent_cidr} {server_cidr}");
    eprintln!("podCIDRs: server {server_cidr}, joined {agent_cidr}");
    assert!(agent_pod_ip.starts_with(agent_cidr.trim_end_matches("0/24")), "{agent_pod_ip} not in {agent_cidr}");

    // host-gw routes both ways; the joined node's service table and DNS
    // address are in its namespace, not on the host.
    let host_route = || run("ip", &["route", "show", &agent_cidr]);
    assert!(eventually(10, || host_route().contains(&format!("via {}", net.ns_ip))), "host: no route to {agent_cidr}: {}", run("ip", &["route"]));
    let in_ns = |cmd: &str, args: &[&str]| {
        let mut a = vec!["netns", "exec", net.name.as_str(), cmd];
        a.extend_from_slice(args);
        run("ip", &a)
    };
    let ns_route = || in_ns("ip", &["route", "show", &server_cidr]);
    assert!(eventually(10, || ns_route().contains(&format!("via {host_ip}"))), "netns: no route to {server_cidr}: {}", in_ns("ip", &["route"]));
    let table = format!("coracle-{}", joined.bridge);
    assert!(eventually(10, || in_ns("nft", &["list", "table", "ip", &table]).contains("agent-web")), "no service table {table} in the namespace");
    assert!(run("nft", &["list", "table", "ip", &table]).is_empty(), "{table} is on the host");
    let dns = s.node.as_ref().map(|n| n.cluster_dns.clone()).unwrap_or_default();
    assert!(in_ns("ip", &["addr", "show", "dev", "lo"]).contains(&format!("{dns}/32")), "cluster DNS {dns} not on the namespace's lo");

    // Joined node -> server node, and back, by the Service's DNS name: the
    // node's cluster DNS answers the ClusterIP, which leads to the pod on
    // the other node. (Debian's static busybox wget crashes, SIGSEGV, when
    // it resolves a name or is given -T: nslookup, busybox's own resolver,
    // looks the name up, wget fetches from the address under `timeout`.)
    for (client, backend) in [("agent-client", "server-web"), ("server-client", "agent-web")] {
        let name = format!("{backend}.{NS}.svc.cluster.local");
        let cluster_ip = s.ok(&["get", "svc", "-n", NS, backend, "-o", "jsonpath={.spec.clusterIP}"]);
        let mut last = Err(String::new());
        assert!(
            eventually(30, || {
                last = exec(&s, client, &["nslookup", "-type=a", &name]);
                last.as_deref().ok().and_then(looked_up).as_deref() == Some(cluster_ip.as_str())
            }),
            "{client}: {name} does not resolve to {cluster_ip}: {last:?}\n{}",
            logs()
        );
        let url = format!("http://{cluster_ip}:80/index.html");
        assert!(
            eventually(30, || {
                last = exec(&s, client, &["timeout", "5", "wget", "-qO-", &url]);
                last.as_deref() == Ok(backend)
            }),
            "{client} -> {url} ({name}): {last:?}\n{}",
            logs()
        );
    }

    // The host reaches both NodePorts on the joined node's address (one
    // backend is local to it, one on the server node).
    for svc in ["agent-web", "server-web"] {
        let np: u16 = s.ok(&["get", "svc", "-n", NS, svc, "-o", "jsonpath={.spec.ports[0].nodePort}"]).parse().expect("nodePort");
        let addr = SocketAddr::new(net.ns_ip.parse().expect("address"), np);
        let mut last = Ok(String::new());
        assert!(
            eventually(30, || {
                last = http_get(addr);
                last.as_ref().is_ok_and(|b| b == svc)
            }),
            "NodePort {addr} of {svc}: {last:?}\n{}",
            logs()
        );
    }

    // kubectl logs and exec reach the joined node's kubelet at its InternalIP.
    let out = s.ok(&["logs", "-n", NS, "agent-web"]);
    assert!(out.contains("agent-web serving"), "{out}");
    assert_eq!(exec(&s, "agent-web", &["cat", "/www/index.html"]).as_deref(), Ok("agent-web"));

    // Stopping the nodes takes their pods' interfaces with them (the
    // host ends of the server's pods' veth pairs included).
    let bridge = s.node.as_ref().map(|n| n.bridge.clone()).unwrap_or_default();
    let veths: Vec<String> = run("ip", &["-o", "link", "show", "master", &bridge])
        .lines()
        .filter_map(|l| l.split(": ").nth(1)?.split('@').next().map(String::from))
        .collect();
    assert!(veths.len() >= 2, "server pods' veths on {bridge}: {veths:?}");
    drop(agent);
    s.stop_node();
    // (Interfaces go when the kernel has dismantled the namespace: soon.)
    let left = || -> Vec<&String> { veths.iter().filter(|v| !run("ip", &["link", "show", v.as_str()]).is_empty()).collect() };
    assert!(eventually(10, || left().is_empty()), "pod interfaces left after the node stopped: {:?}", left());
    eprintln!("done after {:?}", t0.elapsed());
}

/// stdout of a command ("" when it fails).
fn run(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd).args(args).output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
