//! The GUID partition table (UEFI spec, chapter 5): a protective MBR, the
//! primary header and entry array at the start of the disk, and their
//! backup copies at its end. Read (checking both CRCs and falling back to
//! the backup), written whole (both copies), and grown when the disk turns
//! out larger than the image (first boot on a bigger SD card).

use super::crc32::crc32;
use std::io::{Read, Seek, SeekFrom, Write};
use uuid::Uuid;

pub const SECTOR: u64 = 512;
const SIGNATURE: &[u8; 8] = b"EFI PART";
const HEADER_SIZE: u32 = 92;
const ENTRY_SIZE: u32 = 128;
const ENTRIES: u32 = 128;
/// Sectors taken by the entry array (128 entries of 128 bytes).
const ENTRY_SECTORS: u64 = (ENTRIES as u64 * ENTRY_SIZE as u64) / SECTOR;

/// Well-known partition type GUIDs.
pub mod types {
    use uuid::Uuid;
    /// EFI System Partition.
    pub const ESP: Uuid = Uuid::from_u128(0xC12A7328_F81F_11D2_BA4B_00A0C93EC93B);
    /// Linux filesystem data.
    pub const LINUX: Uuid = Uuid::from_u128(0x0FC63DAF_8483_4772_8E79_3D69D8477DE4);
    /// Microsoft basic data (FAT boot partitions the Raspberry Pi firmware reads).
    pub const BASIC_DATA: Uuid = Uuid::from_u128(0xEBD0A0A2_B9E5_4433_87C0_68B6B72699C7);
}

#[derive(Debug, thiserror::Error)]
pub enum GptError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no GUID partition table (neither the primary nor the backup header is valid)")]
    Missing,
    #[error("the disk is too small: {needed} sectors needed, {have} available")]
    TooSmall { needed: u64, have: u64 },
    #[error("partitions {a} and {b} overlap")]
    Overlap { a: String, b: String },
    #[error("partition {name:?}: {message}")]
    Partition { name: String, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based number, as the kernel names it (`sda2`, `loop0p2`).
    pub number: u32,
    pub type_guid: Uuid,
    pub guid: Uuid,
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    pub attributes: u64,
    pub name: String,
}

impl Partition {
    pub fn size_bytes(&self) -> u64 {
        (self.last_lba + 1 - self.first_lba) * SECTOR
    }
    pub fn offset_bytes(&self) -> u64 {
        self.first_lba * SECTOR
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    pub disk_guid: Uuid,
    /// Sectors of the disk the table describes (the backup is in the last).
    pub sectors: u64,
    pub first_usable: u64,
    pub last_usable: u64,
    pub partitions: Vec<Partition>,
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn guid_at(b: &[u8], at: usize) -> Uuid {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    Uuid::from_bytes_le(a)
}

fn read_at<D: Read + Seek>(dev: &mut D, lba: u64, sectors: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; (sectors * SECTOR) as usize];
    dev.seek(SeekFrom::Start(lba * SECTOR))?;
    dev.read_exact(&mut buf)?;
    Ok(buf)
}

impl Gpt {
    /// An empty table for a disk of `size_bytes`.
    pub fn new(disk_guid: Uuid, size_bytes: u64) -> Result<Gpt, GptError> {
        let sectors = size_bytes / SECTOR;
        let needed = 2 * (1 + ENTRY_SECTORS) + 2;
        if sectors < needed {
            return Err(GptError::TooSmall { needed, have: sectors });
        }
        Ok(Gpt { disk_guid, sectors, first_usable: 2 + ENTRY_SECTORS, last_usable: sectors - 2 - ENTRY_SECTORS, partitions: Vec::new() })
    }

    /// Read the table of a disk of `size_bytes`: the primary copy, or the
    /// backup when the primary is damaged.
    pub fn read<D: Read + Seek>(dev: &mut D, size_bytes: u64) -> Result<Gpt, GptError> {
        let sectors = size_bytes / SECTOR;
        if sectors < 4 {
            return Err(GptError::Missing);
        }
        if let Some(g) = Self::read_copy(dev, 1, sectors)? {
            return Ok(g);
        }
        match Self::read_copy(dev, sectors - 1, sectors)? {
            Some(g) => Ok(g),
            None => Err(GptError::Missing),
        }
    }

