//! cgroup2 for the node: mounted at /sys/fs/cgroup when nothing is there,
//! the controllers pods need (cpu, memory, pids, io, cpuset, hugetlb)
//! enabled in the root's `cgroup.subtree_control`, and a `kubepods`
//! subtree (with `burstable` and `besteffort`) delegating them, as the
//! cgroupfs driver lays pods out.
//!
//! Hybrid layout (v1 hierarchies on a tmpfs at /sys/fs/cgroup, cgroup2 at
//! `unified`, as older hosts mount it): controllers bound to v1 cannot be
//! enabled in v2; the subtree is made in `unified` with what v2 has, and
//! the line says which controllers v1 holds. A device never mounts v1.

use std::path::{Path, PathBuf};

const CGROUP2_MAGIC: u64 = 0x6367_7270;
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// Controllers pods want, in the order they are enabled.
pub const WANTED: &[&str] = &["cpuset", "cpu", "io", "memory", "hugetlb", "pids"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// cgroup2 at the root: the device's layout.
    Unified,
    /// v1 on a tmpfs, cgroup2 at `root/unified`.
    Hybrid(PathBuf),
    /// v1 only (a tmpfs without `unified`): nothing to do in v2.
    Legacy,
    /// Nothing mounted: mount cgroup2 here.
    Unmounted,
}

/// Decide from the filesystem types of the root and of `root/unified`.
pub fn layout(root: &Path, root_type: Option<u64>, unified_type: Option<u64>) -> Layout {
    match root_type {
        Some(CGROUP2_MAGIC) => Layout::Unified,
        Some(TMPFS_MAGIC) if unified_type == Some(CGROUP2_MAGIC) => Layout::Hybrid(root.join("unified")),
        Some(TMPFS_MAGIC) => Layout::Legacy,
        _ => Layout::Unmounted,
    }
}

fn fs_type(p: &Path) -> Option<u64> {
    rustix::fs::statfs(p).ok().map(|s| s.f_type as u64)
}

/// Enable `wanted` ∩ available in `dir`'s subtree_control, one at a time
/// (one refused controller must not block the others).
fn enable(dir: &Path, wanted: &[&str]) -> (Vec<String>, Vec<String>) {
    let available = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let available: Vec<&str> = available.split_whitespace().collect();
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for c in wanted {
        if !available.contains(c) {
            off.push(c.to_string());
            continue;
        }
        match std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}")) {
            Ok(()) => on.push(c.to_string()),
            Err(e) => off.push(format!("{c} ({e})")),
        }
    }
    (on, off)
}

/// Controllers held by v1 hierarchies (from /proc/cgroups' hierarchy ids).
fn held_by_v1() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[1] != "0" && f[3] == "1").then(|| f[0].to_string())
        })
        .collect()
}

pub fn setup(root: &Path, mounted: &mut Vec<PathBuf>) -> Result<String, String> {
    let lay = layout(root, fs_type(root), fs_type(&root.join("unified")));
    let v2 = match &lay {
        Layout::Unified => root.to_path_buf(),
        Layout::Hybrid(u) => u.clone(),
        Layout::Legacy => return Err(format!("{} holds cgroup v1 only (no cgroup2 at {}/unified): pods run without the node's cgroup2 subtree", root.display(), root.display())),
        Layout::Unmounted => {
            std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
            let flags = rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV | rustix::mount::MountFlags::NOEXEC;
            // nsdelegate and memory_recursiveprot where the kernel has them.
            rustix::mount::mount("cgroup2", root, "cgroup2", flags, Some(c"nsdelegate,memory_recursiveprot"))
                .or_else(|_| rustix::mount::mount("cgroup2", root, "cgroup2", flags, None))
                .map_err(|e| format!("cannot mount cgroup2 on {}: {e}", root.display()))?;
            mounted.push(root.to_path_buf());
            root.to_path_buf()
        }
    };
    let (on, off) = enable(&v2, WANTED);
    let kubepods = v2.join("kubepods");
    for d in [kubepods.clone(), kubepods.join("burstable"), kubepods.join("besteffort")] {
        std::fs::create_dir_all(&d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    let wanted: Vec<&str> = on.iter().map(String::as_str).collect();
    let mut refused = Vec::new();
    for d in [kubepods.clone(), kubepods.join("burstable"), kubepods.join("besteffort")] {
        let (_, no) = enable(&d, &wanted);
        refused.extend(no.into_iter().map(|c| format!("{c} in {}", d.display())));
    }
    let v1 = if matches!(lay, Layout::Hybrid(_)) { held_by_v1() } else { Vec::new() };
    let mut detail = format!("layout={} subtree={} controllers={}", match lay {
        Layout::Unified => "unified",
        Layout::Hybrid(_) => "hybrid",
        _ => "mounted",
    }, kubepods.display(), if on.is_empty() { "none".into() } else { on.join(",") });
    if !off.is_empty() {
        detail.push_str(&format!(" unavailable={}", off.join(",")));
    }
    if !v1.is_empty() {
        detail.push_str(&format!(" held_by_v1={}", v1.join(",")));
    }
    if !refused.is_empty() {
        detail.push_str(&format!(" refused={}", refused.join(",")));
    }
    if matches!(lay, Layout::Hybrid(_)) {
        tracing::warn!(controllers_in_v1 = v1.join(","), "cgroup v1 hierarchies are mounted (hybrid layout): their controllers cannot be delegated to kubepods in cgroup2");
    }
    Ok(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_from_filesystem_types() {
        let r = Path::new("/sys/fs/cgroup");
        assert_eq!(layout(r, Some(CGROUP2_MAGIC), None), Layout::Unified);
        assert_eq!(layout(r, Some(TMPFS_MAGIC), Some(CGROUP2_MAGIC)), Layout::Hybrid(r.join("unified")));
        assert_eq!(layout(r, Some(TMPFS_MAGIC), Some(TMPFS_MAGIC)), Layout::Legacy);
        assert_eq!(layout(r, Some(0x6265_6572), None), Layout::Unmounted, "sysfs: nothing mounted yet");
        assert_eq!(layout(r, None, None), Layout::Unmounted);
    }
}
