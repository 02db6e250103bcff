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

/// Every process of this PID namespace but PID 1, from /proc.
fn other_processes() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()).filter(|p| *p != 1).collect()
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
                let ro = rustix::mount::mount_remount(m, rustix::mount::MountFlags::RDONLY, "");
                tracing::warn!(mount = %m.display(), error = %e, remounted_read_only = ro.is_ok(), "cannot unmount");
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
