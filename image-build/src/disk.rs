//! The disk image: a GPT (through `coracle_ota::disk::gpt`, the same code
//! the device reads it with) and the partition contents, written sparse
//! (all-zero 4 KiB blocks stay holes, so the bmap maps only data). GUIDs
//! are derived from a seed (a hash of the inputs): same inputs, same disk.
//! Must not: make the filesystems it places.

use anyhow::{bail, Context};
use coracle_ota::disk::gpt::{types, Gpt, SECTOR};
use sha2::{Digest, Sha256};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use uuid::Uuid;

pub const MIB: u64 = 1024 * 1024;
pub const BLOCK: usize = 4096;

/// A UUID derived from `seed` and `what` (random-looking, RFC 4122 v4 layout).
pub fn derived_uuid(seed: &[u8], what: &str) -> Uuid {
    let mut h = Sha256::new();
    h.update(seed);
    h.update(what.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid::from_bytes(b)
}

pub enum Content {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl Content {
    fn len(&self) -> anyhow::Result<u64> {
        Ok(match self {
            Content::Bytes(b) => b.len() as u64,
            Content::File(p) => std::fs::metadata(p).with_context(|| format!("{}", p.display()))?.len(),
        })
    }
}

pub struct Part {
    pub name: String,
    pub type_guid: Uuid,
    pub size: u64,
    pub content: Content,
}

pub fn esp_type() -> Uuid {
    types::ESP
}
pub fn linux_type() -> Uuid {
    types::LINUX
}
pub fn basic_data_type() -> Uuid {
    types::BASIC_DATA
}

/// Bytes a layout needs: 1 MiB before the first partition (GPT, alignment)
/// and 1 MiB after the last (backup GPT).
pub fn needed(parts: &[(String, u64)]) -> u64 {
    MIB + parts.iter().map(|(_, s)| s.div_ceil(MIB) * MIB).sum::<u64>() + MIB
}

/// Check contents fit their partitions before anything is written.
pub fn check(parts: &[Part], disk_size: u64) -> anyhow::Result<()> {
    let need = needed(&parts.iter().map(|p| (p.name.clone(), p.size)).collect::<Vec<_>>());
    if disk_size < need {
        bail!("the disk ({} MiB) is too small for the partitions ({} MiB: {}); give a larger --disk-size or smaller partitions in board.toml", disk_size / MIB, need / MIB, parts.iter().map(|p| format!("{} {} MiB", p.name, p.size / MIB)).collect::<Vec<_>>().join(", "));
    }
    for p in parts {
        let len = p.content.len()?;
        if len > p.size {
            bail!("partition {} holds {} bytes ({} MiB) but is {} MiB; raise its size in board.toml (disk section)", p.name, len, len.div_ceil(MIB), p.size / MIB);
        }
    }
    Ok(())
}

/// Write the disk image to `path` (replacing it); returns the table.
pub fn write(path: &Path, disk_guid: Uuid, seed: &[u8], disk_size: u64, parts: &[Part]) -> anyhow::Result<Gpt> {
    check(parts, disk_size)?;
    let mut gpt = Gpt::new(disk_guid, disk_size).context("partition table")?;
    for p in parts {
        gpt.add(&p.name, p.type_guid, derived_uuid(seed, &format!("partition {}", p.name)), Some(p.size)).with_context(|| format!("adding partition {}", p.name))?;
    }
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(path).with_context(|| format!("creating {}", path.display()))?;
    f.set_len(disk_size)?;
    gpt.write(&mut f).context("writing the partition table")?;
    for p in parts {
        let Some(entry) = gpt.by_name(&p.name) else { bail!("partition {} vanished from the table", p.name) };
        let at = entry.first_lba * SECTOR;
        match &p.content {
            Content::Bytes(b) => write_sparse(&mut f, at, &mut std::io::Cursor::new(b))?,
            Content::File(src) => {
                let mut r = std::fs::File::open(src).with_context(|| format!("opening {}", src.display()))?;
                write_sparse(&mut f, at, &mut r)?
            }
        }
    }
    f.sync_all()?;
    Ok(gpt)
}

/// Copy `r` to `f` at `at`, skipping all-zero blocks.
fn write_sparse(f: &mut std::fs::File, at: u64, r: &mut impl std::io::Read) -> anyhow::Result<()> {
    let mut buf = vec![0u8; BLOCK * 256];
    let mut off = at;
    loop {
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            break;
        }
        for chunk in buf[..n].chunks(BLOCK) {
            if chunk.iter().any(|b| *b != 0) {
                f.seek(SeekFrom::Start(off))?;
                f.write_all(chunk)?;
            }
            off += chunk.len() as u64;
        }
        if n < buf.len() {
            break;
        }
    }
    Ok(())
}

/// `2G`, `1500M`, `1048576` → bytes.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('G' | 'g') => (&t[..t.len() - 1], 1024 * MIB),
        Some('M' | 'm') => (&t[..t.len() - 1], MIB),
        Some('K' | 'k') => (&t[..t.len() - 1], 1024),
        _ => (t, 1),
    };
    let n: u64 = num.trim().parse().map_err(|_| anyhow::anyhow!("{s:?} is not a size (like 2G, 1500M or a number of bytes)"))?;
    n.checked_mul(mult).ok_or_else(|| anyhow::anyhow!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("2G").expect("2G"), 2048 * MIB);
        assert_eq!(parse_size("1500M").expect("M"), 1500 * MIB);
        assert_eq!(parse_size("4096").expect("bytes"), 4096);
        assert!(parse_size("big").is_err());
    }

    #[test]
    fn a_layout_reads_back_and_contents_that_do_not_fit_are_refused() {
        let path = std::env::temp_dir().join(format!("coracle-build-disk-{}.img", std::process::id()));
        let parts = vec![
            Part { name: "esp".into(), type_guid: esp_type(), size: 2 * MIB, content: Content::Bytes(vec![1u8; 5000]) },
            Part { name: "root-a".into(), type_guid: linux_type(), size: 2 * MIB, content: Content::Bytes(vec![0u8; 8192]) },
            Part { name: "data".into(), type_guid: linux_type(), size: MIB, content: Content::Bytes(coracle_ota::disk::DATA_FIRST_BOOT_MARKER.to_vec()) },
        ];
        let guid = derived_uuid(b"seed", "disk");
        assert_eq!(guid, derived_uuid(b"seed", "disk"));
        assert_ne!(guid, derived_uuid(b"seed2", "disk"));
        let gpt = write(&path, guid, b"seed", 8 * MIB, &parts).expect("write");
        let mut f = std::fs::File::open(&path).expect("open");
        let back = Gpt::read(&mut f, 8 * MIB).expect("read");
        assert_eq!(back, gpt);
        assert_eq!(back.disk_guid, guid);
        let data = back.by_name("data").expect("data");
        let bytes = std::fs::read(&path).expect("read");
        let at = data.offset_bytes() as usize;
        assert_eq!(&bytes[at..at + coracle_ota::disk::DATA_FIRST_BOOT_MARKER.len()], coracle_ota::disk::DATA_FIRST_BOOT_MARKER);
        let _ = std::fs::remove_file(&path);
        let e = check(&parts, 4 * MIB).expect_err("too small").to_string();
        assert!(e.contains("too small") && e.contains("--disk-size"), "{e}");
        let big = vec![Part { name: "root-a".into(), type_guid: linux_type(), size: MIB, content: Content::Bytes(vec![1u8; 2 * MIB as usize]) }];
        let e = check(&big, 64 * MIB).expect_err("does not fit").to_string();
        assert!(e.contains("partition root-a holds"), "{e}");
    }
}
