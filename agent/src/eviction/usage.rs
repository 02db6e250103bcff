//! What a pod uses of the starved resource, measured on the host: memory
//! working set from the pod's cgroup (v1 or v2), disk bytes and inodes of
//! its writable layers (CRI `ListContainerStats`), logs and emptyDirs (a
//! walk of their directories), and processes from the pids controller.
//!
//! Best effort: what cannot be read counts as zero, never an error.

use crate::cri::api;
use crate::pods::{qos, sandbox};
use crate::Context;
use k8s_openapi::api::core::v1::Pod;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// One container's usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerUsage {
    pub name: String,
    pub memory: i128,
    pub disk: i128,
    pub inodes: i128,
}

/// A pod's usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodUsage {
    pub memory: i128,
    pub disk: i128,
    pub inodes: i128,
    pub pids: i128,
    pub containers: Vec<ContainerUsage>,
}

/// Working set as upstream computes it: usage minus inactive file pages
/// (`total_inactive_file` on v1, `inactive_file` on v2), not below zero.
pub fn working_set(usage: u64, memory_stat: &str, v2: bool) -> u64 {
    let key = if v2 { "inactive_file" } else { "total_inactive_file" };
    let inactive = memory_stat
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse::<u64>().ok())
        .unwrap_or(0);
    usage.saturating_sub(inactive)
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The working set of the cgroup `parent` (like `/kubepods/besteffort/pod<UID>`).
pub fn cgroup_working_set(parent: &str) -> Option<u64> {
    let root = Path::new(CGROUP_ROOT);
    let rel = parent.trim_start_matches('/');
    if root.join("cgroup.controllers").exists() {
        let dir = root.join(rel);
        let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
        return Some(working_set(read_u64(&dir.join("memory.current"))?, &stat, true));
    }
    let dir = root.join("memory").join(rel);
    let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
    Some(working_set(read_u64(&dir.join("memory.usage_in_bytes"))?, &stat, false))
}

/// Processes (tasks) in the cgroup `parent`.
pub fn cgroup_pids(parent: &str) -> Option<u64> {
    let root = Path::new(CGROUP_ROOT);
    let rel = parent.trim_start_matches('/');
    if root.join("cgroup.controllers").exists() {
        return read_u64(&root.join(rel).join("pids.current"));
    }
    read_u64(&root.join("pids").join(rel).join("pids.current"))
}

/// Bytes (allocated blocks) and inodes under `dir`, staying on its
/// filesystem (a memory-backed emptyDir is not disk) and not following
/// links.
pub fn du(dir: &Path) -> (u64, u64) {
    let Ok(top) = std::fs::symlink_metadata(dir) else { return (0, 0) };
    let dev = top.dev();
    let mut bytes = 0;
    let mut inodes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.dev() != dev {
                continue;
            }
            bytes += md.blocks() * 512;
            inodes += 1;
            if md.is_dir() {
                stack.push(e.path());
            }
        }
    }
    (bytes, inodes)
}

