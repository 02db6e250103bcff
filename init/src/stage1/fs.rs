//! Filesystems stage 1 mounts: the slot's read-only root (EROFS or
//! squashfs, told apart by their magic numbers) and the data partition
//! (ext4; formatted on first boot only, grown to fill the disk).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Erofs,
    Squashfs,
    Ext4,
    /// The builder's first-boot marker: an empty data partition.
    FirstBoot,
    Unknown,
}

/// What is at byte `offset` of `dev` (a partition's start on its disk).
pub fn detect(dev: &Path, offset: u64) -> std::io::Result<Kind> {
    let mut f = std::fs::File::open(dev)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut head = vec![0u8; 2048];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    head.truncate(n);
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    Ok(if at(1024, &0xE0F5_E1E2u32.to_le_bytes()) {
        Kind::Erofs
    } else if at(0, b"hsqs") {
        Kind::Squashfs
    } else if at(1080, &[0x53, 0xEF]) {
        Kind::Ext4
    } else if at(0, coracle_ota::disk::DATA_FIRST_BOOT_MARKER) {
        Kind::FirstBoot
    } else {
        Kind::Unknown
    })
}

/// Run a tool stage 1 needs; the error names the tool and the device.
pub fn run(tool: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(tool).args(args).output().map_err(|e| format!("cannot run {tool}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!("{tool} {} failed ({}): {}", args.join(" "), out.status, err.trim()))
    }
}
