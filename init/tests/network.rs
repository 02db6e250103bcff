//! Node networking with a real `coracle server` and its agent (real
//! containerd, nftables, netlink, kubectl): node IPAM and host-gw routes,
//! cluster DNS queried from the host (cluster names and forwarding to a
//! stub upstream), the service proxy answering ClusterIP and NodePort
//! connections round robin. Each test uses its own bridge, pod and service
//! networks, DNS address and NodePort range, so they run in parallel.
//! Pod-based checks (a client pod resolving and calling a Service) wait
//! for the pod worker.

mod common;

use common::Server;
use coracle_agent::network::dns::wire;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("ip (iproute2) must be installed for the test");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A server with its agent (`Server::start_node`: own bridge, pod and
/// service networks, DNS address) and a NodePort range of its own.
fn start(tag: &str, i: u16, extra: &[&str]) -> Server {
    let range = format!("{}-{}", 31000 + 100 * i, 31099 + 100 * i);
    let mut args = vec!["--service-node-port-range", range.as_str()];
    args.extend_from_slice(extra);
    Server::start_node(tag, &args)
}

fn info(s: &Server) -> &common::node::NodeInfo {
    s.node.as_ref().expect("a node server")
}

fn dns_addr(s: &Server) -> SocketAddr {
    SocketAddr::new(info(s).cluster_dns.parse().expect("cluster DNS address"), 53)
}

/// A Node object for `name` (a fake node: no kubelet behind it).
fn node_object(name: &str, ip: &str) -> String {
    format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\nstatus:\n  addresses:\n  - {{type: InternalIP, address: \"{ip}\"}}\n")
}

fn add_node(n: &Server, name: &str, addr: &str) {
    n.ok_stdin(&["apply", "-f", "-"], &node_object(name, addr));
    let patch = format!("{{\"status\":{{\"addresses\":[{{\"type\":\"InternalIP\",\"address\":\"{addr}\"}}]}}}}");
    n.ok(&["patch", "node", name, "--subresource=status", "--type=merge", "-p", &patch]);
}

fn pod_cidr(n: &Server, node: &str) -> String {
    n.kubectl(&["get", "node", node, "-o", "jsonpath={.spec.podCIDR}"]).stdout.iter().map(|b| *b as char).collect()
}

fn query(server: SocketAddr, name: &str, qtype: u16) -> Option<(u8, Vec<wire::Record>)> {
    let sock = UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    sock.send_to(&wire::build_query(0x4242, name, qtype), server).ok()?;
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    wire::parse_response(&buf[..n])
}

fn a_records(answers: &[wire::Record]) -> Vec<Ipv4Addr> {
    answers.iter().filter_map(|r| if let wire::Data::A(ip) = r.data { Some(ip) } else { None }).collect()
}

/// A stub upstream resolver answering every A query with `answer`.
fn stub_resolver(addr: SocketAddr, answer: Ipv4Addr) {
    let sock = UdpSocket::bind(addr).expect("bind stub resolver");
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let Ok(q) = wire::parse_query(&buf[..n]) else { continue };
            let resp = wire::Response {
                answers: vec![wire::Record { name: q.name.clone(), ttl: 30, data: wire::Data::A(answer) }],
                ..Default::default()
            };
            let _ = sock.send_to(&wire::encode(&q, &resp, 512), from);
        }
    });
}

