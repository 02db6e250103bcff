//! A node without containers, for testing the scheduler and controllers:
//! it registers a Node, renews its Lease, and plays the kubelet's part of
//! the pod lifecycle for the pods bound to it (Running and Ready, or
//! finished with the exit code in the pod's `coracle.test/exit-code`
//! annotation; deletion confirmed once a pod is terminating). All through
//! the real API with the kube client, as a real kubelet would.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the fake node looks like.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub name: String,
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    pub ephemeral_storage: String,
    pub labels: Vec<(String, String)>,
    /// `key=value:Effect` or `key:Effect`.
    pub taints: Vec<String>,
}

impl NodeSpec {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            cpu: "4".into(),
            memory: "8Gi".into(),
            pods: "110".into(),
            ephemeral_storage: "50Gi".into(),
            labels: Vec::new(),
            taints: Vec::new(),
        }
    }
    pub fn cpu(mut self, cpu: &str) -> Self {
        self.cpu = cpu.into();
        self
    }
    pub fn memory(mut self, memory: &str) -> Self {
        self.memory = memory.into();
        self
    }
    pub fn pods(mut self, pods: &str) -> Self {
        self.pods = pods.into();
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.push((k.into(), v.into()));
        self
    }
    pub fn taint(mut self, t: &str) -> Self {
        self.taints.push(t.into());
        self
    }
}

/// Flags shared with the node's thread.
#[derive(Default)]
struct Flags {
    stop: AtomicBool,
    /// Stop renewing the lease and reporting (the node is "lost").
    lost: AtomicBool,
    /// Report pods as not ready.
    unready: AtomicBool,
    /// Was lost since the last status post.
    was_lost: AtomicBool,
}

pub struct FakeNode {
    pub name: String,
    flags: Arc<Flags>,
    thread: Option<JoinHandle<()>>,
}

impl FakeNode {
    /// Register the node and start its lease and pod loops.
    pub fn start(kubeconfig: &Path, spec: NodeSpec) -> FakeNode {
        let flags = Arc::new(Flags::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let kc = kubeconfig.to_path_buf();
        let f = flags.clone();
        let name = spec.name.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let client = match client(&kc).await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                if let Err(e) = register(&client, &spec).await {
                    let _ = tx.send(Err(e));
                    return;
                }
                let _ = tx.send(Ok(()));
                run(client, spec, f).await;
            });
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("fake node {name}: {e}"),
            Err(_) => panic!("fake node {name}: registration timed out"),
        }
        FakeNode { name, flags, thread: Some(thread) }
    }

    /// Simulate a node that died: no more lease renewals or pod updates.
    pub fn lose(&self) {
        self.flags.lost.store(true, Ordering::SeqCst);
    }

    /// Come back after [`FakeNode::lose`].
    pub fn recover(&self) {
        self.flags.lost.store(false, Ordering::SeqCst);
    }

    /// Report this node's running pods as ready (default) or not.
    pub fn set_pods_ready(&self, ready: bool) {
        self.flags.unready.store(!ready, Ordering::SeqCst);
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.flags.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn client(kubeconfig: &Path) -> Result<kube::Client, String> {
    let kc = Kubeconfig::read_from(kubeconfig).map_err(|e| format!("{}: {e}", kubeconfig.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.map_err(|e| e.to_string())?;
    kube::Client::try_from(cfg).map_err(|e| e.to_string())
}

fn now() -> String {
    jiff_now()
}

fn jiff_now() -> String {
    // RFC 3339 with microseconds, as MicroTime wants.
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let micros = d.subsec_micros();
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, dd) = civil_from_days(days);
    format!("{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{micros:06}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn seconds() -> String {
    let s = jiff_now();
    format!("{}Z", &s[..19])
}

async fn register(client: &kube::Client, spec: &NodeSpec) -> Result<(), String> {
    let mut labels = serde_json::Map::new();
    labels.insert("kubernetes.io/hostname".into(), json!(spec.name));
    labels.insert("kubernetes.io/os".into(), json!("linux"));
    labels.insert("kubernetes.io/arch".into(), json!("amd64"));
    for (k, v) in &spec.labels {
        labels.insert(k.clone(), json!(v));
    }
    let taints: Vec<Value> = spec
        .taints
        .iter()
        .map(|t| {
            let (kv, effect) = t.split_once(':').unwrap_or((t.as_str(), "NoSchedule"));
            match kv.split_once('=') {
                Some((k, v)) => json!({"key": k, "value": v, "effect": effect}),
                None => json!({"key": kv, "effect": effect}),
            }
        })
        .collect();
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels},
        "spec": {"taints": taints},
    }))
    .map_err(|e| e.to_string())?;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.create(&PostParams::default(), &node).await.map_err(|e| format!("creating node: {e}"))?;
    post_status(client, spec).await.map_err(|e| format!("node status: {e}"))?;
    renew_lease(client, &spec.name).await.map_err(|e| format!("lease: {e}"))?;
    Ok(())
}

/// Post the node's status as a kubelet does: capacity, conditions with a
/// fresh heartbeat, addresses, node info.
async fn post_status(client: &kube::Client, spec: &NodeSpec) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let resources = json!({
        "cpu": spec.cpu, "memory": spec.memory, "pods": spec.pods, "ephemeral-storage": spec.ephemeral_storage,
    });
    let t = seconds();
    let status = json!({"status": {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available", "lastHeartbeatTime": t, "lastTransitionTime": t},
            {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "kubelet has no disk pressure", "lastHeartbeatTime": t, "lastTransitionTime": t},
            {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "kubelet has sufficient PID available", "lastHeartbeatTime": t, "lastTransitionTime": t},
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": t, "lastTransitionTime": t},
        ],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": spec.name}],
        "nodeInfo": {"kubeletVersion": "v1.33.0", "containerRuntimeVersion": "fake://0", "osImage": "fake", "kernelVersion": "0", "operatingSystem": "linux", "architecture": "amd64", "machineID": "", "systemUUID": "", "bootID": "", "kubeProxyVersion": ""},
    }});
    nodes.patch_status(&spec.name, &PatchParams::default(), &Patch::Merge(&status)).await?;
    Ok(())
}

