//! Pod-level cgroups (cgroupfs layout, shared convention): the pod's
//! directory is made before its sandbox and gets the pod's CPU and memory
//! limits, on cgroup v1 (one hierarchy per controller) or v2 (unified);
//! it is removed once the pod's containers are gone.
//!
//! Best effort: a missing controller or a refused write is logged and
//! never fails a pod (runc creates the container cgroups below either way).

use super::qos::Limits;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

fn is_v2(root: &Path) -> bool {
    root.join("cgroup.controllers").exists()
}

/// `shares` (2..262144) as a v2 `cpu.weight` (1..10000).
pub fn shares_to_weight(shares: i64) -> i64 {
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

fn write(path: &Path, value: &str) {
    if let Err(e) = std::fs::write(path, value) {
        tracing::debug!(path = %path.display(), value, error = %e, "cgroup setting not written");
    }
}

/// Makes the pod cgroup `parent` (like `/kubepods/burstable/pod<UID>`)
/// and writes the pod's limits.
pub fn ensure(parent: &str, limits: &Limits) {
    ensure_under(Path::new(ROOT), parent, limits)
}

pub fn ensure_under(root: &Path, parent: &str, limits: &Limits) {
    let rel = parent.trim_start_matches('/');
    if is_v2(root) {
        // Enable the controllers on the way down.
        let mut dir = root.to_path_buf();
        for part in Path::new(rel).components() {
            write(&dir.join("cgroup.subtree_control"), "+cpu +memory +pids");
            dir.push(part);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                tracing::debug!(path = %dir.display(), error = %e, "pod cgroup not created");
                return;
            }
        }
        write(&dir.join("cpu.weight"), &shares_to_weight(limits.cpu_shares).to_string());
        let max = if limits.cpu_quota > 0 { limits.cpu_quota.to_string() } else { "max".into() };
        write(&dir.join("cpu.max"), &format!("{max} {}", limits.cpu_period.max(1000)));
        write(&dir.join("memory.max"), &if limits.memory_limit > 0 { limits.memory_limit.to_string() } else { "max".into() });
        return;
    }
    for ctrl in ["cpu", "memory", "pids"] {
        let base = root.join(ctrl);
        if !base.is_dir() {
            continue;
        }
        let dir = base.join(rel);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::debug!(path = %dir.display(), error = %e, "pod cgroup not created");
            continue;
        }
        match ctrl {
            "cpu" => {
                write(&dir.join("cpu.shares"), &limits.cpu_shares.to_string());
                write(&dir.join("cpu.cfs_period_us"), &limits.cpu_period.max(1000).to_string());
                write(&dir.join("cpu.cfs_quota_us"), &if limits.cpu_quota > 0 { limits.cpu_quota.to_string() } else { "-1".into() });
            }
            "memory" => {
                write(&dir.join("memory.limit_in_bytes"), &if limits.memory_limit > 0 { limits.memory_limit.to_string() } else { "-1".into() });
            }
            _ => {}
        }
    }
}

/// Removes the pod cgroup (and empty leftovers below it) in every
/// hierarchy. Directories still holding processes stay.
pub fn remove(parent: &str) {
    remove_under(Path::new(ROOT), parent)
}

fn rmdir_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

pub fn remove_under(root: &Path, parent: &str) {
    let rel = parent.trim_start_matches('/');
    let dirs: Vec<PathBuf> = if is_v2(root) {
        vec![root.join(rel)]
    } else {
        std::fs::read_dir(root).map(|rd| rd.flatten().map(|e| e.path().join(rel)).collect()).unwrap_or_default()
    };
    for d in dirs {
        if d.is_dir() {
            rmdir_tree(&d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn v1_layout_in_a_plain_directory() {
        let root = std::env::temp_dir().join(format!("coracle-cg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("cpu")).expect("mkdir");
        std::fs::create_dir_all(root.join("memory")).expect("mkdir");
        let l = Limits { cpu_shares: 512, cpu_quota: 50_000, cpu_period: 100_000, memory_limit: 1 << 20, oom_score_adj: 0 };
        ensure_under(&root, "/kubepods/burstable/podu", &l);
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_default();
        assert_eq!(read("cpu/kubepods/burstable/podu/cpu.shares"), "512");
        assert_eq!(read("cpu/kubepods/burstable/podu/cpu.cfs_quota_us"), "50000");
        assert_eq!(read("memory/kubepods/burstable/podu/memory.limit_in_bytes"), "1048576");
        // rmdir does not remove files in a plain directory; cgroupfs has none to remove.
        for f in ["cpu/kubepods/burstable/podu/cpu.shares", "cpu/kubepods/burstable/podu/cpu.cfs_quota_us", "cpu/kubepods/burstable/podu/cpu.cfs_period_us", "memory/kubepods/burstable/podu/memory.limit_in_bytes"] {
            let _ = std::fs::remove_file(root.join(f));
        }
        remove_under(&root, "/kubepods/burstable/podu");
        assert!(!root.join("cpu/kubepods/burstable/podu").exists());
        assert!(root.join("cpu/kubepods/burstable").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