#[test]
fn ipam_routes_and_dns() {
    let i = 1;
    let stub: SocketAddr = ([127, 53, 0, 1], 53).into();
    stub_resolver(stub, Ipv4Addr::new(203, 0, 113, 7));
    let dir = common::tempdir("net-resolv");
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, format!("search example.test\nnameserver {}\n", stub.ip())).unwrap();
    let resolv_arg = resolv.display().to_string();
    let mut n = start("ipam", i, &["--resolv-conf", &resolv_arg]);
    let me = n.node_name().to_string();
    let pods_net = info(&n).cluster_cidr.trim_end_matches(".0.0/16").to_string();
    let bridge = info(&n).bridge.clone();
    let cluster_dns = info(&n).cluster_dns.clone();

    // IPAM: the agent's node and another get distinct /24s of the cluster
    // CIDR. The other node's address is on a veth pair (on-link, as
    // host-gw needs).
    let link = format!("cnt{i}");
    let _ = Command::new("ip").args(["link", "del", &link]).status();
    assert!(Command::new("ip").args(["link", "add", &link, "type", "veth", "peer", "name", &format!("{link}p")]).status().unwrap().success());
    let _ = Command::new("ip").args(["addr", "add", &format!("198.18.{i}.1/24"), "dev", &link]).status();
    let _ = Command::new("ip").args(["link", "set", &link, "up"]).status();
    let _ = Command::new("ip").args(["link", "set", &format!("{link}p"), "up"]).status();
    // The agent registers its own node; "other" is a fake.
    add_node(&n, "other", &format!("198.18.{i}.2"));
    let mut mine = String::new();
    let mut other = String::new();
    assert!(
        common::eventually(20, || {
            mine = pod_cidr(&n, &me);
            other = pod_cidr(&n, "other");
            !mine.is_empty() && !other.is_empty()
        }),
        "podCIDRs not assigned:\n{}",
        n.log()
    );
    assert_ne!(mine, other);
    for c in [&mine, &other] {
        assert!(c.starts_with(&format!("{pods_net}.")) && c.ends_with(".0/24"), "{c}");
    }
    let cidrs = n.ok(&["get", "node", "other", "-o", "jsonpath={.spec.podCIDRs}"]);
    assert!(cidrs.contains(&other), "{cidrs}");

    // The agent wrote its CNI config for its podCIDR.
    let conf = n.dir.join("agent/cni/net.d/10-coracle.conflist");
    assert!(common::eventually(20, || std::fs::read_to_string(&conf).is_ok_and(|t| t.contains(&mine))), "no CNI config:\n{}", n.log());
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains(&format!("\"{bridge}\"")), "{text}");

    // host-gw: a route to the other node's pods via its address.
    assert!(
        common::eventually(20, || ip(&["route", "show", &other]).contains(&format!("via 198.18.{i}.2"))),
        "no route to {other}: {}\n{}",
        ip(&["route"]),
        n.log()
    );

    // DNS from the host: the kubernetes Service's ClusterIP.
    let dns = dns_addr(&n);
    let mut got = None;
    assert!(
        common::eventually(30, || {
            got = query(dns, "kubernetes.default.svc.cluster.local", wire::TYPE_A);
            got.as_ref().is_some_and(|(rc, a)| *rc == wire::RCODE_OK && !a.is_empty())
        }),
        "no answer from {dns}: {got:?}\n{}",
        n.log()
    );
    let cluster_ip = n.ok(&["get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"]);
    assert_eq!(a_records(&got.unwrap().1), vec![cluster_ip.parse::<Ipv4Addr>().unwrap()]);
    let (rc, _) = query(dns, "nope.default.svc.cluster.local", wire::TYPE_A).expect("answer");
    assert_eq!(rc, wire::RCODE_NXDOMAIN);
    // Forwarded to the stub resolver from --resolv-conf.
    let (rc, a) = query(dns, "www.example.test", wire::TYPE_A).expect("forwarded answer");
    assert_eq!((rc, a_records(&a)), (wire::RCODE_OK, vec![Ipv4Addr::new(203, 0, 113, 7)]));

    // A deleted node's route goes and its range is free again.
    n.ok(&["delete", "node", "other"]);
    assert!(common::eventually(20, || !ip(&["route", "show", &other]).contains("via")), "stale route: {}", ip(&["route"]));

    // A clean stop removes the service table and the DNS address.
    let table = format!("coracle-{bridge}");
    n.stop_node();
    let out = Command::new("nft").args(["list", "table", "ip", &table]).output().unwrap();
    assert!(!out.status.success(), "table {table} left behind");
    assert!(!ip(&["addr", "show", "dev", "lo"]).contains(&format!("{cluster_dns}/")));
    let _ = Command::new("ip").args(["link", "del", &link]).status();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A backend on `addr` answering every connection with `name`.
fn backend(addr: SocketAddr, name: &'static str) {
    let l = TcpListener::bind(addr).expect("bind backend");
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(name.as_bytes());
        }
    });
}

fn fetch(addr: SocketAddr) -> Result<String, std::io::Error> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn proxy_round_robin_on_cluster_ip_and_node_port() {
    let i = 2;
    let n = start("proxy", i, &[]);
    // Two "endpoints" on host addresses (pods come with the pod worker; the
    // proxy does not care what answers).
    for a in [1, 2] {
        let _ = Command::new("ip").args(["addr", "add", &format!("198.18.{i}.{a}/32"), "dev", "lo"]).status();
    }
    backend(SocketAddr::from(([198, 18, i as u8, 1], 18080)), "alpha");
    backend(SocketAddr::from(([198, 18, i as u8, 2], 18080)), "beta");

    let np = 31000 + 100 * i + 7;
    n.ok_stdin(&["apply", "-f", "-"], &format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec:\n  type: NodePort\n  ports:\n  - {{name: http, port: 80, targetPort: 18080, nodePort: {np}}}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-manual\n  labels: {{kubernetes.io/service-name: web}}\naddressType: IPv4\n\
         ports: [{{name: http, port: 18080, protocol: TCP}}]\nendpoints:\n- addresses: [\"198.18.{i}.1\"]\n  conditions: {{ready: true}}\n- addresses: [\"198.18.{i}.2\"]\n  conditions: {{ready: true}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {{name: empty}}\nspec:\n  ports:\n  - {{port: 81}}\n"
    ));
    let vip: Ipv4Addr = n.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]).parse().unwrap();
    let empty: Ipv4Addr = n.ok(&["get", "svc", "empty", "-o", "jsonpath={.spec.clusterIP}"]).parse().unwrap();

    for target in [SocketAddr::from((vip, 80)), SocketAddr::from(([127, 0, 0, 1], np))] {
        assert!(common::eventually(30, || fetch(target).is_ok()), "{target} does not answer:\n{}", n.log());
        let got: Vec<String> = (0..6).map(|_| fetch(target).unwrap_or_default()).collect();
        assert!(got.iter().any(|g| g == "alpha") && got.iter().any(|g| g == "beta"), "{target}: not round robin over both backends: {got:?}");
    }

    // A service without endpoints refuses connections at once.
    let t = Instant::now();
    let e = fetch(SocketAddr::from((empty, 81))).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    assert!(t.elapsed() < Duration::from_secs(2));

    // Endpoints going away: only the remaining one answers.
    n.ok(&["patch", "endpointslice", "web-manual", "--type=json", "-p", r#"[{"op":"remove","path":"/endpoints/1"}]"#]);
    assert!(
        common::eventually(10, || (0..4).all(|_| fetch(SocketAddr::from((vip, 80))).is_ok_and(|g| g == "alpha"))),
        "beta still answering"
    );
    for a in [1, 2] {
        let _ = Command::new("ip").args(["addr", "del", &format!("198.18.{i}.{a}/32"), "dev", "lo"]).status();
    }
}
