//! Stage 1 against real partitions: a GPT disk image on a loop device with
//! esp, root-a, root-b (EROFS) and data partitions. The slot named on the
//! command line is mounted; data is formatted on first boot only and grown
//! when the disk is larger than the image; a missing or corrupt root and an
//! unrecognised data partition each stop the boot with one clear line.
//! Runs inside `unshare --mount`, so nothing stays mounted on the host.
//!
//! This machine's kernel is built without partition-table support, so the
//! kernel makes no partition devices for the loop disk; stage 1 then maps
//! each partition it needs as a loop device over its sectors (the path a
//! device's kernel never needs). Everything else is as on a device.

mod common;

use coracle_ota::disk::gpt::{types, Gpt};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1024 * 1024;

fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn erofs(dir: &Path, slot: &str) -> PathBuf {
    let root = dir.join(format!("rootfs-{slot}"));
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    std::fs::create_dir_all(root.join("var")).expect("var");
    std::fs::write(root.join("etc/coracle-release"), format!("test-release slot-{slot}\n")).expect("release");
    let img = dir.join(format!("root-{slot}.erofs"));
    sh("mkfs.erofs", &["-d0", &img.to_string_lossy(), &root.to_string_lossy()]);
    img
}

struct Disk {
    dir: PathBuf,
    file: PathBuf,
    loopdev: String,
    guid: String,
    gpt: Gpt,
}