/// CRI stats of every container, by pod UID.
pub async fn container_stats(ctx: &Context) -> HashMap<String, Vec<api::ContainerStats>> {
    let mut out: HashMap<String, Vec<api::ContainerStats>> = HashMap::new();
    match ctx.cri.list_container_stats(api::ListContainerStatsRequest { filter: None }).await {
        Ok(r) => {
            for s in r.stats {
                let uid = s.attributes.as_ref().and_then(|a| a.labels.get("io.kubernetes.pod.uid")).cloned().unwrap_or_default();
                out.entry(uid).or_default().push(s);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read container stats for eviction"),
    }
    out
}

/// Measures `pod`, given the CRI stats of its containers. Blocking (walks
/// directories): call from a blocking task.
pub fn measure(cfg: &crate::AgentConfig, pod: &Pod, stats: &[api::ContainerStats]) -> PodUsage {
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    let parent = qos::cgroup_parent(qos::class(pod), uid);
    let log_dir = cfg.logs_dir().join(sandbox::log_dir_name(pod));
    let mut containers: Vec<ContainerUsage> = Vec::new();
    for s in stats {
        let Some(name) = s.attributes.as_ref().and_then(|a| a.metadata.as_ref()).map(|m| m.name.clone()) else { continue };
        let memory = s.memory.as_ref().and_then(|m| m.working_set_bytes.as_ref()).map(|v| v.value).unwrap_or(0);
        let layer = s.writable_layer.as_ref();
        let disk = layer.and_then(|l| l.used_bytes.as_ref()).map(|v| v.value).unwrap_or(0);
        let inodes = layer.and_then(|l| l.inodes_used.as_ref()).map(|v| v.value).unwrap_or(0);
        // Several instances (restarts) of one container add up.
        match containers.iter_mut().find(|c| c.name == name) {
            Some(c) => {
                c.memory += memory as i128;
                c.disk += disk as i128;
                c.inodes += inodes as i128;
            }
            None => containers.push(ContainerUsage { name, memory: memory as i128, disk: disk as i128, inodes: inodes as i128 }),
        }
    }
    for c in &mut containers {
        let (b, i) = du(&log_dir.join(&c.name));
        c.disk += b as i128;
        c.inodes += i as i128;
    }
    let (log_bytes, log_inodes) = du(&log_dir);
    let (vol_bytes, vol_inodes) = du(&cfg.pods_dir().join(uid).join("volumes").join("kubernetes.io~empty-dir"));
    let layers: i128 = stats.iter().filter_map(|s| s.writable_layer.as_ref()?.used_bytes.as_ref()).map(|v| v.value as i128).sum();
    let layer_inodes: i128 = stats.iter().filter_map(|s| s.writable_layer.as_ref()?.inodes_used.as_ref()).map(|v| v.value as i128).sum();
    let from_containers: i128 = containers.iter().map(|c| c.memory).sum();
    PodUsage {
        memory: cgroup_working_set(&parent).map(i128::from).unwrap_or(from_containers),
        disk: layers + log_bytes as i128 + vol_bytes as i128,
        inodes: layer_inodes + log_inodes as i128 + vol_inodes as i128,
        pids: cgroup_pids(&parent).map(i128::from).unwrap_or(0),
        containers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_set_subtracts_inactive_file() {
        let v1 = "cache 100\ninactive_file 7\ntotal_inactive_file 40\ntotal_active_file 1\n";
        assert_eq!(working_set(1000, v1, false), 960);
        let v2 = "anon 10\nfile 20\ninactive_file 300\nactive_file 5\n";
        assert_eq!(working_set(1000, v2, true), 700);
        assert_eq!(working_set(100, v2, true), 0);
        assert_eq!(working_set(100, "", false), 100);
    }

    #[test]
    fn reads_this_process_cgroup() {
        // The memory controller's line on v1, the unified one on v2.
        let v2 = Path::new(CGROUP_ROOT).join("cgroup.controllers").exists();
        let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let own = text.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
            let ours = if v2 { ctrl.is_empty() } else { ctrl.split(',').any(|c| c == "memory") };
            ours.then(|| path.to_string())
        });
        let own = own.expect("this process has a memory cgroup");
        assert!(cgroup_working_set(&own).is_some_and(|b| b > 0), "no working set for {own}");
    }

    #[test]
    fn du_counts_files_and_directories() {
        let dir = std::env::temp_dir().join(format!("coracle-du-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).expect("test dir");
        std::fs::write(dir.join("sub/a"), vec![1u8; 64 * 1024]).expect("test file");
        std::fs::write(dir.join("b"), b"x").expect("test file");
        let (bytes, inodes) = du(&dir);
        assert_eq!(inodes, 3);
        assert!(bytes >= 64 * 1024, "{bytes}");
        assert_eq!(du(&dir.join("missing")), (0, 0));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
