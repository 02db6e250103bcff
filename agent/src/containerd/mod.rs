//! The supervised containerd: config generated under the agent's directory,
//! started as a child, restarted with back-off when it dies. Running pods
//! survive a restart (their shims are not containerd's children).
//!
//! A containerd left behind by a coracle that was killed is found through
//! the pid file and stopped before a new one starts on the same root.

pub mod config;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::watch;

pub use config::{Layout, Settings};

/// What the node reports about its runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Starting,
    Running { pid: u32 },
    /// Not running; the reason is shown in the node's Ready condition.
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ContainerdError + '_ {
    move |source| ContainerdError::Io { path: path.to_path_buf(), source }
}

/// Handle of the supervisor task.
pub struct Containerd {
    pub layout: Layout,
    health: watch::Receiver<Health>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The containerd binary: `CORACLE_CONTAINERD` or the first on PATH.
pub fn find_binary(name: &str, env: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

impl Containerd {
    /// Writes the config and starts supervising containerd.
    pub fn start(layout: Layout, settings: &Settings) -> Result<Containerd, ContainerdError> {
        for d in [&layout.dir, &layout.root, &layout.state, &settings.cni_conf_dir, &settings.registries_dir] {
            std::fs::create_dir_all(d).map_err(io_err(d))?;
        }
        let text = config::render(&layout, settings);
        let tmp = layout.config.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &layout.config).map_err(io_err(&layout.config))?;
        let (health_tx, health) = watch::channel(Health::Starting);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(supervise(layout.clone(), health_tx, stop_rx));
        Ok(Containerd { layout, health, stop, task })
    }

    pub fn health(&self) -> watch::Receiver<Health> {
        self.health.clone()
    }

    /// SIGTERM containerd and wait for it (pods keep running).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Stops a containerd recorded in the pid file if it is still running with
/// our config (a coracle killed with -9 leaves it behind).
fn stop_stale(layout: &Layout) {
    let Ok(text) = std::fs::read_to_string(&layout.pid_file) else { return };
    let Ok(pid) = text.trim().parse::<i32>() else { return };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = String::from_utf8_lossy(&cmdline).contains(&*layout.config.to_string_lossy());
    if !ours {
        return;
    }
    tracing::info!(pid, "stopping the containerd a previous coracle left running");
    signal(pid, rustix::process::Signal::TERM);
    for _ in 0..100 {
        if !Path::new(&format!("/proc/{pid}")).exists() || proc_is_zombie(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(pid, rustix::process::Signal::KILL);
}

fn signal(pid: i32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

fn proc_is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')).unwrap_or(false))
        .unwrap_or(true)
}

/// Keeps the log of the previous run when it is small, starts over when not.
fn open_log(path: &Path) -> Option<std::fs::File> {
    const LIMIT: u64 = 8 * 1024 * 1024;
    if std::fs::metadata(path).map(|m| m.len() > LIMIT).unwrap_or(false) {
        let _ = std::fs::rename(path, path.with_extension("log.1"));
    }
    std::fs::OpenOptions::new().create(true).append(true).open(path).ok()
}

async fn supervise(layout: Layout, health: watch::Sender<Health>, mut stop: watch::Receiver<bool>) {
    const MIN: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);
    let mut backoff = MIN;
    let log_path = layout.log.clone();
    let stale = layout.clone();
    let _ = tokio::task::spawn_blocking(move || stop_stale(&stale)).await;
    loop {
        let Some(bin) = find_binary("containerd", "CORACLE_CONTAINERD") else {
            let msg = "containerd not found on PATH: install Debian's containerd package, or pass --container-runtime-endpoint".to_string();
            tracing::error!(reason = %msg, "container runtime unavailable");
            let _ = health.send(Health::Failed(msg));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(MAX);
            continue;
        };
        let mut cmd = tokio::process::Command::new(&bin);
        cmd.arg("--config").arg(&layout.config).stdin(Stdio::null()).kill_on_drop(false);
        match open_log(&log_path) {
            Some(f) => {
                let f2 = f.try_clone().ok();
                cmd.stdout(Stdio::from(f));
                cmd.stderr(f2.map(Stdio::from).unwrap_or_else(Stdio::null));
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        // Its own process group: a Ctrl-C at a terminal must not reach it
        // before the kubelet has stopped what it should.
        cmd.process_group(0);
        let started = tokio::time::Instant::now();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("cannot start {}: {e}", bin.display());
                tracing::error!(reason = %msg, "container runtime unavailable");
                let _ = health.send(Health::Failed(msg));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(MAX);
                continue;
            }
        };
        let pid = child.id().unwrap_or(0);
        let _ = std::fs::write(&layout.pid_file, pid.to_string());
        tracing::info!(pid, binary = %bin.display(), config = %layout.config.display(), "containerd started");
        let _ = health.send(Health::Running { pid });
        tokio::select! {
            status = child.wait() => {
                let why = match status {
                    Ok(s) => format!("containerd exited ({s}); see {}", log_path.display()),
                    Err(e) => format!("containerd: wait failed: {e}"),
                };
                if started.elapsed() > MAX {
                    backoff = MIN;
                }
                tracing::warn!(reason = %why, restart_in_s = backoff.as_secs(), "container runtime died");
                let _ = health.send(Health::Failed(why));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(MAX);
            }
            _ = stop.changed() => {
                if let Some(pid) = child.id() {
                    signal(pid as i32, rustix::process::Signal::TERM);
                }
                let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
                let _ = child.start_kill();
                let _ = std::fs::remove_file(&layout.pid_file);
                tracing::info!("containerd stopped");
                return;
            }
        }
    }
}
