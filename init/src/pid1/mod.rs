//! PID 1: what the kernel starts. Stage 2 (the running system) sets the
//! machine up, supervises services (containerd), runs the node in process,
//! reaps every orphan, and turns SIGTERM into power-off and SIGINT into
//! reboot, as kernels and container runtimes send them. Stage 1 (the
//! initramfs) is in `stage1`.
//!
//! Stage 2 in order: machine setup (`setup`), the log file, supervised
//! services, the node (`node`: control plane, agent, containerd), the
//! health watch (milestones, manifests, boot blessing); then it waits for
//! SIGTERM (power off), SIGINT (reboot) or a missed health deadline
//! (reboot), and shuts down in reverse: pods and containerd, services,
//! every other process, the saved clock, the log file, sync, unmounts.
//!
//! Must not: hold Kubernetes logic (that is `coracle-control` and
//! `coracle-agent`), or wait for children outside the [`reaper`] (tokio's
//! own children excepted: the reaper leaves them to tokio).

pub mod bless;
pub mod logfile;
pub mod manifests;
pub mod markers;
pub mod node;
pub mod panic;
pub mod power_button;
pub mod reaper;
pub mod setup;
pub mod shutdown;
pub mod supervisor;

use crate::machine::MachineConfig;
use anyhow::Context;
use reaper::Reaper;
use shutdown::Kind;
use std::path::{Path, PathBuf};
use std::time::Duration;
use supervisor::Service;
use tokio::sync::{mpsc, watch};

/// How stage 2 runs (flags of `coracle init`; a device uses the defaults).
#[derive(Debug, Clone)]
pub struct Options {
    /// Extra supervised services (`NAME=PROGRAM ARG...`), started in order.
    pub services: Vec<Service>,
    /// Set the machine up (mounts, cgroups, network, clock). Off in tests
    /// that run PID 1 inside namespaces on a host.
    pub machine_setup: bool,
    /// Seconds before SIGKILL for processes left at shutdown.
    pub stop_grace: Duration,
    /// Seconds to show a panic before rebooting.
    pub panic_reboot_delay: Duration,
    /// Test hook: panic after this long, to prove a panic reboots.
    pub panic_after: Option<Duration>,
    /// Where setup acts and which steps run.
    pub env: setup::Env,
    /// The machine config file; `None` = look in the usual places.
    pub machine_config: Option<PathBuf>,
    /// Run the node (control plane, agent, containerd).
    pub node: bool,
    /// Directory of the log file; `None` = console only.
    pub log_dir: Option<PathBuf>,
    /// The ESP (directory or FAT device); `None` = the partition labelled esp.
    pub esp: Option<PathBuf>,
    /// The kernel command line (`coracle.slot=`).
    pub cmdline: String,
    /// Test hook: the health deadline instead of the machine config's.
    pub health_deadline: Option<Duration>,
    /// Test hook: bless right after setup, without the node.
    pub bless_now: bool,
    /// Test hook: run tokio child processes next to the reaper.
    pub test_tokio_children: Option<u32>,
}

/// In the image; a copy on the ESP (`coracle/machine.yaml`) wins, so one
/// image serves a fleet.
pub const IMAGE_CONFIG: &str = "/etc/coracle/machine.yaml";
pub const ESP_CONFIG: &str = "coracle/machine.yaml";

/// The machine config and where it came from.
fn machine_config(opts: &Options) -> anyhow::Result<(MachineConfig, String)> {
    if let Some(p) = &opts.machine_config {
        return Ok((crate::machine::load(p)?, p.display().to_string()));
    }
    if opts.machine_setup {
        let esp = opts.esp.clone().or_else(bless::find_esp_device);
        if let Some(esp) = esp {
            let text = bless::with_esp(&esp, &opts.env.run_dir.join("esp"), true, |d| std::fs::read_to_string(d.join(ESP_CONFIG)).ok());
            if let Ok(Some(text)) = text {
                let name = format!("{}:{ESP_CONFIG}", esp.display());
                return Ok((crate::machine::parse(&text, &name)?, name));
            }
        }
    }
    if Path::new(IMAGE_CONFIG).exists() {
        return Ok((crate::machine::load(Path::new(IMAGE_CONFIG))?, IMAGE_CONFIG.into()));
    }
    let cfg = crate::machine::parse(&format!("apiVersion: {}\nkind: {}\n", crate::machine::API_VERSION, crate::machine::KIND), "(defaults)")?;
    Ok((cfg, "defaults (no machine config found)".into()))
}

