//! The node in stage 2: what `coracle server` runs (control plane and
//! agent in this process, through `cli::start_server`), or for
//! `node.role: agent` what `coracle agent` runs (`cli::start_agent`),
//! configured from the machine config with its data under
//! /var/lib/coracle (the config's cluster CA installed there, the image's
//! pre-loaded images linked for import); the health
//! watch that prints the `api ready` and `node ready` milestones, applies
//! the machine config's manifests, blesses the slot, and asks for a reboot
//! when the health deadline passes while the slot is on trial.

use super::{bless, markers, Options};
use crate::cli::{AgentArgs, Cli, Command, RunningAgent, RunningServer, ServerArgs};
use crate::machine::{MachineConfig, Role};
use anyhow::Context;
use k8s_openapi::api::core::v1::Node;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// `coracle server` flags for this machine config.
pub fn server_argv(cfg: &MachineConfig, data_dir: &Path, node_name: &str) -> Vec<String> {
    let mut a: Vec<String> = vec!["coracle".into(), "server".into(), "--data-dir".into(), data_dir.display().to_string(), "--node-name".into(), node_name.into()];
    if let Some(c) = &cfg.cluster.cluster_cidr {
        a.extend(["--cluster-cidr".into(), c.clone()]);
    }
    if let Some(c) = &cfg.cluster.service_cidr {
        a.extend(["--service-cidr".into(), c.clone()]);
    }
    for s in &cfg.cluster.tls_sans {
        a.extend(["--tls-san".into(), s.clone()]);
    }
    node_flags(cfg, &mut a);
    a
}

/// Flags of the node agent, the same for a server and an agent.
fn node_flags(cfg: &MachineConfig, a: &mut Vec<String>) {
    for (k, v) in &cfg.node.labels {
        a.extend(["--node-label".into(), format!("{k}={v}")]);
    }
    for t in &cfg.node.taints {
        a.extend(["--node-taint".into(), t.clone()]);
    }
}

pub fn server_args(cfg: &MachineConfig, data_dir: &Path, node_name: &str) -> anyhow::Result<ServerArgs> {
    let argv = server_argv(cfg, data_dir, node_name);
    match Cli::try_parse_from(&argv).map_err(|e| anyhow::anyhow!("machine config gives bad server flags {argv:?}: {e}"))? {
        Cli { command: Command::Server(s) } => Ok(s),
        _ => anyhow::bail!("internal: {argv:?} is not a server command"),
    }
}

use clap::Parser;

/// The node PID 1 runs: a server (control plane and agent) or a joined agent.
pub enum Running {
    Server(RunningServer),
    Agent(RunningAgent),
}

impl Running {
    pub fn node_name(&self) -> &str {
        match self {
            Running::Server(s) => &s.node_name,
            Running::Agent(a) => &a.node_name,
        }
    }

    /// Credentials the health watch uses: the admin's on a server, the
    /// node's own on an agent.
    pub fn kubeconfig(&self) -> &Path {
        match self {
            Running::Server(s) => &s.running.kubeconfig,
            Running::Agent(a) => &a.kubeconfig,
        }
    }

    fn agent(&self) -> Option<&coracle_agent::Agent> {
        match self {
            Running::Server(s) => s.agent.as_ref(),
            Running::Agent(a) => Some(&a.agent),
        }
    }
}

/// `coracle agent` flags for an agent's machine config.
pub fn agent_args(cfg: &MachineConfig, data_dir: &Path, node_name: &str) -> anyhow::Result<AgentArgs> {
    let server = cfg.cluster.server.clone().context("node.role is agent but cluster.server is not set")?;
    let mut a: Vec<String> = vec!["coracle".into(), "agent".into(), "--server".into(), server, "--data-dir".into(), data_dir.display().to_string(), "--node-name".into(), node_name.into()];
    if let Some(t) = &cfg.cluster.token {
        a.extend(["--token".into(), t.clone()]);
    }
    node_flags(cfg, &mut a);
    match Cli::try_parse_from(&a).map_err(|e| anyhow::anyhow!("machine config gives bad agent flags: {e}"))? {
        Cli { command: Command::Agent(s) } => Ok(s),
        _ => anyhow::bail!("internal: not an agent command"),
    }
}

