//! PID 1 inherits every orphan: the reaper collects the exit status of
//! every child nobody else in the process waits for, hands the status of
//! children spawned through [`Reaper::spawn`] to [`Reaper::wait`], and
//! drops the rest, so no zombie is left.
//!
//! Children of `tokio::process` (containerd, `ctr`) and `std::process`
//! (`Command::output`) are waited for by their owners: the reaper must not
//! steal their status. So it never calls `waitpid(-1)` while the node runs:
//! it looks at its zombie children one by one (`waitid(.., WNOWAIT)`) and
//! reaps a pid only when it was spawned through the reaper, or when it has
//! stayed a zombie for [`ORPHAN_GRACE`] and no pidfd of this process
//! refers to it (tokio holds one for each child it waits for; a blocked
//! `std` waiter reaps within microseconds of the exit). [`Reaper::reap_any`]
//! takes everything, for the end of shutdown when nothing else waits.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a zombie nobody registered may wait for its owner.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(2);

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

#[derive(Default)]
struct Waiting {
    /// Children someone will wait for, by pid.
    waiters: HashMap<i32, Option<oneshot::Sender<Exit>>>,
    /// Statuses of registered children that ended before `wait` was called.
    ended: HashMap<i32, Exit>,
    /// Zombies nobody registered, and when they were first seen.
    unclaimed: HashMap<i32, Instant>,
}

#[derive(Default)]
pub struct Reaper {
    waiting: Mutex<Waiting>,
}

impl Reaper {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start the reaper: a task that reaps on every SIGCHLD, and again
    /// once the grace of a zombie nobody claimed has passed.
    pub fn install() -> std::io::Result<Arc<Reaper>> {
        let reaper = Arc::new(Reaper::default());
        let mut sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
        let r = reaper.clone();
        tokio::spawn(async move {
            loop {
                r.reap_all();
                let pending = !r.lock().unclaimed.is_empty();
                tokio::select! {
                    got = sigchld.recv() => if got.is_none() { break },
                    _ = tokio::time::sleep(ORPHAN_GRACE / 2), if pending => {}
                }
            }
        });
        Ok(reaper)
    }

    /// Reap what is ours to reap now (see the module doc); returns how
    /// many children were reaped.
    pub fn reap_all(&self) -> usize {
        let mut n = 0;
        let mut lingering = Vec::new();
        let now = Instant::now();
        for pid in children() {
            let Some(p) = rustix::process::Pid::from_raw(pid) else { continue };
            if !is_zombie(p) {
                continue;
            }
            let registered = self.lock().waiters.contains_key(&pid);
            if registered {
                n += usize::from(self.reap_pid(p));
                continue;
            }
            let first = *self.lock().unclaimed.entry(pid).or_insert(now);
            if now.duration_since(first) >= ORPHAN_GRACE {
                lingering.push(p);
            }
        }
        if !lingering.is_empty() {
            let held = pidfd_targets();
            for p in lingering {
                if held.contains(&p.as_raw_nonzero().get()) {
                    continue;
                }
                n += usize::from(self.reap_pid(p));
            }
        }
        // Forget zombies that someone else reaped meanwhile.
        let mut w = self.lock();
        if !w.unclaimed.is_empty() {
            w.unclaimed.retain(|pid, _| std::path::Path::new(&format!("/proc/{pid}")).exists());
        }
        n
    }

