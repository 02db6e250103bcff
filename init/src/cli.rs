//! Command-line interface; flag names follow k3s where k3s has one.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use coracle_control::server::{self, ServerConfig};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "coracle", version, about = "Coracle: an immutable edge OS whose PID 1 is a Kubernetes node")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a Kubernetes control plane (API server on SQLite) on this host.
    Server(ServerArgs),
    /// Run a node that joins a server (`--server URL --token TOKEN`).
    Agent(AgentArgs),
    /// Run as PID 1 (what the kernel starts on a device; flags are for
    /// tests and debugging).
    Init(InitArgs),
    /// Machine config tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Container image tools.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Stop everything a host node left running: containerd, every pod's
    /// containers, and the mounts under the data dir (like k3s-killall.sh).
    Killall {
        #[arg(long, default_value = "/var/lib/coracle")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Turn a directory into an OCI image archive a node imports from its
    /// images directory (byte-for-byte reproducible with SOURCE_DATE_EPOCH).
    Pack {
        /// The directory that becomes the image's root filesystem.
        #[arg(long)]
        dir: PathBuf,
        /// Image reference, REGISTRY/REPOSITORY:TAG (e.g. coracle.local/app:1).
        #[arg(long)]
        name: String,
        /// Output file (OCI archive, .tar).
        #[arg(long)]
        out: PathBuf,
        /// Entrypoint (repeat for more words).
        #[arg(long)]
        entrypoint: Vec<String>,
        /// Environment variable KEY=VALUE (repeatable).
        #[arg(long)]
        env: Vec<String>,
        /// Working directory.
        #[arg(long)]
        workdir: Option<String>,
        /// Architecture (x86_64 or aarch64) [default: this machine's].
        #[arg(long)]
        arch: Option<String>,
        /// Default command (after `--`).
        #[arg(last = true)]
        cmd: Vec<String>,
    },
    /// Write the demo image `coracle.local/busybox:1` (a shell and the usual
    /// tools, from a static busybox binary) as an OCI archive to pre-load.
    Busybox {
        /// A static busybox binary [default: /bin/busybox, Debian's busybox-static].
        #[arg(long, default_value = "/bin/busybox")]
        busybox: PathBuf,
        /// Architecture of that binary (x86_64 or aarch64) [default: this machine's].
        #[arg(long)]
        arch: Option<String>,
        /// Output file (OCI archive, .tar).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn killall(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let n = coracle_agent::killall::kill_all(data_dir);
    eprintln!("coracle: stopped {n} processes of the node in {}", data_dir.display());
    Ok(())
}

pub fn image(cmd: ImageCommand) -> anyhow::Result<()> {
    match cmd {
        ImageCommand::Busybox { busybox, arch, out } => {
            coracle_agent::images::busybox::write(&busybox, &arch.unwrap_or_else(|| std::env::consts::ARCH.to_string()), &out)
                .with_context(|| format!("writing {} from {} (apt-get install busybox-static)", out.display(), busybox.display()))?;
            eprintln!("coracle: wrote {} ({})", out.display(), coracle_agent::images::busybox::IMAGE);
            Ok(())
        }
        ImageCommand::Pack { dir, name, out, entrypoint, env, workdir, arch, cmd } => {
            use coracle_agent::images::oci;
            anyhow::ensure!(dir.is_dir(), "{}: not a directory (give the image's root directory with --dir)", dir.display());
            let entries = oci::entries_from_dir(&dir)?;
            let cfg = oci::ImageConfig {
                name,
                entrypoint,
                cmd,
                env,
                working_dir: workdir,
                arch: arch.unwrap_or_else(|| std::env::consts::ARCH.to_string()),
            };
            oci::write_archive(&entries, &cfg, &out)?;
            let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            eprintln!("coracle: wrote {} ({} files, {:.1} MiB) as {}", out.display(), entries.len(), size as f64 / 1048576.0, cfg.name);
            Ok(())
        }
    }
}

#[derive(Args, Debug, Default)]
pub struct InitArgs {
    /// Supervise this command too: NAME=PROGRAM [ARG...] (repeatable).
    #[arg(long = "supervise", value_name = "NAME=COMMAND")]
    pub supervise: Vec<String>,
    /// Do not set the machine up (mounts, cgroups, network, clock): for
    /// running PID 1 inside namespaces on a host.
    #[arg(long)]
    pub skip_machine_setup: bool,
    /// Seconds processes get between SIGTERM and SIGKILL at shutdown.
    #[arg(long, default_value_t = 10)]
    pub stop_grace: u64,
    /// Seconds a panic stays on the console before the reboot.
    #[arg(long, default_value_t = 10)]
    pub panic_reboot_delay: u64,
    /// Test hook: panic after this many seconds.
    #[arg(long, hide = true)]
    pub panic_after: Option<u64>,
    /// Run stage 1 (what the initramfs runs) instead of stage 2.
    #[arg(long)]
    pub stage1: bool,
    /// The kernel command line to read (`coracle.slot=`) [default: /proc/cmdline].
    #[arg(long)]
    pub cmdline: Option<String>,
    /// Stage 1: where to mount the new root.
    #[arg(long, requires = "stage1", default_value = "/sysroot")]
    pub sysroot: PathBuf,
    /// Stage 1: stop after mounting (do not switch root and exec stage 2).
    #[arg(long, requires = "stage1")]
    pub no_switch_root: bool,
    /// Stage 1: seconds to wait for the root disk to appear.
    #[arg(long, requires = "stage1", default_value_t = 30)]
    pub wait_for_disk: u64,
    /// The machine config [default: ESP's coracle/machine.yaml, else
    /// /etc/coracle/machine.yaml, else the defaults].
    #[arg(long, value_name = "FILE")]
    pub machine_config: Option<PathBuf>,
    /// Setup steps to run, comma-separated [default: all of
    /// mounts,cgroups,modules,sysctl,hostname,net,clock].
    #[arg(long, value_delimiter = ',')]
    pub setup: Vec<String>,
    /// The node's data directory (also holds the saved clock).
    #[arg(long, default_value = "/var/lib/coracle")]
    pub data_dir: PathBuf,
    /// Directory of PID 1's log file [default: /var/log/coracle, none
    /// with --skip-machine-setup].
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// The release file whose BUILD_EPOCH= is the clock's floor.
    #[arg(long, default_value = "/etc/coracle-release")]
    pub release_file: PathBuf,
    /// Log clock changes instead of making them.
    #[arg(long)]
    pub clock_dry_run: bool,
    /// Do not run the node (setup and supervision only).
    #[arg(long)]
    pub no_node: bool,
    /// The ESP: a directory, or a FAT block device [default: the partition
    /// labelled esp].
    #[arg(long)]
    pub esp: Option<PathBuf>,
    #[arg(long, hide = true, default_value = "/sys/fs/cgroup")]
    pub cgroup_root: PathBuf,
    #[arg(long, hide = true, default_value_t = 123)]
    pub sntp_port: u16,
    /// Test hook: the health deadline in seconds (instead of the config's).
    #[arg(long, hide = true)]
    pub health_deadline: Option<u64>,
    /// Test hook: bless the slot right after setup, without the node.
    #[arg(long, hide = true)]
    pub bless_now: bool,
    /// Test hook: run this many tokio child processes next to the reaper.
    #[arg(long, hide = true)]
    pub test_tokio_children: Option<u32>,
}

impl InitArgs {
    /// What a device runs: every default.
    pub fn device() -> InitArgs {
        match Cli::try_parse_from(["coracle", "init"]) {
            Ok(Cli { command: Command::Init(a) }) => a,
            _ => InitArgs { stop_grace: 10, panic_reboot_delay: 10, data_dir: "/var/lib/coracle".into(), ..Default::default() },
        }
    }
}

pub fn init(args: InitArgs) -> anyhow::Result<()> {
    if args.stage1 {
        let mut o = crate::stage1::Options::device();
        if let Some(c) = args.cmdline {
            o.cmdline = c;
        }
        o.sysroot = args.sysroot;
        o.switch_root = !args.no_switch_root;
        o.mount_api_filesystems = !args.skip_machine_setup;
        o.wait_for_disk = std::time::Duration::from_secs(args.wait_for_disk);
        o.reboot_delay = std::time::Duration::from_secs(args.panic_reboot_delay);
        crate::stage1::main(o);
    }
    let services = args
        .supervise
        .iter()
        .map(|s| {
            let mut svc = crate::pid1::supervisor::Service::parse(s).map_err(anyhow::Error::msg)?;
            svc.stop_grace = std::time::Duration::from_secs(args.stop_grace);
            Ok(svc)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut env = crate::pid1::setup::Env::device();
    if !args.setup.is_empty() {
        for s in &args.setup {
            if !crate::pid1::setup::STEPS.contains(&s.as_str()) {
                anyhow::bail!("--setup {s:?}: unknown step; steps are {}", crate::pid1::setup::STEPS.join(","));
            }
        }
        env.steps = args.setup.iter().cloned().collect();
    }
    env.data_dir = args.data_dir.clone();
    env.release_file = args.release_file.clone();
    env.cgroup_root = args.cgroup_root.clone();
    env.clock_dry_run = args.clock_dry_run;
    env.sntp_port = args.sntp_port;
    let log_dir = match (&args.log_dir, args.skip_machine_setup) {
        (Some(d), _) => Some(d.clone()),
        (None, false) => Some(crate::pid1::logfile::DIR.into()),
        (None, true) => None,
    };
    let opts = crate::pid1::Options {
        services,
        machine_setup: !args.skip_machine_setup,
        stop_grace: std::time::Duration::from_secs(args.stop_grace),
        panic_reboot_delay: std::time::Duration::from_secs(args.panic_reboot_delay),
        panic_after: args.panic_after.map(std::time::Duration::from_secs),
        env,
        machine_config: args.machine_config.clone(),
        node: !args.no_node,
        log_dir,
        esp: args.esp.clone(),
        cmdline: args.cmdline.clone().unwrap_or_else(|| std::fs::read_to_string("/proc/cmdline").unwrap_or_default()),
        health_deadline: args.health_deadline.map(std::time::Duration::from_secs),
        bless_now: args.bless_now,
        test_tokio_children: args.test_tokio_children,
    };
    Err(crate::pid1::main(opts))
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Check a machine config; print it with defaults filled in.
    Check {
        /// The machine config file (YAML).
        file: PathBuf,
    },
}

pub fn config(cmd: ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Check { file } => {
            let cfg = crate::machine::load(&file)?;
            print!("{}", serde_yaml::to_string(&cfg).context("printing the config")?);
            Ok(())
        }
    }
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Directory for the datastore, certificates and kubeconfig.
    #[arg(long, default_value = "/var/lib/coracle")]
    pub data_dir: PathBuf,
    /// Address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// HTTPS port of the API server.
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,
    /// Where to write the admin kubeconfig [default: DATA_DIR/kubeconfig.yaml].
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,
    /// Extra host names or IPs for the serving certificate (repeatable).
    #[arg(long = "tls-san")]
    pub tls_san: Vec<String>,
    /// Run only the control plane, without the kubelet on this host.
    #[arg(long)]
    pub disable_agent: bool,
    /// Name of this node [default: the host name].
    #[arg(long)]
    pub node_name: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Settings of the node agent (kubelet) on this host.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// Use this CRI socket instead of starting containerd.
    #[arg(long)]
    pub container_runtime_endpoint: Option<PathBuf>,
    /// Address other nodes and the API server reach this node on
    /// [default: the address of the default route's interface].
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// Port of the kubelet's HTTPS endpoint.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Linux bridge pods attach to.
    #[arg(long, default_value = "cni0")]
    pub cni_bridge: String,
    /// Directory with the CNI plugins.
    #[arg(long, default_value = "/usr/lib/cni")]
    pub cni_bin_dir: PathBuf,
    /// Label for the node at registration, KEY=VALUE (repeatable).
    #[arg(long = "node-label")]
    pub node_labels: Vec<String>,
    /// Taint for the node at registration, KEY=VALUE:EFFECT (repeatable).
    #[arg(long = "node-taint")]
    pub node_taints: Vec<String>,
    /// Hard eviction thresholds, as the kubelet's flag; a list replaces
    /// all defaults [default: memory.available<100Mi,nodefs.available<5%,
    /// nodefs.inodesFree<5%,imagefs.available<5%,imagefs.inodesFree<5%;
    /// env CORACLE_EVICTION_HARD].
    #[arg(long)]
    pub eviction_hard: Option<String>,
    /// resolv.conf whose nameservers cluster DNS forwards other names to.
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// Registry mirrors and credentials (k3s' registries.yaml format)
    /// [default: DATA_DIR/registries.yaml].
    #[arg(long)]
    pub private_registry: Option<PathBuf>,
}

impl NodeArgs {
    pub fn to_config(
        &self,
        node_name: &str,
        data_dir: &std::path::Path,
        cluster: &coracle_control::config::ClusterConfig,
    ) -> anyhow::Result<coracle_agent::AgentConfig> {
        let mut cfg = coracle_agent::AgentConfig::new(node_name, data_dir.to_path_buf());
        cfg.cri_endpoint = self.container_runtime_endpoint.clone();
        cfg.node_ip = self.node_ip;
        cfg.kubelet_port = self.kubelet_port;
        cfg.bridge_name = self.cni_bridge.clone();
        cfg.cni_bin_dir = self.cni_bin_dir.clone();
        cfg.cluster_dns = cluster
            .cluster_dns
            .parse()
            .with_context(|| format!("--cluster-dns {:?}: expected an IP address", cluster.cluster_dns))?;
        cfg.cluster_domain = cluster.cluster_domain.clone();
        for l in &self.node_labels {
            let (k, v) = l.split_once('=').with_context(|| format!("--node-label {l:?}: expected KEY=VALUE"))?;
            cfg.node_labels.push((k.to_string(), v.to_string()));
        }
        for t in &self.node_taints {
            coracle_agent::node::parse_taint(t).map_err(anyhow::Error::msg).context("--node-taint")?;
        }
        cfg.node_taints = self.node_taints.clone();
        cfg.eviction_hard = self.eviction_hard.clone().or_else(|| std::env::var("CORACLE_EVICTION_HARD").ok());
        coracle_agent::node::eviction::thresholds(cfg.eviction_hard.as_deref()).context("--eviction-hard")?;
        cfg.resolv_conf = self.resolv_conf.clone();
        if let Some(r) = &self.private_registry {
            cfg.registries_file = r.clone();
        }
        Ok(cfg)
    }
}

/// Cluster settings (k3s' flag names; upstream component flags for the rest).
#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// Pod network; each node gets a /24 of it.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// Network ClusterIPs are allocated from.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// Cluster DNS address [default: the 10th address of --service-cidr].
    #[arg(long)]
    pub cluster_dns: Option<String>,
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// NodePort range, inclusive.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// Seconds without a lease renewal before a node is marked NotReady.
    #[arg(long, default_value_t = 40)]
    pub node_monitor_grace_period: u64,
    /// Seconds pods tolerate a not-ready node before they are evicted.
    #[arg(long, default_value_t = 300)]
    pub default_not_ready_toleration_seconds: i64,
    /// Seconds pods tolerate an unreachable node before they are evicted.
    #[arg(long, default_value_t = 300)]
    pub default_unreachable_toleration_seconds: i64,
}

impl ClusterArgs {
    pub fn to_config(&self, server_name: &str) -> anyhow::Result<coracle_control::config::ClusterConfig> {
        let (lo, hi) = self
            .service_node_port_range
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)))
            .filter(|(a, b)| a <= b)
            .with_context(|| format!("--service-node-port-range {:?}: expected FROM-TO, like 30000-32767", self.service_node_port_range))?;
        let (net, _) = coracle_control::config::parse_cidr(&self.service_cidr)
            .with_context(|| format!("--service-cidr {:?}: expected an IPv4 network like 10.43.0.0/16", self.service_cidr))?;
        coracle_control::config::parse_cidr(&self.cluster_cidr)
            .with_context(|| format!("--cluster-cidr {:?}: expected an IPv4 network like 10.42.0.0/16", self.cluster_cidr))?;
        let dns = match &self.cluster_dns {
            Some(d) => d.clone(),
            None => std::net::Ipv4Addr::from(u32::from(net) + 10).to_string(),
        };
        Ok(coracle_control::config::ClusterConfig {
            server_name: server_name.to_string(),
            cluster_cidr: self.cluster_cidr.clone(),
            service_cidr: self.service_cidr.clone(),
            cluster_dns: dns,
            cluster_domain: self.cluster_domain.clone(),
            node_port_range: (lo, hi),
            node_monitor_period: std::time::Duration::from_secs(5).min(std::time::Duration::from_secs(self.node_monitor_grace_period.max(2) / 2)),
            node_monitor_grace_period: std::time::Duration::from_secs(self.node_monitor_grace_period),
            default_not_ready_toleration_seconds: self.default_not_ready_toleration_seconds,
            default_unreachable_toleration_seconds: self.default_unreachable_toleration_seconds,
        })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "coracle".into())
}

