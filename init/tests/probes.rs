//! Container probes on a real node (`coracle server` with its agent, real
//! containerd, busybox pods), seen through kubectl: readiness flipping
//! Ready and the Service's Endpoints, liveness restarting a container,
//! httpGet and tcpSocket probes against busybox httpd, and a startup probe
//! holding liveness back. One server, all pods at once, to keep wall time
//! small.

mod common;

use common::node::BUSYBOX;
use common::{eventually, Server};
use serde_json::Value;

fn manifest() -> String {
    format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: ready-file}}
spec:
  selector: {{app: ready-file}}
  ports: [{{port: 80, targetPort: 8080}}]
---
# Ready only while /tmp/ready exists: created after 12s, removed after 37s.
apiVersion: v1
kind: Pod
metadata: {{name: ready-file, labels: {{app: ready-file}}}}
spec:
  terminationGracePeriodSeconds: 1
  tolerations: [{{key: node.kubernetes.io/disk-pressure, operator: Exists}}]
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "mkdir -p /tmp; sleep 12; touch /tmp/ready; sleep 25; rm /tmp/ready; sleep 3600"]
    readinessProbe:
      exec: {{command: ["cat", "/tmp/ready"]}}
      periodSeconds: 1
      failureThreshold: 1
---
# Alive for 4s, then the liveness probe fails twice: restarted.
apiVersion: v1
kind: Pod
metadata: {{name: liveness}}
spec:
  terminationGracePeriodSeconds: 1
  tolerations: [{{key: node.kubernetes.io/disk-pressure, operator: Exists}}]
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "mkdir -p /tmp; touch /tmp/alive; sleep 4; rm /tmp/alive; sleep 3600"]
    livenessProbe:
      exec: {{command: ["cat", "/tmp/alive"]}}
      periodSeconds: 1
      failureThreshold: 2
---
# httpd serves /index.html: "web" gets ready (named port), "sidecar"
# probes a path that is not there and stays unready.
apiVersion: v1
kind: Pod
metadata: {{name: http}}
spec:
  terminationGracePeriodSeconds: 1
  tolerations: [{{key: node.kubernetes.io/disk-pressure, operator: Exists}}]
  containers:
  - name: web
    image: {BUSYBOX}
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{{name: http, containerPort: 8080}}]
    readinessProbe:
      httpGet: {{path: /index.html, port: http}}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {{port: 8080}}
      periodSeconds: 1
      failureThreshold: 3
      initialDelaySeconds: 2
  - name: sidecar
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    readinessProbe:
      httpGet: {{path: /missing, port: 8080}}
      periodSeconds: 1
---
# /tmp/started appears after 6s. The liveness probe checks the same file
# with failureThreshold 1: only startup gating keeps it from restarting.
apiVersion: v1
kind: Pod
metadata: {{name: startup}}
spec:
  terminationGracePeriodSeconds: 1
  tolerations: [{{key: node.kubernetes.io/disk-pressure, operator: Exists}}]
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "mkdir -p /tmp; sleep 6; touch /tmp/started; sleep 3600"]
    startupProbe:
      exec: {{command: ["cat", "/tmp/started"]}}
      periodSeconds: 1
      failureThreshold: 30
    livenessProbe:
      exec: {{command: ["cat", "/tmp/started"]}}
      periodSeconds: 1
      failureThreshold: 1
"#
    )
}

fn json(s: &Server, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&s.ok(&a)).unwrap_or(Value::Null)
}

fn container<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    pod["status"]["containerStatuses"].as_array()?.iter().find(|c| c["name"] == name)
}

fn pod_ready(pod: &Value) -> Option<bool> {
    let conds = pod["status"]["conditions"].as_array()?;
    conds.iter().find(|c| c["type"] == "Ready").map(|c| c["status"] == "True")
}

fn endpoint_ips(s: &Server, key: &str) -> Vec<String> {
    let ep = json(s, &["get", "endpoints", "ready-file"]);
    let mut ips = Vec::new();
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        for a in subset[key].as_array().into_iter().flatten() {
            ips.extend(a["ip"].as_str().map(str::to_string));
        }
    }
    ips
}

/// Events about `pod`: (reason, message, count, fieldPath).
fn events(s: &Server, pod: &str) -> Vec<(String, String, i64, String)> {
    let list = json(s, &["get", "events"]);
    let str_of = |v: &Value| v.as_str().unwrap_or_default().to_string();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"] == pod)
        .map(|e| (str_of(&e["reason"]), str_of(&e["message"]), e["count"].as_i64().unwrap_or(0), str_of(&e["involvedObject"]["fieldPath"])))
        .collect()
}

