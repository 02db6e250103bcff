//! The nftables ruleset of the service proxy, as one `nft -f` script that
//! replaces the agent's table atomically (kube-proxy's nftables mode, in
//! its own table `ip coracle-BRIDGE` so several agents on one host do not
//! collide). Pure text; [`super`] applies it.
//!
//! - `services` (nat prerouting and output): ClusterIP/externalIP . proto
//!   . port → the service chain; a local destination address (any node
//!   address, 127.0.0.1 too) . proto . port → the NodePort chain.
//! - service chain: marks for masquerade what does not come from this
//!   node's pod network, then picks an endpoint round robin without
//!   session affinity (`numgen inc mod N` vmap).
//! - endpoint chain: marks hairpin traffic (a pod reaching itself), DNAT.
//! - NodePort chain: always masquerades (Cluster traffic policy).
//! - filter hooks: new connections to a service port with no endpoint are
//!   rejected (TCP reset, ICMP port unreachable otherwise); packets to
//!   127/8 arriving on other interfaces and not DNATed are dropped (the
//!   guard kube-proxy keeps with `route_localnet`).
//! - postrouting: masquerade what was marked, and pods' traffic leaving
//!   their node's pod network (no iptables needed by the CNI plugins).

use super::model::ServicePort;
use std::fmt::Write;

/// Mark bit of connections to masquerade (kube-proxy's).
pub const MASQ_MARK: u32 = 0x4000;

/// The table name for an agent on `bridge`.
pub fn table_name(bridge: &str) -> String {
    format!("coracle-{}", sanitize(bridge))
}

/// nft identifiers: letters, digits and `/-_.` only.
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "/-_.".contains(c) { c } else { '_' }).collect()
}

fn port_id(p: &ServicePort) -> String {
    let port = if p.port_name.is_empty() { p.port.to_string() } else { p.port_name.clone() };
    sanitize(&format!("{}/{}/{}/{}", p.namespace, p.name, p.protocol.nft(), port))
}

fn svc_chain(p: &ServicePort) -> String {
    format!("svc-{}", port_id(p))
}

fn nodeport_chain(p: &ServicePort) -> String {
    format!("nodeport-{}", port_id(p))
}

fn ep_chain(p: &ServicePort, ep: &(std::net::Ipv4Addr, u16)) -> String {
    format!("ep-{}/{}/{}", port_id(p), ep.0, ep.1)
}

/// `elements = { a, b }` or nothing when empty.
fn elements(out: &mut String, items: &[String]) {
    if !items.is_empty() {
        let _ = writeln!(out, "\t\telements = {{ {} }}", items.join(", "));
    }
}

