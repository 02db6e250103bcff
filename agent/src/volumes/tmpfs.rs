//! Memory-backed volume directories (emptyDir `medium: Memory`, secrets,
//! projected volumes): tmpfs mounts on the host, and finding and removing
//! every mount under a pod's directory before it is deleted.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Whether `path` is a mount point (another device than its parent).
pub fn is_mount_point(path: &Path) -> bool {
    let (Ok(m), Some(parent)) = (std::fs::symlink_metadata(path), path.parent()) else { return false };
    std::fs::metadata(parent).is_ok_and(|p| p.dev() != m.dev())
}

/// Mounts a tmpfs on `path` (created if missing) unless one is there.
pub fn mount(path: &Path, size_bytes: Option<u64>) -> io::Result<()> {
    std::fs::create_dir_all(path)?;
    if is_mount_point(path) {
        return Ok(());
    }
    let mut opts = String::from("mode=0777");
    if let Some(size) = size_bytes.filter(|s| *s > 0) {
        opts.push_str(&format!(",size={size}"));
    }
    let data = std::ffi::CString::new(opts).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    rustix::mount::mount("tmpfs", path, "tmpfs", rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV, data.as_c_str())
        .map_err(io::Error::from)
}

/// Decodes the octal escapes of `/proc/self/mountinfo` (`\040` = space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or under `dir` in `mountinfo` text, deepest first.
pub fn mounts_under_in(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// Mount points at or under `dir` on this host, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts_under_in(&info, dir)
}

/// Unmounts everything under `dir`; an error names the first mount that
/// stayed (the caller must then not delete `dir`).
pub fn unmount_all(dir: &Path) -> io::Result<()> {
    // A mount may be stacked several times: repeat while progress is made.
    for _ in 0..8 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return Ok(());
        }
        for m in &mounts {
            if let Err(e) = rustix::mount::unmount(m, rustix::mount::UnmountFlags::empty()) {
                // Busy (a process still has it open): detach it instead.
                rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH)
                    .map_err(|e2| io::Error::other(format!("cannot unmount {}: {e}; {e2}", m.display())))?;
            }
        }
    }
    match mounts_under(dir).first() {
        None => Ok(()),
        Some(m) => Err(io::Error::other(format!("{} is still mounted", m.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mounts_under_a_directory() {
        let info = "22 1 0:21 / /proc rw - proc proc rw\n\
                    90 30 0:50 / /var/lib/x/pods/u1/volumes/kubernetes.io~empty-dir/cache rw - tmpfs tmpfs rw\n\
                    91 30 0:51 / /var/lib/x/pods/u1/volumes/kubernetes.io~secret/my\\040secret rw - tmpfs tmpfs rw\n\
                    92 91 0:52 / /var/lib/x/pods/u1/volumes/kubernetes.io~secret/my\\040secret/deeper rw - tmpfs tmpfs rw\n\
                    93 30 0:53 / /var/lib/x/pods/u10/volumes/x rw - tmpfs tmpfs rw\n";
        let m = mounts_under_in(info, Path::new("/var/lib/x/pods/u1"));
        assert_eq!(m.len(), 3);
        assert_eq!(m[0], PathBuf::from("/var/lib/x/pods/u1/volumes/kubernetes.io~secret/my secret/deeper"));
        assert!(m.contains(&PathBuf::from("/var/lib/x/pods/u1/volumes/kubernetes.io~secret/my secret")));
    }
}
