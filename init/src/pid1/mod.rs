//! PID 1: what the kernel starts. Stage 2 (the running system) sets the
//! machine up, supervises services (containerd), runs the node in process,
//! reaps every orphan, and turns SIGTERM into power-off and SIGINT into
//! reboot, as kernels and container runtimes send them. Stage 1 (the
//! initramfs) is in `stage1`.
//!
//! Must not: hold Kubernetes logic (that is `coracle-control` and
//! `coracle-agent`), or wait for children outside the [`reaper`].

pub mod panic;
pub mod reaper;
pub mod shutdown;
pub mod supervisor;

use anyhow::Context;
use reaper::Reaper;
use shutdown::Kind;
use std::path::PathBuf;
use std::time::Duration;
use supervisor::Service;
use tokio::sync::watch;

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
    if opts.machine_setup {
        tracing::warn!("machine setup is not part of this build yet");
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
    let kind = wait_for_signal().await?;
    tracing::info!(marker = "coracle:shutdown", action = kind.as_str(), "shutting down");
    drop(stop_tx);
    for (name, tx, task) in running.into_iter().rev() {
        let _ = tx.send(true);
        if task.await.is_err() {
            tracing::warn!(service = name, "supervisor task failed");
        }
    }
    shutdown::end_all_processes(&reaper, opts.stop_grace).await;
    rustix::fs::sync();
    shutdown::unmount_all(&mounted);
    Ok(kind)
}

async fn wait_for_signal() -> anyhow::Result<Kind> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    // SIGPWR: the power-fail signal some UPS and hypervisor paths send.
    let mut pwr = signal(SignalKind::from_raw(30)).context("installing the SIGPWR handler")?;
    Ok(tokio::select! {
        _ = term.recv() => Kind::PowerOff,
        _ = pwr.recv() => Kind::PowerOff,
        _ = int.recv() => Kind::Reboot,
    })
}
