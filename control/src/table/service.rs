//! The Service and Endpoints tables (EXTERNAL-IP, PORT(S), endpoint
//! truncation) and the load-balancer address list Ingress shares.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::age::age;
use super::columns::{col, format_labels, name, wide, Col, Printer, Row, AGE, NAME};
use super::value::{arr_at, get, int_at, opt_str, str_at};

pub(super) const SERVICE_PRINTER: Printer = Printer::new(SERVICE, service);
pub(super) const ENDPOINTS_PRINTER: Printer = Printer::new(ENDPOINTS, endpoints);

// ---- Service ----

const SERVICE: &[Col] = &[
    NAME,
    col(
        "Type",
        "string",
        "How the service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName.",
    ),
    col(
        "Cluster-IP",
        "string",
        "The IP address of the service inside the cluster.",
    ),
    col(
        "External-IP",
        "string",
        "The IP addresses by which the service is reachable from outside the cluster.",
    ),
    col("Port(s)", "string", "The ports exposed by the service."),
    AGE,
    wide(
        "Selector",
        "string",
        "The labels of the pods this service routes traffic to.",
    ),
];

fn service(svc: &Value, now: Timestamp) -> Row {
    let cluster_ip = arr_at(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .or_else(|| opt_str(svc, &["spec", "clusterIP"]).filter(|s| !s.is_empty()))
        .unwrap_or("<none>");
    let ports: Vec<String> = arr_at(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int_at(p, &["port"]);
            let protocol = str_at(p, &["protocol"]);
            let node_port = int_at(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    Row::new(vec![
        json!(name(svc)),
        json!(str_at(svc, &["spec", "type"])),
        json!(cluster_ip),
        json!(service_external_ip(svc)),
        json!(ports),
        json!(age(svc, now)),
        json!(format_labels(svc, &["spec", "selector"])),
    ])
}

fn strings(list: &[Value]) -> Vec<String> {
    list.iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// IPs (or else hostnames) of a load balancer status, deduplicated and sorted.
pub(super) fn load_balancer_ingress(status: Option<&Value>) -> String {
    let set: BTreeSet<&str> = status
        .map(|s| arr_at(s, &["ingress"]))
        .unwrap_or(&[])
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, &["ip"]);
            let host = str_at(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn service_external_ip(svc: &Value) -> String {
    let external_ips = strings(arr_at(svc, &["spec", "externalIPs"]));
    match str_at(svc, &["spec", "type"]) {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(get(svc, &["status", "loadBalancer"]));
            if !external_ips.is_empty() {
                let mut all: Vec<String> = Vec::new();
                if !lb.is_empty() {
                    all.extend(lb.split(',').map(str::to_string));
                }
                all.extend(external_ips);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

// ---- Endpoints ----

const ENDPOINTS: &[Col] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "The ready addresses and ports of the endpoints.",
    ),
    AGE,
];

/// `ip:port` joined like Go's `net.JoinHostPort` (brackets around IPv6).
fn host_port(ip: &str, port: i64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Up to three ready endpoints, then "+ N more...".
fn format_endpoints(ep: &Value) -> String {
    let subsets = arr_at(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for subset in subsets {
        let addresses = arr_at(subset, &["addresses"]);
        let ports = arr_at(subset, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(host_port(str_at(a, &["ip"]), int_at(port, &["port"])));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count.saturating_sub(MAX))
    } else {
        joined
    }
}

fn endpoints(ep: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(ep)),
        json!(format_endpoints(ep)),
        json!(age(ep, now)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::columns::test_support::now;
    use serde_json::json;


    fn cells(p: Printer, obj: Value) -> Vec<Value> {
        let r = (p.row)(&obj, now());
        assert_eq!(r.cells.len(), p.columns.len());
        r.cells
    }

    fn meta() -> Value {
        json!({"name": "x", "creationTimestamp": "2024-05-01T11:00:00Z"})
    }

    #[test]
    fn service_cluster_ip_and_ports() {
        let c = cells(
            SERVICE_PRINTER,
            json!({"metadata": meta(), "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"], "selector": {"k8s-app": "kube-dns"},
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}, {"port": 9153, "protocol": "TCP"}]}}),
        );
        assert_eq!(
            c,
            vec![
                json!("x"),
                json!("ClusterIP"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("53/UDP,53/TCP,9153/TCP"),
                json!("60m"),
                json!("k8s-app=kube-dns")
            ]
        );
    }

    #[test]
    fn service_node_port_load_balancer_external_name() {
        let c = cells(
            SERVICE_PRINTER,
            json!({"metadata": meta(), "spec": {"type": "NodePort", "clusterIPs": ["10.0.0.1"],
                "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}}),
        );
        assert_eq!(c[4], "80:30080/TCP");
        assert_eq!(c[3], "<none>");
        assert_eq!(c[6], "<none>");

        let lb = |status: Value, external: Value| {
            cells(
                SERVICE_PRINTER,
                json!({"metadata": meta(), "spec": {"type": "LoadBalancer", "clusterIPs": ["10.0.0.2"],
                    "externalIPs": external, "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]},
                    "status": {"loadBalancer": status}}),
            )
        };
        assert_eq!(lb(json!({}), json!([]))[3], "<pending>");
        assert_eq!(
            lb(
                json!({"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.1"}]}),
                json!([])
            )[3],
            "203.0.113.1,203.0.113.9,lb.example.com"
        );
        assert_eq!(
            lb(json!({"ingress": [{"ip": "1.1.1.1"}]}), json!(["2.2.2.2"]))[3],
            "1.1.1.1,2.2.2.2"
        );

        let c = cells(
            SERVICE_PRINTER,
            json!({"metadata": meta(), "spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
        );
        assert_eq!(c[2], "<none>");
        assert_eq!(c[3], "db.example.com");
        assert_eq!(c[4], "<none>");
    }

    #[test]
    fn endpoints_truncation() {
        let c = cells(
            ENDPOINTS_PRINTER,
            json!({"metadata": meta(), "subsets": [{
                "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}],
                "ports": [{"port": 80}]}]}),
        );
        assert_eq!(c[1], "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more...");
        let c = cells(
            ENDPOINTS_PRINTER,
            json!({"metadata": meta(), "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 443}, {"port": 80}]}]}),
        );
        assert_eq!(c[1], "[fd00::1]:443,[fd00::1]:80");
        assert_eq!(
            cells(ENDPOINTS_PRINTER, json!({"metadata": meta()}))[1],
            "<none>"
        );
        let c = cells(
            ENDPOINTS_PRINTER,
            json!({"metadata": meta(), "subsets": [{"addresses": [{"ip": "10.1.1.1"}]}]}),
        );
        assert_eq!(c[1], "10.1.1.1");
    }
}
