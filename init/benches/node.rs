//! Node benchmark: a release `coracle server` with its agent and real
//! containerd. Measures start to node Ready, pod create -> Running latency
//! (50 pods one after another, busybox pre-loaded), and the RSS of coracle
//! (containerd shown apart) with the node idle, 0 pods and 30 pods.
//!
//! Run: `cargo bench -p coracle --bench node` (root, containerd, runc and
//! the CNI plugins installed: `scripts/setup.sh`). docs/BENCHMARKS.md
//! records the figures.

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams, WatchEvent, WatchParams};
use std::time::{Duration, Instant};

mod common;

use common::{rss_mib, start_server_with};

const PODS: usize = 50;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "node"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": coracle_agent::images::busybox::IMAGE, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]
        }
    }))
    .expect("pod")
}

fn is_ready(n: &Node) -> bool {
    n.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn containerd_rss(dir: &std::path::Path) -> f64 {
    std::fs::read_to_string(dir.join("agent/containerd/containerd.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .map(rss_mib)
        .unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    let args = [
        "--node-name", "bench-node", "--cni-bridge", "cbbench0", "--cluster-cidr", "10.150.0.0/16",
        "--service-cidr", "10.250.0.0/16", "--kubelet-port", "10399",
    ];
    let (server, client, pid, dir) = start_server_with("node", &args, |dir| {
        coracle_agent::images::busybox::write(std::path::Path::new("/bin/busybox"), std::env::consts::ARCH, &dir.join("images/busybox.tar"))
            .expect("busybox image (Debian's busybox-static)");
    })
    .await;
    let nodes: Api<Node> = Api::all(client.clone());
    loop {
        if nodes.get_opt("bench-node").await.ok().flatten().is_some_and(|n| is_ready(&n)) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "node not Ready after 120 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("start to node Ready: {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
    tokio::time::sleep(Duration::from_secs(15)).await;
    println!("idle, 0 pods: coracle RSS {:.1} MiB, containerd RSS {:.1} MiB", rss_mib(pid), containerd_rss(&dir));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut latencies = Vec::new();
    for i in 0..PODS {
        let name = format!("bench-{i}");
        let mut watch = pods
            .watch(&WatchParams::default().fields(&format!("metadata.name={name}")), "0")
            .await
            .expect("watch")
            .boxed();
        let t = Instant::now();
        pods.create(&PostParams::default(), &pod(&name)).await.expect("create pod");
        loop {
            match tokio::time::timeout(Duration::from_secs(120), watch.next()).await {
                Ok(Some(Ok(WatchEvent::Added(p) | WatchEvent::Modified(p)))) => {
                    if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                        break;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!("pod {name} did not reach Running"),
            }
        }
        latencies.push(t.elapsed());
        if i + 1 == 30 {
            tokio::time::sleep(Duration::from_secs(10)).await;
            println!("30 pods running: coracle RSS {:.1} MiB, containerd RSS {:.1} MiB", rss_mib(pid), containerd_rss(&dir));
        }
    }
    latencies.sort();
    println!(
        "pod create -> Running ({PODS} pods, one at a time): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    let _ = pods.delete_collection(&DeleteParams::default(), &kube::api::ListParams::default().labels("bench=node")).await;
    drop(server);
}