/// Mount a fresh /proc when the one we see is not of our PID namespace
/// (inside `unshare --pid` on a host), so we never signal a stranger.
fn own_proc(mounted: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let own = std::fs::read_link("/proc/self").map(|p| p.as_os_str() == "1").unwrap_or(false);
    if own {
        return Ok(());
    }
    std::fs::create_dir_all("/proc").context("creating /proc")?;
    rustix::mount::mount("proc", "/proc", "proc", rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV | rustix::mount::MountFlags::NOEXEC, None)
        .context("mounting /proc")?;
    mounted.push("/proc".into());
    Ok(())
}

/// Run stage 2 to the end: returns only if reboot(2) was refused.
pub fn main(opts: Options) -> anyhow::Error {
    panic::install(opts.panic_reboot_delay);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => return anyhow::Error::new(e).context("starting the async runtime"),
    };
    let kind = runtime.block_on(stage2(opts));
    match kind {
        Ok(kind) => {
            tracing::info!(action = kind.as_str(), "handing over to the kernel");
            anyhow::Error::new(shutdown::reboot_now(kind)).context(format!("{} refused by the kernel", kind.as_str()))
        }
        Err(e) => e,
    }
}

async fn stage2(opts: Options) -> anyhow::Result<Kind> {
    let mut mounted = Vec::new();
    own_proc(&mut mounted)?;
    let reaper = Reaper::install().context("installing the SIGCHLD handler")?;
    tracing::info!(marker = "coracle:stage2", pid = std::process::id(), "PID 1 stage 2 started");
    markers::milestone("stage2 start");
    if let Some(dir) = &opts.log_dir {
        let path = logfile::path_in(dir);
        match logfile::open(&path, logfile::MAX_BYTES) {
            Ok(()) => tracing::info!(step = "log", ok = true, file = %path.display(), max_bytes = logfile::MAX_BYTES, "logging to the console and a file"),
            Err(e) => tracing::warn!(step = "log", ok = false, file = %path.display(), error = %e, "console only: cannot open the log file"),
        }
    }
    // Signals first: a SIGTERM during setup still powers off cleanly.
    let signals = signals().context("installing signal handlers")?;
    let mut setup = setup::Setup::default();
    if opts.machine_setup {
        // Stage 1 mounted the data partition on /var: unmount it last.
        if setup::mounts::is_mount_point(Path::new("/var")) && opts.env.steps.contains("mounts") {
            mounted.push("/var".into());
        }
        setup = setup::early(&opts.env);
    }
    let config = match machine_config(&opts) {
        Ok((cfg, from)) => {
            tracing::info!(step = "machine-config", ok = true, source = from, role = ?cfg.node.role, "machine config read");
            Some(cfg)
        }
        Err(e) => {
            eprintln!("coracle: machine config unusable: {e:#}");
            tracing::error!(step = "machine-config", ok = false, error = %format!("{e:#}"), "machine config unusable: setting up with defaults, not starting the node");
            None
        }
    };
    let defaults = crate::machine::parse(&format!("apiVersion: {}\nkind: {}\n", crate::machine::API_VERSION, crate::machine::KIND), "(defaults)")?;
    let cfg = config.clone().unwrap_or(defaults);
    if opts.machine_setup {
        setup = setup::run(&cfg, &opts.env, setup).await;
        mounted.append(&mut setup.mounted);
        markers::milestone("setup done");
        power_button::watch();
        if opts.env.steps.contains("clock") {
            tokio::spawn(setup::clock::keep(cfg.clone(), opts.env.clone(), false));
        }
    }
    let (stop_tx, _) = watch::channel(false);
    let mut running = Vec::new();
    for svc in &opts.services {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(supervisor::supervise(svc.clone(), reaper.clone(), rx));
        running.push((svc.name.clone(), tx, task));
    }
    if let Some(after) = opts.panic_after {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            panic!("test panic requested with --panic-after");
        });
    }
    if let Some(n) = opts.test_tokio_children {
        tokio::spawn(tokio_children(n));
    }
    let target = node::BlessTarget::from(&opts);
    if opts.bless_now {
        let t = target.clone();
        let _ = tokio::task::spawn_blocking(move || t.bless()).await;
    }
    let (reboot_tx, mut reboot_rx) = mpsc::channel::<String>(1);
    let mut the_node = None;
    let deadline = opts.health_deadline.unwrap_or(Duration::from_secs(cfg.boot.health_deadline_seconds.unwrap_or(crate::machine::DEFAULT_HEALTH_DEADLINE) as u64));
    let mut signals = signals;
    let mut early_signal = None;
    match (&config, opts.node) {
        (Some(cfg), true) => match tokio::select! {
            r = node::start(cfg, &opts.env.data_dir, Path::new(node::IMAGE_DIR)) => Some(r),
            k = wait_for_signal(&mut signals) => { early_signal = Some(k); None }
        } {
            None => tracing::warn!("a shutdown signal came while the node was starting"),
            Some(Ok(n)) => {
                match coracle_agent::client_from_kubeconfig(n.kubeconfig()).await {
                    Ok(client) => {
                        tokio::spawn(node::watch_health(client, n.node_name().to_string(), cfg.manifests.clone(), deadline, target.clone(), reboot_tx.clone()));
                    }
                    Err(e) => tracing::error!(error = %e, "no client for the health watch"),
                }
                the_node = Some(n);
            }
            Some(Err(e)) => {
                eprintln!("coracle: the node did not start: {e:#}");
                tracing::error!(error = %format!("{e:#}"), "the node did not start");
            }
        },
        _ => {
            // No node: the deadline still applies to a slot on trial.
            if !opts.bless_now {
                let t = target.clone();
                let tx = reboot_tx.clone();
                tokio::spawn(async move {
                    let trial = tokio::task::spawn_blocking({
                        let t = t.clone();
                        move || t.on_trial()
                    })
                    .await
                    .unwrap_or(false);
                    if !trial {
                        return;
                    }
                    tokio::time::sleep(deadline.saturating_sub(markers::since_boot())).await;
                    eprintln!("coracle: health deadline passed without a node; rebooting so the boot loader falls back");
                    markers::milestone("health deadline passed");
                    let _ = tx.send("no node ran within the health deadline".into()).await;
                });
            }
        }
    }
    let kind = match early_signal {
        Some(k) => k,
        None => tokio::select! {
            k = wait_for_signal(&mut signals) => k,
            Some(why) = reboot_rx.recv() => {
                tracing::warn!(reason = why, "rebooting: the health deadline passed");
                Kind::Reboot
            }
        },
    };
    markers::milestone(&format!("shutdown ({})", kind.as_str()));
    tracing::info!(marker = "coracle:shutdown", action = kind.as_str(), "shutting down");
    if let Some(n) = the_node {
        node::stop(n, opts.stop_grace.max(Duration::from_secs(10))).await;
        tracing::info!("node stopped");
    }
    for t in &setup.tasks {
        t.abort();
    }
    drop(stop_tx);
    for (name, tx, task) in running.into_iter().rev() {
        let _ = tx.send(true);
        if task.await.is_err() {
            tracing::warn!(service = name, "supervisor task failed");
        }
    }
    shutdown::end_all_processes(&reaper, opts.stop_grace).await;
    if opts.machine_setup && opts.env.steps.contains("clock") && !opts.env.clock_dry_run {
        if let Err(e) = setup::clock::save(&opts.env.data_dir) {
            tracing::warn!(error = e, "cannot save the time");
        }
    }
    logfile::close();
    rustix::fs::sync();
    shutdown::unmount_all(&mounted);
    Ok(kind)
}

