//! FAT32 boot partitions (the ESP; Raspberry Pi boot-a/boot-b) written in
//! userspace from a [`Tree`]: fixed volume id and label, every timestamp
//! from SOURCE_DATE_EPOCH, files written in sorted order: reproducible.

use crate::tree::{read_node, Node, Tree};
use anyhow::{bail, Context};
use std::io::{Seek, SeekFrom, Write};

#[derive(Debug)]
struct FixedTime(fatfs::DateTime);

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        self.0
    }
}

/// Civil date of a Unix time (UTC), clamped to FAT's range (1980..2107).
pub fn dos_time(epoch: u64) -> fatfs::DateTime {
    let days = (epoch / 86400) as i64;
    let secs = epoch % 86400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u16;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u16;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
    let (year, month, day, secs) = if year < 1980 {
        (1980, 1, 1, 0)
    } else if year > 2107 {
        (2107, 12, 31, 86399)
    } else {
        (year, month, day, secs)
    };
    fatfs::DateTime {
        date: fatfs::Date { year, month, day },
        time: fatfs::Time {
            hour: (secs / 3600) as u16,
            min: (secs / 60 % 60) as u16,
            sec: (secs % 60) as u16,
            millis: 0,
        },
    }
}

/// A FAT32 filesystem image of `size` bytes holding `tree`.
pub fn build(
    tree: &Tree,
    size: u64,
    volume_id: u32,
    label: &str,
    epoch: u64,
) -> anyhow::Result<Vec<u8>> {
    if size < 33 * 1024 * 1024 {
        bail!(
            "a FAT32 boot partition needs at least 33 MiB; the board gives {} MiB",
            size / 1024 / 1024
        );
    }
    // FAT32 is FAT32 only with at least 65525 clusters (readers such as
    // the Raspberry Pi bootloader decide the type by the cluster count):
    // the largest cluster size that keeps that many, with room for the FATs.
    let cluster = [4096u32, 2048, 1024, 512].into_iter().find(|c| size / u64::from(*c) >= 67_000).unwrap_or(512);
    let mut disk = std::io::Cursor::new(vec![0u8; size as usize]);
    let mut lab = [b' '; 11];
    for (i, c) in label.bytes().take(11).enumerate() {
        lab[i] = c.to_ascii_uppercase();
    }
    fatfs::format_volume(
        &mut disk,
        fatfs::FormatVolumeOptions::new()
            .fat_type(fatfs::FatType::Fat32)
            .bytes_per_cluster(cluster)
            .volume_id(volume_id)
            .volume_label(lab),
    )
    .context("formatting FAT32")?;
    disk.seek(SeekFrom::Start(0))?;
    let time: &'static FixedTime = Box::leak(Box::new(FixedTime(dos_time(epoch))));
    {
        let fs = fatfs::FileSystem::new(
            &mut disk,
            fatfs::FsOptions::new()
                .time_provider(time)
                .update_accessed_date(false),
        )
        .context("opening the new FAT filesystem")?;
        if fs.fat_type() != fatfs::FatType::Fat32 {
            bail!("the {} MiB boot partition formatted as {:?}, not FAT32", size / 1024 / 1024, fs.fat_type());
        }
        {
            let root = fs.root_dir();
            for (path, node) in &tree.nodes {
                match node {
                    Node::Dir { .. } => {
                        root.create_dir(path)
                            .with_context(|| format!("FAT: creating {path}"))?;
                    }
                    Node::File { .. } | Node::Data { .. } => {
                        let data = read_node(node)?;
                        let mut f = root
                            .create_file(path)
                            .with_context(|| format!("FAT: creating {path}"))?;
                        f.truncate()?;
                        f.write_all(&data).with_context(|| format!("FAT: writing {path} ({} bytes): is the boot partition large enough?", data.len()))?;
                        f.flush()?;
                    }
                    Node::Symlink { .. } | Node::CharDev { .. } => {
                        bail!("FAT cannot hold {path}: not a file or directory")
                    }
                }
            }
        }
        fs.unmount().context("closing the FAT filesystem")?;
    }
    Ok(disk.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_and_clamp() {
        let d = dos_time(1_700_000_000); // 2023-11-14 22:13:20
        assert_eq!((d.date.year, d.date.month, d.date.day), (2023, 11, 14));
        assert_eq!((d.time.hour, d.time.min, d.time.sec), (22, 13, 20));
        assert_eq!(dos_time(0).date.year, 1980);
        let leap = dos_time(951_782_400); // 2000-02-29
        assert_eq!(
            (leap.date.year, leap.date.month, leap.date.day),
            (2000, 2, 29)
        );
    }

    #[test]
    fn mtools_reads_the_files_back() {
        let mut t = Tree::new();
        t.add_data("EFI/BOOT/BOOTX64.EFI", 0o644, vec![7u8; 100_000]);
        t.add_data("loader/loader.conf", 0o644, b"timeout 0\n".to_vec());
        let a = build(&t, 40 * 1024 * 1024, 0x1234_5678, "ESP", 1_700_000_000).expect("fat");
        assert_eq!(
            a,
            build(&t, 40 * 1024 * 1024, 0x1234_5678, "ESP", 1_700_000_000).expect("again")
        );
        let path =
            std::env::temp_dir().join(format!("coracle-build-esp-{}.img", std::process::id()));
        std::fs::write(&path, &a).expect("write");
        let out = std::process::Command::new("mtype")
            .arg("-i")
            .arg(&path)
            .arg("::/loader/loader.conf")
            .output();
        let _ = std::fs::remove_file(&path);
        match out {
            Ok(o) => assert_eq!(
                String::from_utf8_lossy(&o.stdout),
                "timeout 0\n",
                "{}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(_) => {
                eprintln!("mtools missing: only checked that building twice gives the same bytes")
            }
        }
        assert!(build(&t, 8 * 1024 * 1024, 1, "ESP", 0).is_err());
        // FAT32 by the cluster count too, at the smallest size and a usual one.
        for mib in [33, 64, 128, 512] {
            let img = build(&t, mib * 1024 * 1024, 1, "ESP", 0).expect("fat32");
            assert_eq!(&img[82..90], b"FAT32   ", "{mib} MiB");
            let fs = fatfs::FileSystem::new(std::io::Cursor::new(img), fatfs::FsOptions::new()).expect("reads back");
            assert_eq!(fs.fat_type(), fatfs::FatType::Fat32, "{mib} MiB");
        }
    }
}
