//! A VM's disk seen from the host: partitions of the built image (its
//! GPT), damage written into a scenario's qcow2 overlay before a boot, a
//! partition copied out of the overlay (`qemu-img`, allowed while QEMU
//! runs), the boot entries on the ESP (mtools) and the data filesystem's
//! state (dumpe2fs). Must not: write the built image (scenarios share it).

use anyhow::{bail, Context};
use coracle_ota::disk::gpt::{Gpt, Partition};
use std::path::{Path, PathBuf};
use std::process::Command;

pub use coracle_build::qemu::vm::new_disk as new;

/// Partition `name` of the built disk `image`.
pub fn partition(image: &Path, name: &str) -> anyhow::Result<Partition> {
    let mut f = std::fs::File::open(image).with_context(|| format!("opening {}", image.display()))?;
    let size = f.metadata()?.len();
    let gpt = Gpt::read(&mut f, size).map_err(|e| anyhow::anyhow!("{}: {e}", image.display()))?;
    gpt.by_name(name).cloned().ok_or_else(|| anyhow::anyhow!("{}: no partition named {name}", image.display()))
}

fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let o = cmd.output().with_context(|| format!("{what}: cannot run {:?}", cmd.get_program()))?;
    if !o.status.success() {
        bail!("{what} failed ({}): {}{}", o.status, String::from_utf8_lossy(&o.stderr).trim(), String::from_utf8_lossy(&o.stdout).trim());
    }
    Ok(())
}

/// Zero the first `len` bytes of partition `p` in `overlay` (the guest
/// sees a damaged partition; the built image is untouched).
pub fn zero(overlay: &Path, p: &Partition, len: u64) -> anyhow::Result<()> {
    let len = len.min(p.size_bytes());
    run(Command::new("qemu-io").args(["-f", "qcow2", "-c", &format!("write -z {} {len}", p.offset_bytes())]).arg(overlay), "qemu-io (apt-get install qemu-utils)")
}

/// Copy partition `p` out of `overlay` into the raw file `to`.
pub fn copy_out(overlay: &Path, p: &Partition, to: &Path) -> anyhow::Result<()> {
    let opts = format!("driver=raw,offset={},size={},file.driver=qcow2,file.file.driver=file,file.file.filename={}", p.offset_bytes(), p.size_bytes(), overlay.display());
    let _ = std::fs::remove_file(to);
    run(Command::new("qemu-img").args(["convert", "-U", "--image-opts", &opts, "-O", "raw"]).arg(to), "qemu-img convert (apt-get install qemu-utils)")
}

/// File names in the ESP's `EFI/Linux` (the UKIs with their boot counters).
pub fn esp_entries(image: &Path, overlay: &Path, scratch: &Path) -> anyhow::Result<Vec<String>> {
    let p = partition(image, coracle_ota::disk::ESP)?;
    let esp = scratch.join("esp.img");
    copy_out(overlay, &p, &esp)?;
    let o = Command::new("mdir").args(["-b", "-i"]).arg(&esp).arg("::/EFI/Linux").output().context("running mdir (apt-get install mtools)")?;
    let _ = std::fs::remove_file(&esp);
    if !o.status.success() {
        bail!("mdir ::/EFI/Linux failed: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    let mut names: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.trim().rsplit('/').next()).filter(|n| !n.is_empty()).map(str::to_string).collect();
    names.sort();
    Ok(names)
}

/// The data filesystem's superblock as `dumpe2fs -h` prints it.
pub fn data_superblock(image: &Path, overlay: &Path, scratch: &Path) -> anyhow::Result<String> {
    let p = partition(image, coracle_ota::disk::DATA)?;
    let data: PathBuf = scratch.join("data.img");
    copy_out(overlay, &p, &data)?;
    let o = Command::new("dumpe2fs").arg("-h").arg(&data).output().context("running dumpe2fs (apt-get install e2fsprogs)")?;
    let _ = std::fs::remove_file(&data);
    if !o.status.success() {
        bail!("dumpe2fs -h on the data partition failed: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Whether a superblock (from [`data_superblock`]) was unmounted cleanly:
/// state `clean` and no journal to replay.
pub fn cleanly_unmounted(superblock: &str) -> bool {
    let field = |name: &str| superblock.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_default();
    field("Filesystem state:") == "clean" && !field("Filesystem features:").split_whitespace().any(|f| f == "needs_recovery")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_clean_superblock_is_told_from_one_that_needs_recovery() {
        let clean = "Filesystem volume name:   data\nFilesystem features:      has_journal ext_attr extent\nFilesystem state:         clean\n";
        let dirty = "Filesystem features:      has_journal needs_recovery extent\nFilesystem state:         clean\n";
        let mounted = "Filesystem features:      has_journal extent\nFilesystem state:         not clean\n";
        assert!(super::cleanly_unmounted(clean));
        assert!(!super::cleanly_unmounted(dirty));
        assert!(!super::cleanly_unmounted(mounted));
        assert!(!super::cleanly_unmounted(""));
    }
}
