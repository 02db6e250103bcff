//! Stopping everything a node left running on a host, like k3s' killall
//! script: the supervised containerd, every shim started for this data
//! dir with the containers below them, and the mounts under the data dir.
//! Pods normally outlive the agent (a restart adopts them); this is for
//! tearing a host node down (`coracle killall`, tests, benchmarks).

use std::path::Path;
use std::time::Duration;

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline")).map(|b| String::from_utf8_lossy(&b).replace('\0', " ")).unwrap_or_default()
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Kills (SIGKILL) every process whose command line names `data_dir` (the
/// containerd and its shims) and all their descendants, then lazily
/// unmounts what is mounted under `data_dir`, deepest first. Returns how
/// many processes were killed.
pub fn kill_all(data_dir: &Path) -> usize {
    let key = data_dir.to_string_lossy().to_string();
    let me = std::process::id();
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    let mut doomed: Vec<u32> = pids.iter().copied().filter(|p| *p != me && cmdline(*p).contains(&key)).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for p in &pids {
            if *p != me && !doomed.contains(p) && parent(*p).is_some_and(|pp| doomed.contains(&pp)) {
                doomed.push(*p);
                changed = true;
            }
        }
    }
    for p in doomed.iter().rev() {
        if let Some(pid) = rustix::process::Pid::from_raw(*p as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    if !doomed.is_empty() {
        std::thread::sleep(Duration::from_millis(200));
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut under: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with(&key) && (m.len() == key.len() || m[key.len()..].starts_with('/')))
        .collect();
    under.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in under {
        if let Err(e) = rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH) {
            tracing::warn!(mount = m, error = %e, "left mounted");
        }
    }
    tracing::info!(killed = doomed.len(), data_dir = %data_dir.display(), "node processes stopped");
    doomed.len()
}
