//! API server benchmark: a release `coracle server --disable-agent` driven
//! over HTTPS by the kube client, as a real client would.
//!
//! Run: `cargo bench -p coracle --bench api` (set BENCH_LEASE_UPDATES to
//! change the 200,000 lease updates of the datastore-size run). Prints one
//! line per figure; docs/BENCHMARKS.md records them.

use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, PostParams, WatchEvent, WatchParams};
use kube::Client;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::{rss_mib, start_server};

const CLIENTS: usize = 4;

fn dir_size_mib(dir: &Path) -> f64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum::<u64>())
        .unwrap_or(0) as f64
        / (1024.0 * 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn cm(name: String) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta { name: Some(name), labels: Some(BTreeMap::from([("bench".into(), "yes".into())])), ..Default::default() },
        data: Some(BTreeMap::from([("key".into(), "value".into())])),
        ..Default::default()
    }
}

async fn namespace(client: &Client, name: &str) {
    let ns = Namespace { metadata: ObjectMeta { name: Some(name.into()), ..Default::default() }, ..Default::default() };
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("create namespace");
}

/// Create `count` ConfigMaps in `ns` from CLIENTS concurrent clients; returns creates/s.
async fn create_many(client: &Client, ns: &str, prefix: &str, count: usize) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            for i in (c..count).step_by(CLIENTS) {
                api.create(&PostParams::default(), &cm(format!("{prefix}-{i}"))).await.expect("create configmap");
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (server, client, pid, _) = start_server("api").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("idle RSS, empty cluster: {:.1} MiB", rss_mib(pid));

    // Creates with 4 clients, and GET latency from a fifth under that load.
    namespace(&client, "a").await;
    let probe: Api<ConfigMap> = Api::namespaced(client.clone(), "a");
    probe.create(&PostParams::default(), &cm("probe".into())).await.expect("probe");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let getter = {
        let (probe, stop) = (probe.clone(), stop.clone());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                probe.get("probe").await.expect("get");
                lat.push(t.elapsed());
            }
            lat
        })
    };
    let rate_empty = create_many(&client, "a", "cm", 4000).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut lat = getter.await.expect("getter");
    lat.sort();
    println!("creates/s, 4 clients, empty store: {rate_empty:.0}");
    println!("GET under that load: p50 {:.2} ms, p99 {:.2} ms ({} requests)", percentile(&lat, 0.5), percentile(&lat, 0.99), lat.len());

    // LIST of 10,000 ConfigMaps (raw JSON, as kubectl receives it).
    namespace(&client, "list").await;
    create_many(&client, "list", "l", 10_000).await;
    let mut list_times = Vec::new();
    for _ in 0..5 {
        let req = http::Request::get("/api/v1/namespaces/list/configmaps").body(Vec::new()).expect("request");
        let t = Instant::now();
        let body = client.request_text(req).await.expect("list");
        list_times.push(t.elapsed());
        assert!(body.len() > 10_000 * 100, "list body too small");
    }
    list_times.sort();
    println!("LIST 10,000 ConfigMaps: median {:.0} ms", percentile(&list_times, 0.5));

    // Fill to 20,000 stored, then creates/s again.
    namespace(&client, "fill").await;
    create_many(&client, "fill", "f", 6000).await;
    namespace(&client, "b").await;
    let rate_full = create_many(&client, "b", "cm", 4000).await;
    println!("creates/s, 4 clients, 20,000 stored: {rate_full:.0} ({:+.0} % vs empty)", (rate_full / rate_empty - 1.0) * 100.0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("RSS with 24,001 ConfigMaps stored: {:.1} MiB", rss_mib(pid));

    // Watch delivery latency: create, and time until the watch sees it.
    namespace(&client, "w").await;
    let w: Api<ConfigMap> = Api::namespaced(client.clone(), "w");
    let mut stream = w.watch(&WatchParams::default(), "0").await.expect("watch").boxed();
    let mut delivery = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        w.create(&PostParams::default(), &cm(format!("w{i}"))).await.expect("create");
        loop {
            match stream.next().await {
                Some(Ok(WatchEvent::Added(_))) => break,
                Some(Ok(_)) => continue,
                other => panic!("watch ended: {other:?}"),
            }
        }
        delivery.push(t.elapsed());
    }
    delivery.sort();
    println!("create → watch event: p50 {:.2} ms, p99 {:.2} ms", percentile(&delivery, 0.5), percentile(&delivery, 0.99));

    drop(server);

    // Datastore size after many updates of the same 10 Leases, on a fresh server.
    let (server, client, _, dir) = start_server("leases").await;
    let updates: usize = std::env::var("BENCH_LEASE_UPDATES").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let t = Instant::now();
    let mut tasks = Vec::new();
    for l in 0..10 {
        let leases = leases.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("node-{l}");
            let mut lease = Lease { metadata: ObjectMeta { name: Some(name.clone()), ..Default::default() }, ..Default::default() };
            lease = leases.create(&PostParams::default(), &lease).await.expect("create lease");
            for i in 0..updates / 10 {
                let spec = lease.spec.get_or_insert_with(Default::default);
                spec.holder_identity = Some(format!("node-{l}-{i}"));
                spec.lease_duration_seconds = Some(40);
                lease = leases.replace(&name, &PostParams::default(), &lease).await.expect("update lease");
            }
        }));
    }
    for task in tasks {
        task.await.expect("lease task");
    }
    let secs = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(7)).await;
    println!(
        "{updates} lease updates: {:.0} updates/s; datastore files (db + wal) {:.1} MiB",
        updates as f64 / secs,
        dir_size_mib(&dir.join("db"))
    );
    drop(server);
}