/// The whole script: create-then-delete the table (so the delete never
/// fails), then the new table, all in one transaction.
pub fn render(table: &str, pod_cidr: Option<&str>, ports: &[ServicePort]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "add table ip {table}\ndelete table ip {table}\ntable ip {table} {{");

    let mut vips = Vec::new();
    let mut nodeports = Vec::new();
    let mut vips_down = Vec::new();
    let mut nodeports_down = Vec::new();
    for p in ports {
        let proto = p.protocol.nft();
        let up = !p.endpoints.is_empty();
        for ip in p.cluster_ip.iter().chain(p.external_ips.iter()) {
            if up {
                vips.push(format!("{ip} . {proto} . {} : goto {}", p.port, svc_chain(p)));
            } else {
                vips_down.push(format!("{ip} . {proto} . {} : goto reject-chain", p.port));
            }
        }
        if let Some(np) = p.node_port {
            if up {
                nodeports.push(format!("{proto} . {np} : goto {}", nodeport_chain(p)));
            } else {
                nodeports_down.push(format!("{proto} . {np} : goto reject-chain"));
            }
        }
    }
    for (name, key, items) in [
        ("service-ips", "ipv4_addr . inet_proto . inet_service", &vips),
        ("service-nodeports", "inet_proto . inet_service", &nodeports),
        ("no-endpoint-services", "ipv4_addr . inet_proto . inet_service", &vips_down),
        ("no-endpoint-nodeports", "inet_proto . inet_service", &nodeports_down),
    ] {
        let _ = writeln!(o, "\tmap {name} {{\n\t\ttype {key} : verdict");
        elements(&mut o, items);
        let _ = writeln!(o, "\t}}");
    }

    let _ = writeln!(
        o,
        "\tchain nat-prerouting {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tjump services\n\t}}\n\
         \tchain nat-output {{\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump services\n\t}}\n\
         \tchain nat-postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tjump masquerading\n\t\tjump pod-egress\n\t}}\n\
         \tchain filter-input {{\n\t\ttype filter hook input priority -5; policy accept;\n\t\tiifname != \"lo\" ip daddr 127.0.0.0/8 ct status & dnat == 0 drop\n\t\tct state new jump endpoints-check\n\t}}\n\
         \tchain filter-forward {{\n\t\ttype filter hook forward priority -5; policy accept;\n\t\tct state new jump endpoints-check\n\t}}\n\
         \tchain filter-output {{\n\t\ttype filter hook output priority -5; policy accept;\n\t\tct state new jump endpoints-check\n\t}}\n\
         \tchain endpoints-check {{\n\t\tip daddr . meta l4proto . th dport vmap @no-endpoint-services\n\t\tfib daddr type local meta l4proto . th dport vmap @no-endpoint-nodeports\n\t}}\n\
         \tchain services {{\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t\tfib daddr type local meta l4proto . th dport vmap @service-nodeports\n\t}}\n\
         \tchain mark-for-masquerade {{\n\t\tmeta mark set meta mark | {MASQ_MARK:#x}\n\t}}\n\
         \tchain masquerading {{\n\t\tmeta mark & {MASQ_MARK:#x} == 0 return\n\t\tmeta mark set meta mark & {:#x}\n\t\tmasquerade fully-random\n\t}}\n\
         \tchain reject-chain {{\n\t\tmeta l4proto tcp reject with tcp reset\n\t\treject\n\t}}",
        !MASQ_MARK
    );
    // Pods reaching beyond their node's network leave with the node's
    // address (what the CNI bridge plugin's ipMasq did with iptables; the
    // device image has no iptables).
    let _ = writeln!(o, "\tchain pod-egress {{");
    if let Some(cidr) = pod_cidr {
        let _ = writeln!(o, "\t\tip saddr {cidr} ip daddr != {cidr} ip daddr != 224.0.0.0/4 masquerade");
    }
    let _ = writeln!(o, "\t}}");

    for p in ports.iter().filter(|p| !p.endpoints.is_empty()) {
        let _ = writeln!(o, "\tchain {} {{", svc_chain(p));
        match pod_cidr {
            Some(cidr) => {
                let _ = writeln!(o, "\t\tip saddr != {cidr} jump mark-for-masquerade");
            }
            None => {
                let _ = writeln!(o, "\t\tjump mark-for-masquerade");
            }
        }
        let n = p.endpoints.len();
        if n == 1 {
            let _ = writeln!(o, "\t\tgoto {}", ep_chain(p, &p.endpoints[0]));
        } else {
            let arms: Vec<String> = p.endpoints.iter().enumerate().map(|(i, ep)| format!("{i} : goto {}", ep_chain(p, ep))).collect();
            let _ = writeln!(o, "\t\tnumgen inc mod {n} vmap {{ {} }}", arms.join(", "));
        }
        let _ = writeln!(o, "\t}}");
        if p.node_port.is_some() {
            let _ = writeln!(o, "\tchain {} {{\n\t\tjump mark-for-masquerade\n\t\tgoto {}\n\t}}", nodeport_chain(p), svc_chain(p));
        }
        for ep in &p.endpoints {
            let _ = writeln!(
                o,
                "\tchain {} {{\n\t\tip saddr {} jump mark-for-masquerade\n\t\tmeta l4proto {} dnat to {}:{}\n\t}}",
                ep_chain(p, ep),
                ep.0,
                p.protocol.nft(),
                ep.0,
                ep.1
            );
        }
    }
    let _ = writeln!(o, "}}");
    o
}

