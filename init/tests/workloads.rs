//! DaemonSets and StatefulSets as a user sees them through kubectl, on
//! fake nodes: pods on the eligible nodes, ordered stateful pods with
//! their claims, rolling updates `kubectl rollout status` waits for,
//! history and undo.

mod common;

use common::fake_node::{FakeNode, NodeSpec};
use common::{eventually, Server};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Binds unscheduled pods pinned to a node by a `metadata.name` affinity
/// term (daemon pods), as the default scheduler would.
struct Binder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Binder {
    fn start(kubeconfig: &Path) -> Binder {
        let stop = Arc::new(AtomicBool::new(false));
        let (kc, s) = (kubeconfig.to_path_buf(), stop.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(bind_loop(kc, s));
        });
        Binder { stop, thread: Some(thread) }
    }
}

impl Drop for Binder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn bind_loop(kubeconfig: PathBuf, stop: Arc<AtomicBool>) {
    let client = async {
        let kc = Kubeconfig::read_from(&kubeconfig).ok()?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.ok()?;
        kube::Client::try_from(cfg).ok()
    }
    .await
    .expect("client for the binder");
    let pods: Api<Pod> = Api::all(client.clone());
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let Ok(list) = pods.list(&ListParams::default().fields("spec.nodeName=")).await else { continue };
        for pod in list.items {
            let v = serde_json::to_value(&pod).unwrap_or_default();
            let node = v
                .pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values/0")
                .and_then(Value::as_str);
            let (Some(node), None) = (node, pod.metadata.deletion_timestamp.as_ref()) else { continue };
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name}, "target": {"kind": "Node", "name": node}});
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let _ = api.create_subresource::<Value, Value>("binding", &name, &PostParams::default(), &binding).await;
        }
    }
}

fn json_of(s: &Server, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&s.ok(&a)).expect("kubectl json")
}

/// Pods of a selector: name -> pod.
fn pods(s: &Server, selector: &str) -> BTreeMap<String, Value> {
    let list = json_of(s, &["get", "pods", "-l", selector]);
    list["items"].as_array().cloned().unwrap_or_default().into_iter().map(|p| (p["metadata"]["name"].as_str().unwrap_or("").to_string(), p)).collect()
}

/// The node a pod runs on or is pinned to.
fn node_of(p: &Value) -> String {
    p["spec"]["nodeName"]
        .as_str()
        .or_else(|| p.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values/0").and_then(Value::as_str))
        .unwrap_or("")
        .to_string()
}

fn live_nodes(s: &Server, selector: &str) -> Vec<String> {
    let mut v: Vec<String> = pods(s, selector).values().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).map(node_of).collect();
    v.sort();
    v
}

/// `f` holds for the whole of `window` (for what must not happen).
fn stays(window: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + window;
    while Instant::now() < end {
        if !f() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

const DAEMONSET: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: c, image: "busybox:1"}]
"#;

