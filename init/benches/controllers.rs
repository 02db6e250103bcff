//! Scheduler and controller benchmark against a release `coracle server
//! --disable-agent` with 100 registered nodes (Node objects with capacity,
//! Leases renewed by this program), driven by the kube client.
//!
//! Run: `cargo bench -p coracle --bench controllers`. Prints one line per
//! figure; docs/BENCHMARKS.md records them.

mod common;

use common::{cpu_seconds, rss_mib, start_server};
use coracle_control::controllers::{informer::Informers, Tasks};
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::Client;
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const NODES: usize = 100;
const PODS: usize = 2000;
const CLIENTS: usize = 4;

async fn namespace(client: &Client, name: &str) {
    let ns = Namespace { metadata: ObjectMeta { name: Some(name.into()), ..Default::default() }, ..Default::default() };
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("create namespace");
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

async fn register_nodes(client: &Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    for i in 0..NODES {
        let name = format!("node-{i:03}");
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": format!("z{}", i % 3)}},
            // Cordoned until the pods wait, so the scheduler alone is timed.
            "spec": {"unschedulable": true},
        }))
        .expect("node");
        nodes.create(&PostParams::default(), &node).await.expect("create node");
        let res = json!({"cpu": "32", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"});
        let t = now();
        let status = json!({"status": {"capacity": res, "allocatable": res,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": t, "lastTransitionTime": t}]}});
        nodes.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("node status");
    }
    renew_leases(client).await;
}

async fn renew_leases(client: &Client) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    for i in 0..NODES {
        let name = format!("node-{i:03}");
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now()}});
        leases.patch(&name, &PatchParams::apply("bench").force(), &Patch::Apply(&lease)).await.expect("lease");
    }
}

fn pod(name: String) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"bench": "sched"}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
    }))
    .expect("pod")
}

/// Watch pods in `ns` until `want` distinct ones are bound to a node.
async fn wait_bound(client: Client, ns: String, want: usize) -> Instant {
    let api: Api<Pod> = Api::namespaced(client, &ns);
    let mut bound = HashSet::new();
    let list = api.list(&ListParams::default()).await.expect("list");
    for p in &list.items {
        if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
            bound.insert(p.metadata.name.clone().unwrap_or_default());
        }
    }
    let rv = list.metadata.resource_version.unwrap_or_default();
    let mut stream = api.watch(&WatchParams::default().timeout(290), &rv).await.expect("watch").boxed();
    while bound.len() < want {
        match stream.next().await {
            Some(Ok(WatchEvent::Added(p))) | Some(Ok(WatchEvent::Modified(p))) => {
                if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                    bound.insert(p.metadata.name.clone().unwrap_or_default());
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("watch: {e}"),
            None => panic!("watch ended with {} of {want} bound", bound.len()),
        }
    }
    Instant::now()
}

async fn create_pods(client: &Client, ns: &str, prefix: &str, count: usize) {
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            for i in (c..count).step_by(CLIENTS) {
                api.create(&PostParams::default(), &pod(format!("{prefix}-{i}"))).await.expect("create pod");
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (_server, client, pid, _) = start_server("controllers").await;
    register_nodes(&client).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let deadline = Instant::now() + Duration::from_secs(30);
    while leases.get_opt("kube-scheduler").await.ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "no scheduler became leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Scheduling throughput: PODS pods wait while every node is cordoned;
    // then the nodes are uncordoned and the time until all are bound is
    // the scheduler's (creation speed does not enter).
    namespace(&client, "sched").await;
    let started = Instant::now();
    create_pods(&client, "sched", "p", PODS).await;
    println!("created {PODS} pending pods in {:.2} s", started.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiter = tokio::spawn(wait_bound(client.clone(), "sched".into(), PODS));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let started = Instant::now();
    for i in 0..NODES {
        let uncordon = json!({"spec": {"unschedulable": null}});
        nodes.patch(&format!("node-{i:03}"), &PatchParams::default(), &Patch::Merge(&uncordon)).await.expect("uncordon");
    }
    let done = waiter.await.expect("waiter");
    let total = done.duration_since(started);
    println!("scheduling: {PODS} pending pods bound on {NODES} nodes in {:.2} s after uncordon ({:.0} pods/s)", total.as_secs_f64(), PODS as f64 / total.as_secs_f64());

    // A 100-replica Deployment: time until all its pods are bound.
    namespace(&client, "deploy").await;
    let waiter = tokio::spawn(wait_bound(client.clone(), "deploy".into(), 100));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 100, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }))
    .expect("deployment");
    let started = Instant::now();
    Api::<Deployment>::namespaced(client.clone(), "deploy").create(&PostParams::default(), &d).await.expect("create deployment");
    let done = waiter.await.expect("waiter");
    println!("deployment of 100 replicas: all pods bound {:.2} s after the create", done.duration_since(started).as_secs_f64());

    // Idle CPU with everything above in place (more than 2,000 objects).
    tokio::time::sleep(Duration::from_secs(5)).await;
    renew_leases(&client).await;
    let (c0, t0) = (cpu_seconds(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(20)).await;
    let used = cpu_seconds(pid) - c0;
    println!(
        "idle server with {} pods and {NODES} nodes: {:.2}% of a core over {:.0} s; RSS {:.1} MiB",
        PODS + 100,
        100.0 * used / t0.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        rss_mib(pid)
    );

    // Informer cache memory with 10,000 pods: this process builds the same
    // shared pod informer the controllers use and measures its own RSS.
    namespace(&client, "many").await;
    let more = 10_000 - PODS - 100;
    renew_leases(&client).await;
    create_pods(&client, "many", "m", more).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_mib(std::process::id());
    let tasks = Tasks::default();
    let informers = Informers::new(client.clone(), tasks.clone());
    let pods = informers.get::<Pod>();
    let t = Instant::now();
    pods.ready().await;
    let cached = pods.list().len();
    let after = rss_mib(std::process::id());
    println!(
        "pod informer cache: {cached} pods synced in {:.2} s, {:.1} MiB ({:.1} KiB per pod)",
        t.elapsed().as_secs_f64(),
        after - before,
        (after - before) * 1024.0 / cached as f64
    );
    tasks.abort_all();
}
