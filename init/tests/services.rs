//! Services end to end with the real kubectl: ClusterIP and NodePort
//! allocation (unique, requested values checked, released on delete, kept
//! across a kill -9 restart), the `kubernetes` Service, and Endpoints and
//! EndpointSlices following pods on a fake node.

mod common;

use common::fake_node::{FakeNode, NodeSpec};
use common::{eventually, Server};
use std::collections::HashSet;
use std::net::Ipv4Addr;

fn in_service_cidr(ip: &str) -> bool {
    ip.parse::<Ipv4Addr>().map(|a| a.octets()[0] == 10 && a.octets()[1] == 43 && a != Ipv4Addr::new(10, 43, 0, 0)).unwrap_or(false)
}

fn cluster_ip(s: &Server, name: &str) -> String {
    s.ok(&["get", "svc", name, "-o", "jsonpath={.spec.clusterIP}"])
}

fn services_manifest(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {prefix}-{i}}}\nspec:\n  selector: {{app: {prefix}}}\n  ports: [{{port: 80}}]\n"))
        .collect::<Vec<_>>()
        .join("---\n")
}

fn all_cluster_ips(s: &Server) -> Vec<String> {
    s.ok(&["get", "svc", "-A", "-o", "jsonpath={range .items[*]}{.spec.clusterIP}{\"\\n\"}{end}"])
        .lines()
        .filter(|l| !l.is_empty() && *l != "None")
        .map(str::to_string)
        .collect()
}

