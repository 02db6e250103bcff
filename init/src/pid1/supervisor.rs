//! Supervised services: a child process kept running, restarted with
//! exponential back-off (1 s doubling to 60 s, back to 1 s after a minute
//! of good running) and stopped in order at shutdown (SIGTERM, then
//! SIGKILL after its grace period). Every start, exit and restart is one
//! log line saying why.

use super::reaper::Reaper;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// How long it gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
}

impl Service {
    /// `NAME=PROGRAM ARG...`, split on whitespace (for tests and debugging).
    pub fn parse(spec: &str) -> Result<Service, String> {
        let (name, cmd) = spec.split_once('=').ok_or_else(|| format!("{spec:?}: expected NAME=PROGRAM [ARG...]"))?;
        let mut words = shell_words(cmd).into_iter();
        let program = words.next().ok_or_else(|| format!("{spec:?}: no program to run"))?;
        Ok(Service {
            name: name.to_string(),
            program: program.into(),
            args: words.collect(),
            env: Vec::new(),
            stop_grace: Duration::from_secs(10),
        })
    }
}

/// Split on whitespace, keeping 'single' and "double" quoted words whole.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for ch in s.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// The delay before the next start, given the last delay and how long the
/// service ran.
pub fn next_backoff(last: Option<Duration>, ran: Duration) -> Duration {
    match last {
        _ if ran >= HEALTHY_AFTER => BACKOFF_START,
        None => BACKOFF_START,
        Some(d) => (d * 2).min(BACKOFF_MAX),
    }
}

/// Keep `svc` running until `stop` turns true; then stop it and return.
pub async fn supervise(svc: Service, reaper: Arc<Reaper>, mut stop: watch::Receiver<bool>) {
    let mut backoff: Option<Duration> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let mut cmd = Command::new(&svc.program);
        cmd.args(&svc.args).envs(svc.env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null());
        let started = Instant::now();
        let pid = match reaper.spawn(&mut cmd) {
            Ok(pid) => pid,
            Err(e) => {
                let delay = next_backoff(backoff, Duration::ZERO);
                backoff = Some(delay);
                tracing::error!(service = svc.name, program = %svc.program.display(), error = %e, restart_in_s = delay.as_secs(), "service cannot start");
                if wait_or_stop(delay, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        tracing::info!(service = svc.name, pid, "service started");
        let exit = tokio::select! {
            exit = reaper.wait(pid) => Some(exit),
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(exit) = exit else {
            stop_child(&svc, pid, &reaper).await;
            return;
        };
        let ran = started.elapsed();
        let delay = next_backoff(backoff, ran);
        backoff = Some(delay);
        tracing::warn!(service = svc.name, pid, %exit, ran_s = ran.as_secs(), restart_in_s = delay.as_secs(), "service exited; restarting");
        if wait_or_stop(delay, &mut stop).await {
            return;
        }
    }
}

/// Sleep `d`, or return true at once when asked to stop.
async fn wait_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

async fn stop_child(svc: &Service, pid: u32, reaper: &Reaper) {
    let Some(p) = rustix::process::Pid::from_raw(pid as i32) else { return };
    tracing::info!(service = svc.name, pid, grace_s = svc.stop_grace.as_secs(), "stopping service");
    let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
    let exit = match tokio::time::timeout(svc.stop_grace, reaper.wait(pid)).await {
        Ok(exit) => exit,
        Err(_) => {
            tracing::warn!(service = svc.name, pid, "service ignored SIGTERM; killing it");
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            match tokio::time::timeout(std::time::Duration::from_secs(5), reaper.wait(pid)).await {
                Ok(exit) => exit,
                Err(_) => {
                    tracing::error!(service = svc.name, pid, "service did not end even after SIGKILL; going on");
                    return;
                }
            }
        }
    };
    tracing::info!(service = svc.name, pid, %exit, "service stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_minute_and_resets_after_good_running() {
        let mut d = None;
        let mut seen = Vec::new();
        for _ in 0..8 {
            let n = next_backoff(d, Duration::from_millis(10));
            seen.push(n.as_secs());
            d = Some(n);
        }
        assert_eq!(seen, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(next_backoff(d, Duration::from_secs(61)), Duration::from_secs(1));
    }

    #[test]
    fn service_specs_split_like_a_shell() {
        let s = Service::parse("web=/bin/sh -c 'echo hi; exit 3'").expect("valid");
        assert_eq!(s.name, "web");
        assert_eq!(s.program, PathBuf::from("/bin/sh"));
        assert_eq!(s.args, vec!["-c".to_string(), "echo hi; exit 3".into()]);
        assert!(Service::parse("no-equals").is_err());
        assert!(Service::parse("x=").is_err());
    }
}
