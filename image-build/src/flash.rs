//! `coracle-build flash`: write an image to a block device, mapped blocks
//! only (the bmap), checking the image against the bmap's checksums while
//! reading it, then reading the device back and hashing again. Refuses a
//! device that is mounted, used as swap, held by another device (LVM,
//! RAID), or the disk the host runs from.

use crate::apt::hex;
use crate::bmap;
use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct FlashArgs {
    /// The raw disk image (disk.img).
    #[arg(long)]
    pub image: PathBuf,
    /// Its block map [default: IMAGE.bmap].
    #[arg(long)]
    pub bmap: Option<PathBuf>,
    /// The device to overwrite (/dev/sdX, /dev/mmcblkN, /dev/loopN).
    #[arg(long)]
    pub device: PathBuf,
}

fn dev_numbers(rdev: u64) -> (u64, u64) {
    (rustix::fs::major(rdev) as u64, rustix::fs::minor(rdev) as u64)
}

/// `/sys/dev/block/MAJ:MIN` of a device number.
fn sys_of(dev: (u64, u64)) -> PathBuf {
    PathBuf::from(format!("/sys/dev/block/{}:{}", dev.0, dev.1))
}

/// The whole disk a device number belongs to (itself, or a partition's parent).
fn whole_disk(dev: (u64, u64)) -> Option<PathBuf> {
    let sys = std::fs::canonicalize(sys_of(dev)).ok()?;
    if sys.join("partition").exists() {
        sys.parent().map(Path::to_path_buf)
    } else {
        Some(sys)
    }
}

/// Device numbers of a disk and all its partitions.
fn disk_and_partitions(sys_disk: &Path) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let parse = |p: &Path| -> Option<(u64, u64)> {
        let t = std::fs::read_to_string(p.join("dev")).ok()?;
        let (a, b) = t.trim().split_once(':')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    if let Some(d) = parse(sys_disk) {
        out.push(d);
    }
    if let Ok(entries) = std::fs::read_dir(sys_disk) {
        for e in entries.flatten() {
            if e.path().join("partition").exists() {
                if let Some(d) = parse(&e.path()) {
                    out.push(d);
                }
            }
        }
    }
    out
}

/// Refuse devices that are in use or hold the running system.
pub fn check_device(device: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(device).with_context(|| format!("{}: no such device", device.display()))?;
    if !meta.file_type().is_block_device() {
        bail!("{} is not a block device (give the whole disk, like /dev/sdb or /dev/mmcblk0)", device.display());
    }
    let dev = dev_numbers(meta.rdev());
    let Some(disk) = whole_disk(dev) else { bail!("{}: not found in /sys/dev/block", device.display()) };
    let ours = disk_and_partitions(&disk);
    // The host's root filesystem.
    if let Ok(root) = std::fs::metadata("/") {
        let rd = dev_numbers(root.dev());
        if let Some(root_disk) = whole_disk(rd) {
            if root_disk == disk {
                bail!("{} is the disk this host runs from (/ is on it); refusing to overwrite it", device.display());
            }
        }
    }
    // Mounted anywhere (by device number, as mountinfo lists them).
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some((a, b)) = f.get(2).and_then(|d| d.split_once(':')) else { continue };
        let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) else { continue };
        if ours.contains(&(a, b)) {
            bail!("{} is mounted ({} on {}): unmount it first", device.display(), f.iter().rev().nth(1).unwrap_or(&"?"), f.get(4).unwrap_or(&"?"));
        }
    }
    // Swap, and devices stacked on it (LVM, RAID, dm-crypt).
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let name = disk.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for line in swaps.lines().skip(1) {
        let dev_name = line.split_whitespace().next().unwrap_or("");
        if dev_name.trim_start_matches("/dev/").starts_with(&name) && !name.is_empty() {
            bail!("{} is in use as swap ({dev_name}): swapoff it first", device.display());
        }
    }
    let mut holders = Vec::new();
    for d in std::iter::once(disk.clone()).chain(std::fs::read_dir(&disk).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.join("partition").exists())) {
        if let Ok(h) = std::fs::read_dir(d.join("holders")) {
            holders.extend(h.flatten().map(|e| e.file_name().to_string_lossy().into_owned()));
        }
    }
    if !holders.is_empty() {
        bail!("{} is held by {} (LVM, RAID or device mapper): release it first", device.display(), holders.join(", "));
    }
    Ok(())
}

