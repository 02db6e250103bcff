//! Tables of the `networking.k8s.io` kinds (Ingress, IngressClass,
//! NetworkPolicy, ServiceCIDR, IPAddress) and the `discovery.k8s.io`
//! EndpointSlice.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::age::age;
use super::columns::{col, format_label_selector, name, Col, Printer, Row, AGE, NAME};
use super::service::load_balancer_ingress;
use super::value::{arr_at, get, opt_int, opt_str, str_at};

pub(super) fn lookup(kind: &str) -> Option<Printer> {
    Some(match kind {
        "Ingress" => Printer::new(INGRESS, ingress),
        "IngressClass" => Printer::new(INGRESS_CLASS, ingress_class),
        "NetworkPolicy" => Printer::new(NETWORK_POLICY, network_policy),
        "ServiceCIDR" => Printer::new(SERVICE_CIDR, service_cidr),
        "IPAddress" => Printer::new(IP_ADDRESS, ip_address),
        _ => return None,
    })
}

pub(super) const ENDPOINT_SLICE_PRINTER: Printer = Printer::new(ENDPOINT_SLICE, endpoint_slice);

const INGRESS: &[Col] = &[
    NAME,
    col(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    col(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

/// Up to three rule hosts, then "+ N more..." (counting all rules); "*" when
/// no rule names a host.
fn ingress_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len().saturating_sub(MAX))
    } else {
        joined
    }
}

fn ingress(ing: &Value, now: Timestamp) -> Row {
    let ports = if arr_at(ing, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    Row::new(vec![
        json!(name(ing)),
        json!(opt_str(ing, &["spec", "ingressClassName"]).unwrap_or("<none>")),
        json!(ingress_hosts(arr_at(ing, &["spec", "rules"]))),
        json!(load_balancer_ingress(get(ing, &["status", "loadBalancer"]))),
        json!(ports),
        json!(age(ing, now)),
    ])
}

const INGRESS_CLASS: &[Col] = &[
    NAME,
    col(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    col(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

fn ingress_class(ic: &Value, now: Timestamp) -> Row {
    let parameters = match get(ic, &["spec", "parameters"]) {
        Some(p) => {
            let mut text = str_at(p, &["kind"]).to_string();
            if let Some(group) = opt_str(p, &["apiGroup"]) {
                text = format!("{text}.{group}");
            }
            format!("{text}/{}", str_at(p, &["name"]))
        }
        None => "<none>".to_string(),
    };
    Row::new(vec![
        json!(name(ic)),
        json!(str_at(ic, &["spec", "controller"])),
        json!(parameters),
        json!(age(ic, now)),
    ])
}

const NETWORK_POLICY: &[Col] = &[
    NAME,
    col(
        "Pod-Selector",
        "string",
        "The pods this network policy applies to.",
    ),
    AGE,
];

fn network_policy(np: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(np)),
        json!(format_label_selector(get(np, &["spec", "podSelector"]))),
        json!(age(np, now)),
    ])
}

const SERVICE_CIDR: &[Col] = &[
    NAME,
    col(
        "CIDRs",
        "string",
        "The IP ranges service cluster IPs are allocated from.",
    ),
    AGE,
];

fn service_cidr(sc: &Value, now: Timestamp) -> Row {
    let cidrs: Vec<&str> = arr_at(sc, &["spec", "cidrs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    Row::new(vec![
        json!(name(sc)),
        json!(cidrs.join(",")),
        json!(age(sc, now)),
    ])
}

const IP_ADDRESS: &[Col] = &[
    NAME,
    col(
        "ParentRef",
        "string",
        "The object this IP address is allocated to.",
    ),
];

fn ip_address(ip: &Value, _now: Timestamp) -> Row {
    let parent = match get(ip, &["spec", "parentRef"]) {
        Some(p) => {
            let group = str_at(p, &["group"]);
            let resource = str_at(p, &["resource"]);
            let mut text = if group.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}.{group}")
            }
            .to_lowercase();
            let ns = str_at(p, &["namespace"]);
            if !ns.is_empty() {
                text = format!("{text}/{ns}");
            }
            format!("{text}/{}", str_at(p, &["name"]))
        }
        None => "<none>".to_string(),
    };
    Row::new(vec![json!(name(ip)), json!(parent)])
}

