//! What the host has: CPUs, memory, huge pages, the data filesystem, pids;
//! the node's capacity and allocatable, and the eviction observations.
//!
//! Owns reading procfs/sysfs/statvfs and turning them into quantities.
//! Must not decide conditions (see `conditions`) nor talk to the API.

use super::eviction::{Observations, Observed, Signal, Threshold};
use std::collections::BTreeMap;
use std::path::Path;

/// Pods a node accepts (the kubelet's `--max-pods` default).
pub const MAX_PODS: u64 = 110;

/// The host's resources.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resources {
    pub cpus: u64,
    pub memory_bytes: u64,
    /// `(size suffix like "2Mi", bytes reserved)`.
    pub hugepages: Vec<(String, u64)>,
    /// Size of the filesystem holding the data directory.
    pub ephemeral_bytes: u64,
}

/// CPUs: `processor` entries of `/proc/cpuinfo`.
pub fn parse_cpuinfo(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.split(':').next().map(|k| k.trim() == "processor").unwrap_or(false))
        .count() as u64
}

/// One `/proc/meminfo` field in bytes (`MemTotal:  16318412 kB`).
pub fn meminfo_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k.trim() != field {
            return None;
        }
        let mut it = v.split_whitespace();
        let n: u64 = it.next()?.parse().ok()?;
        match it.next() {
            Some("kB") => Some(n * 1024),
            None => Some(n),
            Some(_) => None,
        }
    })
}

/// Upstream's name for a huge page size (`hugepages-2048kB` → `2Mi`).
pub fn hugepage_size_name(dir_name: &str) -> Option<(String, u64)> {
    let kb: u64 = dir_name.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok()?;
    let bytes = kb * 1024;
    let name = if kb % (1024 * 1024) == 0 {
        format!("{}Gi", kb / (1024 * 1024))
    } else if kb % 1024 == 0 {
        format!("{}Mi", kb / 1024)
    } else {
        format!("{kb}Ki")
    };
    Some((name, bytes))
}

/// A byte count as the kubelet writes it (`Ki` when it divides evenly).
pub fn bytes_quantity(b: u64) -> String {
    if b != 0 && b % 1024 == 0 {
        format!("{}Ki", b / 1024)
    } else {
        b.to_string()
    }
}

/// statvfs of a path: (total bytes, available bytes, total inodes, free inodes).
pub fn fs_stats(path: &Path) -> Option<(u64, u64, u64, u64)> {
    let st = rustix::fs::statvfs(path).ok()?;
    let frsize = if st.f_frsize > 0 { st.f_frsize } else { st.f_bsize };
    Some((st.f_blocks * frsize, st.f_bavail * frsize, st.f_files, st.f_favail))
}

/// The nearest existing ancestor (the data dir may not exist yet).
fn existing(path: &Path) -> &Path {
    path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"))
}

/// Reads the host's resources; `data_dir` names the node filesystem.
pub fn read_host(data_dir: &Path) -> Resources {
    let cpus = std::fs::read_to_string("/proc/cpuinfo").map(|t| parse_cpuinfo(&t)).unwrap_or(0);
    let cpus = if cpus > 0 { cpus } else { std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1) };
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_bytes = meminfo_field(&meminfo, "MemTotal").unwrap_or(0);
    let mut hugepages = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") {
        for e in rd.flatten() {
            let Some((name, size)) = hugepage_size_name(&e.file_name().to_string_lossy()) else { continue };
            let n: u64 = std::fs::read_to_string(e.path().join("nr_hugepages")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            hugepages.push((name, n * size));
        }
    }
    hugepages.sort();
    let ephemeral_bytes = fs_stats(existing(data_dir)).map(|s| s.0).unwrap_or(0);
    Resources { cpus, memory_bytes, hugepages, ephemeral_bytes }
}

/// `status.capacity`.
pub fn capacity(r: &Resources) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("cpu".into(), r.cpus.to_string());
    m.insert("ephemeral-storage".into(), bytes_quantity(r.ephemeral_bytes));
    for (name, bytes) in &r.hugepages {
        m.insert(format!("hugepages-{name}"), bytes_quantity(*bytes));
    }
    m.insert("memory".into(), bytes_quantity(r.memory_bytes));
    m.insert("pods".into(), MAX_PODS.to_string());
    m
}

/// `status.allocatable`: capacity minus huge pages (memory) and the hard
/// eviction thresholds for memory and the node filesystem, as upstream
/// computes it with no kube/system reservations.
pub fn allocatable(r: &Resources, thresholds: &[Threshold]) -> BTreeMap<String, String> {
    let reserve = |s: Signal, cap: u64| -> u64 {
        thresholds.iter().find(|t| t.signal == s).map(|t| t.absolute(cap as f64).max(0.0) as u64).unwrap_or(0)
    };
    let hugepages: u64 = r.hugepages.iter().map(|(_, b)| *b).sum();
    let memory = r.memory_bytes.saturating_sub(hugepages).saturating_sub(reserve(Signal::MemoryAvailable, r.memory_bytes));
    let storage = r.ephemeral_bytes.saturating_sub(reserve(Signal::NodefsAvailable, r.ephemeral_bytes));
    let mut m = capacity(r);
    m.insert("memory".into(), bytes_quantity(memory));
    m.insert("ephemeral-storage".into(), bytes_quantity(storage));
    m
}