#[test]
fn daemonset_follows_nodes_taints_and_rolls_out() {
    let mut s = Server::start("ds");
    let _n1 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1").label("disk", "ssd"));
    let _n2 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n2"));
    let _n3 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n3").taint("dedicated=infra:NoSchedule"));
    let _binder = Binder::start(&s.kubeconfig);
    s.ok_stdin(&["apply", "-f", "-"], DAEMONSET);

    // Only the untainted nodes get a pod; it is pinned by node affinity and
    // carries the daemon tolerations and the revision hash.
    assert!(eventually(20, || live_nodes(&s, "app=agent") == ["n1", "n2"]), "{}", s.ok(&["get", "pods", "-o", "wide"]));
    let pod = pods(&s, "app=agent").into_values().next().expect("a pod");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], json!("DaemonSet"));
    assert!(pod["metadata"]["name"].as_str().unwrap_or("").starts_with("agent-"));
    assert!(pod["metadata"]["labels"]["controller-revision-hash"].is_string(), "{pod}");
    let tolerations = pod["spec"]["tolerations"].to_string();
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable", "node.kubernetes.io/unschedulable", "node.kubernetes.io/disk-pressure"] {
        assert!(tolerations.contains(key), "{tolerations}");
    }
    assert_eq!(pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchFields"][0]["key"], json!("metadata.name"));
    assert!(eventually(20, || s.ok(&["get", "ds", "agent", "-o", "jsonpath={.status.desiredNumberScheduled} {.status.numberReady} {.status.numberAvailable}"]) == "2 2 2"), "{}\n{}", s.ok(&["get", "ds", "agent", "-o", "yaml"]), s.ok(&["get", "pods", "-o", "wide"]));
    s.ok(&["rollout", "status", "ds/agent", "--timeout=30s"]);

    // Tolerating the taint puts a pod on the third node.
    s.ok(&["patch", "ds", "agent", "--type=merge", "-p", r#"{"spec":{"template":{"spec":{"tolerations":[{"key":"dedicated","operator":"Equal","value":"infra","effect":"NoSchedule"}]}}}}"#]);
    assert!(eventually(30, || live_nodes(&s, "app=agent") == ["n1", "n2", "n3"]), "{}", s.ok(&["get", "pods", "-o", "wide"]));
    s.ok(&["rollout", "status", "ds/agent", "--timeout=30s"]);

    // After a kill -9 of the server (the new leader takes over once the
    // old lease expires), a new image rolls out node by node until rollout
    // status is satisfied, with exactly one pod per node.
    s.restart_after_kill9();
    s.ok(&["set", "image", "ds/agent", "c=busybox:2"]);
    s.ok(&["rollout", "status", "ds/agent", "--timeout=60s"]);
    let images: Vec<String> = pods(&s, "app=agent").values().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).map(|p| p["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(images, ["busybox:2"; 3], "{}", s.ok(&["get", "pods", "-o", "wide"]));
    let status = json_of(&s, &["get", "ds", "agent"])["status"].clone();
    assert_eq!((status["desiredNumberScheduled"].clone(), status["updatedNumberScheduled"].clone(), status["numberMisscheduled"].clone()), (json!(3), json!(3), json!(0)), "{status}");
    assert!(status.get("numberUnavailable").is_none(), "{status}");
    assert!(s.ok(&["get", "events", "--field-selector", "involvedObject.name=agent"]).contains("Created pod: agent-"));

    // History and undo go through the ControllerRevisions.
    let history = s.ok(&["rollout", "history", "ds/agent"]);
    assert!(history.contains("REVISION") && history.contains("\n1 ") && history.contains("\n3 "), "{history}");
    assert!(s.ok(&["rollout", "history", "ds/agent", "--revision=2"]).contains("busybox:1"));
    s.ok(&["rollout", "undo", "ds/agent", "--to-revision=2"]);
    s.ok(&["rollout", "status", "ds/agent", "--timeout=40s"]);
    assert!(eventually(20, || pods(&s, "app=agent").values().all(|p| p["spec"]["containers"][0]["image"] == "busybox:1")));
    let revisions = s.ok(&["get", "controllerrevisions", "-l", "app=agent", "-o", r#"jsonpath={range .items[*]}{.revision}{"\n"}{end}"#]);
    let mut numbers: Vec<&str> = revisions.split_whitespace().collect();
    numbers.sort();
    assert_eq!(numbers, ["1", "3", "4"], "the revision rolled back to becomes the newest");
}

#[test]
fn daemonset_node_selector_follows_node_labels() {
    let s = Server::start("ds-sel");
    let _n1 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1").label("disk", "ssd"));
    let _n2 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n2"));
    let _binder = Binder::start(&s.kubeconfig);
    s.ok_stdin(&["apply", "-f", "-"], &DAEMONSET.replace("agent", "ssd").replace("      containers:", "      nodeSelector: {disk: ssd}\n      containers:"));
    assert!(eventually(20, || live_nodes(&s, "app=ssd") == ["n1"]));
    s.ok(&["label", "node", "n2", "disk=ssd"]);
    assert!(eventually(20, || live_nodes(&s, "app=ssd") == ["n1", "n2"]));
    s.ok(&["label", "node", "n1", "disk-"]);
    assert!(eventually(20, || live_nodes(&s, "app=ssd") == ["n2"]), "{}", s.ok(&["get", "pods", "-o", "wide"]));
    assert!(eventually(20, || s.ok(&["get", "ds", "ssd", "-o", "jsonpath={.status.desiredNumberScheduled} {.status.currentNumberScheduled}"]) == "1 1"));
}

const STATEFULSET: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 3
  serviceName: nginx
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeName: n1
      containers: [{name: c, image: "nginx:1"}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#;

fn ready_at(p: &Value) -> String {
    p["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Ready")).and_then(|c| c["lastTransitionTime"].as_str()).unwrap_or("").to_string()
}

#[test]
fn statefulset_ordered_ready_with_claims_and_scale_down() {
    let s = Server::start("sts");
    let n1 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    n1.set_pods_ready(false);
    s.ok_stdin(&["apply", "-f", "-"], STATEFULSET);

    // web-0 runs but is not ready: web-1 must wait.
    assert!(eventually(20, || pods(&s, "app=web").get("web-0").map(|p| p["status"]["phase"] == "Running").unwrap_or(false)));
    assert!(stays(Duration::from_millis(1500), || !pods(&s, "app=web").contains_key("web-1")), "web-1 made before web-0 was ready");
    n1.set_pods_ready(true);
    assert!(eventually(30, || s.ok(&["get", "sts", "web", "-o", "jsonpath={.status.readyReplicas}"]) == "3"), "{}", s.ok(&["get", "pods"]));
    s.ok(&["rollout", "status", "sts/web", "--timeout=30s"]);
    let all = pods(&s, "app=web");
    assert_eq!(all.keys().collect::<Vec<_>>(), ["web-0", "web-1", "web-2"]);
    for i in 1..3 {
        let (prev, this) = (&all[&format!("web-{}", i - 1)], &all[&format!("web-{i}")]);
        assert!(this["metadata"]["creationTimestamp"].as_str().unwrap_or("") >= ready_at(prev).as_str(), "web-{i} made before web-{} was ready", i - 1);
    }
    let p = &all["web-1"];
    assert_eq!(p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"], json!("web-1"));
    assert_eq!(p["metadata"]["labels"]["apps.kubernetes.io/pod-index"], json!("1"));
    assert!(p["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap_or("").starts_with("web-"));
    assert_eq!((p["spec"]["hostname"].clone(), p["spec"]["subdomain"].clone()), (json!("web-1"), json!("nginx")));
    assert_eq!(p["spec"]["volumes"][0], json!({"name": "data", "persistentVolumeClaim": {"claimName": "data-web-1"}}));
    let claims = s.ok(&["get", "pvc", "-l", "app=web", "-o", "name"]);
    assert_eq!(claims.lines().collect::<Vec<_>>(), ["persistentvolumeclaim/data-web-0", "persistentvolumeclaim/data-web-1", "persistentvolumeclaim/data-web-2"]);
    let events = s.ok(&["get", "events", "--field-selector", "involvedObject.name=web"]);
    assert!(events.contains("create Pod web-0 in StatefulSet web successful") && events.contains("create Claim data-web-2 Pod web-2 in StatefulSet web success"), "{events}");
    let status = json_of(&s, &["get", "sts", "web"])["status"].clone();
    assert_eq!(status["currentRevision"], status["updateRevision"]);
    assert_eq!((status["replicas"].clone(), status["currentReplicas"].clone(), status["availableReplicas"].clone()), (json!(3), json!(3), json!(3)), "{status}");

    // Scale down goes from the highest ordinal; the claims stay.
    s.ok(&["scale", "sts", "web", "--replicas=1"]);
    let mut order_ok = true;
    assert!(eventually(30, || {
        let p = pods(&s, "app=web");
        // web-1 gone while web-2 is still there would be the wrong order.
        order_ok &= p.contains_key("web-1") || !p.contains_key("web-2");
        p.keys().collect::<Vec<_>>() == ["web-0"]
    }));
    assert!(order_ok, "web-1 went before web-2");
    assert_eq!(s.ok(&["get", "pvc", "-l", "app=web", "-o", "name"]).lines().count(), 3);
    assert!(eventually(10, || s.ok(&["get", "sts", "web", "-o", "jsonpath={.status.replicas} {.status.readyReplicas}"]) == "1 1"));
}

#[test]
fn statefulset_partitioned_rolling_update_and_undo() {
    let s = Server::start("sts-roll");
    let _n1 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    let manifest = STATEFULSET.replace("name: web", "name: db").replace("app: web", "app: db").replace("  replicas: 3\n", "  replicas: 3\n  podManagementPolicy: Parallel\n  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}\n  ordinals: {start: 1}\n");
    s.ok_stdin(&["apply", "-f", "-"], &manifest);
    assert!(eventually(20, || s.ok(&["get", "sts", "db", "-o", "jsonpath={.status.readyReplicas}"]) == "3"), "{}", s.ok(&["get", "pods"]));
    assert_eq!(pods(&s, "app=db").keys().collect::<Vec<_>>(), ["db-1", "db-2", "db-3"], "ordinals start at 1");
    let image = |name: &str| pods(&s, "app=db").get(name).map(|p| p["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_string()).unwrap_or_default();

    // Only ordinals >= the partition take the new template.
    s.ok(&["set", "image", "sts/db", "c=nginx:2"]);
    let out = s.ok(&["rollout", "status", "sts/db", "--timeout=30s"]);
    assert!(out.contains("partitioned roll out complete: 1 new pods have been updated"), "{out}");
    assert!(eventually(10, || image("db-3") == "nginx:2"));
    assert_eq!((image("db-1"), image("db-2")), ("nginx:1".to_string(), "nginx:1".to_string()));
    let status = json_of(&s, &["get", "sts", "db"])["status"].clone();
    assert_ne!(status["currentRevision"], status["updateRevision"], "{status}");
    assert_eq!(status["updatedReplicas"], json!(1), "{status}");

    // Partition 0: the rest follow, highest ordinal first.
    s.ok(&["patch", "sts", "db", "--type=merge", "-p", r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#]);
    s.ok(&["rollout", "status", "sts/db", "--timeout=40s"]);
    assert!(eventually(20, || (image("db-1"), image("db-2"), image("db-3")) == ("nginx:2".into(), "nginx:2".into(), "nginx:2".into())));
    assert!(eventually(10, || {
        let st = json_of(&s, &["get", "sts", "db"])["status"].clone();
        st["currentRevision"] == st["updateRevision"] && st["currentReplicas"] == json!(3)
    }));

    // History and undo.
    let history = s.ok(&["rollout", "history", "sts/db"]);
    assert!(history.contains("\n1 ") && history.contains("\n2 "), "{history}");
    s.ok(&["rollout", "undo", "sts/db"]);
    s.ok(&["rollout", "status", "sts/db", "--timeout=40s"]);
    assert!(eventually(30, || (image("db-1"), image("db-2"), image("db-3")) == ("nginx:1".into(), "nginx:1".into(), "nginx:1".into())), "{}", s.ok(&["get", "pods", "-o", "yaml"]));
    let numbers = s.ok(&["get", "controllerrevisions", "-l", "app=db", "-o", r#"jsonpath={range .items[*]}{.revision}{"\n"}{end}"#]);
    let mut numbers: Vec<&str> = numbers.split_whitespace().collect();
    numbers.sort();
    assert_eq!(numbers, ["2", "3"], "the old revision is renumbered, not copied");
}
