//! `coracle server` WITH its node agent: real containerd, real pods.
//!
//! Every node server gets its own bridge, pod and service networks, DNS
//! address and kubelet port, so tests can run side by side, and a busybox
//! image (`coracle.local/busybox:1`, from Debian's busybox-static) in its
//! images directory before it starts. Dropping the server stops it, then
//! kills whatever pods it left running (shims and their processes) and
//! removes its bridge.

use super::{free_port, tempdir, Server};
use coracle_agent::images::oci::Entry;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

pub const BUSYBOX: &str = coracle_agent::images::busybox::IMAGE;

/// The per-server network settings.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub bridge: String,
    pub cluster_cidr: String,
    pub service_cidr: String,
    pub cluster_dns: String,
    pub kubelet_port: u16,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl NodeInfo {
    fn new(tag: &str) -> NodeInfo {
        // Distinct per test in this process and (likely) across processes.
        let n = (std::process::id() * 7 + NEXT.fetch_add(1, Ordering::SeqCst)) % 50;
        NodeInfo {
            name: format!("{}-node", tag.to_lowercase().replace('_', "-")),
            bridge: format!("cb{n}t{}", std::process::id() % 1000),
            cluster_cidr: format!("10.{}.0.0/16", 100 + n),
            service_cidr: format!("10.{}.0.0/16", 200 + n),
            cluster_dns: format!("10.{}.0.10", 200 + n),
            kubelet_port: free_port(),
        }
    }

    pub fn args(&self) -> Vec<String> {
        [
            "--node-name",
            &self.name,
            "--cni-bridge",
            &self.bridge,
            "--cluster-cidr",
            &self.cluster_cidr,
            "--service-cidr",
            &self.service_cidr,
            "--cluster-dns",
            &self.cluster_dns,
            "--kubelet-port",
            &self.kubelet_port.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// The busybox image's entries (for tests that make variants of it).
pub fn busybox_entries() -> Vec<Entry> {
    let bin = std::fs::read("/bin/busybox").expect("/bin/busybox (Debian's busybox-static) must be installed");
    let list = std::process::Command::new("/bin/busybox").arg("--list").output().expect("busybox --list");
    coracle_agent::images::busybox::entries(bin, &String::from_utf8_lossy(&list.stdout))
}

/// Writes the busybox image archive to `path`.
pub fn write_busybox(path: &Path) {
    coracle_agent::images::busybox::write(Path::new("/bin/busybox"), std::env::consts::ARCH, path)
        .expect("write the busybox image archive (needs Debian's busybox-static)");
}

/// Waits until `image` is in the containerd of the node with data dir
/// `dir` (pre-loaded images are imported at start).
pub fn wait_image(dir: &Path, image: &str) -> bool {
    let socket = dir.join("agent/containerd/containerd.sock");
    super::eventually(60, || {
        std::process::Command::new("ctr")
            .arg("--address")
            .arg(&socket)
            .args(["-n", "k8s.io", "images", "ls", "-q"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l == image))
            .unwrap_or(false)
    })
}

/// Eviction thresholds for tests that are not about eviction: a build
/// machine with a nearly full disk must not evict their pods (the default
/// is 5% free). A test's own `--eviction-hard` wins.
pub const TEST_EVICTION_HARD: &str = "memory.available<1Mi,nodefs.available<1%,imagefs.available<1%";

impl Server {
    /// A server with its node agent, on its own networks, with busybox.
    pub fn start_node(tag: &str, args: &[&str]) -> Server {
        Self::start_node_in(tempdir(tag), tag, args, &[])
    }

    pub fn start_node_in(dir: PathBuf, tag: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        write_busybox(&dir.join("images").join("busybox.tar"));
        let mut env: Vec<(&str, &str)> = env.to_vec();
        if !args.contains(&"--eviction-hard") && !env.iter().any(|(k, _)| *k == "CORACLE_EVICTION_HARD") {
            env.push(("CORACLE_EVICTION_HARD", TEST_EVICTION_HARD));
        }
        let mut s = Server {
            child: None,
            kubeconfig: dir.join("kubeconfig.yaml"),
            dir,
            port: free_port(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            node: Some(NodeInfo::new(tag)),
        };
        s.spawn_public();
        s
    }

    pub fn node_name(&self) -> &str {
        self.node.as_ref().map(|n| n.name.as_str()).unwrap_or("")
    }

    /// Waits until the busybox image is in the runtime (imported at start).
    pub fn wait_image(&self, image: &str) -> bool {
        wait_image(&self.dir, image)
    }

    /// SIGTERM the server (clean agent stop), then kill the pods it left
    /// running and remove its bridge.
    pub fn stop_node(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = std::process::Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let _ = super::eventually(15, || c.try_wait().map(|s| s.is_some()).unwrap_or(true));
        }
        self.kill9();
        coracle_agent::killall::kill_all(&self.dir);
        if let Some(n) = &self.node {
            let _ = std::process::Command::new("ip").args(["link", "del", &n.bridge]).output();
        }
    }
}