fn device_size(f: &mut std::fs::File) -> anyhow::Result<u64> {
    Ok(f.seek(SeekFrom::End(0))?)
}

pub fn flash(a: &FlashArgs) -> anyhow::Result<()> {
    let bmap_path = a.bmap.clone().unwrap_or_else(|| PathBuf::from(format!("{}.bmap", a.image.display())));
    let text = std::fs::read_to_string(&bmap_path).with_context(|| format!("{}: no block map (build one with `coracle-build image`, or give --bmap)", bmap_path.display()))?;
    let map = bmap::parse(&text).with_context(|| format!("{}", bmap_path.display()))?;
    let mut img = std::fs::File::open(&a.image).with_context(|| format!("opening {}", a.image.display()))?;
    let img_size = img.metadata()?.len();
    if img_size != map.image_size {
        bail!("{} is {img_size} bytes but its bmap says {}: they are not from the same build", a.image.display(), map.image_size);
    }
    check_device(&a.device)?;
    let mut dev = std::fs::OpenOptions::new().read(true).write(true).open(&a.device).with_context(|| format!("opening {} for writing", a.device.display()))?;
    let dsize = device_size(&mut dev)?;
    if dsize < map.image_size {
        bail!("{} holds {} MiB, the image needs {} MiB", a.device.display(), dsize / 1048576, map.image_size.div_ceil(1048576));
    }
    let total = map.mapped_blocks() * map.block_size;
    eprintln!("coracle-build: writing {} MiB of {} MiB to {}", total / 1048576, map.image_size / 1048576, a.device.display());
    let mut done = 0u64;
    let mut last_pct = u64::MAX;
    let mut buf = vec![0u8; 1 << 20];
    for r in &map.ranges {
        let start = r.first * map.block_size;
        let end = ((r.last + 1) * map.block_size).min(map.image_size);
        img.seek(SeekFrom::Start(start))?;
        dev.seek(SeekFrom::Start(start))?;
        let mut h = Sha256::new();
        let mut left = end - start;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            img.read_exact(&mut buf[..n]).with_context(|| format!("reading {}", a.image.display()))?;
            h.update(&buf[..n]);
            dev.write_all(&buf[..n]).with_context(|| format!("writing {}", a.device.display()))?;
            left -= n as u64;
            done += n as u64;
            let pct = done * 100 / total.max(1);
            if pct / 5 != last_pct / 5 {
                eprintln!("coracle-build:   {pct:3}% written");
                last_pct = pct;
            }
        }
        if !r.sha256.is_empty() && hex(&h.finalize()) != r.sha256 {
            bail!("{}: blocks {}-{} do not match the bmap checksum: the image is damaged (rebuild or re-download it); the device is now partly written", a.image.display(), r.first, r.last);
        }
    }
    dev.flush()?;
    dev.sync_all().with_context(|| format!("syncing {}", a.device.display()))?;
    // Read back from the device, not the page cache.
    let _ = rustix::fs::fadvise(&dev, 0, None, rustix::fs::Advice::DontNeed);
    eprintln!("coracle-build: verifying {}", a.device.display());
    for r in &map.ranges {
        let start = r.first * map.block_size;
        let end = ((r.last + 1) * map.block_size).min(map.image_size);
        dev.seek(SeekFrom::Start(start))?;
        let mut h = Sha256::new();
        let mut left = end - start;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            dev.read_exact(&mut buf[..n])?;
            h.update(&buf[..n]);
            left -= n as u64;
        }
        if !r.sha256.is_empty() && hex(&h.finalize()) != r.sha256 {
            bail!("{}: blocks {}-{} read back differently from what was written: the device is failing or was changed meanwhile", a.device.display(), r.first, r.last);
        }
    }
    eprintln!("coracle-build: {} written and verified ({} MiB)", a.device.display(), total / 1048576);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_and_the_root_disk_are_refused() {
        let me = std::env::current_exe().expect("exe");
        let e = check_device(&me).expect_err("a file").to_string();
        assert!(e.contains("not a block device"), "{e}");
        // The disk / lives on, when it is a real block device here.
        let root = std::fs::metadata("/").expect("/");
        if let Some(disk) = whole_disk(dev_numbers(root.dev())) {
            let name = disk.file_name().expect("name").to_string_lossy().into_owned();
            let node = PathBuf::from("/dev").join(&name);
            if node.exists() {
                let e = check_device(&node).expect_err("root disk").to_string();
                assert!(e.contains("runs from") || e.contains("mounted"), "{e}");
            }
        }
    }
}