/// What `coracle server` runs: the control plane and, unless disabled,
/// the node agent; shared by `coracle server` and PID 1's stage 2.
pub struct RunningServer {
    pub running: server::Running,
    pub agent: Option<coracle_agent::Agent>,
    pub node_name: String,
}

impl RunningServer {
    /// Host mode: stop the agent (pods keep running, as with k3s) and the
    /// datastore.
    pub async fn stop(self) {
        if let Some(agent) = self.agent {
            agent.stop().await;
        }
        self.running.store.close();
    }
}

/// Start the control plane and the agent as `args` say.
pub async fn start_server(args: &ServerArgs) -> anyhow::Result<RunningServer> {
    let node_name = args.node_name.clone().unwrap_or_else(hostname);
    let cluster = args.cluster.to_config(&node_name)?;
    let kubeconfig = args.write_kubeconfig.clone().unwrap_or_else(|| args.data_dir.join("kubeconfig.yaml"));
    let cfg = ServerConfig {
        data_dir: args.data_dir.clone(),
        bind_address: args.bind_address,
        port: args.https_listen_port,
        tls_sans: args.tls_san.clone(),
        kubeconfig,
        node_name: node_name.clone(),
        cluster: std::sync::Arc::new(cluster),
        controllers: true,
    };
    let running = server::start(cfg.clone()).await.with_context(|| format!("starting the server in {}", args.data_dir.display()))?;
    eprintln!("coracle: API server ready on https://{} — kubeconfig: {}", running.addr, running.kubeconfig.display());
    eprintln!("coracle: nodes join with `coracle agent --server https://ADDRESS:{} --token TOKEN`, TOKEN in {}", running.addr.port(), args.data_dir.join("token").display());
    let agent = if args.disable_agent {
        None
    } else {
        let mut agent_cfg = args.node.to_config(&node_name, &args.data_dir, &cfg.cluster)?;
        agent_cfg.control_plane = true;
        let client = coracle_agent::client_from_kubeconfig(&running.node_kubeconfig).await?;
        Some(coracle_agent::Agent::start(agent_cfg, client).await.context("starting the node agent")?)
    };
    Ok(RunningServer { running, agent, node_name })
}