#[test]
fn cluster_ips_are_unique_checked_released_and_kept_across_restart() {
    let mut s = Server::start("svc-ips");
    s.ok(&["create", "service", "clusterip", "web", "--tcp=80:8080"]);
    let web = cluster_ip(&s, "web");
    assert!(in_service_cidr(&web) && web != "10.43.0.1", "{web}");

    // 50 services from four concurrent kubectl processes.
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let kubeconfig = s.kubeconfig.clone();
            std::thread::spawn(move || common::kubectl_with(&kubeconfig, &["create", "-f", "-"], Some(&services_manifest(&format!("w{w}"), if w < 2 { 13 } else { 12 })), &[]))
        })
        .collect();
    for w in workers {
        let out = w.join().expect("worker");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let ips = all_cluster_ips(&s);
    assert_eq!(ips.len(), 52, "kubernetes + web + 50: {ips:?}");
    assert!(ips.iter().all(|ip| in_service_cidr(ip)), "{ips:?}");
    assert_eq!(ips.iter().collect::<HashSet<_>>().len(), ips.len(), "duplicate cluster IPs: {ips:?}");

    // A requested address is honoured, a taken or foreign one refused.
    let fixed = |name: &str, ip: &str| format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  clusterIP: {ip}\n  ports: [{{port: 80}}]\n");
    s.ok_stdin(&["create", "-f", "-"], &fixed("fixed", "10.43.0.50"));
    assert_eq!(cluster_ip(&s, "fixed"), "10.43.0.50");
    assert_eq!(s.ok(&["get", "svc", "fixed", "-o", "jsonpath={.spec.clusterIPs}"]), "[\"10.43.0.50\"]");
    let err = s.fails(&["create", "-f", "-"], Some(&fixed("dup", "10.43.0.50")));
    assert!(
        err.contains("The Service \"dup\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.43.0.50\"}: failed to allocate IP 10.43.0.50: provided IP is already allocated"),
        "{err}"
    );
    let err = s.fails(&["create", "-f", "-"], Some(&fixed("far", "1.2.3.4")));
    assert!(
        err.contains("spec.clusterIPs: Invalid value: []string{\"1.2.3.4\"}: failed to allocate IP 1.2.3.4: the provided IP (1.2.3.4) is not in the valid range. The range of valid IPs is 10.43.0.0/16"),
        "{err}"
    );
    let err = s.fails(&["create", "-f", "-"], Some(&fixed("api", "10.43.0.1")));
    assert!(err.contains("provided IP is already allocated"), "the kubernetes service holds 10.43.0.1: {err}");
    // Dry run checks without taking the address.
    s.ok_stdin(&["create", "--dry-run=server", "-f", "-"], &fixed("dry", "10.43.0.51"));
    // Released on delete and usable again.
    s.ok(&["delete", "svc", "fixed"]);
    s.ok_stdin(&["create", "-f", "-"], &fixed("dup", "10.43.0.50"));
    s.ok_stdin(&["create", "-f", "-"], &fixed("dry", "10.43.0.51"));
    // Updates keep the address even when the client leaves it out.
    s.ok(&["patch", "svc", "dup", "--type=merge", "-p", "{\"spec\":{\"ports\":[{\"port\":81}]}}"]);
    assert_eq!(cluster_ip(&s, "dup"), "10.43.0.50");
    let err = s.fails(&["patch", "svc", "dup", "--type=merge", "-p", "{\"spec\":{\"clusterIP\":\"10.43.0.52\",\"clusterIPs\":[\"10.43.0.52\"]}}"], None);
    assert!(err.contains("may not change once set"), "{err}");

    // After kill -9 the server still knows every address in use.
    let before = all_cluster_ips(&s);
    s.restart_after_kill9();
    let err = s.fails(&["create", "-f", "-"], Some(&fixed("again", "10.43.0.50")));
    assert!(err.contains("provided IP is already allocated"), "{err}");
    s.ok_stdin(&["create", "-f", "-"], &services_manifest("late", 10));
    let after = all_cluster_ips(&s);
    assert_eq!(after.len(), before.len() + 10);
    assert_eq!(after.iter().collect::<HashSet<_>>().len(), after.len(), "duplicate after restart: {after:?}");

    // ExternalName services get no address; headless ones say None.
    s.ok(&["create", "service", "externalname", "ext", "--external-name", "example.com"]);
    assert_eq!(cluster_ip(&s, "ext"), "");
    s.ok(&["create", "service", "clusterip", "hl", "--clusterip=None"]);
    assert_eq!(cluster_ip(&s, "hl"), "None");
    // Moving to ExternalName gives the address back.
    let ip = cluster_ip(&s, "web");
    s.ok(&["patch", "svc", "web", "--type=merge", "-p", "{\"spec\":{\"type\":\"ExternalName\",\"externalName\":\"example.com\"}}"]);
    assert_eq!(cluster_ip(&s, "web"), "");
    s.ok_stdin(&["create", "-f", "-"], &fixed("reuse", &ip));
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

#[test]
fn node_ports_are_allocated_checked_and_released() {
    let s = Server::start("svc-ports");
    s.ok(&["create", "service", "nodeport", "np", "--tcp=80:8080"]);
    let np: u16 = s.ok(&["get", "svc", "np", "-o", "jsonpath={.spec.ports[0].nodePort}"]).parse().expect("node port");
    assert!((30000..=32767).contains(&np), "{np}");
    s.ok(&["create", "service", "nodeport", "fixed", "--tcp=80:8080", "--node-port=30080"]);
    assert_eq!(s.ok(&["get", "svc", "fixed", "-o", "jsonpath={.spec.ports[0].nodePort}"]), "30080");
    let err = s.fails(&["create", "service", "nodeport", "dup", "--tcp=80:8080", "--node-port=30080"], None);
    assert!(err.contains("Service \"dup\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"), "{err}");
    let err = s.fails(&["create", "service", "nodeport", "low", "--tcp=80:8080", "--node-port=8080"], None);
    assert!(err.contains("spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"), "{err}");
    // Back to ClusterIP: the node port is dropped and free again.
    s.ok(&["patch", "svc", "fixed", "--type=merge", "-p", "{\"spec\":{\"type\":\"ClusterIP\"}}"]);
    assert_eq!(s.ok(&["get", "svc", "fixed", "-o", "jsonpath={.spec.type} {.spec.ports[0].nodePort} {.spec.externalTrafficPolicy}"]), "ClusterIP  ");
    s.ok(&["create", "service", "nodeport", "dup", "--tcp=80:8080", "--node-port=30080"]);
    s.ok(&["delete", "svc", "dup"]);
    s.ok(&["create", "service", "nodeport", "dup2", "--tcp=80:8080", "--node-port=30080"]);
    // LoadBalancer with externalTrafficPolicy Local gets a health check node port.
    s.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local\n  selector: {app: lb}\n  ports: [{name: a, port: 80}, {name: b, port: 443}]\n",
    );
    let out = s.ok(&["get", "svc", "lb", "-o", "jsonpath={.spec.ports[0].nodePort} {.spec.ports[1].nodePort} {.spec.healthCheckNodePort}"]);
    let ports: Vec<u16> = out.split(' ').map(|p| p.parse().expect("port")).collect();
    assert_eq!(ports.len(), 3, "{out}");
    assert!(ports.iter().all(|p| (30000..=32767).contains(p)), "{out}");
    assert_eq!(ports.iter().collect::<HashSet<_>>().len(), 3, "{out}");
    // The get table shows them as upstream does.
    let table = s.ok(&["get", "svc", "np"]);
    assert!(table.contains(&format!("80:{np}/TCP")), "{table}");
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

#[test]
fn a_smaller_service_range_is_honoured() {
    let s = Server::start_with("svc-range", &["--service-cidr", "10.50.0.0/28", "--service-node-port-range", "31000-31001"], &[]);
    assert_eq!(cluster_ip(&s, "kubernetes"), "10.50.0.1");
    s.ok(&["create", "service", "nodeport", "a", "--tcp=80:8080"]);
    s.ok(&["create", "service", "nodeport", "b", "--tcp=80:8080"]);
    let err = s.fails(&["create", "service", "nodeport", "c", "--tcp=80:8080"], None);
    assert!(err.contains("range is full"), "{err}");
    let err = s.fails(&["create", "service", "nodeport", "d", "--tcp=80:8080", "--node-port=30080"], None);
    assert!(err.contains("The range of valid ports is 31000-31001"), "{err}");
    let a = cluster_ip(&s, "a");
    assert!(a.starts_with("10.50.0.") && a != "10.50.0.1", "{a}");
}

#[test]
fn the_kubernetes_service_points_at_the_api_server() {
    let s = Server::start("svc-kubernetes");
    let port = s.port.to_string();
    assert_eq!(
        s.ok(&["get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP} {.spec.ports[0].name} {.spec.ports[0].port} {.spec.ports[0].targetPort}"]),
        format!("10.43.0.1 https 443 {port}")
    );
    assert_eq!(s.ok(&["get", "endpoints", "kubernetes", "-o", "jsonpath={.subsets[0].addresses[0].ip}:{.subsets[0].ports[0].port}"]), format!("127.0.0.1:{port}"));
    let slice = s.ok(&["get", "endpointslices", "kubernetes", "-o", "jsonpath={.addressType} {.endpoints[0].addresses[0]} {.ports[0].port} {.metadata.labels.kubernetes\\.io/service-name}"]);
    assert_eq!(slice, format!("IPv4 127.0.0.1 {port} kubernetes"));
    // Deleted, it comes back.
    s.ok(&["delete", "endpoints", "kubernetes"]);
    assert!(eventually(20, || s.kubectl(&["get", "endpoints", "kubernetes"]).status.success()));
}

fn pod_manifest(name: &str, app: &str, node: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {app}}}}}\nspec:\n  nodeName: {node}\n  containers:\n  - name: c\n    image: registry.local/app:1\n    ports: [{{name: http, containerPort: 8080}}]\n"
    )
}

