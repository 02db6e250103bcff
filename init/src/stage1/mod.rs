//! Stage 1: PID 1 in the initramfs. Mounts /proc, /sys, /dev; loads the
//! modules the root device needs; finds the slot's root partition by label
//! (`coracle.slot=a|b` on the kernel command line); mounts it read-only;
//! prepares and mounts the data partition on its /var (format on first
//! boot, grow to fill the disk); switches root; execs stage 2.
//!
//! Every failure prints one line saying what was missing and reboots after
//! a delay, so the boot loader can fall back to the other slot.

pub mod cmdline;
pub mod disks;
pub mod fs;
pub mod modules;

use coracle_ota::disk;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where stage 1 looks and what it does; a device uses [`Options::device`].
#[derive(Debug, Clone)]
pub struct Options {
    pub cmdline: String,
    pub sys: PathBuf,
    pub dev: PathBuf,
    pub sysroot: PathBuf,
    pub modules_dir: Option<PathBuf>,
    /// Modules always loaded (the builder lists the root device's drivers).
    pub modules: Vec<String>,
    /// Mount /proc, /sys, /dev first (off when run inside a host).
    pub mount_api_filesystems: bool,
    /// Switch root and exec stage 2 at the end (off in tests).
    pub switch_root: bool,
    /// How long to wait for the root disk to appear.
    pub wait_for_disk: Duration,
    pub reboot_delay: Duration,
}

/// File the builder puts in the initramfs: its presence makes PID 1 run stage 1.
pub const MARKER: &str = "/coracle-stage1";
/// Module names the builder lists, one per line.
pub const MODULE_LIST: &str = "/etc/coracle/modules";

impl Options {
    pub fn device() -> Options {
        let release = rustix::system::uname().release().to_string_lossy().into_owned();
        Options {
            cmdline: std::fs::read_to_string("/proc/cmdline").unwrap_or_default(),
            sys: "/sys".into(),
            dev: "/dev".into(),
            sysroot: "/sysroot".into(),
            modules_dir: Some(Path::new("/lib/modules").join(release)),
            modules: std::fs::read_to_string(MODULE_LIST).unwrap_or_default().lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect(),
            mount_api_filesystems: true,
            switch_root: true,
            wait_for_disk: Duration::from_secs(30),
            reboot_delay: Duration::from_secs(10),
        }
    }
}

/// What stage 1 found and did.
#[derive(Debug)]
pub struct Booted {
    pub slot: String,
    pub root: PathBuf,
    pub data: PathBuf,
    pub formatted: bool,
    pub grown: bool,
    /// The data filesystem was not cleanly unmounted last time (its
    /// journal was replayed at this mount).
    pub unclean: bool,
}

fn api_filesystems() -> Result<(), String> {
    use rustix::mount::{mount, MountFlags};
    for (src, target, fstype, flags) in [
        ("proc", "/proc", "proc", MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC),
        ("sysfs", "/sys", "sysfs", MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC),
        ("devtmpfs", "/dev", "devtmpfs", MountFlags::NOSUID),
        ("tmpfs", "/run", "tmpfs", MountFlags::NOSUID | MountFlags::NODEV),
    ] {
        std::fs::create_dir_all(target).map_err(|e| format!("cannot create {target}: {e}"))?;
        match mount(src, target, fstype, flags, None) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::BUSY => {}
            Err(e) => return Err(format!("cannot mount {fstype} on {target}: {e}")),
        }
    }
    Ok(())
}