/// Test hook: tokio children run while orphans are reaped; each must get
/// its own exit status (none stolen by the reaper).
async fn tokio_children(n: u32) {
    let mut ok = 0;
    let mut bad = Vec::new();
    for i in 0..n {
        let code = (i % 5 + 3) as i32;
        let r = tokio::process::Command::new("/bin/sh").arg("-c").arg(format!("sleep 0.0{}; exit {code}", i % 10)).status().await;
        match r {
            Ok(s) if s.code() == Some(code) => ok += 1,
            other => bad.push(format!("child {i}: {other:?}")),
        }
        // std's blocking wait too, as `Command::output` users do.
        let r = tokio::task::spawn_blocking(move || std::process::Command::new("/bin/sh").arg("-c").arg(format!("exit {code}")).output()).await;
        match r {
            Ok(Ok(o)) if o.status.code() == Some(code) => ok += 1,
            other => bad.push(format!("std child {i}: {other:?}")),
        }
    }
    if bad.is_empty() {
        tracing::info!(children = ok, "tokio and std children all got their exit status");
    } else {
        tracing::error!(ok, failed = bad.len(), first = bad[0], "children lost their exit status");
    }
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    pwr: tokio::signal::unix::Signal,
}

fn signals() -> std::io::Result<Signals> {
    use tokio::signal::unix::{signal, SignalKind};
    Ok(Signals {
        term: signal(SignalKind::terminate())?,
        int: signal(SignalKind::interrupt())?,
        // SIGPWR: the power-fail signal some UPS and hypervisor paths send.
        pwr: signal(SignalKind::from_raw(30))?,
    })
}

async fn wait_for_signal(s: &mut Signals) -> Kind {
    tokio::select! {
        _ = s.term.recv() => Kind::PowerOff,
        _ = s.pwr.recv() => Kind::PowerOff,
        _ = s.int.recv() => Kind::Reboot,
    }
}
