//! `coracle-build` as a user runs it: bad input is refused before anything
//! is written (with the reason and the fix); a qemu-x86_64 image builds
//! byte-identically twice; it boots under QEMU through stage 1; `flash`
//! writes a loop device and verifies it.
//!
//! Builds use the package cache (`cache/`, filled by `coracle-build lock`
//! or a first `image`); tests that need packages skip, saying so, when the
//! cache lacks them: tests never download.

use coracle_build::qemu::strip_ansi;
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
            let path = repo().join("cache/debs").join(format!("{name}_{version}_{arch}.deb"));
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

#[test]
fn the_image_boots_under_qemu_through_stage_1_into_stage_2() {
    let Some(coracle) = coracle_bin() else { return };
    if !cache_has("qemu-x86_64") || !Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd").exists() {
        eprintln!("skipped: no package cache or no OVMF (apt-get install ovmf)");
        return;
    }
    // Kept between test runs: `run` rebuilds only when an input changed.
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-x86_64");
    let port = (20000 + std::process::id() % 20000).to_string();
    let o = run(&["run", "--board", "qemu-x86_64", "--out", &out.to_string_lossy(), "--coracle-bin", &coracle.to_string_lossy(), "--api-port", &port, "--until", "coracle:stage2", "--timeout", "600", "--quiet"]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    for m in ["kernel started", "stage 1: root mounted", "stage 1: data mounted", "reached \"coracle:stage2\""] {
        assert!(e.contains(m), "{m} missing:\n{e}");
    }
    let serial = strip_ansi(&String::from_utf8_lossy(&std::fs::read(out.join("vm/serial.log")).expect("serial log")));
    assert!(serial.contains("coracle.slot=a coracle.disk="), "slot a booted from the UKI's command line");
    assert!(serial.contains("formatted=true"), "the data partition was formatted on first boot");
    let kubeconfig = std::fs::read_to_string(out.join("kubeconfig")).expect("kubeconfig");
    assert!(kubeconfig.contains(&format!("server: https://127.0.0.1:{port}")), "{kubeconfig}");
}
