//! The filesystems stage 2 needs that stage 1 did not bring: tmpfs on /run
//! and /tmp, devpts on /dev/pts (container terminals), tmpfs on /dev/shm;
//! each only when nothing is mounted there yet. Then the root's mount
//! propagation becomes shared (as systemd makes it), which Kubernetes'
//! `mountPropagation` needs.

use rustix::mount::{mount, MountFlags, MountPropagationFlags};
use std::path::{Path, PathBuf};

/// Mount points from a mountinfo text (field 5, octal escapes undone).
pub fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo.lines().filter_map(|l| l.split(' ').nth(4)).map(|p| PathBuf::from(unescape(p))).collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether something is mounted on `path` (in this mount namespace).
pub fn is_mount_point(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mount_points(&info).iter().any(|p| p == path)
}

fn ensure(src: &str, target: &str, fstype: &str, flags: MountFlags, data: &str, mounted: &mut Vec<PathBuf>) -> Result<bool, String> {
    let t = Path::new(target);
    if is_mount_point(t) {
        return Ok(false);
    }
    std::fs::create_dir_all(t).map_err(|e| format!("cannot create {target}: {e}"))?;
    let data = std::ffi::CString::new(data).map_err(|_| format!("{target}: bad mount options"))?;
    let data = if data.as_bytes().is_empty() { None } else { Some(data.as_c_str()) };
    mount(src, t, fstype, flags, data).map_err(|e| format!("cannot mount {fstype} on {target}: {e}"))?;
    mounted.push(t.to_path_buf());
    Ok(true)
}

pub fn setup(mounted: &mut Vec<PathBuf>) -> Result<String, String> {
    let nosuid_nodev = MountFlags::NOSUID | MountFlags::NODEV;
    let mut done = Vec::new();
    let mut errors = Vec::new();
    for (src, target, fstype, flags, data) in [
        ("tmpfs", "/run", "tmpfs", nosuid_nodev, "mode=0755"),
        ("tmpfs", "/tmp", "tmpfs", nosuid_nodev, "mode=1777"),
        ("devpts", "/dev/pts", "devpts", MountFlags::NOSUID | MountFlags::NOEXEC, "newinstance,ptmxmode=0666,mode=0620"),
        ("tmpfs", "/dev/shm", "tmpfs", nosuid_nodev, "mode=1777"),
    ] {
        match ensure(src, target, fstype, flags, data, mounted) {
            Ok(true) => done.push(target),
            Ok(false) => {}
            Err(e) => errors.push(e),
        }
    }
    if let Err(e) = rustix::mount::mount_change("/", MountPropagationFlags::SHARED | MountPropagationFlags::REC) {
        errors.push(format!("cannot make / shared (mount propagation): {e}"));
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    Ok(if done.is_empty() { "everything was mounted already; / is shared".into() } else { format!("mounted {}; / is shared", done.join(", ")) })
}

#[cfg(test)]
mod tests {
    #[test]
    fn mountinfo_points_are_unescaped() {
        let info = "22 1 0:21 / /run rw,nosuid shared:5 - tmpfs tmpfs rw\n30 22 0:30 / /mnt/a\\040b rw - ext4 /dev/x rw\n";
        let points = super::mount_points(info);
        assert_eq!(points, vec![std::path::PathBuf::from("/run"), "/mnt/a b".into()]);
    }
}