/// Run stage 1 up to (not including) the switch of root.
pub fn prepare(o: &Options) -> Result<Booted, String> {
    let started = Instant::now();
    if o.mount_api_filesystems {
        api_filesystems()?;
    }
    // On a device, Options::device() ran before /proc was mounted.
    let cmd = if o.cmdline.is_empty() && o.mount_api_filesystems {
        cmdline::parse(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default())
    } else {
        cmdline::parse(&o.cmdline)
    };
    let slot = cmd.slot.clone().ok_or("no coracle.slot=a|b on the kernel command line (the boot entry is broken)")?;
    let root_label = disk::root_label(&slot).ok_or_else(|| format!("coracle.slot={slot} is neither a nor b"))?;

    let wanted: Vec<String> = o.modules.iter().chain(cmd.modules.iter()).cloned().collect();
    if let (Some(dir), false) = (&o.modules_dir, wanted.is_empty()) {
        let index = modules::Index::load(dir).map_err(|e| e.to_string())?;
        for path in index.order(&wanted).map_err(|e| e.to_string())? {
            modules::load_file(&path).map_err(|e| e.to_string())?;
        }
        tracing::info!(modules = wanted.len(), "kernel modules loaded");
    }

    // Disks show up while drivers probe: look until the deadline.
    let deadline = Instant::now() + o.wait_for_disk;
    let disk = loop {
        let mut found = disks::find(&o.sys, &o.dev, root_label, cmd.disk.as_deref());
        match found.len() {
            1 => break found.remove(0),
            0 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            0 => {
                let which = cmd.disk.as_deref().map(|d| format!(" on disk {d}")).unwrap_or_default();
                return Err(format!("no partition labelled {root_label}{which} after {}s: missing disk driver or wrong disk", o.wait_for_disk.as_secs()));
            }
            _ => {
                let names: Vec<&str> = found.iter().map(|d| d.name.as_str()).collect();
                return Err(format!("several disks have a {root_label} partition ({}); name the boot disk with coracle.disk=GUID", names.join(", ")));
            }
        }
    };
    let offset = disk.gpt.by_name(root_label).map(|p| p.offset_bytes()).unwrap_or(0);
    let kind = fs::detect(&disk.dev, offset).map_err(|e| format!("{}: cannot read {root_label}: {e}", disk.dev.display()))?;
    if !matches!(kind, fs::Kind::Erofs | fs::Kind::Squashfs) {
        return Err(format!("{root_label} (on {}) holds no EROFS or squashfs filesystem: the slot is corrupt or was never written", disk.dev.display()));
    }
    let root = disk.partition(&o.sys, &o.dev, root_label, true)?;
    mount_root(&root, kind, root_label, &o.sysroot)?;
    let release = std::fs::read_to_string(o.sysroot.join("etc/coracle-release")).unwrap_or_default();
    tracing::info!(marker = "coracle:stage1-root", slot, device = %root.display(), release = release.split_whitespace().collect::<Vec<_>>().join(" "), "root mounted read-only");

    let (data, formatted, grown, unclean) = prepare_data(&o.sys, &o.dev, disk, &o.sysroot)?;
    tracing::info!(marker = "coracle:stage1-data", device = %data.display(), formatted, grown, clean = !unclean, elapsed_ms = started.elapsed().as_millis() as u64, "data mounted");
    Ok(Booted { slot, root, data, formatted, grown, unclean })
}

fn mount_root(dev: &Path, kind: fs::Kind, label: &str, sysroot: &Path) -> Result<(), String> {
    use rustix::mount::{mount, MountFlags};
    let fstype = if kind == fs::Kind::Squashfs { "squashfs" } else { "erofs" };
    std::fs::create_dir_all(sysroot).map_err(|e| format!("cannot create {}: {e}", sysroot.display()))?;
    mount(dev, sysroot, fstype, MountFlags::RDONLY, None).map_err(|e| format!("{label} ({}): cannot mount {fstype}: {e} (corrupt filesystem?)", dev.display()))
}

/// Grow, format on first boot, check, mount on SYSROOT/var.
fn prepare_data(sys: &Path, dev: &Path, mut disk: disks::Disk, sysroot: &Path) -> Result<(PathBuf, bool, bool, bool), String> {
    let label = disk::DATA;
    let part = disk.gpt.by_name(label).cloned().ok_or_else(|| format!("{}: no partition labelled {label}", disk.dev.display()))?;
    let kind = fs::detect(&disk.dev, part.offset_bytes()).map_err(|e| format!("{}: cannot read {label}: {e}", disk.dev.display()))?;
    if kind == fs::Kind::Unknown {
        return Err(format!(
            "{label} (partition {} of {}) has neither an ext4 filesystem nor the first-boot marker; not formatting it, that could destroy data (reflash the image, or run mkfs.ext4 -L data on it)",
            part.number,
            disk.dev.display()
        ));
    }
    let unclean = kind == fs::Kind::Ext4 && fs::ext4_needs_recovery(&disk.dev, part.offset_bytes()).unwrap_or(false);
    // Grow the partition when the disk is larger than the image.
    let size = disks::size_of(&disk.dev).map_err(|e| format!("{}: {e}", disk.dev.display()))?;
    let grown = grow(&mut disk, sys, size, part.number)?;
    let data = disk.partition(sys, dev, label, false)?;
    let formatted = kind == fs::Kind::FirstBoot;
    let d = data.to_string_lossy().into_owned();
    if formatted {
        fs::run("mkfs.ext4", &["-F", "-q", "-L", label, "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", &d])?;
    }
    if grown && !formatted {
        // Offline: resize2fs wants a freshly checked filesystem, and an
        // online resize needs CAP_SYS_RESOURCE, which containers lack.
        fs::run("e2fsck", &["-f", "-p", &d])?;
        fs::run("resize2fs", &[&d])?;
    }
    let var = sysroot.join("var");
    let mounted = mount_ext4(&data, &var);
    if let Err(e) = mounted {
        tracing::warn!(device = d, error = %e, "data does not mount; checking it");
        let _ = fs::run("e2fsck", &["-p", &d]);
        mount_ext4(&data, &var).map_err(|e| format!("{label} ({d}): cannot mount ext4 even after e2fsck: {e}"))?;
    }
    Ok((data, formatted, grown, unclean))
}