    fn read_copy<D: Read + Seek>(dev: &mut D, lba: u64, sectors: u64) -> Result<Option<Gpt>, GptError> {
        let h = read_at(dev, lba, 1)?;
        if &h[0..8] != SIGNATURE {
            return Ok(None);
        }
        let size = le32(&h, 12) as usize;
        if !(HEADER_SIZE as usize..=SECTOR as usize).contains(&size) {
            return Ok(None);
        }
        let mut check = h[..size].to_vec();
        check[16..20].fill(0);
        if crc32(&check) != le32(&h, 16) {
            return Ok(None);
        }
        let entries_lba = le64(&h, 72);
        let count = le32(&h, 80) as u64;
        let entry_size = le32(&h, 84) as u64;
        if entry_size < 128 || count == 0 || count > 1024 || entries_lba >= sectors {
            return Ok(None);
        }
        let array_sectors = (count * entry_size).div_ceil(SECTOR);
        let array = read_at(dev, entries_lba, array_sectors)?;
        if crc32(&array[..(count * entry_size) as usize]) != le32(&h, 88) {
            return Ok(None);
        }
        let mut partitions = Vec::new();
        for i in 0..count {
            let e = &array[(i * entry_size) as usize..((i + 1) * entry_size) as usize];
            let type_guid = guid_at(e, 0);
            if type_guid.is_nil() {
                continue;
            }
            let units: Vec<u16> = e[56..128].chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|u| *u != 0).collect();
            partitions.push(Partition {
                number: i as u32 + 1,
                type_guid,
                guid: guid_at(e, 16),
                first_lba: le64(e, 32),
                last_lba: le64(e, 40),
                attributes: le64(e, 48),
                name: String::from_utf16_lossy(&units),
            });
        }
        // The disk size the table was written for: where its backup is (a
        // primary copy) or where it is itself (a backup). Smaller than the
        // device when an image was flashed to a larger disk.
        let (current, alternate) = (le64(&h, 24), le64(&h, 32));
        let table_sectors = if lba == 1 { alternate + 1 } else { current + 1 };
        if table_sectors > sectors || table_sectors < 4 {
            return Ok(None);
        }
        Ok(Some(Gpt { disk_guid: guid_at(&h, 56), sectors: table_sectors, first_usable: le64(&h, 40), last_usable: le64(&h, 48), partitions }))
    }

