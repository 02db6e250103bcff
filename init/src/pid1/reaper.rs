//! PID 1 inherits every orphan: the reaper collects the exit status of
//! every child on SIGCHLD, hands it to whoever waits for that pid
//! (supervised services, commands PID 1 runs) and drops the rest, so no
//! zombie is left. Once installed, nothing else in the process may wait for
//! children (no `std::process::Child::wait`, no `tokio::process`): spawn
//! through [`Reaper::spawn`] instead.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

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
}

#[derive(Default)]
pub struct Reaper {
    waiting: Mutex<Waiting>,
}

impl Reaper {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start the reaper: a task that reaps on every SIGCHLD.
    pub fn install() -> std::io::Result<Arc<Reaper>> {
        let reaper = Arc::new(Reaper::default());
        let mut sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
        let r = reaper.clone();
        tokio::spawn(async move {
            loop {
                r.reap_all();
                if sigchld.recv().await.is_none() {
                    break;
                }
            }
        });
        Ok(reaper)
    }

    /// Collect every ended child now; returns how many were reaped.
    pub fn reap_all(&self) -> usize {
        use rustix::process::{waitpid, WaitOptions};
        let mut n = 0;
        loop {
            match waitpid(None, WaitOptions::NOHANG) {
                Ok(Some((pid, status))) => {
                    n += 1;
                    let exit = match (status.exit_status(), status.terminating_signal()) {
                        (Some(c), _) => Exit::Code(c),
                        (None, Some(s)) => Exit::Signal(s),
                        (None, None) => continue,
                    };
                    let pid = pid.as_raw_nonzero().get();
                    let mut w = self.lock();
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
