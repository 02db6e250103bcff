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

/// Whether the ext4 filesystem at `offset` of `dev` was left mounted: its
/// journal needs recovery (`RECOVER` in the superblock's incompatible
/// features, set while mounted read-write and cleared by a clean unmount).
/// A power cut or a kill leaves it set; the next mount replays the journal.
pub fn ext4_needs_recovery(dev: &Path, offset: u64) -> std::io::Result<bool> {
    let mut f = std::fs::File::open(dev)?;
    f.seek(SeekFrom::Start(offset + 1024))?;
    let mut sb = [0u8; 0x64];
    f.read_exact(&mut sb)?;
    Ok(superblock_needs_recovery(&sb))
}

/// `s_feature_incompat` (offset 0x60 of the superblock) has `RECOVER` (0x4).
pub fn superblock_needs_recovery(sb: &[u8]) -> bool {
    sb.get(0x60..0x64).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes).is_some_and(|f| f & 0x4 != 0)
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_recover_feature_marks_an_unclean_filesystem() {
        let mut sb = [0u8; 0x64];
        assert!(!super::superblock_needs_recovery(&sb));
        sb[0x60] = 0x02 | 0x40; // filetype, extents
        assert!(!super::superblock_needs_recovery(&sb));
        sb[0x60] |= 0x04;
        assert!(super::superblock_needs_recovery(&sb));
        assert!(!super::superblock_needs_recovery(&sb[..0x10]), "short read: not claimed unclean");
    }
}
