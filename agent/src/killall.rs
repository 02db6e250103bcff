//! Stopping everything a node left running on a host, like k3s' killall
//! script: the supervised containerd, every shim started for this data
//! dir with the containers below them, and the mounts under the data dir.
//! Pods normally outlive the agent (a restart adopts them); this is for
//! tearing a host node down (`coracle killall`, tests, benchmarks).
//! The pods' network namespaces go too: containerd pins each with a bind
//! mount `/run/netns/cni-*`, which outlives the killed pause process and
//! keeps the pod's veth pair (its host end stays on the host) until removed.
//! Only `cni-*` entries that a killed process was in are removed.

use std::path::Path;
use std::time::Duration;

/// Where containerd pins pod network namespaces (as `ip netns` does).
const NETNS_DIR: &str = "/run/netns";

/// A network namespace's identity: device and inode of its nsfs file.
fn netns_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

/// Unmounts and removes the `cni-*` entries of `dir` that are one of
/// `namespaces`; returns how many.
fn remove_pod_netns(dir: &Path, namespaces: &[(u64, u64)]) -> usize {
    if namespaces.is_empty() {
        return 0;
    }
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in rd.flatten() {
        let path = entry.path();
        let ours = entry.file_name().to_str().is_some_and(|n| n.starts_with("cni-")) && netns_id(&path).is_some_and(|id| namespaces.contains(&id));
        if !ours {
            continue;
        }
        let _ = rustix::mount::unmount(&path, rustix::mount::UnmountFlags::DETACH);
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!(netns = %path.display(), error = %e, "pod network namespace left behind"),
        }
    }
    removed
}

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
    let own = netns_id(Path::new("/proc/self/ns/net"));
    let pod_netns: Vec<(u64, u64)> = doomed.iter().filter_map(|p| netns_id(Path::new(&format!("/proc/{p}/ns/net")))).filter(|n| Some(*n) != own).collect();
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
    let netns = remove_pod_netns(Path::new(NETNS_DIR), &pod_netns);
    tracing::info!(killed = doomed.len(), netns, data_dir = %data_dir.display(), "node processes stopped");
    doomed.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cni_entries_of_killed_namespaces_are_removed() {
        let dir = std::env::temp_dir().join(format!("coracle-killall-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        for f in ["cni-ours", "cni-theirs", "named"] {
            std::fs::write(dir.join(f), f).expect("write");
        }
        let ids: Vec<(u64, u64)> = ["cni-ours", "named"].iter().filter_map(|f| netns_id(&dir.join(f))).collect();
        assert_eq!(remove_pod_netns(&dir, &ids), 1);
        assert!(!dir.join("cni-ours").exists());
        assert!(dir.join("cni-theirs").exists() && dir.join("named").exists(), "not ours, or not a pod's");
        assert_eq!(remove_pod_netns(&dir, &[]), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_process_netns_has_an_identity() {
        assert!(netns_id(Path::new("/proc/self/ns/net")).is_some());
        assert_eq!(netns_id(Path::new("/proc/self/ns/net")), netns_id(Path::new(&format!("/proc/{}/ns/net", std::process::id()))));
    }
}