async fn renew_lease(client: &kube::Client, node: &str) -> Result<(), kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = now();
    match leases.get_opt(node).await? {
        Some(_) => {
            let p = json!({"spec": {"renewTime": now, "holderIdentity": node, "leaseDurationSeconds": 40}});
            leases.patch(node, &PatchParams::default(), &Patch::Merge(&p)).await?;
        }
        None => {
            let lease: Lease = serde_json::from_value(json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": node, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now},
            }))
            .map_err(kube::Error::SerdeError)?;
            leases.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}

async fn run(client: kube::Client, spec: NodeSpec, flags: Arc<Flags>) {
    let pods: Api<Pod> = Api::all(client.clone());
    let mut tick = 0u64;
    while !flags.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if flags.lost.load(Ordering::SeqCst) {
            flags.was_lost.store(true, Ordering::SeqCst);
            continue;
        }
        tick += 1;
        if tick.is_multiple_of(5) {
            if let Err(e) = renew_lease(&client, &spec.name).await {
                eprintln!("fake node {}: lease renewal: {e}", spec.name);
            }
        }
        // Re-post the status every few seconds, and at once after a
        // recovery, as a kubelet does when its conditions change.
        let was_lost = flags.was_lost.swap(false, Ordering::SeqCst);
        if was_lost || tick.is_multiple_of(25) {
            if let Err(e) = post_status(&client, &spec).await {
                eprintln!("fake node {}: status: {e}", spec.name);
            }
        }
        let lp = ListParams::default().fields(&format!("spec.nodeName={}", spec.name));
        let list = match pods.list(&lp).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("fake node {}: listing pods: {e}", spec.name);
                continue;
            }
        };
        let ready = !flags.unready.load(Ordering::SeqCst);
        for (i, pod) in list.items.iter().enumerate() {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            if pod.metadata.deletion_timestamp.is_some() {
                let _ = api.delete(&name, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await;
                continue;
            }
            if let Some(status) = desired_status(pod, &spec, i, ready) {
                if let Err(e) = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await {
                    eprintln!("fake node {}: pod {ns}/{name} status: {e}", spec.name);
                }
            }
        }
    }
}

/// The status a kubelet would report now, or None when it already does.
fn desired_status(pod: &Pod, node: &NodeSpec, index: usize, ready: bool) -> Option<Value> {
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return None;
    }
    let containers: Vec<String> = pod.spec.as_ref().map(|s| s.containers.iter().map(|c| c.name.clone()).collect()).unwrap_or_default();
    let exit: Option<i32> = pod.metadata.annotations.as_ref().and_then(|a| a.get("coracle.test/exit-code")).and_then(|v| v.parse().ok());
    let t = seconds();
    let is_ready = |s: &k8s_openapi::api::core::v1::PodStatus| {
        s.conditions.as_ref().and_then(|c| c.iter().find(|c| c.type_ == "Ready")).map(|c| c.status == "True").unwrap_or(false)
    };
    let ip = format!("10.42.{}.{}", (index / 250) % 250, index % 250 + 2);
    if let Some(code) = exit {
        let phase = if code == 0 { "Succeeded" } else { "Failed" };
        let statuses: Vec<Value> = containers
            .iter()
            .map(|c| json!({"name": c, "ready": false, "restartCount": 0, "image": "fake", "imageID": "", "started": false,
                "state": {"terminated": {"exitCode": code, "reason": if code == 0 {"Completed"} else {"Error"}, "startedAt": t, "finishedAt": t}}}))
            .collect();
        return Some(json!({"status": {
            "phase": phase, "hostIP": "127.0.0.1", "podIP": status.pod_ip.clone().unwrap_or(ip), "startTime": status.start_time.clone().map(|s| json!(s)).unwrap_or(json!(t)),
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": t},
                {"type": "Initialized", "status": "True", "lastTransitionTime": t},
                {"type": "ContainersReady", "status": "False", "reason": "PodCompleted", "lastTransitionTime": t},
                {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": t},
            ],
            "containerStatuses": statuses,
        }}));
    }
    if phase == "Running" && is_ready(&status) == ready {
        return None;
    }
    let r = if ready { "True" } else { "False" };
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| json!({"name": c, "ready": ready, "restartCount": 0, "image": "fake", "imageID": "", "started": true, "containerID": format!("fake://{c}"),
            "state": {"running": {"startedAt": t}}}))
        .collect();
    let _ = node;
    Some(json!({"status": {
        "phase": "Running", "hostIP": "127.0.0.1", "podIP": status.pod_ip.clone().unwrap_or_else(|| ip.clone()),
        "podIPs": [{"ip": status.pod_ip.clone().unwrap_or(ip)}],
        "startTime": status.start_time.clone().map(|s| json!(s)).unwrap_or(json!(t)),
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": t},
            {"type": "Initialized", "status": "True", "lastTransitionTime": t},
            {"type": "ContainersReady", "status": r, "lastTransitionTime": t},
            {"type": "Ready", "status": r, "lastTransitionTime": t},
        ],
        "containerStatuses": statuses,
    }}))
}