/// The cluster CA of the machine config, written where the server looks
/// for it (`DATA_DIR/tls/ca.crt`, `ca.key`) before its first start, so
/// kubeconfigs made from the same CA (the builder's `run`) are trusted.
fn install_ca(cfg: &MachineConfig, data_dir: &Path) -> anyhow::Result<()> {
    let (Some(cert), Some(key)) = (&cfg.cluster.ca_cert, &cfg.cluster.ca_key) else { return Ok(()) };
    let dir = data_dir.join("tls");
    let crt = dir.join("ca.crt");
    match std::fs::read_to_string(&crt) {
        Ok(existing) if existing.trim() == cert.trim() => return Ok(()),
        Ok(_) => {
            tracing::warn!(file = %crt.display(), "the machine config's cluster.caCert differs from the CA this node already uses; keeping the node's (remove DATA_DIR/tls to start over with the config's)");
            return Ok(());
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    super::setup::net::write_atomic(&dir.join("ca.key"), key).with_context(|| format!("writing {}", dir.join("ca.key").display()))?;
    rustix::fs::chmod(dir.join("ca.key"), rustix::fs::Mode::from_raw_mode(0o600)).with_context(|| format!("chmod {}", dir.join("ca.key").display()))?;
    super::setup::net::write_atomic(&crt, cert).with_context(|| format!("writing {}", crt.display()))?;
    tracing::info!(file = %crt.display(), "cluster CA from the machine config installed");
    Ok(())
}

/// Images in the root filesystem (`/usr/share/coracle/images`) are linked
/// into the agent's import directory; links left by an earlier slot whose
/// image is gone are removed.
fn link_images(image_dir: &Path, data_dir: &Path) {
    let dest = data_dir.join("images");
    if let Ok(entries) = std::fs::read_dir(&dest) {
        for e in entries.flatten() {
            let p = e.path();
            if std::fs::read_link(&p).is_ok_and(|t| t.starts_with(image_dir)) && !p.exists() {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    let Ok(entries) = std::fs::read_dir(image_dir) else { return };
    let _ = std::fs::create_dir_all(&dest);
    for e in entries.flatten() {
        let link = dest.join(e.file_name());
        if std::fs::symlink_metadata(&link).is_err() {
            match std::os::unix::fs::symlink(e.path(), &link) {
                Ok(()) => tracing::info!(image = %e.path().display(), "pre-loaded image linked for import"),
                Err(err) => tracing::warn!(image = %e.path().display(), error = %err, "cannot link the pre-loaded image"),
            }
        }
    }
}

/// When PID 1 reports its memory after the node is Ready (boot benchmarks).
const IDLE_RSS_AFTER: Duration = Duration::from_secs(60);

/// Where the image builder puts pre-loaded OCI archives.
pub const IMAGE_DIR: &str = "/usr/share/coracle/images";

/// Start the node this machine config describes. An agent retries the
/// join until the server answers (devices often boot before their server).
pub async fn start(cfg: &MachineConfig, data_dir: &Path, image_dir: &Path) -> anyhow::Result<Running> {
    let name = cfg.node.name.clone().unwrap_or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "coracle".into()));
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    link_images(image_dir, data_dir);
    let node = if cfg.node.role == Role::Agent {
        let args = agent_args(cfg, data_dir, &name)?;
        let mut wait = Duration::from_secs(2);
        loop {
            match crate::cli::start_agent(&args).await {
                Ok(a) => break Running::Agent(a),
                Err(e) => {
                    eprintln!("coracle: cannot join {}: {e:#}; trying again in {}s", args.server, wait.as_secs());
                    tracing::warn!(server = args.server, error = %format!("{e:#}"), retry_s = wait.as_secs(), "join failed");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(60));
                }
            }
        }
    } else {
        install_ca(cfg, data_dir)?;
        let args = server_args(cfg, data_dir, &name)?;
        Running::Server(crate::cli::start_server(&args).await?)
    };
    if let Some(agent) = node.agent() {
        let ctx = agent.ctx.clone();
        tokio::spawn(async move {
            loop {
                match ctx.cri.wait_ready(Duration::from_secs(60)).await {
                    Ok(_) => {
                        markers::milestone("containerd up");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "container runtime not up yet"),
                }
            }
        });
    }
    Ok(node)
}

/// Device shutdown of the node: pods stopped gracefully, then containerd,
/// then the datastore.
pub async fn stop(node: Running, grace: Duration) {
    match node {
        Running::Server(s) => {
            if let Some(agent) = s.agent {
                agent.stop_with_pods(grace).await;
            }
            s.running.store.close();
        }
        Running::Agent(a) => a.agent.stop_with_pods(grace).await,
    }
}

/// Where the slot is blessed.
#[derive(Debug, Clone)]
pub struct BlessTarget {
    pub slot: Option<String>,
    /// ESP directory or device; `None` = find the partition labelled esp.
    pub esp: Option<PathBuf>,
    pub mount_at: PathBuf,
}

impl BlessTarget {
    pub fn from(opts: &Options) -> BlessTarget {
        BlessTarget {
            slot: crate::stage1::cmdline::parse(&opts.cmdline).slot,
            esp: opts.esp.clone(),
            mount_at: opts.env.run_dir.join("esp"),
        }
    }

    fn esp(&self) -> Option<PathBuf> {
        self.esp.clone().or_else(bless::find_esp_device)
    }

    /// Whether the running slot is on trial (a counter to clear).
    pub fn on_trial(&self) -> bool {
        let (Some(slot), Some(esp)) = (&self.slot, self.esp()) else { return false };
        let tryboot = bless::is_tryboot();
        bless::with_esp(&esp, &self.mount_at, true, |d| bless::trial(d, slot, tryboot) != bless::Trial::No).unwrap_or(false)
    }

    /// Mark the running slot good; one log line either way.
    pub fn bless(&self) -> bool {
        let Some(slot) = &self.slot else {
            tracing::info!(step = "bless", ok = true, "no coracle.slot on the kernel command line: nothing to bless");
            return true;
        };
        let Some(esp) = self.esp() else {
            tracing::warn!(step = "bless", ok = false, "no ESP found (no partition labelled esp): cannot bless the slot");
            return false;
        };
        let tryboot = bless::is_tryboot();
        match bless::with_esp(&esp, &self.mount_at, false, |d| bless::bless_dir(d, slot, tryboot)).and_then(|r| r) {
            Ok(detail) => {
                tracing::info!(step = "bless", ok = true, esp = %esp.display(), "{detail}");
                markers::milestone("slot blessed");
                true
            }
            Err(e) => {
                eprintln!("coracle: cannot bless slot {slot}: {e}");
                tracing::warn!(step = "bless", ok = false, esp = %esp.display(), error = e, "cannot bless the slot");
                false
            }
        }
    }
}

fn node_ready(n: &Node) -> bool {
    n.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn api_ready(client: &kube::Client) -> bool {
    let Ok(req) = http::Request::get("/readyz").body(Vec::new()) else { return false };
    client.request_text(req).await.is_ok_and(|t| t.trim() == "ok")
}

/// Watch the node come up: milestones, manifests, blessing; on a missed
/// deadline while on trial, ask for a reboot on `reboot`.
pub async fn watch_health(client: kube::Client, node_name: String, manifests: std::collections::BTreeMap<String, String>, deadline: Duration, target: BlessTarget, reboot: mpsc::Sender<String>) {
    let trial = {
        let t = target.clone();
        tokio::task::spawn_blocking(move || t.on_trial()).await.unwrap_or(false)
    };
    tracing::info!(slot = ?target.slot, on_trial = trial, deadline_s = deadline.as_secs(), "watching node health");
    let nodes: kube::Api<Node> = kube::Api::all(client.clone());
    let mut api_up = false;
    let mut deadline_active = true;
    loop {
        if !api_up && api_ready(&client).await {
            api_up = true;
            markers::milestone("api ready");
            tokio::spawn(super::manifests::apply(client.clone(), manifests.clone()));
        }
        if api_up {
            if let Ok(n) = nodes.get(&node_name).await {
                if node_ready(&n) {
                    markers::milestone("node ready");
                    let t = target.clone();
                    let _ = tokio::task::spawn_blocking(move || t.bless()).await;
                    tokio::time::sleep(IDLE_RSS_AFTER).await;
                    markers::idle_rss(IDLE_RSS_AFTER);
                    return;
                }
            }
        }
        if deadline_active && markers::since_boot() > deadline {
            let what = if api_up { "the node did not become Ready" } else { "the API did not answer" };
            if trial {
                eprintln!("coracle: health deadline passed: {what} within {}s of boot; rebooting so the boot loader falls back", deadline.as_secs());
                markers::milestone("health deadline passed");
                let _ = reboot.send(format!("{what} within {}s of boot", deadline.as_secs())).await;
                return;
            }
            // Not on trial: a reboot would only come back here. Keep
            // watching for the milestones.
            tracing::warn!(deadline_s = deadline.as_secs(), "{what} by the health deadline; the slot is not on trial, so no reboot");
            deadline_active = false;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_config_becomes_server_flags() {
        let cfg = crate::machine::parse(
            "apiVersion: coracle.dev/v1alpha1\nkind: MachineConfig\nnode:\n  labels: {site: north}\n  taints: [\"a=b:NoSchedule\"]\ncluster:\n  serviceCIDR: 10.96.0.0/16\n  tlsSans: [edge.local]\n",
            "m.yaml",
        )
        .expect("valid");
        let a = server_args(&cfg, Path::new("/var/lib/coracle"), "edge-1").expect("flags parse");
        assert_eq!(a.data_dir, PathBuf::from("/var/lib/coracle"));
        assert_eq!(a.node_name.as_deref(), Some("edge-1"));
        assert_eq!(a.cluster.service_cidr, "10.96.0.0/16");
        assert_eq!(a.cluster.cluster_cidr, "10.42.0.0/16", "defaults as coracle server has them");
        assert_eq!(a.tls_san, vec!["edge.local".to_string()]);
        assert_eq!(a.node.node_labels, vec!["site=north".to_string()]);
        assert_eq!(a.node.node_taints, vec!["a=b:NoSchedule".to_string()]);
        assert!(!a.disable_agent);
    }
}