fn words(out: String) -> Vec<String> {
    let mut v: Vec<String> = out.split_whitespace().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn endpoints_and_slices_follow_pods() {
    let s = Server::start("svc-endpoints");
    let node = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1").label("topology.kubernetes.io/zone", "z1"));
    for i in 0..3 {
        s.ok_stdin(&["create", "-f", "-"], &pod_manifest(&format!("web-{i}"), "web", "n1"));
    }
    s.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, labels: {tier: front}}\nspec:\n  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: http}]\n",
    );
    // A selector-less service keeps the endpoints its user writes.
    s.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: manual}\nspec:\n  ports: [{port: 80}]\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: manual}\nsubsets: [{addresses: [{ip: 192.0.2.1}], ports: [{port: 80}]}]\n",
    );
    let ready_ips = || words(s.ok(&["get", "endpoints", "web", "--ignore-not-found", "-o", "jsonpath={.subsets[*].addresses[*].ip}"]));
    assert!(eventually(20, || ready_ips().len() == 3), "endpoints: {}", s.ok(&["get", "endpoints", "web", "-o", "yaml"]));
    let pod_ips = words(s.ok(&["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].status.podIP}"]));
    assert_eq!(ready_ips(), pod_ips);
    let ep = s.ok(&["get", "endpoints", "web", "-o", "jsonpath={.subsets[0].ports[0].port} {.subsets[0].ports[0].name} {.subsets[0].addresses[0].nodeName} {.subsets[0].addresses[0].targetRef.kind} {.metadata.labels.tier}"]);
    assert_eq!(ep, "8080 http n1 Pod front");
    let trigger = s.ok(&["get", "endpoints", "web", "-o", "jsonpath={.metadata.annotations.endpoints\\.kubernetes\\.io/last-change-trigger-time}"]);
    assert!(trigger.ends_with('Z'), "{trigger}");
    let table = s.ok(&["get", "endpoints", "web"]);
    assert!(table.contains(":8080"), "{table}");

    // EndpointSlices.
    let sel = ["-l", "kubernetes.io/service-name=web"];
    let slice_field = |path: &str| s.ok(&["get", "endpointslices", sel[0], sel[1], "-o", &format!("jsonpath={path}")]);
    assert!(eventually(20, || words(slice_field("{.items[*].endpoints[*].addresses[0]}")) == pod_ips), "{}", slice_field("{.items}"));
    assert_eq!(slice_field("{.items[*].metadata.name}").split_whitespace().count(), 1);
    assert!(slice_field("{.items[0].metadata.name}").starts_with("web-"));
    assert_eq!(
        slice_field("{.items[0].addressType} {.items[0].ports[0].port} {.items[0].metadata.labels.endpointslice\\.kubernetes\\.io/managed-by} {.items[0].metadata.ownerReferences[0].kind}/{.items[0].metadata.ownerReferences[0].name}"),
        "IPv4 8080 endpointslice-controller.k8s.io Service/web"
    );
    assert_eq!(words(slice_field("{.items[0].endpoints[*].conditions.ready}")), ["true", "true", "true"]);
    assert_eq!(words(slice_field("{.items[0].endpoints[*].zone}")), ["z1", "z1", "z1"]);
    assert_eq!(words(slice_field("{.items[0].endpoints[*].nodeName}")), ["n1", "n1", "n1"]);
    let table = s.ok(&["get", "endpointslices", sel[0], sel[1]]);
    assert!(table.contains("IPv4") && table.contains("8080"), "{table}");

    // Readiness lost: the pods move to notReadyAddresses and ready=false.
    node.set_pods_ready(false);
    let not_ready = || words(s.ok(&["get", "endpoints", "web", "-o", "jsonpath={.subsets[*].notReadyAddresses[*].ip}"]));
    assert!(eventually(20, || not_ready() == pod_ips && ready_ips().is_empty()), "{}", s.ok(&["get", "endpoints", "web", "-o", "yaml"]));
    assert!(eventually(20, || words(slice_field("{.items[0].endpoints[*].conditions.ready}")) == ["false", "false", "false"]));
    assert_eq!(words(slice_field("{.items[0].endpoints[*].conditions.serving}")), ["false", "false", "false"]);
    node.set_pods_ready(true);
    assert!(eventually(20, || ready_ips() == pod_ips && not_ready().is_empty()));

    // A pod leaving the selector leaves the endpoints.
    s.ok(&["label", "pod", "web-0", "app=other", "--overwrite"]);
    assert!(eventually(20, || ready_ips().len() == 2));
    assert!(eventually(20, || slice_field("{.items[*].endpoints[*].addresses[0]}").split_whitespace().count() == 2));

    // kubectl expose: a service from a pod's labels, with endpoints.
    s.ok(&["expose", "pod", "web-1", "--port=80", "--target-port=8080", "--name=exposed"]);
    assert!(eventually(20, || words(s.ok(&["get", "endpoints", "exposed", "--ignore-not-found", "-o", "jsonpath={.subsets[*].addresses[*].ip}"])).len() == 2));

    // Headless: endpoints labelled as such.
    s.ok(&["create", "service", "clusterip", "web-headless", "--clusterip=None"]);
    s.ok(&["patch", "svc", "web-headless", "--type=merge", "-p", "{\"spec\":{\"selector\":{\"app\":\"web\"}}}"]);
    assert!(eventually(20, || {
        s.ok(&["get", "endpoints", "web-headless", "--ignore-not-found", "-o", "jsonpath={.metadata.labels}"]).contains("service.kubernetes.io/headless")
    }));

    // Deleted with the Service.
    s.ok(&["delete", "svc", "web"]);
    assert!(eventually(20, || !s.kubectl(&["get", "endpoints", "web"]).status.success()));
    assert!(eventually(20, || slice_field("{.items[*].metadata.name}").is_empty()));
    assert_eq!(s.ok(&["get", "endpoints", "manual", "-o", "jsonpath={.subsets[0].addresses[0].ip}"]), "192.0.2.1");
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

#[test]
fn a_service_without_pods_has_a_placeholder_slice() {
    let s = Server::start("svc-placeholder");
    s.ok(&["create", "service", "clusterip", "lonely", "--tcp=80:8080"]);
    let sel = "kubernetes.io/service-name=lonely";
    assert!(eventually(20, || s.ok(&["get", "endpointslices", "-l", sel, "-o", "name"]).lines().count() == 1));
    let yaml = s.ok(&["get", "endpointslices", "-l", sel, "-o", "yaml"]);
    assert!(yaml.contains("endpoints: null") && !yaml.contains("ports:"), "{yaml}");
    assert!(eventually(20, || s.kubectl(&["get", "endpoints", "lonely"]).status.success()));
    assert_eq!(s.ok(&["get", "endpoints", "lonely", "-o", "jsonpath={.subsets}"]), "");
    assert!(s.ok(&["get", "endpoints", "lonely"]).contains("<none>"));
}
