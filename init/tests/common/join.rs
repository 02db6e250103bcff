//! A second node on this host: `coracle agent` in a network namespace of
//! its own, linked to the host by a veth pair (each end with its own
//! address, one /30 per pair), so its routes, bridge, nftables table,
//! cluster DNS address and kubelet port are its own, as on another
//! machine. The mount namespace and cgroups stay shared: its containerd is
//! kept apart by its data dir. It enters only the network namespace
//! (`nsenter --net`), not `ip netns exec`, which also gives the process a
//! mount namespace with a fresh /sys where the cgroup hierarchies under
//! /sys/fs/cgroup are gone (runc then fails with `no cgroup mount found in
//! mountinfo`).
//!
//! Dropping a [`JoinedAgent`] stops the process, its containerd and its
//! pods (`killall` on its data dir); dropping the [`AgentNode`] removes
//! its data dir; dropping the [`Netns`] removes the namespace and the veth
//! pair (with the agent's bridge and pod interfaces inside it). Declare
//! them in that order (net, node, agent) so they drop in reverse.

use super::{free_port, tempdir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A short name unique to this test process and call (links: 15 chars).
fn short(prefix: &str, k: u32) -> String {
    format!("{prefix}{}{k}", std::process::id() % 100_000)
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip (iproute2) must be installed");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A network namespace joined to the host by a veth pair.
pub struct Netns {
    pub name: String,
    pub host_link: String,
    /// The host's end (the server is reached there).
    pub host_ip: String,
    /// The namespace's end (the joined node's address).
    pub ns_ip: String,
}

impl Netns {
    pub fn new() -> Netns {
        let k = NEXT.fetch_add(1, Ordering::SeqCst);
        // 10.99.P.Q/30 pairs: P from the process, Q from the call.
        let (p, q) = (std::process::id() % 250 + 1, (k % 60) * 4);
        let n = Netns {
            name: short("crlns", k),
            host_link: short("crlh", k),
            host_ip: format!("10.99.{p}.{}", q + 1),
            ns_ip: format!("10.99.{p}.{}", q + 2),
        };
        let peer = short("crlp", k);
        let _ = Command::new("ip").args(["link", "del", &n.host_link]).output();
        let _ = Command::new("ip").args(["netns", "del", &n.name]).output();
        ip(&["netns", "add", &n.name]);
        ip(&["link", "add", &n.host_link, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &n.name]);
        ip(&["addr", "add", &format!("{}/30", n.host_ip), "dev", &n.host_link]);
        ip(&["link", "set", &n.host_link, "up"]);
        ip(&["-n", &n.name, "addr", "add", &format!("{}/30", n.ns_ip), "dev", &peer]);
        ip(&["-n", &n.name, "link", "set", &peer, "up"]);
        ip(&["-n", &n.name, "link", "set", "lo", "up"]);
        // Like a fresh host with a strict distribution's defaults: the
        // agent must turn forwarding on itself and live with strict
        // reverse-path filtering.
        for (key, value) in [("net.ipv4.ip_forward", "0"), ("net.ipv4.conf.all.rp_filter", "1"), ("net.ipv4.conf.default.rp_filter", "1")] {
            ip(&["netns", "exec", &n.name, "sysctl", "-qw", &format!("{key}={value}")]);
        }
        n
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_link]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// What a joined node is: its name, data dir and node flags (bridge,
/// kubelet port) in a namespace. [`AgentNode::spawn`] runs it.
pub struct AgentNode {
    pub netns: String,
    pub name: String,
    pub dir: PathBuf,
    pub node_ip: String,
    pub bridge: String,
    /// `--server`, `--node-name`, `--data-dir`, `--cni-bridge`, `--kubelet-port`.
    pub base: Vec<String>,
}

impl AgentNode {
    /// A node named `TAG-PID` in `net`, joining the server at `url`.
    pub fn new(tag: &str, net: &Netns, url: &str) -> AgentNode {
        let dir = tempdir(tag);
        let k = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("{tag}-{}", std::process::id());
        let bridge = short("cnj", k);
        let base = [
            "--server",
            url,
            "--node-name",
            &name,
            "--data-dir",
            dir.to_str().unwrap_or_default(),
            "--cni-bridge",
            &bridge,
            "--kubelet-port",
            &free_port().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        AgentNode { netns: net.name.clone(), name, dir, node_ip: net.ns_ip.clone(), bridge, base }
    }

    /// The busybox image in the node's images directory (imported at start).
    pub fn with_busybox(self) -> AgentNode {
        super::node::write_busybox(&self.dir.join("images").join("busybox.tar"));
        self
    }

    /// `nsenter --net=/run/netns/NS coracle agent BASE ARGS` (not started;
    /// nsenter execs, so the child is the agent itself).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.netns)).args(["--", env!("CARGO_BIN_EXE_coracle"), "agent"]).args(&self.base).args(args);
        c.env("CORACLE_EVICTION_HARD", super::node::TEST_EVICTION_HARD);
        c
    }

    /// Starts the agent with `--node-ip` and `args`, logging to
    /// `DIR/agent.log` (appended across restarts).
    pub fn spawn(&self, args: &[&str]) -> JoinedAgent {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("agent.log")).expect("agent log");
        let child = self.command(&["--node-ip", &self.node_ip]).args(args).stdout(Stdio::null()).stderr(log).spawn().expect("spawn coracle agent");
        JoinedAgent { child: Some(child), dir: self.dir.clone() }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("agent").join("kubelet.kubeconfig")
    }

    /// Waits until `image` is in the node's containerd.
    pub fn wait_image(&self, image: &str) -> bool {
        super::node::wait_image(&self.dir, image)
    }
}

impl Drop for AgentNode {
    fn drop(&mut self) {
        // Whatever a panicking spawn left behind.
        coracle_agent::killall::kill_all(&self.dir);
        if std::env::var_os("CORACLE_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A running `coracle agent`; stopped with its containerd and pods on drop.
pub struct JoinedAgent {
    child: Option<Child>,
    dir: PathBuf,
}

impl JoinedAgent {
    /// SIGTERM (a clean stop), SIGKILL after 15 s, then what it left
    /// running under its data dir.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_process(&mut child, &self.dir);
        }
    }
}

impl Drop for JoinedAgent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGTERM `child`, SIGKILL after 15 s, then kill what it left running
/// (containerd, shims, pods) under `data_dir`.
fn stop_process(child: &mut Child, data_dir: &Path) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    coracle_agent::killall::kill_all(data_dir);
}