impl Disk {
    /// A 96 MiB image written like the builder does, on a 128 MiB file.
    fn new(tag: &str) -> Disk {
        let dir = common::tempdir(tag);
        let file = dir.join("disk.img");
        let guid = uuid::Uuid::new_v4();
        let mut gpt = Gpt::new(guid, 96 * MIB).expect("gpt");
        gpt.add("esp", types::ESP, uuid::Uuid::new_v4(), Some(8 * MIB)).expect("esp");
        gpt.add("root-a", types::LINUX, uuid::Uuid::new_v4(), Some(24 * MIB)).expect("root-a");
        gpt.add("root-b", types::LINUX, uuid::Uuid::new_v4(), Some(24 * MIB)).expect("root-b");
        gpt.add("data", types::LINUX, uuid::Uuid::new_v4(), None).expect("data");
        let mut f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&file).expect("image");
        f.set_len(96 * MIB).expect("size");
        gpt.write(&mut f).expect("gpt write");
        for slot in ["a", "b"] {
            let img = std::fs::read(erofs(&dir, slot)).expect("erofs image");
            let p = gpt.by_name(&format!("root-{slot}")).expect("root");
            f.seek(SeekFrom::Start(p.offset_bytes())).expect("seek");
            f.write_all(&img).expect("write root");
        }
        let data = gpt.by_name("data").expect("data");
        f.seek(SeekFrom::Start(data.offset_bytes())).expect("seek");
        f.write_all(coracle_ota::disk::DATA_FIRST_BOOT_MARKER).expect("marker");
        // The card is larger than the image.
        f.set_len(128 * MIB).expect("grow file");
        drop(f);
        let loopdev = sh("losetup", &["--find", "--show", "--partscan", &file.to_string_lossy()]);
        Disk { dir, file, loopdev, guid: guid.to_string(), gpt }
    }

    /// The device stage 1 reported for `what` ("root" or "data") in `out`.
    fn dev_in(out: &str, what: &str) -> String {
        let line = out.lines().find(|l| l.starts_with("coracle: stage 1: slot")).unwrap_or_else(|| panic!("no summary line in:\n{out}"));
        line.split(&format!(" {what} ")).nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or_default().to_string()
    }

    /// Run stage 1 for `slot`; (success, console output).
    fn boot(&self, cmdline: &str) -> (bool, String) {
        let sysroot = self.dir.join("sysroot");
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--"])
            .arg(env!("CARGO_BIN_EXE_coracle"))
            .args(["init", "--stage1", "--skip-machine-setup", "--no-switch-root", "--wait-for-disk", "2", "--panic-reboot-delay", "0"])
            .arg("--cmdline")
            .arg(cmdline)
            .arg("--sysroot")
            .arg(&sysroot)
            .env("CORACLE_LOG", "info")
            .output()
            .expect("unshare");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    fn slot(&self, slot: &str) -> (bool, String) {
        self.boot(&format!("console=ttyS0 coracle.slot={slot} coracle.disk={}", self.guid))
    }

    fn fs_bytes(data: &str) -> u64 {
        let out = sh("dumpe2fs", &["-h", data]);
        let field = |name: &str| -> u64 {
            out.lines().find(|l| l.starts_with(name)).and_then(|l| l.split(':').nth(1)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
        };
        field("Block count:") * field("Block size:")
    }

    fn zero(&self, at: u64, len: usize) {
        let mut f = std::fs::OpenOptions::new().write(true).open(&self.file).expect("image");
        f.seek(SeekFrom::Start(at)).expect("seek");
        f.write_all(&vec![0u8; len]).expect("zero");
        f.sync_all().expect("sync");
        drop(f);
        // Drop the loop device's cached pages.
        sh("blockdev", &["--flushbufs", &self.loopdev]);
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        // Every partition stage 1 mapped over the disk, then the disk.
        // (losetup names a device backing file by its path inside /dev.)
        let name = self.loopdev.trim_start_matches("/dev/");
        let out = Command::new("losetup").args(["--list", "--noheadings", "--output", "NAME,BACK-FILE"]).output();
        for line in out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default().lines() {
            let mut f = line.split_whitespace();
            if let (Some(dev), Some(back)) = (f.next(), f.next()) {
                if back.trim_start_matches("/dev") == format!("/{name}") {
                    let _ = Command::new("losetup").args(["-d", dev]).status();
                }
            }
        }
        let _ = Command::new("losetup").args(["-d", &self.loopdev]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn the_named_slot_is_mounted_and_data_is_formatted_once_and_grown() {
    let d = Disk::new("stage1-boot");
    let (ok, out) = d.slot("b");
    assert!(ok, "{out}");
    assert!(out.contains("release=\"test-release slot-b\""), "slot b's root was mounted:\n{out}");
    assert!(out.contains("formatted on first boot") && out.contains("grown to fill the disk"), "{out}");
    let data_dev = Disk::dev_in(&out, "data");
    assert_eq!(sh("blkid", &["-o", "value", "-s", "LABEL", &data_dev]), "data");
    // The partition table now spans the 128 MiB disk, and the filesystem its partition.
    let mut f = std::fs::File::open(&d.file).expect("image");
    let gpt = Gpt::read(&mut f, 128 * MIB).expect("grown table");
    let data = gpt.by_name("data").expect("data");
    assert!(data.size_bytes() > d.gpt.by_name("data").expect("old").size_bytes() + 30 * MIB, "{data:?}");
    let fs = Disk::fs_bytes(&data_dev);
    assert!(fs + 2 * MIB >= data.size_bytes() && fs <= data.size_bytes(), "filesystem {fs} fills partition {}", data.size_bytes());

    // Second boot, other slot: nothing formatted, nothing grown; data kept.
    let marker = "kept-across-boots";
    sh("debugfs", &["-w", "-R", &format!("mkdir {marker}"), &data_dev]);
    let (ok, out) = d.slot("a");
    assert!(ok, "{out}");
    assert!(out.contains("release=\"test-release slot-a\""), "{out}");
    assert!(!out.contains("formatted on first boot") && !out.contains("grown to fill"), "{out}");
    let data_dev = Disk::dev_in(&out, "data");
    assert!(sh("debugfs", &["-R", "ls", &data_dev]).contains(marker), "data survived the second boot");

    // The disk grows again (a bigger card): partition and filesystem follow.
    let f = std::fs::OpenOptions::new().write(true).open(&d.file).expect("image");
    f.set_len(160 * MIB).expect("grow");
    drop(f);
    sh("losetup", &["--set-capacity", &d.loopdev]);
    let (ok, out) = d.slot("a");
    assert!(ok, "{out}");
    assert!(out.contains("grown to fill the disk") && !out.contains("formatted on first boot"), "{out}");
    let data_dev = Disk::dev_in(&out, "data");
    let grown = Disk::fs_bytes(&data_dev);
    assert!(grown > fs + 30 * MIB, "filesystem grown: {grown} vs {fs}");
    assert!(sh("debugfs", &["-R", "ls", &data_dev]).contains(marker));
}

#[test]
fn a_missing_or_corrupt_root_stops_the_boot_with_one_clear_line() {
    let d = Disk::new("stage1-bad");
    let (ok, out) = d.boot(&format!("coracle.slot=a coracle.disk={}", uuid::Uuid::new_v4()));
    assert!(!ok);
    assert!(out.contains("stage 1 failed: no partition labelled root-a on disk"), "{out}");
    assert!(out.contains("rebooting in 0s so the boot loader can fall back"), "{out}");

    let (ok, out) = d.boot("console=ttyS0");
    assert!(!ok);
    assert!(out.contains("no coracle.slot=a|b on the kernel command line"), "{out}");

    let b = d.gpt.by_name("root-b").expect("root-b").offset_bytes();
    d.zero(b, 8192);
    let (ok, out) = d.slot("b");
    assert!(!ok);
    assert!(out.contains(&format!("root-b (on {}) holds no EROFS or squashfs filesystem", d.loopdev)), "{out}");
    let (ok, out) = d.slot("a");
    assert!(ok, "the other slot still boots: {out}");
}

#[test]
fn a_data_partition_without_filesystem_or_marker_is_never_formatted() {
    let d = Disk::new("stage1-data");
    let at = d.gpt.by_name("data").expect("data").offset_bytes();
    d.zero(at, 4096);
    let (ok, out) = d.slot("a");
    assert!(!ok);
    assert!(out.contains(&format!("data (partition 4 of {}) has neither an ext4 filesystem nor the first-boot marker; not formatting it", d.loopdev)), "{out}");
}
