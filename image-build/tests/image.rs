//! `coracle-build` as a user runs it: bad input is refused before anything
//! is written (with the reason and the fix); a qemu-x86_64 image builds
//! byte-identically twice; it boots under QEMU through stage 1; `flash`
//! writes a loop device and verifies it.
//!
//! Builds use the package cache (`cache/`, filled by `coracle-build lock`
//! or a first `image`); tests that need packages skip, saying so, when the
//! cache lacks them: tests never download.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_coracle-build"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("coracle-build-it-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).env("SOURCE_DATE_EPOCH", "1700000000").output().expect("coracle-build runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A `coracle` binary for the image: the workspace's debug build.
fn coracle_bin() -> Option<PathBuf> {
    let p = repo().join("target/debug/coracle");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipped: no target/debug/coracle (cargo build -p coracle)");
        None
    }
}

const CONFIG: &str = "apiVersion: coracle.dev/v1alpha1\nkind: MachineConfig\nnode:\n  role: server\n";

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("machine.yaml");
    std::fs::write(&p, text).expect("config");
    p
}

/// The package cache the builder uses: `$CORACLE_CACHE` or `cache/`.
fn cache_dir() -> PathBuf {
    std::env::var_os("CORACLE_CACHE").map(PathBuf::from).unwrap_or_else(|| repo().join("cache"))
}

