//! Power off and reboot, in order: stop what runs in process (pods first),
//! stop the supervised services newest first, end every remaining process
//! (SIGTERM, a grace period, SIGKILL), sync, unmount what PID 1 mounted
//! (newest first; remount read-only what stays busy), then reboot(2).

use super::reaper::Reaper;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PowerOff,
    Reboot,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PowerOff => "power off",
            Kind::Reboot => "reboot",
        }
    }
}

/// Every process of this PID namespace but PID 1 and the kernel's own
/// threads (which ignore signals), from /proc.
fn other_processes() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()).filter(|p| *p != 1 && !is_kernel_thread(*p)).collect()
}

/// `PF_KTHREAD` in the flags of /proc/PID/stat (the 9th field).
fn is_kernel_thread(pid: i32) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    stat_flags(&stat).is_some_and(|f| f & PF_KTHREAD != 0)
}

fn stat_flags(stat: &str) -> Option<u64> {
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(6)?.parse().ok()
}

/// Open files under `mount`, per process, for the log when it stays busy.
fn holders(mount: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else { continue };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if target.starts_with(mount) {
                    out.push(format!("{pid}({}) {}", comm.trim(), target.display()));
                }
            }
        }
        if let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) {
            if cwd.starts_with(mount) {
                out.push(format!("{pid}({}) cwd {}", comm.trim(), cwd.display()));
            }
        }
    }
    out
}

fn signal_all(sig: rustix::process::Signal) -> usize {
    let mut n = 0;
    for pid in other_processes() {
        if let Some(p) = rustix::process::Pid::from_raw(pid) {
            if rustix::process::kill_process(p, sig).is_ok() {
                n += 1;
            }
        }
    }
    n
}

/// End every process left: SIGTERM, wait up to `grace`, then SIGKILL.
pub async fn end_all_processes(reaper: &Reaper, grace: Duration) {
    let n = signal_all(rustix::process::Signal::TERM);
    if n == 0 {
        return;
    }
    tracing::info!(processes = n, grace_s = grace.as_secs(), "sent SIGTERM to remaining processes");
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        reaper.reap_any();
        if other_processes().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n = signal_all(rustix::process::Signal::KILL);
    tracing::warn!(processes = n, "killed processes that outlived SIGTERM");
    for _ in 0..40 {
        reaper.reap_any();
        if other_processes().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Unmount `mounts` (newest last in the list), each after whatever is
/// still mounted below it (pod volumes, container root filesystems under
/// /var and /run), newest first; what stays busy is remounted read-only
/// so its filesystem is clean.
pub fn unmount_all(mounts: &[PathBuf]) {
    for m in mounts.iter().rev() {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let below: Vec<PathBuf> = crate::pid1::setup::mounts::mount_points(&info).into_iter().filter(|p| p != m && p.starts_with(m)).collect();
        for sub in below.iter().rev() {
            if let Err(e) = rustix::mount::unmount(sub, rustix::mount::UnmountFlags::empty()) {
                tracing::debug!(mount = %sub.display(), error = %e, "cannot unmount");
            }
        }
        match rustix::mount::unmount(m, rustix::mount::UnmountFlags::empty()) {
            Ok(()) => tracing::info!(mount = %m.display(), "unmounted"),
            Err(e) => {
                let held = holders(m);
                let ro = rustix::mount::mount_remount(m, rustix::mount::MountFlags::RDONLY, "");
                tracing::warn!(mount = %m.display(), error = %e, remounted_read_only = ro.is_ok(), held_by = ?held, "cannot unmount");
            }
        }
    }
}

/// The last step: hand the machine to the kernel. Does not return unless
/// the kernel refused (no CAP_SYS_BOOT).
pub fn reboot_now(kind: Kind) -> std::io::Error {
    rustix::fs::sync();
    let cmd = match kind {
        Kind::PowerOff => rustix::system::RebootCommand::PowerOff,
        Kind::Reboot => rustix::system::RebootCommand::Restart,
    };
    match rustix::system::reboot(cmd) {
        Ok(()) => std::io::Error::other("reboot(2) returned"),
        Err(e) => std::io::Error::from(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernel_threads_are_told_by_their_stat_flags() {
        assert_eq!(super::stat_flags("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0"), Some(2_129_984));
        assert_eq!(super::stat_flags("77 (a (b) c) S 1 77 77 0 -1 4194560 10 0"), Some(4_194_560));
        assert!(super::stat_flags("garbage").is_none());
        assert!(!super::is_kernel_thread(std::process::id() as i32));
    }
}