#[test]
fn probes_drive_readiness_restarts_and_startup() {
    let s = Server::start_node("probes", &[]);
    assert!(s.wait_image(BUSYBOX), "busybox not imported; log:\n{}", s.log());
    s.ok_stdin(&["apply", "-f", "-"], &manifest());

    // Readiness on a file: running but not ready first, its IP among the
    // Service's not-ready addresses.
    let mut ip = String::new();
    assert!(
        eventually(60, || {
            let pod = json(&s, &["get", "pod", "ready-file"]);
            ip = pod["status"]["podIP"].as_str().unwrap_or_default().to_string();
            pod["status"]["phase"] == "Running" && !ip.is_empty()
        }),
        "ready-file never ran: {}\nevents: {}\nnodes: {}\nlog:\n{}",
        json(&s, &["get", "pod", "ready-file"]),
        s.ok(&["get", "events"]),
        s.ok(&["get", "nodes", "-o", "wide"]),
        s.log()
    );
    let pod = json(&s, &["get", "pod", "ready-file"]);
    assert_eq!(pod_ready(&pod), Some(false), "not ready before /tmp/ready exists: {pod}");
    assert_eq!(container(&pod, "app").map(|c| c["ready"].clone()), Some(Value::Bool(false)));
    assert!(endpoint_ips(&s, "addresses").is_empty(), "an unready pod is not a Service endpoint");

    // The file appears: Ready, and the IP is an endpoint.
    assert!(
        eventually(30, || pod_ready(&json(&s, &["get", "pod", "ready-file"])) == Some(true)),
        "ready-file never became Ready; pod: {}",
        json(&s, &["get", "pod", "ready-file"])
    );
    assert!(
        eventually(20, || endpoint_ips(&s, "addresses") == vec![ip.clone()]),
        "ready-file never became Ready with its endpoint; pod: {}\nevents: {}\nendpoints: {}\nlog: {}",
        json(&s, &["get", "pod", "ready-file"]),
        s.ok(&["get", "events"]),
        s.ok(&["get", "endpoints", "-o", "yaml"]),
        s.log()
    );
    let unready = events(&s, "ready-file");
    let failed = unready.iter().find(|e| e.0 == "Unhealthy").expect("an Unhealthy event while /tmp/ready was missing");
    assert_eq!(failed.1, "Readiness probe failed: cat: can't open '/tmp/ready': No such file or directory\n");
    assert!(failed.2 >= 2, "repeats bump the event's count: {unready:?}");
    assert_eq!(failed.3, "spec.containers{app}");

    // Liveness: the container is killed and restarted, with the events.
    assert!(
        eventually(60, || container(&json(&s, &["get", "pod", "liveness"]), "app")
            .and_then(|c| c["restartCount"].as_i64())
            .is_some_and(|n| n >= 1)),
        "liveness failure did not restart the container; pod: {}; log:\n{}",
        json(&s, &["get", "pod", "liveness"]),
        s.log()
    );
    let ev = events(&s, "liveness");
    assert!(ev.iter().any(|e| e.0 == "Unhealthy" && e.1.starts_with("Liveness probe failed: cat: can't open '/tmp/alive'")), "{ev:?}");
    assert!(ev.iter().any(|e| e.0 == "Killing" && e.1 == "Container app failed liveness probe, will be restarted"), "{ev:?}");

    // httpGet against busybox httpd: one container ready, one not.
    assert!(
        eventually(30, || container(&json(&s, &["get", "pod", "http"]), "web").is_some_and(|c| c["ready"] == true)),
        "httpGet readiness never passed; pod: {}",
        json(&s, &["get", "pod", "http"])
    );
    let pod = json(&s, &["get", "pod", "http"]);
    assert_eq!(container(&pod, "sidecar").map(|c| c["ready"].clone()), Some(Value::Bool(false)));
    assert_eq!(pod_ready(&pod), Some(false), "a pod is Ready only when all its containers are");
    assert_eq!(container(&pod, "web").and_then(|c| c["restartCount"].as_i64()), Some(0), "tcpSocket liveness passes");
    assert!(
        eventually(10, || events(&s, "http").iter().any(|e| e.0 == "Unhealthy"
            && e.1 == "Readiness probe failed: HTTP probe failed with statuscode: 404"
            && e.3 == "spec.containers{sidecar}")),
        "{:?}",
        events(&s, "http")
    );

    // Startup gating: started (then ready) once the file exists, never
    // restarted although liveness alone would have failed at once.
    assert!(
        eventually(40, || container(&json(&s, &["get", "pod", "startup"]), "app")
            .is_some_and(|c| c["started"] == true && c["ready"] == true)),
        "startup probe never passed; pod: {}",
        json(&s, &["get", "pod", "startup"])
    );
    let pod = json(&s, &["get", "pod", "startup"]);
    assert_eq!(container(&pod, "app").and_then(|c| c["restartCount"].as_i64()), Some(0), "liveness ran before startup passed: {pod}");
    let ev = events(&s, "startup");
    assert!(ev.iter().any(|e| e.1.starts_with("Startup probe failed: cat: can't open '/tmp/started'")), "{ev:?}");
    assert!(!ev.iter().any(|e| e.1.starts_with("Liveness probe failed")), "{ev:?}");

    // The file goes away: not Ready, and out of the Service's endpoints.
    assert!(
        eventually(40, || pod_ready(&json(&s, &["get", "pod", "ready-file"])) == Some(false)
            && endpoint_ips(&s, "addresses").is_empty()
            && endpoint_ips(&s, "notReadyAddresses") == vec![ip.clone()]),
        "ready-file stayed Ready after /tmp/ready was removed; endpoints: {}",
        json(&s, &["get", "endpoints", "ready-file"])
    );
}