    pub fn by_name(&self, name: &str) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.name == name)
    }

    /// Add a partition of `size_bytes` (rounded up to 1 MiB) after the last
    /// one, aligned to 1 MiB; `None` takes the rest of the disk.
    pub fn add(&mut self, name: &str, type_guid: Uuid, guid: Uuid, size_bytes: Option<u64>) -> Result<&Partition, GptError> {
        const ALIGN: u64 = 1024 * 1024 / SECTOR;
        let after = self.partitions.iter().map(|p| p.last_lba + 1).max().unwrap_or(self.first_usable);
        let first = after.div_ceil(ALIGN) * ALIGN;
        let last = match size_bytes {
            Some(b) => first + (b.div_ceil(SECTOR)).div_ceil(ALIGN) * ALIGN - 1,
            None => self.last_usable,
        };
        if last > self.last_usable || first > last {
            return Err(GptError::TooSmall { needed: last + 1 + 1 + ENTRY_SECTORS, have: self.sectors });
        }
        if name.encode_utf16().count() > 36 {
            return Err(GptError::Partition { name: name.into(), message: "names are at most 36 UTF-16 characters".into() });
        }
        let number = (1..=ENTRIES).find(|n| !self.partitions.iter().any(|p| p.number == *n)).unwrap_or(ENTRIES);
        self.partitions.push(Partition { number, type_guid, guid, first_lba: first, last_lba: last, attributes: 0, name: name.into() });
        self.partitions.sort_by_key(|p| p.number);
        Ok(self.partitions.iter().find(|p| p.number == number).unwrap_or(&self.partitions[0]))
    }

    /// Check that partitions lie in the usable area and do not overlap.
    pub fn check(&self) -> Result<(), GptError> {
        let mut sorted: Vec<&Partition> = self.partitions.iter().collect();
        sorted.sort_by_key(|p| p.first_lba);
        for p in &sorted {
            if p.first_lba < self.first_usable || p.last_lba > self.last_usable || p.first_lba > p.last_lba {
                return Err(GptError::Partition { name: p.name.clone(), message: format!("sectors {}..={} are outside the usable area {}..={}", p.first_lba, p.last_lba, self.first_usable, self.last_usable) });
            }
        }
        for w in sorted.windows(2) {
            if w[0].last_lba >= w[1].first_lba {
                return Err(GptError::Overlap { a: w[0].name.clone(), b: w[1].name.clone() });
            }
        }
        Ok(())
    }

    /// The disk is `size_bytes` now (larger than when the table was
    /// written): move the backup to the new end and extend partition
    /// `name`, which must be the last one, to fill the disk. Returns true
    /// when something changed.
    pub fn grow(&mut self, size_bytes: u64, name: &str) -> Result<bool, GptError> {
        let sectors = size_bytes / SECTOR;
        if sectors < self.sectors {
            return Err(GptError::TooSmall { needed: self.sectors, have: sectors });
        }
        let last_usable = sectors - 2 - ENTRY_SECTORS;
        let last_end = self.partitions.iter().map(|p| p.last_lba).max().unwrap_or(0);
        let p = self.partitions.iter_mut().find(|p| p.name == name).ok_or_else(|| GptError::Partition { name: name.into(), message: "not in the partition table".into() })?;
        if p.last_lba != last_end {
            return Err(GptError::Partition { name: name.into(), message: "only the last partition can grow".into() });
        }
        // Keep the end 1 MiB aligned, as partitioning tools do.
        const ALIGN: u64 = 1024 * 1024 / SECTOR;
        let new_last = ((last_usable + 1) / ALIGN * ALIGN).saturating_sub(1).max(p.last_lba);
        let changed = sectors != self.sectors || new_last != p.last_lba;
        p.last_lba = new_last;
        self.sectors = sectors;
        self.last_usable = last_usable;
        Ok(changed)
    }

    fn entry_array(&self) -> Vec<u8> {
        let mut a = vec![0u8; (ENTRIES * ENTRY_SIZE) as usize];
        for p in &self.partitions {
            let at = ((p.number - 1) * ENTRY_SIZE) as usize;
            let e = &mut a[at..at + ENTRY_SIZE as usize];
            e[0..16].copy_from_slice(&p.type_guid.to_bytes_le());
            e[16..32].copy_from_slice(&p.guid.to_bytes_le());
            e[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
            e[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
            e[48..56].copy_from_slice(&p.attributes.to_le_bytes());
            for (i, u) in p.name.encode_utf16().take(36).enumerate() {
                e[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
            }
        }
        a
    }

    fn header(&self, current: u64, backup: u64, entries_lba: u64, entries_crc: u32) -> Vec<u8> {
        let mut h = vec![0u8; SECTOR as usize];
        h[0..8].copy_from_slice(SIGNATURE);
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        h[24..32].copy_from_slice(&current.to_le_bytes());
        h[32..40].copy_from_slice(&backup.to_le_bytes());
        h[40..48].copy_from_slice(&self.first_usable.to_le_bytes());
        h[48..56].copy_from_slice(&self.last_usable.to_le_bytes());
        h[56..72].copy_from_slice(&self.disk_guid.to_bytes_le());
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&ENTRIES.to_le_bytes());
        h[84..88].copy_from_slice(&ENTRY_SIZE.to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32(&h[..HEADER_SIZE as usize]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    }

    fn protective_mbr(&self) -> Vec<u8> {
        let mut m = vec![0u8; SECTOR as usize];
        let p = &mut m[446..462];
        p[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
        p[4] = 0xEE;
        p[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
        p[8..12].copy_from_slice(&1u32.to_le_bytes());
        // "The whole disk", whatever its size: an image flashed to a larger
        // card keeps a protective MBR Linux accepts (it refuses a size that
        // is neither the disk's nor 0xFFFFFFFF).
        p[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        m[510] = 0x55;
        m[511] = 0xAA;
        m
    }

    /// Write the protective MBR and both copies of the table. The backup is
    /// written first, so a power cut in between leaves one valid copy.
    pub fn write<D: Write + Seek>(&self, dev: &mut D) -> Result<(), GptError> {
        self.check()?;
        let array = self.entry_array();
        let crc = crc32(&array);
        let last = self.sectors - 1;
        let backup_entries = last - ENTRY_SECTORS;
        dev.seek(SeekFrom::Start(backup_entries * SECTOR))?;
        dev.write_all(&array)?;
        dev.write_all(&self.header(last, 1, backup_entries, crc))?;
        dev.flush()?;
        dev.seek(SeekFrom::Start(0))?;
        dev.write_all(&self.protective_mbr())?;
        dev.write_all(&self.header(1, last, 2, crc))?;
        dev.write_all(&array)?;
        dev.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const MIB: u64 = 1024 * 1024;

    fn layout(size: u64) -> Gpt {
        let mut g = Gpt::new(Uuid::from_u128(1), size).expect("table");
        g.add("esp", types::ESP, Uuid::from_u128(2), Some(8 * MIB)).expect("esp");
        g.add("root-a", types::LINUX, Uuid::from_u128(3), Some(16 * MIB)).expect("a");
        g.add("root-b", types::LINUX, Uuid::from_u128(4), Some(16 * MIB)).expect("b");
        g.add("data", types::LINUX, Uuid::from_u128(5), Some(8 * MIB)).expect("data");
        g
    }

    #[test]
    fn a_written_table_reads_back() {
        let g = layout(64 * MIB);
        let mut disk = Cursor::new(vec![0u8; 64 * MIB as usize]);
        g.write(&mut disk).expect("write");
        let r = Gpt::read(&mut disk, 64 * MIB).expect("read");
        assert_eq!(r, g);
        let a = r.by_name("root-a").expect("root-a");
        assert_eq!(a.number, 2);
        assert_eq!(a.first_lba % 2048, 0, "1 MiB aligned");
        assert_eq!(a.size_bytes(), 16 * MIB);
    }

    #[test]
    fn a_damaged_primary_falls_back_to_the_backup() {
        let g = layout(64 * MIB);
        let mut disk = Cursor::new(vec![0u8; 64 * MIB as usize]);
        g.write(&mut disk).expect("write");
        disk.get_mut()[512 + 100] ^= 0xff; // inside the primary header's reserved area: CRC now wrong
        disk.get_mut()[512 + 60] ^= 0xff;
        let r = Gpt::read(&mut disk, 64 * MIB).expect("backup");
        assert_eq!(r.partitions, g.partitions);
        let mut blank = Cursor::new(vec![0u8; 4 * MIB as usize]);
        assert!(matches!(Gpt::read(&mut blank, 4 * MIB), Err(GptError::Missing)));
    }

    #[test]
    fn growing_moves_the_backup_and_extends_the_last_partition() {
        let g = layout(64 * MIB);
        let mut disk = Cursor::new(vec![0u8; 64 * MIB as usize]);
        g.write(&mut disk).expect("write");
        disk.get_mut().resize(256 * MIB as usize, 0);
        let mut r = Gpt::read(&mut disk, 256 * MIB).expect("primary still valid");
        assert!(r.grow(256 * MIB, "data").expect("grow"));
        r.write(&mut disk).expect("write");
        let r2 = Gpt::read(&mut disk, 256 * MIB).expect("read grown");
        let data = r2.by_name("data").expect("data");
        assert!(data.size_bytes() > 190 * MIB, "{}", data.size_bytes());
        assert_eq!((data.last_lba + 1) % 2048, 0, "ends 1 MiB aligned");
        assert!(!r2.clone().grow(256 * MIB, "data").expect("again"), "growing twice changes nothing");
        assert!(r2.clone().grow(256 * MIB, "root-a").is_err(), "only the last partition grows");
        // The backup copy alone is valid too.
        disk.get_mut()[512..1024].fill(0);
        assert_eq!(Gpt::read(&mut disk, 256 * MIB).expect("backup").partitions, r2.partitions);
    }

    #[test]
    fn a_layout_that_does_not_fit_is_refused() {
        let mut g = Gpt::new(Uuid::nil(), 16 * MIB).expect("table");
        assert!(matches!(g.add("big", types::LINUX, Uuid::nil(), Some(32 * MIB)), Err(GptError::TooSmall { .. })));
    }
}
