//! Boot blessing: once the node is healthy, tell the board's boot loader
//! that the running slot is good, so it stops counting tries.
//!
//! - systemd-boot (x86, QEMU, UEFI arm64): boot counting by file name
//!   (Automatic Boot Assessment). The running slot's entry on the ESP,
//!   `EFI/Linux/coracle-a+2-1.efi` (or `loader/entries/coracle-a+2-1.conf`),
//!   is renamed to `coracle-a.efi`; an entry without a counter is good.
//! - Raspberry Pi: firmware `tryboot`. When the running boot is a tryboot
//!   (`/proc/device-tree/chosen/bootloader/tryboot` is 1), autoboot.txt's
//!   `[all]` `boot_partition` becomes the `[tryboot]` one.
//!
//! The ESP (or the Pi's boot partition) is the FAT partition labelled
//! `esp` (any case) on a disk with a GPT; it is mounted for the change at
//! `/run/coracle/esp` and unmounted after. Everything here works on a
//! directory, so tests can use a mounted FAT image.

use std::path::{Path, PathBuf};

/// `coracle-a+2-1.efi` -> (`coracle-a`, `.efi`): a boot-counted name.
pub fn split_counted(name: &str) -> Option<(&str, &str)> {
    let (stem, ext) = match name.rfind('.') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    };
    let (base, counter) = stem.rsplit_once('+')?;
    let ok = match counter.split_once('-') {
        Some((left, done)) => !left.is_empty() && !done.is_empty() && left.bytes().chain(done.bytes()).all(|b| b.is_ascii_digit()),
        None => !counter.is_empty() && counter.bytes().all(|b| b.is_ascii_digit()),
    };
    ok.then_some((base, ext))
}

/// Whether entry base name `base` boots `slot` (`coracle-a`, `coracle-a-1.2`).
fn is_slot(base: &str, slot: &str) -> bool {
    let want = format!("coracle-{slot}");
    base == want || base.starts_with(&format!("{want}-")) || base.starts_with(&format!("{want}_"))
}

