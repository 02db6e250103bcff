//! A release `coracle server` for benchmarks, and what they measure it with.

#![allow(dead_code)]

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        coracle_agent::killall::kill_all(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU seconds (user + system) the process has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rfind(')').map(|i| &stat[i + 2..]).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the name: state is 0; utime 11, stime 12 (clock ticks of 1/100 s).
    (ticks(11) + ticks(12)) / 100.0
}

pub async fn start_server(tag: &str) -> (Server, Client, u32, PathBuf) {
    start_server_with(tag, &["--disable-agent"], |_| {}).await
}

/// Starts a release server with extra flags, after `prepare` has put what
/// it needs into the data dir.
pub async fn start_server_with(tag: &str, args: &[&str], prepare: impl FnOnce(&std::path::Path)) -> (Server, Client, u32, PathBuf) {
    let dir = std::env::temp_dir().join(format!("coracle-bench-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    prepare(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_coracle"))
        .arg("server")
        .args(args)
        .args(["--bind-address", "127.0.0.1", "--https-listen-port", &port.to_string(), "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn coracle");
    let server = Server { child, dir: dir.clone() };
    let pid = server.child.id();
    let kubeconfig = dir.join("kubeconfig.yaml");
    let client = loop {
        if let Ok(kc) = Kubeconfig::read_from(&kubeconfig) {
            if let Ok(cfg) = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await {
                if let Ok(client) = Client::try_from(cfg) {
                    let req = http::Request::get("/readyz").body(Vec::new()).expect("request");
                    if client.request_text(req).await.is_ok() {
                        break client;
                    }
                }
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("start to ready: {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
    (server, client, pid, dir)
}