fn mount_ext4(dev: &Path, at: &Path) -> Result<(), rustix::io::Errno> {
    use rustix::mount::{mount, MountFlags};
    // /var may be missing in a root filesystem built without it: a read-only
    // root cannot get it now, so the builder always creates it.
    mount(dev, at, "ext4", MountFlags::NOATIME | MountFlags::NODEV | MountFlags::NOSUID, None)
}

fn grow(disk: &mut disks::Disk, sys: &Path, size: u64, number: u32) -> Result<bool, String> {
    let disk_dev = disk.dev.clone();
    let disk_dev = disk_dev.as_path();
    let has_partitions = disk.kernel_has_partitions(sys);
    let gpt = &mut disk.gpt;
    if size <= gpt.sectors * coracle_ota::disk::gpt::SECTOR {
        return Ok(false);
    }
    let changed = gpt.grow(size, disk::DATA).map_err(|e| format!("{}: cannot grow the data partition: {e}", disk_dev.display()))?;
    if !changed {
        return Ok(false);
    }
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(disk_dev).map_err(|e| format!("{}: {e}", disk_dev.display()))?;
    gpt.write(&mut f).map_err(|e| format!("{}: writing the grown partition table: {e}", disk_dev.display()))?;
    f.sync_all().map_err(|e| format!("{}: {e}", disk_dev.display()))?;
    drop(f);
    let disk = disk_dev.to_string_lossy().into_owned();
    if has_partitions {
        fs::run("partx", &["--update", "--nr", &number.to_string(), &disk])?;
    }
    tracing::info!(disk, partition = number, "data partition grown to fill the disk");
    Ok(true)
}

/// Move the API filesystems into the new root, make it `/`, exec stage 2.
pub fn switch_root(sysroot: &Path) -> Result<std::convert::Infallible, String> {
    use rustix::mount::mount_move;
    for d in ["/dev", "/proc", "/sys", "/run"] {
        let target = sysroot.join(d.trim_start_matches('/'));
        mount_move(d, &target).map_err(|e| format!("cannot move {d} to {}: {e}", target.display()))?;
    }
    std::env::set_current_dir(sysroot).map_err(|e| format!("{}: {e}", sysroot.display()))?;
    mount_move(".", "/").map_err(|e| format!("cannot make {} the root: {e}", sysroot.display()))?;
    rustix::process::chroot(".").map_err(|e| format!("chroot: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))?;
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new("/usr/bin/coracle").arg0("coracle").arg("init").exec();
    Err(format!("cannot exec stage 2 (/usr/bin/coracle init): {err}"))
}

/// Stage 1 on a device: never returns (execs stage 2, or reboots).
pub fn main(o: Options) -> ! {
    let result = prepare(&o).and_then(|b| {
        eprintln!(
            "coracle: stage 1: slot {} root {} data {}{}{}{}",
            b.slot,
            b.root.display(),
            b.data.display(),
            if b.formatted { " (formatted on first boot)" } else { "" },
            if b.grown { " (grown to fill the disk)" } else { "" },
            if b.unclean { " (not cleanly unmounted last time: journal replayed)" } else { "" }
        );
        crate::pid1::markers::milestone("stage1 done");
        if o.switch_root {
            switch_root(&o.sysroot).map(|_| ())
        } else {
            Ok(())
        }
    });
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("coracle: stage 1 failed: {e}; rebooting in {}s so the boot loader can fall back", o.reboot_delay.as_secs());
            tracing::error!(marker = "coracle:stage1-failed", error = e, "stage 1 failed");
            std::thread::sleep(o.reboot_delay);
            if std::process::id() == 1 {
                let err = crate::pid1::shutdown::reboot_now(crate::pid1::shutdown::Kind::Reboot);
                eprintln!("coracle: reboot failed: {err}");
            }
            std::process::exit(1)
        }
    }
}