/// The script that removes the table (when the agent stops).
pub fn render_delete(table: &str) -> String {
    format!("add table ip {table}\ndelete table ip {table}\n")
}

#[cfg(test)]
mod tests {
    use super::super::model::{self, tests::*};
    use super::*;

    fn ports() -> Vec<ServicePort> {
        let svcs = [
            service("default", "web", "NodePort", "10.43.0.20", &[("http", 80, Some(30080))]),
            service("default", "empty", "ClusterIP", "10.43.0.21", &[("", 53, None)]),
            service("default", "one", "ClusterIP", "10.43.0.22", &[("", 81, None)]),
        ];
        let s = slice("default", "web", ("http", 8080), &[("10.42.0.5", Some(true), None), ("10.42.0.6", Some(true), None)]);
        let one = slice("default", "one", ("", 9000), &[("10.42.0.9", Some(true), None)]);
        model::build(svcs.iter(), &[&s, &one])
    }

    #[test]
    fn services_round_robin_over_ready_endpoints() {
        let text = render("coracle-cni0", Some("10.42.0.0/24"), &ports());
        assert!(text.starts_with("add table ip coracle-cni0\ndelete table ip coracle-cni0\ntable ip coracle-cni0 {\n"), "{text}");
        assert!(text.contains("10.43.0.20 . tcp . 80 : goto svc-default/web/tcp/http"), "{text}");
        assert!(text.contains("tcp . 30080 : goto nodeport-default/web/tcp/http"), "{text}");
        assert!(
            text.contains("numgen inc mod 2 vmap { 0 : goto ep-default/web/tcp/http/10.42.0.5/8080, 1 : goto ep-default/web/tcp/http/10.42.0.6/8080 }"),
            "{text}"
        );
        assert!(text.contains("\t\tip saddr 10.42.0.5 jump mark-for-masquerade\n\t\tmeta l4proto tcp dnat to 10.42.0.5:8080\n"), "{text}");
        assert!(text.contains("chain svc-default/web/tcp/http {\n\t\tip saddr != 10.42.0.0/24 jump mark-for-masquerade\n"), "{text}");
        assert!(text.contains("chain pod-egress {\n\t\tip saddr 10.42.0.0/24 ip daddr != 10.42.0.0/24 ip daddr != 224.0.0.0/4 masquerade\n\t}"), "{text}");
        assert!(text.contains("chain nodeport-default/web/tcp/http {\n\t\tjump mark-for-masquerade\n\t\tgoto svc-default/web/tcp/http\n"), "{text}");
        assert!(text.contains("chain svc-default/one/tcp/81 {\n\t\tip saddr != 10.42.0.0/24 jump mark-for-masquerade\n\t\tgoto ep-default/one/tcp/81/10.42.0.9/9000\n"), "{text}");
    }

    #[test]
    fn services_without_endpoints_are_rejected() {
        let text = render("coracle-cni0", None, &ports());
        assert!(text.contains("10.43.0.21 . tcp . 53 : goto reject-chain"), "{text}");
        assert!(!text.contains("chain svc-default/empty"), "{text}");
        assert!(text.contains("meta l4proto tcp reject with tcp reset\n\t\treject\n"), "{text}");
        assert!(text.contains("chain svc-default/web/tcp/http {\n\t\tjump mark-for-masquerade\n"), "without a pod CIDR everything is masqueraded: {text}");
    }

    #[test]
    fn an_empty_cluster_renders_empty_maps() {
        let text = render(&table_name("br:0"), None, &[]);
        assert!(text.contains("table ip coracle-br_0 {"), "{text}");
        assert!(text.contains("map service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t}"), "{text}");
        assert_eq!(render_delete("t"), "add table ip t\ndelete table ip t\n");
    }
}