const ENDPOINT_SLICE: &[Col] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "The type of address carried by this endpoint slice (IPv4, IPv6, FQDN).",
    ),
    col(
        "Ports",
        "string",
        "The ports exposed by the endpoints of this slice.",
    ),
    col(
        "Endpoints",
        "string",
        "The addresses of the endpoints of this slice.",
    ),
    AGE,
];

/// Up to three items then "+ N more..."; "<unset>" when there are none.
fn list_with_more(items: Vec<String>) -> String {
    const MAX: usize = 3;
    let count = items.len();
    let joined = items.into_iter().take(MAX).collect::<Vec<_>>().join(",");
    if count > MAX {
        format!("{joined} + {} more...", count - MAX)
    } else if joined.is_empty() {
        "<unset>".to_string()
    } else {
        joined
    }
}

fn endpoint_slice(es: &Value, now: Timestamp) -> Row {
    let ports: Vec<String> = arr_at(es, &["ports"])
        .iter()
        .map(|p| match (opt_int(p, &["port"]), opt_str(p, &["name"])) {
            (Some(port), _) => port.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<String> = arr_at(es, &["endpoints"])
        .iter()
        .flat_map(|e| {
            arr_at(e, &["addresses"])
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    Row::new(vec![
        json!(name(es)),
        json!(str_at(es, &["addressType"])),
        json!(list_with_more(ports)),
        json!(list_with_more(addresses)),
        json!(age(es, now)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::columns::test_support;


    fn cells(p: Option<Printer>, obj: Value) -> Vec<Value> {
        test_support::cells(p, &obj, "")
    }

    #[test]
    fn ingress_columns() {
        let c = cells(
            lookup("Ingress"),
            json!({"metadata": {"name": "web"}, "spec": {"ingressClassName": "traefik",
                   "rules": [{"host": "a.example.com"}, {}, {"host": "b.example.com"}, {"host": "c.example.com"}, {"host": "d.example.com"}],
                   "tls": [{"hosts": ["a.example.com"]}]},
                   "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.10"}]}}}),
        );
        assert_eq!(c[1], "traefik");
        assert_eq!(
            c[2],
            "a.example.com,b.example.com,c.example.com + 2 more..."
        );
        assert_eq!(c[3], "192.168.1.10");
        assert_eq!(c[4], "80, 443");
        let c = cells(
            lookup("Ingress"),
            json!({"metadata": {"name": "w"}, "spec": {"rules": [{}]}}),
        );
        assert_eq!(
            c[1..5],
            [json!("<none>"), json!("*"), json!(""), json!("80")]
        );
    }

    #[test]
    fn ingress_class_and_network_policy() {
        let c = cells(
            lookup("IngressClass"),
            json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx",
                   "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}}),
        );
        assert_eq!(c[2], "IngressParameters.k8s.example.com/p");
        let c = cells(
            lookup("NetworkPolicy"),
            json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {}}}),
        );
        assert_eq!(c[1], "<none>");
        let c = cells(
            lookup("NetworkPolicy"),
            json!({"metadata": {"name": "np"}, "spec": {"podSelector": {"matchLabels": {"role": "db"}}}}),
        );
        assert_eq!(c[1], "role=db");
    }

    #[test]
    fn endpoint_slice_columns() {
        let c = cells(
            Some(ENDPOINT_SLICE_PRINTER),
            json!({"metadata": {"name": "kubernetes"}, "addressType": "IPv4",
                   "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}, {"name": "x"}],
                   "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]}, {"addresses": ["10.0.0.4"]}]}),
        );
        assert_eq!(
            c[1..4],
            [
                json!("IPv4"),
                json!("6443,x"),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...")
            ]
        );
        let c = cells(
            Some(ENDPOINT_SLICE_PRINTER),
            json!({"metadata": {"name": "e"}, "ports": [{}]}),
        );
        assert_eq!(c[2..4], [json!("*"), json!("<unset>")]);
    }

    #[test]
    fn ip_address_parent() {
        let c = cells(
            lookup("IPAddress"),
            json!({"metadata": {"name": "10.96.0.1"}, "spec": {"parentRef": {"group": "", "resource": "services",
                   "namespace": "default", "name": "kubernetes"}}}),
        );
        assert_eq!(c[1], "services/default/kubernetes");
    }
}