    /// Reap every ended child, whoever spawned it: for the end of
    /// shutdown, once nothing else waits for children.
    pub fn reap_any(&self) -> usize {
        use rustix::process::{waitpid, WaitOptions};
        let mut n = 0;
        loop {
            match waitpid(None, WaitOptions::NOHANG) {
                Ok(Some((pid, status))) => {
                    n += 1;
                    self.deliver(pid.as_raw_nonzero().get(), status);
                }
                Ok(None) => break,
                Err(e) if e == rustix::io::Errno::CHILD => break,
                Err(e) if e == rustix::io::Errno::INTR => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "waitpid failed");
                    break;
                }
            }
        }
        n
    }

    fn reap_pid(&self, pid: rustix::process::Pid) -> bool {
        use rustix::process::{waitpid, WaitOptions};
        match waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some((_, status))) => {
                self.deliver(pid.as_raw_nonzero().get(), status);
                true
            }
            // Its owner was quicker: fine.
            Ok(None) | Err(_) => {
                self.lock().unclaimed.remove(&pid.as_raw_nonzero().get());
                false
            }
        }
    }

    fn deliver(&self, pid: i32, status: rustix::process::WaitStatus) {
        let exit = match (status.exit_status(), status.terminating_signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(s)) => Exit::Signal(s),
            (None, None) => return,
        };
        let mut w = self.lock();
        w.unclaimed.remove(&pid);
        match w.waiters.get_mut(&pid) {
            Some(slot) => match slot.take() {
                Some(tx) => {
                    w.waiters.remove(&pid);
                    // A waiter that gave up (a dropped select arm)
                    // leaves the status for the next `wait`.
                    if tx.send(exit).is_err() {
                        w.ended.insert(pid, exit);
                    }
                }
                None => {
                    w.waiters.remove(&pid);
                    w.ended.insert(pid, exit);
                }
            },
            None => tracing::debug!(pid, %exit, "reaped an orphan"),
        }
    }

    /// Spawn `cmd`; its exit status is kept for [`Reaper::wait`].
    pub fn spawn(&self, cmd: &mut Command) -> std::io::Result<u32> {
        // Hold the lock across fork and registration: a child that ends at
        // once is then still known when its status is reaped.
        let mut w = self.lock();
        let child = cmd.spawn()?;
        let pid = child.id();
        w.waiters.insert(pid as i32, None);
        // `child` is dropped without waiting: the reaper owns its status.
        Ok(pid)
    }

    /// Wait for a child spawned by [`Reaper::spawn`] to end.
    pub async fn wait(&self, pid: u32) -> Exit {
        let rx = {
            let mut w = self.lock();
            if let Some(exit) = w.ended.remove(&(pid as i32)) {
                return exit;
            }
            let (tx, rx) = oneshot::channel();
            w.waiters.insert(pid as i32, Some(tx));
            rx
        };
        // A reap may have happened between spawn and now without a SIGCHLD
        // still to come: look once more.
        self.reap_all();
        rx.await.unwrap_or(Exit::Signal(0))
    }
}

/// Every child of this process: the kernel's per-thread lists, or a scan
/// of /proc where the kernel lacks CONFIG_PROC_CHILDREN.
fn children() -> Vec<i32> {
    let me = std::process::id();
    let mut out = Vec::new();
    let mut listed = false;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{me}/task")) {
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                listed = true;
                out.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    if !listed {
        let Ok(dir) = std::fs::read_dir("/proc") else { return out };
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if ppid == Some(me) {
                out.push(pid);
            }
        }
    }
    out
}

/// Whether child `pid` has ended (without reaping it).
fn is_zombie(pid: rustix::process::Pid) -> bool {
    use rustix::process::{waitid, WaitId, WaitIdOptions};
    matches!(waitid(WaitId::Pid(pid), WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT), Ok(Some(_)))
}

/// Pids this process holds a pidfd for (`tokio::process` keeps one per
/// child it waits for).
fn pidfd_targets() -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { return out };
    for fd in fds.flatten() {
        let is_pidfd = std::fs::read_link(fd.path()).map(|l| l.as_os_str() == "anon_inode:[pidfd]").unwrap_or(false);
        if !is_pidfd {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.file_name().to_string_lossy())).unwrap_or_default();
        if let Some(pid) = info.lines().find_map(|l| l.strip_prefix("Pid:")).and_then(|v| v.trim().parse::<i32>().ok()) {
            out.push(pid);
        }
    }
    out
}