pub async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let node = start_server(&args).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("installing SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    node.stop().await;
    Ok(())
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The server to join, https://HOST:PORT.
    #[arg(long)]
    pub server: String,
    /// The server's join token (its DATA_DIR/token); not needed again once
    /// joined.
    #[arg(long)]
    pub token: Option<String>,
    /// Name of this node [default: the host name].
    #[arg(long)]
    pub node_name: Option<String>,
    /// Directory for the node's credentials, containerd, pods and logs.
    #[arg(long, default_value = "/var/lib/coracle")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// A joined node's running agent.
pub struct RunningAgent {
    pub agent: coracle_agent::Agent,
    pub node_name: String,
    /// The node's kubeconfig (credentials from the join).
    pub kubeconfig: PathBuf,
}

/// Join (or reuse an earlier join), then start the same agent a server runs.
pub async fn start_agent(args: &AgentArgs) -> anyhow::Result<RunningAgent> {
    use coracle_agent::node::join;
    let node_name = args.node_name.clone().unwrap_or_else(hostname);
    let agent_dir = coracle_agent::AgentConfig::new(&node_name, args.data_dir.clone()).agent_dir();
    let joined = match join::existing(&agent_dir, &args.server, &node_name) {
        Some(j) => {
            tracing::info!(server = %j.server, node = %node_name, "reusing the credentials of an earlier join");
            j
        }
        None => {
            let token = args.token.as_deref().context("--token is required to join (the server's DATA_DIR/token)")?;
            join::join(&args.server, token, &node_name, &agent_dir).await?
        }
    };
    let cluster = coracle_control::config::ClusterConfig {
        cluster_dns: joined.cluster_dns.clone(),
        cluster_domain: joined.cluster_domain.clone(),
        ..Default::default()
    };
    let agent_cfg = args.node.to_config(&node_name, &args.data_dir, &cluster)?;
    let kubeconfig = join::kubeconfig_path(&agent_dir);
    let client = coracle_agent::client_from_kubeconfig(&kubeconfig).await?;
    let agent = coracle_agent::Agent::start(agent_cfg, client).await.context("starting the node agent")?;
    eprintln!("coracle: node {node_name} joined {}", joined.server);
    Ok(RunningAgent { agent, node_name, kubeconfig })
}

/// `coracle agent`: [`start_agent`], then run until SIGTERM or Ctrl-C
/// (pods keep running, as with k3s).
pub async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let running = start_agent(&args).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("installing SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    running.agent.stop().await;
    Ok(())
}