/// Every locked package of a board is in the cache (else the test skips).
fn cache_has(board: &str) -> bool {
    let lock = std::fs::read_to_string(repo().join("boards").join(board).join("packages.lock")).unwrap_or_default();
    let v: toml::Value = toml::from_str(&lock).unwrap_or(toml::Value::Table(Default::default()));
    let pkgs = v.get("package").and_then(|p| p.as_array()).cloned().unwrap_or_default();
    let missing: Vec<String> = pkgs
        .iter()
        .filter_map(|p| {
            let name = p.get("name")?.as_str()?;
            let version = p.get("version")?.as_str()?.replace(':', "%3a");
            let arch = p.get("arch")?.as_str()?;
            let path = cache_dir().join("debs").join(format!("{name}_{version}_{arch}.deb"));
            (!path.exists()).then(|| name.to_string())
        })
        .collect();
    if pkgs.is_empty() || !missing.is_empty() {
        eprintln!("skipped: the package cache lacks {} of board {board} (fill it with `coracle-build lock --board {board}`)", if pkgs.is_empty() { "the lock".to_string() } else { missing.join(", ") });
        return false;
    }
    true
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let Some(coracle) = coracle_bin() else { return };
    let coracle = coracle.to_string_lossy().into_owned();
    let dir = tmp("bad");
    let good = write_config(&dir, CONFIG);
    let out = dir.join("out");
    let out_s = out.to_string_lossy().into_owned();
    let good_s = good.to_string_lossy().into_owned();

    let o = run(&["image", "--board", "pdp-11", "--config", &good_s, "--out", &out_s, "--coracle-bin", &coracle]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unknown board \"pdp-11\"") && stderr(&o).contains("qemu-x86_64"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing written for an unknown board");

    for board in ["rpi5", "jetson-orin"] {
        if !repo().join("boards").join(board).exists() {
            continue;
        }
        let o = run(&["image", "--board", board, "--config", &good_s, "--out", &out_s, "--coracle-bin", &coracle]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("--bsp DIR"), "{board}: {}", stderr(&o));
        assert!(!out.exists());
    }

    let o = run(&["image", "--board", "qemu-x86_64", "--config", &good_s, "--out", &out_s, "--coracle-bin", &coracle, "--disk-size", "100M"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("too small") && stderr(&o).contains("esp 128 MiB"), "{}", stderr(&o));
    assert!(!out.exists());

    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "apiVersion: coracle.dev/v1alpha1\nkind: MachineConfig\nnode:\n  role: server\nnetwork:\n  interfaces:\n    - name: eth0\n      dchp: true\n").expect("bad config");
    let o = run(&["image", "--board", "qemu-x86_64", "--config", &bad.to_string_lossy(), "--out", &out_s, "--coracle-bin", &coracle]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("machine config is invalid") && e.contains("bad.yaml:8") && e.contains("dchp") && e.contains("fix:"), "{e}");
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_package_whose_hash_differs_from_the_lock_stops_the_build() {
    let Some(coracle) = coracle_bin() else { return };
    let dir = tmp("hash");
    // A board directory with a lock pinning a package the cache holds
    // with other contents.
    let boards = dir.join("boards");
    std::fs::create_dir_all(boards.join("qemu-x86_64")).expect("boards");
    std::fs::copy(repo().join("boards/runtime.toml"), boards.join("runtime.toml")).expect("runtime");
    std::fs::copy(repo().join("boards/qemu-x86_64/board.toml"), boards.join("qemu-x86_64/board.toml")).expect("board");
    std::fs::write(
        boards.join("qemu-x86_64/packages.lock"),
        format!("board = \"qemu-x86_64\"\nkernel = \"linux-image-test\"\n\n[[package]]\nname = \"runc\"\nversion = \"1.0-test\"\narch = \"amd64\"\nsha256 = \"{}\"\n", "0".repeat(64)),
    )
    .expect("lock");
    let cache = dir.join("cache");
    std::fs::create_dir_all(cache.join("debs")).expect("cache");
    std::fs::write(cache.join("debs/runc_1.0-test_amd64.deb"), b"not the package that was locked").expect("deb");
    let out = dir.join("out");
    let config = write_config(&dir, CONFIG);
    let o = run(&[
        "image",
        "--board",
        "qemu-x86_64",
        "--boards",
        &boards.to_string_lossy(),
        "--cache",
        &cache.to_string_lossy(),
        "--config",
        &config.to_string_lossy(),
        "--out",
        &out.to_string_lossy(),
        "--coracle-bin",
        &coracle.to_string_lossy(),
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("package runc 1.0-test (amd64): SHA-256 mismatch") && e.contains("coracle-build lock --board"), "{e}");
    assert!(!out.exists(), "nothing written");
    let _ = std::fs::remove_dir_all(&dir);
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_string()
}

fn build(out: &Path, config: &Path, coracle: &Path) -> Output {
    run(&["image", "--board", "qemu-x86_64", "--config", &config.to_string_lossy(), "--out", &out.to_string_lossy(), "--coracle-bin", &coracle.to_string_lossy(), "--no-zst"])
}

#[test]
fn two_builds_from_the_same_inputs_are_byte_identical_and_hold_what_stage_1_needs() {
    let Some(coracle) = coracle_bin() else { return };
    if !cache_has("qemu-x86_64") {
        return;
    }
    let dir = tmp("repro");
    let config = write_config(&dir, CONFIG);
    let (a, b) = (dir.join("a"), dir.join("b"));
    let o = build(&a, &config, &coracle);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    for step in ["[1/9]", "[9/9]", "disk.img:", "disk.img.bmap:", "root filesystem:", "initramfs:"] {
        assert!(e.contains(step), "progress/size line {step} missing:\n{e}");
    }
    let o = build(&b, &config, &coracle);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256(&a.join("disk.img")), sha256(&b.join("disk.img")), "disk.img differs between two builds");
    assert_eq!(std::fs::read(a.join("disk.img.bmap")).expect("bmap"), std::fs::read(b.join("disk.img.bmap")).expect("bmap"));
    assert!(!a.join(".work").exists(), "work directory removed");

    // The layout stage 1 expects, read with the host's tools.
    let parts = Command::new("sfdisk").arg("--json").arg(a.join("disk.img")).output().expect("sfdisk");
    let text = String::from_utf8_lossy(&parts.stdout);
    for name in ["\"esp\"", "\"root-a\"", "\"root-b\"", "\"data\""] {
        assert!(text.contains(name), "{name} missing: {text}");
    }
    // bmaptool accepts our block map.
    let copy = dir.join("copy.img");
    let o = Command::new("bmaptool").arg("copy").arg("--bmap").arg(a.join("disk.img.bmap")).arg(a.join("disk.img")).arg(&copy).output();
    if let Ok(o) = o {
        assert!(o.status.success(), "bmaptool: {}", stderr(&o));
        assert_eq!(sha256(&copy), sha256(&a.join("disk.img")));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Detach a loop device even when an assertion fails.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

#[test]
fn flash_writes_mapped_blocks_to_a_loop_device_and_refuses_a_mounted_one() {
    let dir = tmp("flash");
    // An image with data at both ends and a hole in the middle.
    let img = dir.join("disk.img");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(&img).expect("image");
        f.set_len(24 * 1024 * 1024).expect("size");
        f.write_all(&[0x5a; 10_000]).expect("head");
        f.seek(SeekFrom::Start(20 * 1024 * 1024)).expect("seek");
        f.write_all(&[0xa5; 8192]).expect("tail");
    }
    let o = run(&["bmap", &img.to_string_lossy()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The device starts with garbage where the image has data, and
    // something in a hole that a bmap copy leaves alone.
    let backing = dir.join("device");
    std::fs::write(&backing, vec![0xffu8; 32 * 1024 * 1024]).expect("backing");
    let out = Command::new("losetup").args(["--find", "--show"]).arg(&backing).output().expect("losetup");
    if !out.status.success() {
        eprintln!("skipped: no loop device here ({})", stderr(&out).trim());
        return;
    }
    let dev = Loop(String::from_utf8_lossy(&out.stdout).trim().to_string());
    let o = run(&["flash", "--image", &img.to_string_lossy(), "--device", &dev.0]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("100% written") && e.contains("written and verified"), "{e}");
    let written = std::fs::read(&backing).expect("device contents");
    assert!(written[..10_000].iter().all(|b| *b == 0x5a));
    assert!(written[20 * 1024 * 1024..20 * 1024 * 1024 + 8192].iter().all(|b| *b == 0xa5));
    assert_eq!(written[10 * 1024 * 1024], 0xff, "unmapped blocks are not written");

    // A damaged image is caught by the bmap's checksums.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&img).expect("image");
        f.seek(SeekFrom::Start(100)).expect("seek");
        f.write_all(b"corrupt").expect("write");
    }
    let o = run(&["flash", "--image", &img.to_string_lossy(), "--device", &dev.0]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("do not match the bmap checksum"), "{}", stderr(&o));

    // A mounted device is refused before anything is written.
    let fs_img = dir.join("fs.img");
    std::fs::write(&fs_img, vec![0u8; 8 * 1024 * 1024]).expect("fs image");
    let mk = Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&fs_img).status().expect("mkfs.ext4");
    assert!(mk.success());
    let out = Command::new("losetup").args(["--find", "--show"]).arg(&fs_img).output().expect("losetup");
    let fsdev = Loop(String::from_utf8_lossy(&out.stdout).trim().to_string());
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).expect("mnt");
    if Command::new("mount").arg(&fsdev.0).arg(&mnt).status().is_ok_and(|s| s.success()) {
        let o = run(&["flash", "--image", &img.to_string_lossy(), "--device", &fsdev.0]);
        let _ = Command::new("umount").arg(&mnt).status();
        assert!(!o.status.success());
        assert!(stderr(&o).contains("is mounted") && stderr(&o).contains("unmount it first"), "{}", stderr(&o));
        // ext4 leaves its first 1024 bytes zero; the image would have put 0x5a there.
        assert!(std::fs::read(&fs_img).expect("read")[..1024].iter().all(|b| *b == 0), "not written");
    } else {
        eprintln!("mount refused here: skipped the mounted-device check");
    }
    let o = run(&["flash", "--image", &img.to_string_lossy(), "--device", &img.to_string_lossy()]);
    assert!(stderr(&o).contains("not a block device"), "{}", stderr(&o));
    drop(dev);
    drop(fsdev);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An arm64 `coracle` for arm64 boards: the cross build
/// (`cargo build -p coracle --target aarch64-unknown-linux-gnu`), else a
/// stand-in arm64 program from the cache (Debian's runc: an ELF file that
/// needs the C library, as `coracle` does) so the layout is still checked.
fn arm64_coracle() -> Option<PathBuf> {
    let cross = repo().join("target/aarch64-unknown-linux-gnu/debug/coracle");
    if cross.exists() {
        return Some(cross);
    }
    let unpacked = std::fs::read_dir(cache_dir().join("unpacked")).ok()?;
    let runc = unpacked.flatten().map(|e| e.path()).find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("runc_") && n.to_string_lossy().ends_with("_arm64")))?.join("usr/sbin/runc");
    eprintln!("no cross-built arm64 coracle: using {} as a stand-in", runc.display());
    runc.exists().then_some(runc)
}

/// The partitions of a disk image as sfdisk reads its GPT: name, type
/// GUID, offset and size in bytes.
fn partitions(img: &Path) -> Vec<(String, String, u64, u64)> {
    let o = Command::new("sfdisk").arg("--json").arg(img).output().expect("sfdisk");
    let v: serde_yaml::Value = serde_yaml::from_slice(&o.stdout).expect("sfdisk json");
    let table = &v["partitiontable"];
    assert_eq!(table["label"].as_str(), Some("gpt"));
    table["partitions"].as_sequence().expect("partitions").iter().map(|p| (p["name"].as_str().unwrap_or("").to_string(), p["type"].as_str().unwrap_or("").to_string(), p["start"].as_u64().unwrap_or(0) * 512, p["size"].as_u64().unwrap_or(0) * 512)).collect()
}

/// A file of a FAT partition at `offset` in `img` (mtools), or None.
fn fat_file(img: &Path, offset: u64, path: &str) -> Option<String> {
    let o = Command::new("mtype").arg("-i").arg(format!("{}@@{offset}", img.display())).arg(format!("::{path}")).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn fat_names(img: &Path, offset: u64) -> Vec<String> {
    let o = Command::new("mdir").args(["-b"]).arg("-i").arg(format!("{}@@{offset}", img.display())).arg("::/").output().expect("mdir");
    String::from_utf8_lossy(&o.stdout).lines().map(|l| l.trim_start_matches("::/").to_string()).filter(|l| !l.is_empty()).collect()
}

#[test]
fn the_rpi4_image_has_tryboot_a_b_boot_partitions_and_builds_byte_identically() {
    let Some(host) = coracle_bin() else { return };
    if !cache_has("rpi4") {
        return;
    }
    let Some(coracle) = arm64_coracle() else {
        eprintln!("skipped: no arm64 coracle and no arm64 runc in the cache");
        return;
    };
    if Command::new("mtype").arg("--version").output().is_err() {
        eprintln!("skipped: mtools missing (apt-get install mtools)");
        return;
    }
    let dir = tmp("rpi4");
    let config = write_config(&dir, CONFIG);
    let build = |out: &Path| {
        let o = run(&["image", "--board", "rpi4", "--config", &config.to_string_lossy(), "--out", &out.to_string_lossy(), "--coracle-bin", &coracle.to_string_lossy(), "--host-coracle", &host.to_string_lossy(), "--no-zst"]);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    let (a, b) = (dir.join("a"), dir.join("b"));
    build(&a);
    build(&b);
    let img = a.join("disk.img");
    assert_eq!(sha256(&img), sha256(&b.join("disk.img")), "disk.img differs between two builds");

    // The firmware reads autoboot.txt from partition 1; the FAT partitions
    // come first, then the slots stage 1 looks up by name.
    let parts = partitions(&img);
    let names: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names, ["esp", "boot-a", "boot-b", "root-a", "root-b", "data"]);
    let basic_data = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
    let linux = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
    let mib = 1024 * 1024;
    let want = [(basic_data, 64), (basic_data, 128), (basic_data, 128), (linux, 384), (linux, 384), (linux, 256)];
    for (p, (ty, size)) in parts.iter().zip(want) {
        assert_eq!((p.1.as_str(), p.3), (ty, size * mib), "partition {}", p.0);
    }
    let o = Command::new("sfdisk").arg("--disk-id").arg(&img).output().expect("sfdisk");
    let disk_guid = String::from_utf8_lossy(&o.stdout).trim().to_ascii_lowercase();

    // esp: autoboot.txt alone, in the form PID 1's blessing rewrites.
    assert_eq!(fat_names(&img, parts[0].2), ["autoboot.txt"]);
    assert_eq!(fat_file(&img, parts[0].2, "autoboot.txt").as_deref(), Some("[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"));

    // boot-a and boot-b: a complete firmware boot partition per slot.
    for (slot, part) in [("a", &parts[1]), ("b", &parts[2])] {
        let mut files = fat_names(&img, part.2);
        files.sort();
        assert_eq!(files, ["bcm2711-rpi-4-b.dtb", "cmdline.txt", "config.txt", "fixup4.dat", "initrd.img", "start4.elf", "vmlinuz"], "boot-{slot}");
        let config = fat_file(&img, part.2, "config.txt").expect("config.txt");
        for l in ["arm_64bit=1\n", "kernel=vmlinuz\n", "initramfs initrd.img followkernel\n", "enable_uart=1\n", "upstream_kernel=1\n"] {
            assert!(config.contains(l), "boot-{slot} config.txt lacks {l:?}:\n{config}");
        }
        let cmdline = fat_file(&img, part.2, "cmdline.txt").expect("cmdline.txt");
        assert!(cmdline.ends_with(&format!(" coracle.slot={slot} coracle.disk={disk_guid}\n")), "boot-{slot}: {cmdline}");
        assert_eq!(cmdline.lines().count(), 1, "the firmware reads one line");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