/// Threads running: the denominator of `/proc/loadavg`'s fourth field.
pub fn parse_loadavg_threads(text: &str) -> Option<u64> {
    text.split_whitespace().nth(3)?.split_once('/')?.1.parse().ok()
}

/// What the eviction signals read now. `nodefs` is the data dir, `imagefs`
/// the runtime's image store (often the same filesystem).
pub fn observe(nodefs: &Path, imagefs: &Path) -> Observations {
    let mut out = Vec::new();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    if let (Some(total), Some(avail)) = (meminfo_field(&meminfo, "MemTotal"), meminfo_field(&meminfo, "MemAvailable")) {
        out.push((Signal::MemoryAvailable, Observed { available: avail as f64, capacity: total as f64 }));
    }
    for (path, bytes, inodes) in [
        (nodefs, Signal::NodefsAvailable, Signal::NodefsInodesFree),
        (imagefs, Signal::ImagefsAvailable, Signal::ImagefsInodesFree),
    ] {
        if let Some((total, avail, files, ffree)) = fs_stats(existing(path)) {
            out.push((bytes, Observed { available: avail as f64, capacity: total as f64 }));
            // Filesystems without an inode limit (btrfs, tmpfs with nr_inodes=0) report 0.
            if files > 0 {
                out.push((inodes, Observed { available: ffree as f64, capacity: files as f64 }));
            }
        }
    }
    let pid_max: Option<u64> = std::fs::read_to_string("/proc/sys/kernel/pid_max").ok().and_then(|s| s.trim().parse().ok());
    let threads = std::fs::read_to_string("/proc/loadavg").ok().and_then(|t| parse_loadavg_threads(&t));
    if let (Some(max), Some(used)) = (pid_max, threads) {
        out.push((Signal::PidAvailable, Observed { available: max.saturating_sub(used) as f64, capacity: max as f64 }));
    }
    Observations(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_are_counted_from_cpuinfo() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: x\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\n";
        assert_eq!(parse_cpuinfo(text), 2);
        // arm64 kernels print the same key.
        assert_eq!(parse_cpuinfo("processor       : 0\nBogoMIPS        : 48.00\n\nprocessor       : 1\n"), 2);
        assert_eq!(parse_cpuinfo("garbage"), 0);
    }

    #[test]
    fn meminfo_fields_are_bytes() {
        let text = "MemTotal:       16318412 kB\nMemFree:         1000 kB\nMemAvailable:   8000000 kB\nHugePages_Total:       0\n";
        assert_eq!(meminfo_field(text, "MemTotal"), Some(16318412 * 1024));
        assert_eq!(meminfo_field(text, "MemAvailable"), Some(8000000 * 1024));
        assert_eq!(meminfo_field(text, "HugePages_Total"), Some(0));
        assert_eq!(meminfo_field(text, "Missing"), None);
    }

    #[test]
    fn quantities_look_like_the_kubelets() {
        assert_eq!(bytes_quantity(16318412 * 1024), "16318412Ki");
        assert_eq!(bytes_quantity(1000), "1000");
        assert_eq!(bytes_quantity(0), "0");
        assert_eq!(hugepage_size_name("hugepages-2048kB"), Some(("2Mi".into(), 2 * 1024 * 1024)));
        assert_eq!(hugepage_size_name("hugepages-1048576kB"), Some(("1Gi".into(), 1024 * 1024 * 1024)));
        assert_eq!(hugepage_size_name("other"), None);
    }

    #[test]
    fn allocatable_subtracts_eviction_thresholds_and_hugepages() {
        let r = Resources {
            cpus: 4,
            memory_bytes: 8 * 1024 * 1024 * 1024,
            hugepages: vec![("1Gi".into(), 0), ("2Mi".into(), 2 * 1024 * 1024 * 10)],
            ephemeral_bytes: 100 * 1024 * 1024 * 1024,
        };
        let t = super::super::eviction::thresholds(None).unwrap();
        let cap = capacity(&r);
        assert_eq!(cap["cpu"], "4");
        assert_eq!(cap["pods"], "110");
        assert_eq!(cap["memory"], "8388608Ki");
        assert_eq!(cap["hugepages-2Mi"], "20480Ki");
        assert_eq!(cap["hugepages-1Gi"], "0");
        let alloc = allocatable(&r, &t);
        assert_eq!(alloc["memory"], format!("{}Ki", 8 * 1024 * 1024 - 20 * 1024 - 100 * 1024));
        assert_eq!(alloc["ephemeral-storage"], bytes_quantity(90 * 1024 * 1024 * 1024));
        assert_eq!(alloc["cpu"], "4");
        // Without thresholds, allocatable memory is capacity minus huge pages.
        assert_eq!(allocatable(&r, &[])["ephemeral-storage"], cap["ephemeral-storage"]);
    }

    #[test]
    fn loadavg_gives_the_thread_count() {
        assert_eq!(parse_loadavg_threads("12.07 8.16 4.77 15/271 19279\n"), Some(271));
        assert_eq!(parse_loadavg_threads("bad"), None);
    }

    #[test]
    fn the_host_reports_something() {
        let r = read_host(Path::new("/nonexistent/dir"));
        assert!(r.cpus >= 1 && r.memory_bytes > 0 && r.ephemeral_bytes > 0, "{r:?}");
        let o = observe(Path::new("/tmp"), Path::new("/tmp"));
        assert!(o.get(Signal::MemoryAvailable).is_some() && o.get(Signal::NodefsAvailable).is_some(), "{o:?}");
    }
}