/// Boot-counted entries of `slot` under an ESP mounted at `esp`.
pub fn counted_entries(esp: &Path, slot: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["EFI/Linux", "loader/entries"] {
        let Ok(rd) = std::fs::read_dir(esp.join(dir)) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if split_counted(&name).is_some_and(|(base, ext)| is_slot(base, slot) && (ext.eq_ignore_ascii_case(".efi") || ext == ".conf")) {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// What the boot loader thinks of the running slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trial {
    /// Counted entries (systemd-boot) of the running slot.
    Counted(Vec<PathBuf>),
    /// A Raspberry Pi tryboot.
    TryBoot,
    /// Nothing is being tried: the slot is good already.
    No,
}

pub fn trial(esp: &Path, slot: &str, tryboot: bool) -> Trial {
    if tryboot && esp.join("autoboot.txt").exists() {
        return Trial::TryBoot;
    }
    let c = counted_entries(esp, slot);
    if c.is_empty() {
        Trial::No
    } else {
        Trial::Counted(c)
    }
}

/// `autoboot.txt` with the `[tryboot]` partition made the default, or
/// `None` when there is nothing to change.
pub fn promote_tryboot(text: &str) -> Option<String> {
    let mut section = String::new();
    let mut tried = None;
    for l in text.lines() {
        let t = l.trim();
        if t.starts_with('[') {
            section = t.to_string();
        } else if section == "[tryboot]" {
            if let Some(v) = t.strip_prefix("boot_partition=") {
                tried = Some(v.trim().to_string());
            }
        }
    }
    let tried = tried?;
    let mut out = String::new();
    let mut changed = false;
    section.clear();
    for l in text.lines() {
        let t = l.trim();
        if t.starts_with('[') {
            section = t.to_string();
        }
        if section == "[all]" && t.starts_with("boot_partition=") {
            let line = format!("boot_partition={tried}");
            changed |= t != line;
            out.push_str(&line);
        } else {
            out.push_str(l);
        }
        out.push('\n');
    }
    changed.then_some(out)
}

/// Mark the running slot good on an ESP mounted at `esp`; says what it did.
pub fn bless_dir(esp: &Path, slot: &str, tryboot: bool) -> Result<String, String> {
    match trial(esp, slot, tryboot) {
        Trial::No => Ok(format!("slot {slot} was good already (no boot counter on {})", esp.display())),
        Trial::Counted(entries) => {
            let mut done = Vec::new();
            for e in entries {
                let name = e.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let Some((base, ext)) = split_counted(&name) else { continue };
                let to = e.with_file_name(format!("{base}{ext}"));
                std::fs::rename(&e, &to).map_err(|err| format!("cannot rename {} to {}: {err}", e.display(), to.display()))?;
                done.push(format!("{name} -> {}", to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()));
            }
            rustix::fs::sync();
            Ok(format!("slot {slot} blessed: {}", done.join(", ")))
        }
        Trial::TryBoot => {
            let p = esp.join("autoboot.txt");
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let Some(new) = promote_tryboot(&text) else {
                return Ok(format!("{}: the tried partition is the default already", p.display()));
            };
            let tmp = esp.join("autoboot.tmp");
            std::fs::write(&tmp, new).map_err(|e| format!("{}: {e}", tmp.display()))?;
            std::fs::rename(&tmp, &p).map_err(|e| format!("{}: {e}", p.display()))?;
            rustix::fs::sync();
            Ok(format!("slot {slot} blessed: {} now boots the tried partition by default", p.display()))
        }
    }
}

/// Whether this boot is a Raspberry Pi tryboot.
pub fn is_tryboot() -> bool {
    std::fs::read("/proc/device-tree/chosen/bootloader/tryboot").map(|b| b.last().copied().unwrap_or(0) == 1).unwrap_or(false)
}

/// The ESP device: a disk partition labelled `esp` (any case).
pub fn find_esp_device() -> Option<PathBuf> {
    for label in [coracle_ota::disk::ESP, "ESP", "EFI"] {
        if let Some(d) = crate::stage1::disks::find(Path::new("/sys"), Path::new("/dev"), label, None).into_iter().next() {
            return d.partition(Path::new("/sys"), Path::new("/dev"), label, false).ok();
        }
    }
    None
}

/// Run `f` on the ESP: `source` is a directory (used as is) or a block
/// device (mounted as vfat on `mount_at` for the call).
pub fn with_esp<T>(source: &Path, mount_at: &Path, read_only: bool, f: impl FnOnce(&Path) -> T) -> Result<T, String> {
    if source.is_dir() {
        return Ok(f(source));
    }
    use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};
    std::fs::create_dir_all(mount_at).map_err(|e| format!("{}: {e}", mount_at.display()))?;
    let mut flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    if read_only {
        flags |= MountFlags::RDONLY;
    }
    if let Err(e) = mount(source, mount_at, "vfat", flags, None) {
        let _ = std::fs::remove_dir(mount_at);
        return Err(format!("cannot mount {} (vfat) on {}: {e}", source.display(), mount_at.display()));
    }
    let out = f(mount_at);
    rustix::fs::sync();
    match unmount(mount_at, UnmountFlags::empty()) {
        Ok(()) => {
            let _ = std::fs::remove_dir(mount_at);
        }
        Err(e) => tracing::warn!(esp = %source.display(), error = %e, "cannot unmount the ESP"),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_names() {
        assert_eq!(split_counted("coracle-a+2-1.efi"), Some(("coracle-a", ".efi")));
        assert_eq!(split_counted("coracle-b+3.conf"), Some(("coracle-b", ".conf")));
        assert_eq!(split_counted("coracle-a+0-3.efi"), Some(("coracle-a", ".efi")));
        assert_eq!(split_counted("coracle-a.efi"), None);
        assert_eq!(split_counted("coracle-a+x.efi"), None);
        assert_eq!(split_counted("coracle-a+1-.efi"), None);
        assert!(is_slot("coracle-a", "a") && is_slot("coracle-a-1.2", "a") && !is_slot("coracle-ab", "a") && !is_slot("coracle-b", "a"));
    }

    #[test]
    fn blessing_renames_only_the_running_slots_entry() {
        let esp = std::env::temp_dir().join(format!("coracle-bless-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&esp);
        std::fs::create_dir_all(esp.join("EFI/Linux")).expect("dir");
        for n in ["coracle-a+2-1.efi", "coracle-b+3-0.efi"] {
            std::fs::write(esp.join("EFI/Linux").join(n), "uki").expect("entry");
        }
        assert!(matches!(trial(&esp, "a", false), Trial::Counted(_)));
        let msg = bless_dir(&esp, "a", false).expect("blessed");
        assert!(msg.contains("coracle-a+2-1.efi -> coracle-a.efi"), "{msg}");
        assert!(esp.join("EFI/Linux/coracle-a.efi").exists());
        assert!(esp.join("EFI/Linux/coracle-b+3-0.efi").exists(), "the other slot keeps its counter");
        assert_eq!(trial(&esp, "a", false), Trial::No);
        assert!(bless_dir(&esp, "a", false).expect("no-op").contains("good already"));
        let _ = std::fs::remove_dir_all(esp);
    }

    #[test]
    fn tryboot_promotes_the_tried_partition() {
        let text = "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n";
        let new = promote_tryboot(text).expect("changed");
        assert_eq!(new, "[all]\ntryboot_a_b=1\nboot_partition=3\n[tryboot]\nboot_partition=3\n");
        assert_eq!(promote_tryboot(&new), None, "nothing left to do");
        assert_eq!(promote_tryboot("[all]\nboot_partition=2\n"), None, "no tryboot section");
    }
}
